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
    POLICY_RETURN_PREFIX,
    RETURN_KEYS,
    STEP_KEYS,
    first_of,
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
    # A multi-agent run: each policy's mean return (its agents' returns summed), by name.
    policy_returns: dict[str, list[float | None]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.run_dir.name

    def finished_returns(self) -> list[float]:
        return [r for r in self.returns if r is not None]


def run_dirs_in(paths, depth: int = 2) -> list[Path]:
    """The run directories named, a folder of runs standing for the runs in it (sorted);
    a folder of sweeps, or of runs and sweeps, for the runs in each (`depth` levels)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if depth and path.is_dir() and not (path / PROGRESS_CSV).is_file():
            runs = [p for child in sorted(path.iterdir()) if child.is_dir()
                    for p in run_dirs_in([child], depth - 1) if (p / PROGRESS_CSV).is_file()]
            if runs:
                found += runs
                continue
        found.append(path)
    return found


def _column(rows: list[dict], path: Path, keys, kind=float, required: bool = True) -> list:
    """One column of progress.csv as numbers. A required column that the file has but
    where a line holds no number: the file is corrupt. One the file lacks altogether (a
    hand-made or foreign progress.csv): counted 1, 2, ... for iterations, else 0."""
    present = bool(rows) and any(key in rows[0] for key in keys)
    out = []
    for line, row in enumerate(rows, start=2):
        value = first_of(row, keys)
        if value is None and required and present:
            raise UserError(f"{path} is corrupt: line {line} has no number in "
                            f"{' / '.join(keys[:2])}")
        if value is None and required:
            value = line - 1 if kind is int and keys == ("training_iteration",) else 0
        out.append(None if value is None else kind(value))
    return out


def read_run(run_dir: str | Path) -> RunCurve:
    run_dir = Path(run_dir)
    path = run_dir / PROGRESS_CSV
    if not path.is_file():
        raise UserError(f"{run_dir} has no {PROGRESS_CSV}: not a run directory, or no iteration finished")
    try:
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (csv.Error, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is corrupt: {exc}") from None
    return RunCurve(
        run_dir=run_dir,
        iterations=_column(rows, path, ("training_iteration",), int),
        env_steps=_column(rows, path, STEP_COLUMNS, int),
        returns=_column(rows, path, RETURN_COLUMNS, required=False),
        time_s=_column(rows, path, ("time_total_s",)),
        # Only the launcher's own column: RLlib's flattened evaluation/* columns carry
        # the last evaluation along in iterations that did not evaluate.
        eval_returns=_column(rows, path, (EVAL_RETURN_COLUMN,), required=False),
        policy_returns={
            column[len(POLICY_RETURN_PREFIX):]: _column(rows, path, (column,), required=False)
            for column in sorted(rows[0] if rows else {}) if column.startswith(POLICY_RETURN_PREFIX)},
    )


def table_rows(run_dirs) -> list[dict]:
    """One summary dict per run: best and last mean return, env steps, wall time; a
    multi-agent run with several policies is followed by one row per policy (its "run"
    reads 'RUN · policy NAME', its "policy" holds the name)."""
    rows = []
    for run_dir in run_dirs:
        curve = read_run(run_dir)
        rows.append(_summary_row(curve, curve.label, curve.finished_returns()))
        if len(curve.policy_returns) > 1:
            for policy, returns in curve.policy_returns.items():
                finished = [r for r in returns if r is not None]
                rows.append(_summary_row(curve, f"{curve.label} · policy {policy}", finished,
                                         policy))
    return rows


def _summary_row(curve: RunCurve, label: str, finished: list[float],
                 policy: str | None = None) -> dict:
    row = {
        "run": label,
        "iterations": curve.iterations[-1] if curve.iterations else 0,
        "env_steps": curve.env_steps[-1] if curve.env_steps else 0,
        "best_return": max(finished) if finished else None,
        "last_return": finished[-1] if finished else None,
        "time_s": curve.time_s[-1] if curve.time_s else 0.0,
    }
    return {**row, "policy": policy} if policy is not None else row


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
    """`table_rows` with the run record's columns added (blank where a run has none); a
    policy's row has its run's."""
    remaining, record = iter(run_dirs), {}
    for row in rows:
        if "policy" not in row:
            record = read_record(next(remaining))
        row.update({name: get(record) for name, get in RECORD_COLUMNS.items()})
    return rows


def results_table(rows: list[dict], record: bool = False) -> Table:
    """`launcher results`' table of `table_rows`, one row per run; `record`: with the
    columns of `record_rows`."""
    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    extra = list(RECORD_COLUMNS) if record else []
    numbers = ("iterations", "env steps", "best return", "last return", "train time (s)")
    cells = [[str(row["iterations"]), f"{row['env_steps']:,}", fmt(row["best_return"]),
              fmt(row["last_return"]), f"{row['time_s']:.1f}"] for row in rows]
    table = Table()
    for i, name in enumerate(numbers):  # numbers are never cut short: at least their width
        width = max([len(name)] + [len(c[i]) for c in cells])
        table.add_column(name, justify="right", no_wrap=True, min_width=width)
    for name in extra:
        table.add_column(name, overflow="fold")
    table.add_column("run", overflow="fold", min_width=8)  # a narrow terminal folds the name
    for row, numbers_of_row in zip(rows, cells, strict=True):
        table.add_row(*numbers_of_row,
                      *[str(row.get(name) if row.get(name) not in (None, "") else "-") for name in extra],
                      row["run"])
    return table
