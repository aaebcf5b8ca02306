"""A new run's directory: its name, and reserving it so that no two runs share one.

The directory is created exclusively (`mkdir` fails if it exists), before Ray starts
or anything is submitted, and readable by its owner only whatever the umask: settings
and results may hold what others should not change.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from pathlib import Path

from launcher.contract import RunPaths
from launcher.errors import UserError
from launcher.training import envs

RUN_DIR_MODE = 0o750


def run_dir_name(settings) -> str:
    if settings.name:
        name = settings.name
    else:
        env = settings.env.rpartition(":")[2] if envs.is_entry_point(settings.env) else settings.env
        stamp = dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        name = f"{settings.algo}_{env}_{stamp}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "run"


def reserve(run_dir: Path) -> Path:
    """Create `run_dir` exclusively (its parents as needed), mode 0750; one line when it
    exists or cannot be written."""
    run_dir = Path(run_dir)
    try:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot write to output directory {run_dir.parent}: {exc.strerror}") from None
    try:
        os.mkdir(run_dir, RUN_DIR_MODE)
    except FileExistsError:
        hint = "continue it with --resume {0} or choose another --name" \
            if RunPaths(run_dir).spec.exists() else "choose another --name or remove it"
        raise UserError(f"run directory {run_dir} already exists: " + hint.format(run_dir)) from None
    except OSError as exc:
        raise UserError(f"cannot create run directory {run_dir}: {exc.strerror}") from None
    os.chmod(run_dir, RUN_DIR_MODE)  # mkdir's mode is masked by the umask
    try:
        with tempfile.TemporaryFile(dir=run_dir):
            pass
    except OSError as exc:
        raise UserError(f"cannot write to run directory {run_dir}: {exc.strerror}") from None
    return run_dir


def reserve_run_dir(settings) -> Path:
    """OUTPUT/NAME for a new run, reserved."""
    return reserve(Path(settings.output).expanduser() / run_dir_name(settings))
