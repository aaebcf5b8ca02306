"""Reward curves: the mean return of one or several runs over env steps, iterations
or time, drawn in one figure (`launcher plot`, and each run's reward.png). A run that
evaluated during training (--eval-every) gets a second, dashed curve: the greedy
evaluation's mean return. A multi-agent run with several policies gets one dash-dotted
curve per policy (the mean return of that policy's agents) besides the sum over agents.

matplotlib is imported only when a figure is drawn, with its file-only backend, so
this works on a cluster node without a display.
"""

from __future__ import annotations

from pathlib import Path

from launcher.contract import RunPaths
from launcher.errors import UserError
from launcher.results.tables import read_run

X_LABELS = {"env_steps": "env steps", "iteration": "training iteration", "time": "seconds"}


def plot(run_dirs, out: str | Path, x: str = "env_steps") -> Path:
    """Mean-return curves of one or several runs in one figure (PNG, SVG or PDF)."""
    check_image_format(out)
    fig, ax = figure(run_dirs, x)
    return save_figure(fig, ax, x, out)


def figure(run_dirs, x: str = "env_steps"):
    """The figure and axes of `plot`, not yet labelled or saved."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [read_run(d) for d in run_dirs]
    if not any(c.finished_returns() for c in curves):
        raise UserError("no episode has finished in these runs yet: nothing to plot")
    if x not in X_LABELS:
        raise UserError(f"--x must be one of {', '.join(X_LABELS)}, got {x!r}")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for curve in curves:
        xs = {"env_steps": curve.env_steps, "iteration": curve.iterations, "time": curve.time_s}[x]
        points = [(a, b) for a, b in zip(xs, curve.returns, strict=True) if b is not None]
        if points:
            summed = " (sum over agents)" if curve.policy_returns else ""
            (line,) = ax.plot(*zip(*points, strict=True), label=curve.label + summed)
            greedy = [(a, b) for a, b in zip(xs, curve.eval_returns, strict=False) if b is not None]
            if greedy:
                ax.plot(*zip(*greedy, strict=True), linestyle="--", marker=".",
                        color=line.get_color(), label=f"{curve.label} (greedy evaluation)")
        _policy_curves(ax, curve, xs)
    return fig, ax


def _policy_curves(ax, curve, xs) -> None:
    """One curve per policy of a multi-agent run (none when all agents share one policy:
    its return is the sum already drawn)."""
    if len(curve.policy_returns) < 2:
        return
    for policy, returns in curve.policy_returns.items():
        points = [(a, b) for a, b in zip(xs, returns, strict=False) if b is not None]
        if points:
            ax.plot(*zip(*points, strict=True), linestyle="-.",
                    label=f"{curve.label} · policy {policy}")


def save_figure(fig, ax, x: str, out: str | Path) -> Path:
    """Axes labelled for return over `x`, grid and legend; written to `out` (one line when
    it cannot be) and closed."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(X_LABELS[x])
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


def check_image_format(out: str | Path) -> None:
    """Refuse, in one line, a file name whose suffix matplotlib cannot write."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    suffix = Path(out).suffix.lower().lstrip(".")
    if suffix not in FigureCanvasAgg.get_supported_filetypes():
        why = f"'.{suffix}' is not an image format" if suffix else "the name has no image suffix"
        raise UserError(f"cannot write a plot to {out}: {why}; use .png, .svg, .pdf or .jpg")


def write_reward_plot(run_dir: str | Path) -> Path | None:
    """The run's own reward curve (RUN_DIR/reward.png), written when a run ends; None
    when no episode finished yet."""
    try:
        return plot([run_dir], RunPaths(run_dir).reward_plot)
    except UserError:
        return None
