"""How fast a run goes and where its time goes: one set of columns per iteration.

Per iteration: env steps per second and learner updates (gradient steps) per second,
over the iteration's wall time, and the seconds spent sampling (the env runners'
`sample`, and `foreach_env_runner` calls: remote sampling and weight syncs), drawing from
the replay buffer, in the learner (`LearnerGroup.update`) and elsewhere (metrics,
connectors, the driver's bookkeeping: "other"). The phases are timed by wrapping those
methods of the built algorithm, not read from RLlib's timers, which are moving averages
per call. At the end, `summary_line` says where the time went, so a user can tell
whether more rollout nodes (sampling-bound) or a faster learner (learning-bound) would
help. Algorithms or stacks without a phase's method (tf2's old stack, APPO's async
sampling) leave that phase at 0 and its time in "other".
"""

from __future__ import annotations

import time
from typing import Any

ENV_STEPS_PER_S = "env_steps_per_s"
UPDATES_PER_S = "learner_updates_per_s"
PHASES = ("sampling", "replay", "learning")
PHASE_COLUMNS = [f"{phase}_s" for phase in (*PHASES, "other")]
COLUMNS = [ENV_STEPS_PER_S, UPDATES_PER_S, *PHASE_COLUMNS]

# The env steps the learner trained on in this iteration, summed over its minibatches.
TRAINED_KEY = ("learners", "__all_modules__", "num_env_steps_trained")


class PhaseClock:
    """Seconds spent inside the wrapped methods, per phase, and the gradient steps of a
    learner in this process, since the last `take`."""

    def __init__(self):
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.updates: int | None = None  # None: no learner in this process to count
        self._depth = 0

    def count_updates(self, learner) -> None:
        apply = getattr(learner, "apply_gradients", None) if learner is not None else None
        if apply is None:
            return
        self.updates = 0

        def counted(*args, **kwargs):
            self.updates += 1
            return apply(*args, **kwargs)

        learner.apply_gradients = counted

    def wrap(self, owner, name: str, phase: str) -> None:
        method = getattr(owner, name, None) if owner is not None else None
        if method is None:
            return

        def timed(*args, **kwargs):
            self._depth += 1
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:  # a phase called from inside another counts once
                    self.seconds[phase] += time.perf_counter() - start

        setattr(owner, name, timed)

    def attach(self, algo) -> PhaseClock:
        group = getattr(algo, "env_runner_group", None)
        if group is not None:
            self.wrap(getattr(group, "local_env_runner", None), "sample", "sampling")
            self.wrap(group, "foreach_env_runner", "sampling")
        learners = getattr(algo, "learner_group", None)
        self.wrap(learners, "update", "learning")
        self.count_updates(getattr(learners, "_learner", None))
        self.wrap(getattr(algo, "local_replay_buffer", None), "sample", "replay")
        return self

    def take(self) -> tuple[dict[str, float], int | None]:
        taken, self.seconds = self.seconds, dict.fromkeys(PHASES, 0.0)
        updates, self.updates = self.updates, (None if self.updates is None else 0)
        return taken, updates


def _trained(result: dict) -> float:
    value: Any = result
    for key in TRAINED_KEY:
        value = value.get(key) if isinstance(value, dict) else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


class Throughput:
    """Turns each iteration's result and wall time into the throughput columns, and keeps
    the totals for the closing line."""

    def __init__(self, algo):
        # Remote learners' gradient steps are estimated: env steps trained / train batch.
        self.batch = int(getattr(algo.config, "train_batch_size_per_learner", None) or 1)
        self.clock = PhaseClock().attach(algo)
        self.totals = dict.fromkeys([*PHASES, "other"], 0.0)
        self.wall_s = 0.0
        self.steps = 0
        self._last_steps = 0

    def start(self, env_steps: int) -> None:
        """The env steps where this session starts (a resumed run's are not zero)."""
        self._last_steps = env_steps

    def columns(self, result: dict, env_steps: int, wall_s: float) -> dict[str, float]:
        """This iteration's columns; `wall_s`: its seconds, measured by the caller."""
        phases, updates = self.clock.take()
        steps = env_steps - self._last_steps
        if updates is None:
            updates = _trained(result) / self.batch
        self._last_steps = env_steps
        wall = max(wall_s, 1e-9)
        phases["other"] = max(wall_s - sum(phases.values()), 0.0)
        for phase, seconds in phases.items():
            self.totals[phase] += seconds
        self.wall_s += wall_s
        self.steps += steps
        row = {ENV_STEPS_PER_S: steps / wall, UPDATES_PER_S: updates / wall}
        row.update({f"{phase}_s": seconds for phase, seconds in phases.items()})
        return row

    def summary_line(self) -> str:
        """'time: sampling 62 %, replay 3 %, learning 30 %, other 5 %; 1,234 env steps/s'."""
        if self.wall_s <= 0:
            return "time: no iteration finished"
        shares = ", ".join(f"{phase} {100 * seconds / self.wall_s:.0f} %"
                           for phase, seconds in self.totals.items())
        return (f"time: {shares} of {self.wall_s:.1f} s training; "
                f"{self.steps / self.wall_s:,.0f} env steps/s{self._advice()}")

    def _advice(self) -> str:
        share = {phase: seconds / self.wall_s for phase, seconds in self.totals.items()}
        if share["sampling"] >= 0.5:
            return " (sampling-bound: more env runners or rollout nodes would help)"
        if share["learning"] + share["replay"] >= 0.5:
            return " (learning-bound: a faster learner, a GPU, would help more than env runners)"
        return ""


class Startup:
    """When each start-up phase of `train` ended (monotonic seconds), for the line that
    says where the time before the first result went (`start`: when `train` began)."""

    PHASE_NAMES = {"settings": "settings and env probe", "ray": "Ray start",
                   "build": "algorithm build", "first_iteration": "first iteration"}

    def __init__(self):
        self.start = time.monotonic()
        self.marks: dict[str, float] = {}

    def mark(self, phase: str) -> None:
        self.marks.setdefault(phase, time.monotonic())

    def seconds(self) -> dict[str, float]:
        out, previous = {}, self.start
        for phase in self.PHASE_NAMES:
            if phase in self.marks:
                out[phase], previous = self.marks[phase] - previous, self.marks[phase]
        return out

    def line(self) -> str:
        """'start-up: Ray start 3.1 s, algorithm build 2.0 s, first iteration 0.8 s'."""
        parts = [f"{self.PHASE_NAMES[p]} {s:.1f} s" for p, s in self.seconds().items()]
        return "start-up: " + ", ".join(parts) if parts else ""
