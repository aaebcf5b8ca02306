"""Checkpoints of a run: saved atomically, listed in iteration order, restored from the
newest one that loads.

A checkpoint is written aside (`.partial_N`) and renamed into `checkpoint_NNNNNN` once
complete, so a head killed mid-save leaves no half checkpoint under that name. A
damaged one can still appear (a copy cut short, a full disk): `restore_latest` falls
back to the next older checkpoint instead of failing the resume.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from launcher.contract import CHECKPOINT_PREFIX, RunPaths
from launcher.errors import UserError, first_line

KEEP_CHECKPOINTS = 3


def iteration_of(path: Path) -> int | None:
    """The iteration a checkpoint folder's name says, or None for other names."""
    digits = path.name.removeprefix(CHECKPOINT_PREFIX)
    return int(digits) if path.name.startswith(CHECKPOINT_PREFIX) and digits.isdigit() else None


def checkpoints(run_dir: str | Path) -> list[Path]:
    """The run's non-empty checkpoint folders, oldest first (by iteration, not by name)."""
    folder = RunPaths(run_dir).checkpoints
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir()
             if p.is_dir() and iteration_of(p) is not None and any(p.iterdir())]
    return sorted(found, key=iteration_of)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = checkpoints(run_dir)
    return found[-1] if found else None


def save_checkpoint(algo, run_dir: str | Path, iteration: int) -> Path:
    """Save atomically (write aside, then rename), keep the newest few."""
    folder = RunPaths(run_dir).checkpoints
    folder.mkdir(mode=0o700, exist_ok=True)
    final = folder / f"{CHECKPOINT_PREFIX}{iteration:06d}"
    if final.exists() and any(final.iterdir()):
        return final
    partial = folder / f".partial_{iteration:06d}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    algo.save_checkpoint(str(partial.resolve()))  # both API stacks (tf2 is the old one)
    shutil.rmtree(final, ignore_errors=True)  # an empty leftover of the same name
    partial.rename(final)
    for old in checkpoints(run_dir)[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def restore_latest(algo, run_dir: str | Path, say=print) -> int:
    """Load the newest checkpoint that loads; return its iteration."""
    candidates = checkpoints(run_dir)
    for path in reversed(candidates):
        try:
            algo.load_checkpoint(str(path.resolve()))
        except Exception as exc:
            say(f"warning: checkpoint {path.name} does not load ({first_line(exc)}); "
                "trying the one before it")
            continue
        # The old API stack (tf2) does not keep the iteration count in its state.
        algo._iteration = iteration_of(path)
        return algo._iteration
    raise UserError(f"no checkpoint in {RunPaths(run_dir).checkpoints} loads: cannot resume")
