"""`--stop-time` as a deadline: an iteration still running `CUT_AFTER_S` after the time
limit is cut, so a run ends within seconds of its limit however long its iterations are.

The loop checks the stop criteria between iterations. Iterations that are many short
training steps (DQN, SAC, APPO, IMPALA) are sliced by time under a time limit
(rllib_config.time_slices) and end near it on their own. PPO's iteration is one batch:
sample it all, then learn from it; with a slow env that is tens of seconds, and RLlib
has no way to end it early (its sampling loop runs to the batch size, in the driver or
in remote env runners). Sizing the last batch from the speed so far cannot bound the
first iteration, nor one that slows down. So the iteration is interrupted:

- A SIGALRM timer (`setitimer`) fires at the limit plus `CUT_AFTER_S` (the slack lets a
  time slice, or a batch that is nearly done, finish and count). Its handler raises
  `IterationCut`, a KeyboardInterrupt, only while `algo.train()` runs: that is the one
  exception Ray's blocking `ray.get` / `ray.wait` let through while they wait for remote
  env runners (measured: another exception stays pending until the remote call returns,
  then surfaces as a SystemError). Ray looks at signals about once a second while it
  waits, so a cut lands 2-3 s after the limit (measured: 8.0-9.0 s for a 6 s limit).
  Ray re-raises it as a plain KeyboardInterrupt, so `cut` records that the timer, not
  Ctrl-C, raised it. A timer that fires between
  iterations (during a checkpoint) only marks the deadline passed: nothing being written
  is interrupted, and the next iteration is not started.
- The cut iteration's samples are dropped (the learner never saw them); the weights are
  whatever the learner holds at the cut, a valid policy, saved as the final checkpoint.
  The cut iteration counts (its progress row says `iteration_cut`, the checkpoint is
  named after it), so a resume with the same limit finds the run complete.
  A checkpoint reads the driver's connectors and learner only, never the remote env
  runners, which are still sampling: `release_runners` kills them at the cut, or
  `algo.stop()` would wait for their batch (their calls queue behind it). Remote
  learners (num_learners >= 1) are not killed: the checkpoint waits for their update
  in progress.
- Signals (signals.py) are unchanged: SIGTERM / SIGUSR1 are recorded, a second SIGINT
  raises KeyboardInterrupt; the timer uses SIGALRM, which nothing else here takes.

A Python signal handler can only be set in the main thread. A sweep's trial trains in
a thread of a Ray actor (training/trials.py): there no timer is set and the limit is
checked between iterations (and time slices) only.
"""

from __future__ import annotations

import signal
import threading
import time

CUT_AFTER_S = 2.0


class IterationCut(KeyboardInterrupt):
    """Raised in the main thread when the deadline passes during `algo.train()`."""


class Deadline:
    """Runs iterations under the time limit: `train` returns None for a cut iteration."""

    def __init__(self, limit_s: float | None, used_s: float, cut_after_s: float = CUT_AFTER_S):
        """`limit_s`: --stop-time (None: no deadline); `used_s`: the training time a
        resumed run already had."""
        self.left_s = None if limit_s is None else max(limit_s - used_s, 0.0) + cut_after_s
        self.passed = False  # the timer fired
        self.cut = False  # ... during an iteration, which it interrupted
        self._inside = False
        self._previous = None

    def __enter__(self) -> Deadline:
        if self.left_s is not None and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, max(self.left_s, 1e-3))
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)
            self._previous = None

    def _fire(self, _signum, _frame) -> None:
        self.passed = True
        if self._inside:
            self.cut = True
            raise IterationCut

    def train(self, algo) -> dict | None:
        """One `algo.train()`; None when the deadline cut it (or had passed before it)."""
        if self.passed:
            self.cut = True
            return None
        # The timer fires once: wherever it lands while `_inside`, it is inside the try.
        try:
            self._inside = True
            result = algo.train()
            self._inside = False
            return result
        except KeyboardInterrupt:
            self._inside = False
            if not self.cut:  # Ctrl-C, not the timer
                raise
            return None


def release_runners(algo) -> None:
    """Kill the remote env runners of a cut iteration (they are still sampling), so that
    `algo.stop()` does not wait for their batches. The local env runner stays."""
    group = getattr(algo, "env_runner_group", None)
    if group is not None and group.num_remote_env_runners() > 0:
        group.reset([])


def cut_result(iteration: int, env_steps: int, train_s: float, iteration_s: float) -> dict:
    """The progress row of a cut iteration: its number and times; no return, and the env
    steps of the last whole iteration (the cut one's samples were dropped)."""
    return {"training_iteration": iteration, "num_env_steps_sampled_lifetime": env_steps,
            "time_total_s": train_s, "time_this_iter_s": iteration_s, "timestamp": int(time.time()),
            "iteration_cut": True}
