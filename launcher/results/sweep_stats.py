"""A sweep read back: trials grouped by configuration, compared with confidence intervals.

A configuration is a trial's values without its seed (training/sweep_record.py). For
each, over its finished trials (its seeds): the mean of the final return (the last mean
episode return the run logged) and of the best one, each with a 95 % confidence interval
of the mean (Student's t with n - 1 degrees of freedom: mean ± t * sd / sqrt(n); none
for a single seed). Configurations are ranked by the mean final return (or the best).
`plot_sweep` draws one mean curve per configuration with that interval as its band.

Trials that did not finish (failed, interrupted, pending) are counted, not averaged: a
return cut short is not a final return.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from launcher.errors import UserError
from launcher.results.tables import RunCurve, read_run
from launcher.training.sweep import label
from launcher.training.sweep_record import DONE, FAILED, STOPPED_EARLY, read_sweep, short

CONFIDENCE = 0.95
# Student's t, two-sided 95 %, for 1..30 degrees of freedom (beyond: 1.96 and a little).
T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
RANK_BY = ("final_return", "best_return")


def t_quantile(df: int) -> float:
    """The two-sided 95 % quantile of Student's t with `df` degrees of freedom."""
    try:
        from scipy.stats import t

        return float(t.ppf(0.5 + CONFIDENCE / 2, df))
    except ImportError:  # scipy comes with Ray; the table is the fallback
        return T_975[df - 1] if df <= len(T_975) else 1.96 + 2.4 / df


@dataclass
class Interval:
    mean: float | None = None
    half_width: float | None = None  # None for a single value
    values: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, values: list[float]) -> Interval:
        if not values:
            return cls()
        mean = statistics.fmean(values)
        if len(values) < 2:
            return cls(mean, None, values)
        half = t_quantile(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
        return cls(mean, half, values)

    def to_dict(self) -> dict[str, Any]:
        low = high = None
        if self.mean is not None and self.half_width is not None:
            low, high = self.mean - self.half_width, self.mean + self.half_width
        return {"mean": self.mean, "ci95": [low, high] if low is not None else None,
                "values": self.values}

    def text(self) -> str:
        if self.mean is None:
            return "-"
        return f"{self.mean:.1f}" + (f" ± {self.half_width:.1f}" if self.half_width is not None else "")


@dataclass
class ConfigStats:
    config: dict[str, Any]
    trials: list[str]  # every trial of the configuration
    done: list[Path]  # the run dirs of its finished trials
    failed: int
    final: Interval
    best: Interval
    stopped_early: int = 0

    @property
    def label(self) -> str:
        return ", ".join(f"{label(k)}={short(v)}" for k, v in self.config.items()) or "(base)"

    def to_dict(self) -> dict[str, Any]:
        return {"config": {label(k): v for k, v in self.config.items()}, "trials": len(self.trials),
                "done": len(self.done), "failed": self.failed, "stopped_early": self.stopped_early,
                "final_return": self.final.to_dict(),
                "best_return": self.best.to_dict(), "run_dirs": [str(d) for d in self.done]}


def sweep_stats(sweep_dir: str | Path, by: str = "final_return") -> list[ConfigStats]:
    """Per configuration, ranked best first by the mean of `by` (RANK_BY)."""
    if by not in RANK_BY:
        raise UserError(f"rank by one of {', '.join(RANK_BY)}, got {by!r}")
    record = read_sweep(sweep_dir)
    groups: dict[str, list] = {}
    for trial in record.trials:
        groups.setdefault(trial.config_id, []).append(trial)
    stats = []
    for trials in groups.values():
        done = [record.trial_dir(t) for t in trials if t.state == DONE]
        finals, bests = [], []
        for run_dir in done:
            returns = read_run(run_dir).finished_returns()
            if returns:
                finals.append(returns[-1])
                bests.append(max(returns))
        stats.append(ConfigStats(trials[0].config, [t.name for t in trials], done,
                                 sum(1 for t in trials if t.state == FAILED),
                                 Interval.of(finals), Interval.of(bests),
                                 sum(1 for t in trials if t.state == STOPPED_EARLY)))
    key = (lambda s: s.final.mean) if by == RANK_BY[0] else (lambda s: s.best.mean)
    stats.sort(key=lambda s: (key(s) is None, -(key(s) or 0.0)))
    return stats


def stats_table(stats: list[ConfigStats], by: str = "final_return") -> Table:
    """`launcher results SWEEP_DIR`: one row per configuration, best first."""
    table = Table(title=f"ranked by mean {by.replace('_', ' ')}; CI: Student's t over seeds")
    for column in ("rank", "seeds done", f"final return (mean ± {CONFIDENCE:.0%} CI)",
                   f"best return (mean ± {CONFIDENCE:.0%} CI)", "failed", "stopped early"):
        table.add_column(column, justify="right")
    table.add_column("configuration", no_wrap=True)
    for rank, entry in enumerate(stats, 1):
        table.add_row(str(rank), f"{len(entry.done)}/{len(entry.trials)}", entry.final.text(),
                      entry.best.text(), str(entry.failed), str(entry.stopped_early), entry.label)
    return table


def stats_json(sweep_dir: str | Path, by: str = "final_return") -> str:
    """`launcher results SWEEP_DIR --json`."""
    stats = sweep_stats(sweep_dir, by)
    return json.dumps({"sweep": str(Path(sweep_dir).resolve()), "ranked_by": by,
                       "confidence": CONFIDENCE, "configurations": [s.to_dict() for s in stats]},
                      indent=2)


# --- the plot ---------------------------------------------------------------------------
def mean_curve(curves: list[RunCurve], x: str) -> tuple[list[float], list[float], list[float] | None]:
    """The configuration's mean return over x, and its 95 % half-width (None: one seed),
    on a grid that every seed covers (each curve interpolated onto it)."""
    import numpy as np

    series = []
    for curve in curves:
        xs = {"env_steps": curve.env_steps, "iteration": curve.iterations, "time": curve.time_s}[x]
        points = [(a, b) for a, b in zip(xs, curve.returns, strict=True) if b is not None]
        if points:
            series.append(np.array(points, dtype=float))
    if not series:
        return [], [], None
    low, high = max(s[0, 0] for s in series), min(s[-1, 0] for s in series)
    grid = np.linspace(low, high, 100) if high > low else np.array([high])
    values = np.array([np.interp(grid, s[:, 0], s[:, 1]) for s in series])
    mean = values.mean(axis=0)
    if len(series) < 2:
        return grid.tolist(), mean.tolist(), None
    half = t_quantile(len(series) - 1) * values.std(axis=0, ddof=1) / math.sqrt(len(series))
    return grid.tolist(), mean.tolist(), half.tolist()


def plot_sweep(sweep_dir: str | Path, out: str | Path, x: str = "env_steps") -> Path:
    """`launcher plot SWEEP_DIR`: one mean-return curve per configuration, its band the
    95 % CI over seeds; the legend in rank order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from launcher.results.plots import X_LABELS, check_image_format, save_figure

    if x not in X_LABELS:
        raise UserError(f"--x must be one of {', '.join(X_LABELS)}, got {x!r}")
    check_image_format(out)
    stats = [s for s in sweep_stats(sweep_dir) if s.done]
    if not stats:
        raise UserError(f"no trial of {sweep_dir} has finished yet: nothing to plot")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for entry in stats:
        grid, mean, half = mean_curve([read_run(d) for d in entry.done], x)
        if not grid:
            continue
        (line,) = ax.plot(grid, mean, label=f"{entry.label} (n={len(entry.done)})")
        if half is not None:
            ax.fill_between(grid, [m - h for m, h in zip(mean, half, strict=True)],
                            [m + h for m, h in zip(mean, half, strict=True)],
                            color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_title("mean over seeds, band: 95 % CI", fontsize="small")
    return save_figure(fig, ax, x, out)
