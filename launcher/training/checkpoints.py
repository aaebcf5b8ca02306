"""Checkpoints of a run: saved atomically, listed in iteration order, restored from the
newest one that loads; and the best one, kept beside them.

A checkpoint is written aside (`.partial_N`) and renamed into `checkpoint_NNNNNN` once
complete, so a head killed mid-save leaves no half checkpoint under that name. A
damaged one can still appear (a copy cut short, a full disk): `restore_latest` falls
back to the next older checkpoint instead of failing the resume.

`checkpoints/best` is the checkpoint of the iteration with the highest score (the newest
of equals): the greedy evaluation's mean return when the run evaluates (--eval-every),
else the mean training return. It is saved whenever the score improves or ties, and is
never pruned with the newest few; `best.json` inside it says which iteration it is and
why. `evaluate` and `export` take it by default (`checkpoint_for_use`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from launcher.contract import BEST_CHECKPOINT, CHECKPOINT_PREFIX, RunPaths
from launcher.errors import UserError, first_line

KEEP_CHECKPOINTS = 3
BEST_INFO = "best.json"  # inside it: iteration, score, metric
EVALUATION, TRAINING = "evaluation return", "training return"


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


# --- the best checkpoint -----------------------------------------------------------------
def best_checkpoint(run_dir: str | Path) -> Path | None:
    path = RunPaths(run_dir).checkpoints / BEST_CHECKPOINT
    return path if (path / BEST_INFO).is_file() else None


def best_info(run_dir: str | Path) -> dict | None:
    """What checkpoints/best holds: {"iteration", "score", "metric"}; None when absent."""
    path = best_checkpoint(run_dir)
    try:
        info = json.loads((path / BEST_INFO).read_text()) if path else None
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def checkpoint_for_use(run_dir: str | Path) -> Path | None:
    """The checkpoint `evaluate` and `export` take by default: the best, else the newest."""
    return best_checkpoint(run_dir) or latest_checkpoint(run_dir)


def _install_best(run_dir: Path, fill, info: dict) -> Path:
    """Fill a folder aside (`fill(path)`), add best.json, and swap it in for the old best."""
    folder = RunPaths(run_dir).checkpoints
    folder.mkdir(mode=0o700, exist_ok=True)
    partial, old, final = (folder / f".partial_{BEST_CHECKPOINT}", folder / f".old_{BEST_CHECKPOINT}",
                           folder / BEST_CHECKPOINT)
    for leftover in (partial, old):
        shutil.rmtree(leftover, ignore_errors=True)
    fill(partial)
    (partial / BEST_INFO).write_text(json.dumps(info, indent=2) + "\n")
    if final.exists():
        os.rename(final, old)
    os.rename(partial, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


class BestCheckpoint:
    """Keeps checkpoints/best: `offer` each iteration's progress row, `finish` at the end."""

    def __init__(self, run_dir: str | Path, by_evaluation: bool):
        self.run_dir = Path(run_dir)
        self.metric = EVALUATION if by_evaluation else TRAINING
        info = best_info(run_dir) or {}
        self.score = info.get("score") if info.get("metric") == self.metric else None

    def score_of(self, row: dict) -> float | None:
        from launcher.training.runlog import EVAL_RETURN_COLUMN

        return row.get(EVAL_RETURN_COLUMN if self.metric == EVALUATION else "episode_return_mean")

    def offer(self, algo, row: dict) -> Path | None:
        """Save the algorithm as the best checkpoint when this row's score beats it."""
        score = self.score_of(row)
        if score is None or (self.score is not None and score < self.score):
            return None  # a tie moves best on to the newer, longer-trained checkpoint
        self.score = float(score)
        info = {"iteration": int(row["training_iteration"]), "score": self.score, "metric": self.metric}
        return _install_best(self.run_dir, lambda p: (p.mkdir(), algo.save_checkpoint(str(p.resolve()))),
                             info)

    def finish(self, final: Path, row: dict) -> None:
        """A run that never scored (no evaluation finished) keeps its final checkpoint as best."""
        if best_checkpoint(self.run_dir) is not None or final is None:
            return
        score = row.get("episode_return_mean")
        info = {"iteration": iteration_of(final), "score": score, "metric": TRAINING}
        _install_best(self.run_dir, lambda p: shutil.copytree(final, p), info)
