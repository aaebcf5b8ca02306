"""Read run directories back: a comparison table and reward curves.

Works on what any run leaves (progress.csv), so it also reads runs made on a
cluster and copied home, or made by Tune with the tutorial's trainer (its
`episode_reward_mean` column is understood too).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from launcher.errors import UserError
from launcher.training.runlog import PROGRESS_CSV, RETURN_KEYS, STEP_KEYS, first_of, number

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


def plot(run_dirs, out: str | Path, x: str = "env_steps") -> Path:
    """Mean-return curves of one or several runs in one figure (PNG, SVG or PDF)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [read_run(d) for d in run_dirs]
    if not any(c.finished_returns() for c in curves):
        raise UserError("no episode has finished in these runs yet: nothing to plot")
    xlabel = {"env_steps": "env steps", "iteration": "training iteration", "time": "seconds"}
    if x not in xlabel:
        raise UserError(f"--x must be one of {', '.join(xlabel)}, got {x!r}")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for curve in curves:
        xs = {"env_steps": curve.env_steps, "iteration": curve.iterations, "time": curve.time_s}[x]
        points = [(a, b) for a, b in zip(xs, curve.returns, strict=True) if b is not None]
        if points:
            ax.plot(*zip(*points, strict=True), label=curve.label)
    ax.set_xlabel(xlabel[x])
    ax.set_ylabel("mean episode return")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    out = Path(out)
    try:
        fig.savefig(out, dpi=110)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror}") from None
    finally:
        plt.close(fig)
    return out
