"""Read run directories back: each run's curve, and the comparison table of
`launcher results`.

Works on what any run leaves (progress.csv), so it also reads runs made on a
cluster and copied home, or made by Tune with the tutorial's trainer (its
`episode_reward_mean` column is understood too). The reward curves are drawn in
plots.py from the same `RunCurve`s.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from launcher.contract import PROGRESS_CSV
from launcher.errors import UserError
from launcher.training.runlog import RETURN_KEYS, STEP_KEYS, first_of, number

RETURN_COLUMNS = ("episode_return_mean",) + RETURN_KEYS
STEP_COLUMNS = STEP_KEYS


@dataclass
class RunCurve:
    run_dir: Path
    iterations: list[int]
    env_steps: list[int]
    returns: list[float | None]
    time_s: list[float]

    @property
    def label(self) -> str:
        return self.run_dir.name

    def finished_returns(self) -> list[float]:
        return [r for r in self.returns if r is not None]


def read_run(run_dir: str | Path) -> RunCurve:
    run_dir = Path(run_dir)
    path = run_dir / PROGRESS_CSV
    if not path.is_file():
        raise UserError(f"{run_dir} has no {PROGRESS_CSV}: not a run directory, or no iteration finished")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return RunCurve(
        run_dir=run_dir,
        iterations=[int(number(r.get("training_iteration")) or i + 1) for i, r in enumerate(rows)],
        env_steps=[int(first_of(r, STEP_COLUMNS) or 0) for r in rows],
        returns=[first_of(r, RETURN_COLUMNS) for r in rows],
        time_s=[first_of(r, ("time_total_s",)) or 0.0 for r in rows],
    )


def table_rows(run_dirs) -> list[dict]:
    """One summary dict per run: best and last mean return, env steps, wall time."""
    rows = []
    for run_dir in run_dirs:
        curve = read_run(run_dir)
        finished = curve.finished_returns()
        rows.append({
            "run": curve.label,
            "iterations": curve.iterations[-1] if curve.iterations else 0,
            "env_steps": curve.env_steps[-1] if curve.env_steps else 0,
            "best_return": max(finished) if finished else None,
            "last_return": finished[-1] if finished else None,
            "time_s": curve.time_s[-1] if curve.time_s else 0.0,
        })
    return rows


def results_table(rows: list[dict]) -> Table:
    """`launcher results`' table of `table_rows`, one row per run."""
    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    table = Table("iterations", "env steps", "best return", "last return", "time (s)")
    table.add_column("run", no_wrap=True)
    for row in rows:
        table.add_row(str(row["iterations"]), f"{row['env_steps']:,}", fmt(row["best_return"]),
                      fmt(row["last_return"]), f"{row['time_s']:.1f}", row["run"])
    return table
