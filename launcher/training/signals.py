"""The one place a stop signal lands, for a cluster node and the trainer alike.

Three signals ask a run to stop: Slurm's warning before the time limit (SIGUSR1, which
the job script forwards to the head), SIGTERM (scancel, preemption, `docker stop`) and
SIGINT (Ctrl-C). What a signal does depends on what the process is doing, so the
process says so explicitly by setting `phase`:

    WAITING   a node waiting for the other nodes or for the head: the signal is
              recorded and `wait()` wakes up; the node decides what to do.
    BUILDING  the algorithm is being built: SIGTERM / SIGINT raise `Stopped` at once
              (there is nothing to save yet); SIGUSR1 is recorded, and the loop
              checkpoints after its first iteration.
    TRAINING  recorded; the loop finishes its iteration, saves a checkpoint and the
              run exits 75 (resumable). A second SIGINT raises KeyboardInterrupt:
              stop at once.
    CLOSING   ignored: the process is shutting down.

`received` names the first signal; `requeue` is true once SIGUSR1 came (only Slurm's
time-limit warning leads to a requeue).
"""

from __future__ import annotations

import signal
import threading

WAITING, BUILDING, TRAINING, CLOSING = "waiting", "building", "training", "closing"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


class Stopped(BaseException):
    """A stop signal while there was nothing to save; `status` is the shell's 128 + N."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.status = 128 + signum


class StopRequests:
    """Records stop signals; see the module docstring for what each phase does."""

    def __init__(self, phase: str = WAITING):
        self.phase = phase
        self.received: str | None = None
        self.requeue = False
        self._event = threading.Event()
        self._previous: dict[int, object] = {}

    # --- installing ---------------------------------------------------------------------
    def install(self) -> StopRequests:
        """Take over SIGTERM, SIGINT and SIGUSR1 (main thread only). Call it again after
        `ray.init`, which installs a SIGTERM handler of its own; `restore()` still gives
        back what was there before the first call."""
        for sig in STOP_SIGNALS:
            previous = signal.signal(sig, self._handle)
            self._previous.setdefault(sig, previous)
        return self

    def ignore_from_now(self) -> None:
        """Ignore the stop signals for the rest of the process: its exit status is decided.
        (Python's own finalization resets handlers it installed to the default action, so
        a time-limit warning in the last seconds would kill a finished node with 138.)"""
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)

    def restore(self) -> None:
        """Give the signals back to the handlers they had before `install()`."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def __enter__(self) -> StopRequests:
        return self.install()

    def __exit__(self, *exc) -> None:
        self.restore()

    # --- what a signal does -------------------------------------------------------------
    def _handle(self, signum: int, _frame) -> None:
        if self.phase == CLOSING:
            return
        if self.phase == TRAINING and signum == signal.SIGINT and self.received:
            raise KeyboardInterrupt
        if signum == signal.SIGUSR1:
            self.requeue = True
        elif self.phase == BUILDING:
            raise Stopped(signum)
        self.received = self.received or signal.Signals(signum).name
        self._event.set()

    # --- asking -------------------------------------------------------------------------
    @property
    def status(self) -> int:
        """The shell's exit status for the first signal (128 + N)."""
        return 128 + signal.Signals[self.received].value if self.received else 0

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True when a stop signal came and was not yet
        acknowledged."""
        return self._event.wait(seconds)

    def acknowledge(self) -> None:
        """The caller has acted on the signal: later waits sleep again."""
        self._event.clear()
