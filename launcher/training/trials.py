"""A sweep's trials run side by side on whatever Ray cluster this process has.

Each trial trains in a Ray actor (`TrialActor`) with the same loop as `launcher train`
(training/loop.py `train`, `own_ray=False`), into its own run directory in the sweep
directory (training/sweep_record.py). The actor is threaded (max_concurrency=2): one
thread trains, the other answers `stop()` and `progress()`. An actor that finished a
trial takes the next one (RLlib is imported once per actor, not once per trial).

Sizing: training/trial_sizing.py.

Signals: the process running the sweep owns the one `StopRequests`. A stop signal is
passed to every running trial, which finishes its iteration, checkpoints and ends
interrupted; no new trial starts, and the sweep ends with exit status 75 (resumable:
`--resume SWEEP_DIR`, or Slurm's requeue). A second signal ends the trials at once;
they resume from their last periodic checkpoint. A trial that fails (its env raises,
its process dies) is recorded with its error and the others go on.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.contract import (
    EXIT_CRASH,
    EXIT_INTERRUPTED,
    EXIT_OK,
    TRIAL_ERROR_FILE,
)
from launcher.errors import UserError, first_line
from launcher.files import write_atomic
from launcher.training.early_stop import CHECK_EVERY_S, asha_of
from launcher.training.optuna_search import OptunaSearch
from launcher.training.resources import ClusterPlacement
from launcher.training.settings import TrainSettings
from launcher.training.signals import CLOSING, WAITING, StopRequests
from launcher.training.sweep_record import (
    DONE,
    ENDED,
    FAILED,
    INTERRUPTED,
    PENDING,
    RUNNING,
    STATES,
    STOPPED_EARLY,
    SweepRecord,
    Trial,
    apply_resume,
    check_trials,
    describe_outcome,
    prepare_trial_dir,
    read_sweep,
)
from launcher.training.trial_sizing import Sizing, learner_node_cpus, size_trials

POLL_S = 0.5
PROGRESS_EVERY_S = 15.0


# --- the actor --------------------------------------------------------------------------
class TrialActor:
    """Trains one trial at a time in a Ray actor; `stop` and `progress` answer meanwhile."""

    def __init__(self):
        self.stops = StopRequests()
        self.requested: tuple[str, bool] | None = None  # a stop that came before `run` began
        self.last: dict[str, Any] = {}
        self.run_dir: str | None = None  # the trial being trained

    def run(self, settings: dict, run_dir: str, placement: ClusterPlacement | None) -> dict:
        from launcher.training.loop import train

        self.stops, self.last, self.run_dir = StopRequests(), {}, run_dir
        if self.requested:
            self.stop(*self.requested)
        try:
            summary = train(TrainSettings.from_dict(settings).validate(), run_dir=run_dir,
                            reporter=self, placement=placement, stops=self.stops, own_ray=False)
        except Exception as exc:  # reported in the sweep record; the other trials go on
            text = traceback.format_exc()
            write_atomic(Path(run_dir) / TRIAL_ERROR_FILE, text)
            return {"state": FAILED, "error": error_line(exc)}
        resumed = summary.extra.get("resumed_from")
        return {"state": INTERRUPTED if summary.interrupted else DONE,
                "iterations": summary.iterations, "last_return": summary.last_return,
                "best_return": summary.best_return, "stopped_because": summary.stopped_because,
                "resumed_from": resumed}

    def stop(self, signal_name: str, requeue: bool, run_dir: str | None = None) -> None:
        """Ask the running trial to checkpoint after its iteration and end. (The driver
        starts no trial after a stop, so one that arrives first is for the next `run`.)
        `run_dir`: only that trial (early stopping), ignored once another one runs."""
        if run_dir is not None:
            if run_dir == self.run_dir:
                self.stops.received = self.stops.received or signal_name
            return
        self.requested = (signal_name, requeue)
        self.stops.requeue = self.stops.requeue or requeue
        self.stops.received = self.stops.received or signal_name

    def progress(self) -> dict[str, Any]:
        return dict(self.last)

    # the trainer's reporter (training/progress.py's interface)
    def start(self, settings, run_dir, start_iteration: int) -> None:
        self.last = {"iteration": start_iteration, "history": {}}

    def update(self, row: dict, elapsed_s: float) -> None:
        history = {**self.last.get("history", {}), row["training_iteration"]: row["episode_return_mean"]}
        self.last = {"iteration": row["training_iteration"], "return": row["episode_return_mean"],
                     "history": history}

    def finish(self, summary) -> None:
        pass


# --- the sweep --------------------------------------------------------------------------
@dataclass
class SweepSummary:
    sweep_dir: Path
    counts: dict[str, int]
    stopped_by: str | None = None

    @property
    def exit_status(self) -> int:
        """75 when trials are left to resume, 1 when some failed, else 0."""
        if self.counts[PENDING] or self.counts[RUNNING] or self.counts[INTERRUPTED]:
            return EXIT_INTERRUPTED
        return EXIT_CRASH if self.counts[FAILED] else EXIT_OK


def run_sweep(sweep_dir: str | Path, *, stops: StopRequests | None = None,
              placement: ClusterPlacement | None = None, overrides: dict | None = None,
              retry_failed: bool = False, say=print) -> SweepSummary:
    """Run (or continue) the sweep's unfinished trials; see the module docstring.

    `stops`: the caller's installed signal hand-off (a cluster head's); by default one is
    installed here. Ray: the connection this process has (a cluster head's), else one
    made here (embedded, or the trials' --address) and shut down at the end."""
    import ray

    from launcher.training.ray_session import connect_ray
    from launcher.training.rllib_config import check_framework, quiet_libraries

    record = read_sweep(sweep_dir)
    apply_resume(record, overrides or {}, retry_failed)
    todo = [t for t in record.trials if t.state not in ENDED]
    first = TrainSettings.from_dict(record.trials[0].settings).validate()
    check_framework(first.framework)
    quiet_libraries()
    own_ray, own_stops = not ray.is_initialized(), stops is None
    stops = (stops or StopRequests()).install() if own_stops else stops
    try:
        resources = connect_ray(first)
        if own_stops:
            stops.install()  # again: ray.init takes SIGTERM for itself
        stops.phase = WAITING
        if todo:
            _Runner(record, _sizing(record, todo, resources, first, placement), stops, say).run(todo)
    finally:
        stops.phase = CLOSING
        if own_ray:
            ray.shutdown()
        if own_stops:
            stops.restore()
    counts = {state: record.count(state) for state in STATES}
    return SweepSummary(record.path, counts, stops.received)


def _sizing(record: SweepRecord, todo: list[Trial], resources: dict, first: TrainSettings,
            placement: ClusterPlacement | None) -> Sizing:
    presets = [t.preset_runners for t in todo if t.preset_runners is not None]
    return size_trials(
        resources, len(todo), runners=first.num_env_runners, preset=max(presets) if presets else None,
        max_concurrent=record.space.max_concurrent,
        gpus=min(first.num_gpus, resources.get("GPU", 0)), placement=placement,
        learner_cpus=learner_node_cpus() if placement is not None and placement.learners else None)


class _Runner:
    """The driver's loop: start trials while they fit, collect them, pass stops on."""

    def __init__(self, record: SweepRecord, sizing: Sizing, stops: StopRequests, say):
        import ray

        self.ray, self.record, self.sizing, self.stops, self.say = ray, record, sizing, stops, say
        self.running: dict[Any, tuple[Trial, Any]] = {}
        self.idle: list[Any] = []
        self.killed: set[Any] = set()
        self.stopping = False
        self.asha = asha_of(record.space.early_stop, record.rungs)
        self.search = OptunaSearch(record) if record.space.search == "optuna" else None
        self.stopped_early: dict[str, str] = {}  # trial name -> why

    def run(self, queue: list[Trial]) -> None:
        s = self.sizing
        self.say(f"sweep {self.record.path}: {len(queue)} trial(s) to run, {s.concurrent} at a time, "
                 f"{s.runners} env runner(s) each" + (f", {s.trial_gpus:g} GPU each" if s.trial_gpus else ""))
        queue = list(queue)
        shown = checked = time.monotonic()
        while self.running or (queue and not self.stopping):
            while queue and not self.stopping and len(self.running) < self.sizing.concurrent:
                self.start(queue.pop(0))
            ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=POLL_S)
            for ref in ready:
                self.collect(ref)
            if self.stops.wait(0):
                self.stops.acknowledge()
                self.stop_all()
            if self.asha is not None and time.monotonic() - checked >= CHECK_EVERY_S:
                checked = time.monotonic()
                self.stop_bad_trials()
            if time.monotonic() - shown >= PROGRESS_EVERY_S:
                shown = time.monotonic()
                self.show_progress()

    def new_actor(self):
        options: dict[str, Any] = {"num_cpus": self.sizing.actor_cpus, "max_concurrency": 2,
                                   "num_gpus": self.sizing.trial_gpus}
        if self.sizing.placement is not None:  # the trainers stay on the head, off the rollout nodes
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
                self.ray.get_runtime_context().get_node_id(), soft=False)
        return self.ray.remote(TrialActor).options(**options).remote()

    def start(self, trial: Trial) -> None:
        if self.search is not None and not trial.config and not self.propose(trial):
            return
        run_dir = self.record.trial_dir(trial)
        settings = {**trial.settings, "num_env_runners": self.sizing.runners,
                    "num_gpus": self.sizing.trial_gpus}
        prepare_trial_dir(run_dir, settings)
        actor = self.idle.pop() if self.idle else self.new_actor()
        ref = actor.run.remote(settings, str(run_dir), self.sizing.placement)
        self.running[ref] = (trial, actor)
        again = " (continued)" if trial.state != PENDING else ""
        trial.state, trial.attempts = RUNNING, trial.attempts + 1
        self.record.save()
        self.say(f"trial {trial.name}: started{again} ({trial.describe()})")

    def collect(self, ref) -> None:
        trial, actor = self.running.pop(ref)
        try:
            result = self.ray.get(ref)
            self.idle.append(actor)
        except self.ray.exceptions.RayActorError as exc:
            state = INTERRUPTED if ref in self.killed else FAILED
            result = {"state": state, "error": None if state == INTERRUPTED
                      else f"the trial's process died: {first_line(exc)}"}
        except self.ray.exceptions.RayError as exc:
            result = {"state": FAILED, "error": first_line(exc)}
        resumed = result.pop("resumed_from", None)
        if resumed is not None:
            trial.resumed_from.append(resumed)
        for key, value in result.items():
            setattr(trial, key, value)
        if trial.name in self.stopped_early and trial.state == INTERRUPTED:
            trial.state, trial.stopped_because = STOPPED_EARLY, self.stopped_early[trial.name]
        if self.search is not None:
            self.search.tell(trial)
        self.record.save()
        self.say(f"trial {trial.name}: {describe_outcome(trial)}")

    def stop_all(self) -> None:
        """First signal: every running trial checkpoints and ends; a second: kill them."""
        if not self.stopping:
            self.stopping = True
            self.say(f"{self.stops.received}: {len(self.running)} running trial(s) checkpoint and "
                     "stop; no new trial starts")
            for _trial, actor in self.running.values():
                actor.stop.remote(self.stops.received, self.stops.requeue)
            return
        self.say("second stop signal: ending the running trials now (they resume from their "
                 "last checkpoint)")
        for ref, (_trial, actor) in self.running.items():
            self.killed.add(ref)
            self.ray.kill(actor)

    def propose(self, trial: Trial) -> bool:
        """The search's values for the trial, checked as the planned ones were; a value
        RLlib refuses fails the trial alone (the search learns it), False."""
        self.search.propose(trial)
        try:
            check_trials([trial], placement=self.sizing.placement)
            return True
        except UserError as exc:
            trial.state, trial.error = FAILED, str(exc)
            self.search.tell(trial)
            self.record.save()
            self.say(f"trial {trial.name}: {describe_outcome(trial)}")
            return False

    def stop_bad_trials(self) -> None:
        """Early stopping: each running trial's returns at the rungs it completed."""
        for trial, actor in list(self.running.values()):
            if trial.name in self.stopped_early:
                continue
            try:
                last = self.ray.get(actor.progress.remote(), timeout=2)
            except (self.ray.exceptions.RayError, self.ray.exceptions.GetTimeoutError):
                continue
            reason = self.asha.report(trial.name, last.get("history") or {})
            self.record.rungs = {str(k): v for k, v in self.asha.rungs.items()}
            if reason:
                self.stopped_early[trial.name] = reason
                self.say(f"trial {trial.name}: {reason}")
                actor.stop.remote("early stopping", False, str(self.record.trial_dir(trial)))

    def show_progress(self) -> None:
        refs = {ref: actor.progress.remote() for ref, (_t, actor) in self.running.items()}
        done = self.record.count(DONE)
        self.say(f"sweep: {len(self.running)} running, {done} done, "
                 f"{self.record.count(PENDING)} pending, {self.record.count(FAILED)} failed")
        answered, _ = self.ray.wait(list(refs.values()), num_returns=len(refs), timeout=2)
        for ref, progress_ref in refs.items():
            try:
                last = self.ray.get(progress_ref) if progress_ref in answered else None
            except self.ray.exceptions.RayError:
                last = None
            if not last:  # still starting
                continue
            ret = last.get("return")
            self.say(f"  {self.running[ref][0].name}: iter {last.get('iteration', 0)}, mean return "
                     f"{'-' if ret is None else f'{ret:.1f}'}")


def error_line(exc: BaseException) -> str:
    """One line for a trial's error: its root cause (RLlib re-raises an env's error as a
    bare `RuntimeError from e`)."""
    if isinstance(exc, UserError):
        return str(exc)
    seen = {id(exc)}
    while (cause := exc.__cause__ or exc.__context__) is not None and id(cause) not in seen:
        seen.add(id(cause))
        exc = cause
    return f"{type(exc).__name__}: {first_line(exc)}"
