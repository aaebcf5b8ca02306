"""What the user sees while training: a live display on a terminal, plain lines in logs.

The target (the stop criteria, whichever comes first) is printed when training starts.
On a terminal a rich progress display follows: one kept row per iteration, and below
them a bar toward the stop criterion nearest completion (iterations, env steps, mean
return or time, chosen again at every iteration), the time elapsed since the command
started, ticking every second, and an estimate of the time left. Elsewhere (Slurm logs,
CI, pipes, a cluster head) one plain line per iteration, the same text as the rows,
which `launcher logs --follow` and `tail -f` read well.
"""

from __future__ import annotations

import atexit
import time
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TaskProgressColumn, TextColumn
from rich.text import Text

from launcher.training.runlog import policy_returns

BAR_TOTAL = 1000  # the bar's scale: a fraction of the way to the target, in thousandths


def _ret(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def target_line(stop) -> str:
    """'target: 100 iterations or mean return 475, whichever comes first'."""
    parts = []
    if stop.iters is not None:
        parts.append(f"{stop.iters} iteration{'s' if stop.iters != 1 else ''}")
    if stop.timesteps is not None:
        parts.append(f"{stop.timesteps:,} env steps")
    if stop.reward is not None:
        whose = f" of policy {stop.policy}" if getattr(stop, "policy", None) else ""
        parts.append(f"mean return{whose} {stop.reward:g}")
    if stop.time_s is not None:
        parts.append(f"{stop.time_s:g} s of training")
    if not parts:
        return "target: none (stop with Ctrl-C)"
    return "target: " + " or ".join(parts) + (", whichever comes first" if len(parts) > 1 else "")


@dataclass
class Leg:
    """How far one stop criterion is: a fraction done, what the bar says, the seconds left."""

    fraction: float
    label: str
    eta_s: float | None


class Tracker:
    """The stop criteria's progress over the iterations of this session."""

    def __init__(self, stop, started: float, resumed: bool):
        self.stop, self.started, self.resumed = stop, started, resumed
        self.first: tuple[float, int, int, float | None] | None = None  # time, iter, steps, return

    def legs(self, row: dict, now: float) -> list[Leg]:
        it, steps = row["training_iteration"], row["num_env_steps_sampled_lifetime"]
        ret, train_s = row["episode_return_mean"], float(row.get("time_total_s") or 0.0)
        if self.first is None:
            self.first = (now, it, steps, ret)
        stop, out = self.stop, []
        if stop.iters is not None:
            out.append(Leg(min(it / stop.iters, 1.0), f"iterations {it}/{stop.iters}",
                           self._eta(it, stop.iters, now, 1)))
        if stop.timesteps is not None:
            out.append(Leg(min(steps / stop.timesteps, 1.0), f"env steps {steps:,}/{stop.timesteps:,}",
                           self._eta(steps, stop.timesteps, now, 2)))
        if stop.reward is not None:
            if getattr(stop, "policy", None):  # a multi-agent run stopping on one policy's return
                ret = policy_returns(row.get("flat") or row).get(stop.policy)
            out.append(self._reward_leg(ret, stop.reward, now))
        if stop.time_s is not None:
            out.append(Leg(min(train_s / stop.time_s, 1.0), f"time {train_s:.0f}/{stop.time_s:g} s",
                           max(stop.time_s - train_s, 0.0)))
        return out

    def _eta(self, value: float, goal: float, now: float, index: int) -> float | None:
        """Seconds to `goal` at this session's rate (from the start when it is a fresh run)."""
        t0, v0 = self.first[0], self.first[index]
        if value > v0 and now > t0:
            rate = (value - v0) / (now - t0)
        elif not self.resumed and value > 0 and now > self.started:
            rate = value / (now - self.started)
        else:
            return None
        return max(goal - value, 0) / rate

    def _reward_leg(self, ret: float | None, goal: float, now: float) -> Leg:
        label = f"mean return {_ret(ret)}/{goal:g}"
        t0, first = self.first[0], self.first[3]
        if ret is None:
            return Leg(0.0, label, None)
        if ret >= goal:
            return Leg(1.0, label, 0.0)
        base = first if first is not None and first < goal else ret
        fraction = max(0.0, (ret - base) / (goal - base)) if goal > base else 0.0
        eta = None
        if first is not None and ret > first and now > t0:
            eta = (goal - ret) / ((ret - first) / (now - t0))
        return Leg(min(fraction, 1.0), label, eta)


class _Since(ProgressColumn):
    """Seconds since the command started; ticks at every refresh."""

    def __init__(self, started: float):
        super().__init__()
        self.started = started

    def render(self, task) -> Text:
        return Text(_clock(time.monotonic() - self.started), style="progress.elapsed")


class _Left(ProgressColumn):
    """The estimate of the time left, counting down between iterations."""

    def render(self, task) -> Text:
        eta, at = task.fields.get("eta"), task.fields.get("at")
        left = None if eta is None else eta - (time.monotonic() - at)
        return Text(f"ETA {_clock(left)}", style="progress.remaining")


class Reporter:
    """Prints the target, each iteration, and the summary; live on a terminal.

    `resume_command`: printed with the run dir when training stops early after a
    checkpoint (Ctrl-C, SIGTERM): `launcher train --resume` for `launcher train`."""

    def __init__(self, console: Console | None = None, live: bool | None = None,
                 resume_command: str | None = None):
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.live = self.console.is_terminal if live is None else live
        self.resume_command = resume_command
        self.created = time.monotonic()
        self._progress: Progress | None = None
        self._task = None
        self._tracker: Tracker | None = None
        self._last_steps = 0
        self._last_time = 0.0

    def start(self, settings, run_dir, start_iteration: int) -> None:
        what = f"{settings.algo} on {settings.env} ({settings.framework})"
        if start_iteration:
            what += f", resumed at iteration {start_iteration}"
        self.console.print(f"training {what} -> {run_dir}")
        self.console.print(target_line(settings.stop))
        self._last_time = time.monotonic()
        self._tracker = Tracker(settings.stop, self._last_time, resumed=bool(start_iteration))
        if self.live:
            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                _Since(self.created), _Left(), console=self.console, refresh_per_second=4)
            self._task = self._progress.add_task("starting the first iteration...",
                                                 total=BAR_TOTAL, eta=None, at=self._last_time)
            self._progress.start()
            atexit.register(self._stop_live)  # a crash must not leave the cursor hidden

    def line(self, row: dict, elapsed_s: float) -> str:
        """The row of one iteration (its plain line in logs)."""
        now = time.monotonic()
        steps = row["num_env_steps_sampled_lifetime"]
        rate = (steps - self._last_steps) / max(now - self._last_time, 1e-9)
        if self._last_steps == 0 and row["training_iteration"] > 1:
            rate = steps / max(row["time_total_s"], 1e-9)
        self._last_steps, self._last_time = steps, now
        by_policy = policy_returns(row.get("flat") or row)  # a multi-agent run's policies
        policies = "  (" + ", ".join(f"{name} {_ret(value)}" for name, value in sorted(
            by_policy.items())) + ")" if len(by_policy) > 1 else ""
        return (
            f"iter {row['training_iteration']:>4}  env steps {steps:>9,}  "
            f"mean return {_ret(row['episode_return_mean']):>8}  {rate:>8,.0f} steps/s  "
            f"{elapsed_s:6.1f} s{policies}"
        )

    def update(self, row: dict, elapsed_s: float) -> None:
        line = self.line(row, elapsed_s)
        if self._progress is None:
            self.console.print(line)
            return
        self._progress.console.print(line)
        now = time.monotonic()
        legs = self._tracker.legs(row, now) if self._tracker else []
        if legs:
            nearest = max(legs, key=lambda leg: leg.fraction)
            etas = [leg.eta_s for leg in legs if leg.eta_s is not None]
            self._progress.update(self._task, completed=nearest.fraction * BAR_TOTAL,
                                  description=nearest.label, eta=min(etas) if etas else None, at=now)

    def _stop_live(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def finish(self, summary) -> None:
        self._stop_live()
        self.console.print(
            f"done: {summary.stopped_because}; {summary.iterations} iterations, "
            f"{summary.env_steps:,} env steps, best mean return {_ret(summary.best_return)}, "
            f"last {_ret(summary.last_return)}, {summary.wall_s:.1f} s"
        )
        extra = getattr(summary, "extra", None) or {}
        for key in ("startup", "time_split"):
            if extra.get(key):
                self.console.print(extra[key])
        self.console.print(f"results:    {summary.run_dir}")
        self.console.print(f"checkpoint: {summary.checkpoint}")
        if summary.interrupted and self.resume_command:
            self.console.print(f"stopped after a checkpoint; continue with: "
                               f"{self.resume_command} {summary.run_dir}")
