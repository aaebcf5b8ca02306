"""Read run directories back: each run's curve, and the comparison table of
`launcher results`.

Works on what any run leaves (progress.csv), so it also reads runs made on a
cluster and copied home, or made by Tune with the tutorial's trainer (its
`episode_reward_mean` column is understood too). The reward curves are drawn in
plots.py from the same `RunCurve`s. `--record` adds how each run was made (its run.json:
seed, versions, image, hosts, the env's git commit).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from launcher.contract import PROGRESS_CSV
from launcher.errors import UserError
from launcher.training.run_record import read_record
from launcher.training.runlog import (
    EVAL_RETURN_COLUMN,
    RETURN_KEYS,
    STEP_KEYS,
    first_of,
    number,
)

RETURN_COLUMNS = ("episode_return_mean",) + RETURN_KEYS
STEP_COLUMNS = STEP_KEYS


@dataclass
class RunCurve:
    run_dir: Path
    iterations: list[int]
    env_steps: list[int]
    returns: list[float | None]
    time_s: list[float]
    eval_returns: list[float | None] = field(default_factory=list)

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
        # Only the launcher's own column: RLlib's flattened evaluation/* columns carry
        # the last evaluation along in iterations that did not evaluate.
        eval_returns=[first_of(r, (EVAL_RETURN_COLUMN,)) for r in rows],
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


# --record: the columns read from each run's run.json, and how each is found there.
RECORD_COLUMNS = {
    "seed": lambda r: r.get("seed"),
    "launcher": lambda r: (r.get("versions") or {}).get("launcher"),
    "ray": lambda r: (r.get("versions") or {}).get("ray"),
    "torch": lambda r: (r.get("versions") or {}).get("torch"),
    "gymnasium": lambda r: (r.get("versions") or {}).get("gymnasium"),
    "image": lambda r: "@".join(x for x in ((r.get("image") or {}).get("name"),
                                            ((r.get("image") or {}).get("digest") or "")[:19]) if x),
    "hosts": lambda r: ",".join(r.get("hosts") or []),
    "env commit": lambda r: ((r.get("env_source") or {}).get("git_commit") or "")[:12]
    + ("+dirty" if (r.get("env_source") or {}).get("git_dirty") else ""),
}


def record_rows(rows: list[dict], run_dirs) -> list[dict]:
    """`table_rows` with the run record's columns added (blank where a run has none)."""
    for row, run_dir in zip(rows, run_dirs, strict=True):
        record = read_record(run_dir)
        row.update({name: get(record) for name, get in RECORD_COLUMNS.items()})
    return rows


def results_table(rows: list[dict], record: bool = False) -> Table:
    """`launcher results`' table of `table_rows`, one row per run; `record`: with the
    columns of `record_rows`."""
    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    extra = list(RECORD_COLUMNS) if record else []
    table = Table("iterations", "env steps", "best return", "last return", "time (s)", *extra)
    table.add_column("run", no_wrap=True)
    for row in rows:
        table.add_row(str(row["iterations"]), f"{row['env_steps']:,}", fmt(row["best_return"]),
                      fmt(row["last_return"]), f"{row['time_s']:.1f}",
                      *[str(row.get(name) if row.get(name) not in (None, "") else "-") for name in extra],
                      row["run"])
    return table
