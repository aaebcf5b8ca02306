"""Resuming a run: what may change, what it is resumed with, and whether it can be.

One set of rules for `launcher train --resume`, `launcher local --resume` and
`launcher submit --resume`: a run continues as it was started (its spec.yaml), from its
newest checkpoint; only resources and stop criteria may be given again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from launcher.contract import RunPaths
from launcher.errors import UserError
from launcher.training.checkpoints import checkpoints, iteration_of, latest_checkpoint
from launcher.training.settings import TrainSettings, load_spec

RESUMABLE_KEYS = ("num_cpus", "num_gpus", "num_env_runners", "address", "stop", "checkpoint_every")


def overrides_for_resume(data: dict[str, Any]) -> dict[str, Any]:
    """The options given with --resume, refused unless they may change."""
    refused = sorted(k for k in data if k not in RESUMABLE_KEYS)
    if refused:
        raise UserError(f"--resume continues a run as it was started; cannot change: {', '.join(refused)}")
    return {k: v for k, v in data.items() if k != "stop" or v}


def resumed_settings(run_dir: str | Path, overrides: dict[str, Any]) -> TrainSettings:
    """The spec a run started with, with resources and stop criteria the user re-set."""
    settings = load_spec(run_dir)
    for key, value in overrides.items():
        if key == "stop":
            for skey, svalue in value.items():
                setattr(settings.stop, skey, svalue)
        else:
            setattr(settings, key, value)
    return settings.validate()


def check_resumable(run_dir: str | Path, *, cluster: bool) -> Path:
    """The run dir to resume, resolved; one line when it cannot be resumed. `cluster`:
    it must be a cluster job's run dir (with cluster.yaml)."""
    paths = RunPaths(Path(run_dir).expanduser().resolve())
    if not paths.root.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    if cluster and not paths.cluster.is_file():
        raise UserError(f"{paths.root} was not started by `launcher local` / a cluster job "
                        f"(no {paths.cluster.name}); resume it with `launcher train --resume`")
    if not paths.spec.is_file():
        raise UserError(f"{paths.root} is not a launcher run directory (no {paths.spec.name} in it)")
    if not checkpoints(paths.root):
        raise UserError(f"no checkpoint in {paths.root} to resume from")
    return paths.root


def completed_because(settings: TrainSettings, run_dir: str | Path) -> str | None:
    """The stop criterion the run had met at its newest checkpoint, or None. A complete
    run is not trained further: --resume with a higher stop criterion continues it."""
    import csv

    from launcher.training.loop import stop_reason
    from launcher.training.runlog import iteration_of as row_iteration
    from launcher.training.runlog import number

    paths, newest = RunPaths(run_dir), latest_checkpoint(run_dir)
    if newest is None or not paths.progress.is_file():
        return None
    at = iteration_of(newest)
    with paths.progress.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if (i := row_iteration(r)) is not None and i <= at]
    if not rows:
        return None
    row = rows[-1]
    summary = {"training_iteration": row_iteration(row),
               "num_env_steps_sampled_lifetime": int(number(row.get("num_env_steps_sampled_lifetime")) or 0),
               "episode_return_mean": number(row.get("episode_return_mean"))}
    return stop_reason(settings, summary, number(row.get("time_total_s")) or 0.0)
