"""`--stop-time` as a deadline (training/deadline.py): the timer cuts an iteration that
runs past the limit, leaves Ctrl-C alone, and never interrupts what runs between
iterations. Quick: the "iterations" here are real sleeps in the main thread (the timer's
signal interrupts them as it does RLlib's env steps and Ray's waits); the cut of real
RLlib iterations is tested in tests/test_throughput.py."""

from __future__ import annotations

import signal
import time

import pytest

from launcher.training.deadline import Deadline


class SleepingIterations:
    """Stands in for an algorithm: each `train()` sleeps `seconds` and counts itself."""

    def __init__(self, seconds: float):
        self.seconds, self.iterations = seconds, 0

    def train(self) -> dict:
        time.sleep(self.seconds)
        self.iterations += 1
        return {"training_iteration": self.iterations}


def test_the_deadline_cuts_an_iteration_that_runs_past_it():
    algo = SleepingIterations(30.0)
    started = time.monotonic()
    with Deadline(0.2, used_s=0.0, cut_after_s=0.1) as deadline:
        assert deadline.train(algo) is None
    assert time.monotonic() - started < 5
    assert deadline.cut and algo.iterations == 0
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL  # given back


def test_iterations_that_end_before_the_deadline_are_not_touched():
    algo = SleepingIterations(0.01)
    with Deadline(60.0, used_s=0.0, cut_after_s=0.0) as deadline:
        assert [deadline.train(algo)["training_iteration"] for _ in range(3)] == [1, 2, 3]
    assert not deadline.passed and not deadline.cut


def test_a_deadline_passing_between_iterations_interrupts_nothing_and_starts_no_iteration():
    algo = SleepingIterations(0.0)
    with Deadline(0.05, used_s=0.0, cut_after_s=0.0) as deadline:
        time.sleep(0.2)  # a checkpoint being written when the timer fires: not interrupted
        assert deadline.passed and not deadline.cut
        assert deadline.train(algo) is None
    assert algo.iterations == 0 and deadline.cut


def test_a_resumed_run_has_only_the_time_left_and_ctrl_c_is_not_taken_for_the_deadline():
    class Interrupted:
        def train(self):
            raise KeyboardInterrupt

    with Deadline(100.0, used_s=99.9, cut_after_s=0.0) as deadline:
        assert deadline.left_s == pytest.approx(0.1)
        with pytest.raises(KeyboardInterrupt):
            deadline.train(Interrupted())
        assert not deadline.cut


def test_no_time_limit_sets_no_timer():
    with Deadline(None, used_s=0.0) as deadline:
        assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL
        assert deadline.train(SleepingIterations(0.0)) == {"training_iteration": 1}
