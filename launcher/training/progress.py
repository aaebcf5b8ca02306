"""What the user sees while training: a live line on a terminal, plain lines in logs.

On a TTY a rich status line updates in place; elsewhere (Slurm logs, CI, pipes)
one line per iteration, which `launcher logs --follow` and `tail -f` read well.
"""

from __future__ import annotations

import sys
import time

from rich.console import Console


def _ret(value) -> str:
    return "-" if value is None else f"{value:.1f}"


class Reporter:
    def __init__(self, console: Console | None = None, live: bool | None = None):
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.live = sys.stdout.isatty() if live is None else live
        self._status = None
        self._last_steps = 0
        self._last_time = 0.0

    def start(self, settings, run_dir, start_iteration: int) -> None:
        what = f"{settings.algo} on {settings.env} ({settings.framework})"
        if start_iteration:
            what += f", resumed at iteration {start_iteration}"
        self.console.print(f"training {what} -> {run_dir}")
        self._last_time = time.monotonic()
        if self.live:
            self._status = self.console.status("starting the first iteration...")
            self._status.start()

    def update(self, row: dict, elapsed_s: float) -> None:
        now = time.monotonic()
        steps = row["num_env_steps_sampled_lifetime"]
        rate = (steps - self._last_steps) / max(now - self._last_time, 1e-9)
        if self._last_steps == 0 and row["training_iteration"] > 1:
            rate = steps / max(row["time_total_s"], 1e-9)
        self._last_steps, self._last_time = steps, now
        line = (
            f"iter {row['training_iteration']:>4}  env steps {steps:>9,}  "
            f"mean return {_ret(row['episode_return_mean']):>8}  {rate:>8,.0f} steps/s  "
            f"{elapsed_s:6.1f} s"
        )
        if self._status is not None:
            self._status.update(line)
        else:
            self.console.print(line)

    def finish(self, summary) -> None:
        if self._status is not None:
            self._status.stop()
        self.console.print(
            f"done: {summary.stopped_because}; {summary.iterations} iterations, "
            f"{summary.env_steps:,} env steps, best mean return {_ret(summary.best_return)}, "
            f"last {_ret(summary.last_return)}, {summary.wall_s:.1f} s"
        )
        self.console.print(f"results:    {summary.run_dir}")
        self.console.print(f"checkpoint: {summary.checkpoint}")
