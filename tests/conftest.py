"""Shared fixtures. End-to-end tests skip when their service is missing, except in
CI (LAUNCHER_REQUIRE_E2E=1), where a missing service is a failure."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LAUNCHER = [sys.executable, "-m", "launcher"]


def free_port() -> int:
    """A TCP port nothing listens on right now (on loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def progress_rows(run_dir: Path) -> list[dict[str, str]]:
    """A run's progress.csv, one dict per iteration."""
    with (run_dir / "progress.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def only_run_dir(output: Path) -> Path:
    """The one run directory a command left under `output`."""
    runs = [p for p in output.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


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


def call_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run `launcher ARGS` in this process through the real entry point (fast)."""
    from launcher.cli import main

    old_argv = sys.argv
    sys.argv = ["launcher", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old_argv
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    """A user mistake: exit 2, one line on stderr starting with 'error:', no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, err)
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


GYMNASIUM_ENV = '''
import gymnasium as gym
import numpy as np


class GuessEnv(gym.Env):
    """Reward 1 for the action equal to env_config["target"], else 0; 5-step episodes."""

    def __init__(self, config=None):
        config = config or {}
        self.target = int(config.get("target", 0))
        self.action_space = gym.spaces.Discrete(4)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (2,), np.float32)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        reward = 1.0 if int(action) == self.target else 0.0
        return np.zeros(2, np.float32), reward, self.t >= 5, False, {}
'''
