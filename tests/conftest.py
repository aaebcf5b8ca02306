"""Shared fixtures. End-to-end tests skip when their service is missing, except in
CI (LAUNCHER_REQUIRE_E2E=1), where a missing service is a failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LAUNCHER = [sys.executable, "-m", "launcher"]


def require(condition: bool, why: str) -> None:
    """Skip (locally) or fail (CI) when an end-to-end prerequisite is missing."""
    if condition:
        return
    if os.environ.get("LAUNCHER_REQUIRE_E2E") == "1":
        pytest.fail(f"end-to-end prerequisite missing in CI: {why}")
    pytest.skip(why)


def run_launcher(*args: str, cwd: Path | None = None, timeout: float = 300,
                 env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a user would."""
    return subprocess.run(
        [*LAUNCHER, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )
