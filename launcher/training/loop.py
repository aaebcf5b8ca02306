"""The training loop: checked settings -> RLlib algorithm -> iterations to a stop criterion.

The loop is ours, not Tune's: the algorithm runs in this process, one `train()` per
iteration, so startup costs one `ray.init` and nothing else, and every step (stop
criteria, checkpoints, signals, resume) is visible here. The run directory gets what
Tune would write (progress.csv, result.json, TensorBoard events, the full config,
checkpoints) plus the spec file, the best checkpoint (checkpoints.BestCheckpoint) and the
run record (run_record.py: seed, command, versions, hosts); whoever ran it adds the
reward plot (launcher/results/plots.py) when it ends.

Under `--stop-time` an iteration still running shortly after the limit is cut
(deadline.py), so a run of long iterations still ends near its limit.

Order matters: everything the user typed is checked before Ray starts.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.contract import RunPaths
from launcher.errors import UserError, first_line
from launcher.training import algorithms, envs, policies, vectorize
from launcher.training.checkpoints import (
    BestCheckpoint,
    checkpoints,
    restore_latest,
    save_checkpoint,
)
from launcher.training.deadline import Deadline, cut_result, release_runners
from launcher.training.ray_session import connect_ray
from launcher.training.resources import (
    ClusterPlacement,
    check_machine,
    driver_torch_threads,
    placement_for,
    wanted_runners,
)
from launcher.training.rllib_config import (
    build_config,
    check_framework,
    hyperparameters,
    quiet_libraries,
)
from launcher.training.run_record import choose_seed, complete_record, read_record
from launcher.training.rundir import reserve_run_dir
from launcher.training.runlog import STEP_KEYS, ReturnWindow, RunLog, first_of, flatten, policy_returns
from launcher.training.settings import SHARED, TrainSettings
from launcher.training.signals import BUILDING, CLOSING, TRAINING, StopRequests
from launcher.training.throughput import Startup, Throughput


@dataclass
class RunSummary:
    run_dir: Path
    iterations: int = 0
    env_steps: int = 0
    last_return: float | None = None
    best_return: float | None = None
    wall_s: float = 0.0
    stopped_because: str = ""
    checkpoint: Path | None = None
    interrupted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self, row: dict) -> None:
        """Take in one iteration's progress row."""
        self.iterations = row["training_iteration"]
        self.env_steps = row["num_env_steps_sampled_lifetime"]
        if row["episode_return_mean"] is not None:  # an iteration may end no episode: keep the last
            self.last_return = row["episode_return_mean"]
            self.best_return = max(self.best_return or self.last_return, self.last_return)


def env_steps(result: dict) -> int:
    """The lifetime env steps in one RLlib result (the key differs between stacks)."""
    return int(first_of(flatten({k: v for k, v in result.items() if k != "config"}), STEP_KEYS) or 0)


# --- before Ray starts -------------------------------------------------------------------
def stop_reason(settings: TrainSettings, summary: dict, train_s: float) -> str | None:
    stop = settings.stop
    if stop.iters is not None and summary["training_iteration"] >= stop.iters:
        return f"reached {stop.iters} iterations"
    if stop.timesteps is not None and summary["num_env_steps_sampled_lifetime"] >= stop.timesteps:
        return f"reached {stop.timesteps} env steps"
    ret = summary["episode_return_mean"]
    if stop.policy is not None:
        ret = policy_returns(summary.get("flat") or summary).get(stop.policy)
    if stop.reward is not None and ret is not None and ret >= stop.reward:
        whose = f" of {stop.policy}" if stop.policy else ""
        return f"mean return{whose} {ret:.1f} >= {stop.reward:g}"
    if stop.time_s is not None and train_s >= stop.time_s:
        return f"reached the time limit of {stop.time_s:g} s"
    return None


def default_stop(settings: TrainSettings, info: envs.EnvInfo) -> None:
    """No stop criterion given: the env's solve threshold, capped at 100 iterations."""
    if settings.stop.is_empty():
        settings.stop.iters = 100
        if info.reward_threshold is not None:
            settings.stop.reward = float(info.reward_threshold)


def check_agents(settings: TrainSettings, info: envs.EnvInfo) -> None:
    """Every agent's action space fits the algorithm; the policies fit the agents."""
    if info.agents is None:
        algorithms.check_action_space(settings.algo, info.action_space)
        if settings.policies != SHARED or settings.train_policies or settings.stop.policy:
            raise UserError(f"policies apply to multi-agent envs only; {settings.env!r} has one agent")
        return
    if settings.max_episode_steps:
        raise UserError("max_episode_steps (horizon) applies to single-agent envs only; "
                        "set the episode length in env_config")
    for space in info.agents.action_spaces.values():
        algorithms.check_action_space(settings.algo, space)
    envs.notice(policies.plan(settings, info.agents).line())


def check_settings(settings: TrainSettings, validate_keys: bool = True,
                   placement: ClusterPlacement | None = None) -> envs.EnvInfo:
    """Validate everything that can be checked before Ray starts, and fill in the
    default stop criteria. `launcher submit` / `launcher local` call this too (with the
    job's `placement`), so a bad input fails before anything is submitted or started.

    `validate_keys=False` skips the RLlib-key check (which imports RLlib, ~3 s) when
    the user set no keys: the presets are checked by the test suite."""
    settings.validate()
    quiet_libraries()
    check_framework(settings.framework)
    info = envs.probe(settings.env, settings.env_config, settings.code)
    check_agents(settings, info)
    why = vectorize.choice(settings, info)[1]
    if why:
        envs.notice(why)
    default_stop(settings, info)
    if placement is None and not (settings.address or os.environ.get("RAY_ADDRESS")):
        check_machine(settings, hyperparameters(settings, info.family).get("num_env_runners"))
    if validate_keys:  # a typo or an inconsistent setting must not cost a Ray start
        config = build_config(settings, info, 0)
        try:
            config.validate()
        except ValueError as exc:
            raise UserError(f"invalid {settings.algo} config: {first_line(exc)}") from None
    return info


def open_run(settings: TrainSettings, resume, run_dir, validate_keys: bool,
             placement: ClusterPlacement | None):
    """Everything before Ray: validate, probe the env, pick the run dir.

    `resume`: continue that run dir from its last checkpoint (error if it has none).
    `run_dir`: a directory prepared for a cluster job (spec already written); it is
    resumed when it holds checkpoints, e.g. after a Slurm requeue.
    """
    if resume is not None:
        run_dir = Path(resume)
        if not checkpoints(run_dir):
            raise UserError(f"no checkpoint in {run_dir} to resume from")
    info = check_settings(settings, validate_keys, placement)
    if run_dir is not None:
        run_dir = Path(run_dir)
        if resume is None and checkpoints(run_dir):
            resume = run_dir
    else:
        run_dir = reserve_run_dir(settings)
    return info, run_dir, resume


# --- the run -----------------------------------------------------------------------------
def train(settings: TrainSettings, resume: str | Path | None = None, reporter=None,
          run_dir: str | Path | None = None, placement: ClusterPlacement | None = None,
          stops: StopRequests | None = None, own_ray: bool = True) -> RunSummary:
    """Run training to a stop criterion; return what happened. See module docstring.

    `resume` continues a run; `run_dir` trains into a prepared cluster-job directory
    (and resumes it when it already holds checkpoints); `placement` puts the actors on
    that job's node roles. Neither: a new run dir. `stops`: the caller's signal hand-off
    (a cluster node's); by default one is installed for the run. `own_ray=False`: Ray
    and the signals are the caller's (a sweep's trial, training/trials.py): the run
    neither installs signal handlers nor shuts Ray down.
    """
    started = Startup()
    import ray

    # Startup: with no user keys to validate, RLlib is imported in a thread while Ray's
    # processes start (both take seconds; the import is CPU, the start mostly waiting).
    overlap = not settings.config and not ray.is_initialized()
    info, run_dir, resume = open_run(settings, resume, run_dir, not overlap, placement)
    fresh = not RunPaths(run_dir).spec.exists()
    if resume is not None and settings.seed is None:  # a run whose seed was chosen for it
        settings.seed = read_record(run_dir).get("seed")
    if resume is None:
        choose_seed(settings)
    started.mark("settings")
    importer = threading.Thread(target=algorithms.config_class, args=(settings.algo,), daemon=True)
    if overlap:
        importer.start()
    own_stops = stops is None and own_ray
    stops = (stops or StopRequests()).install() if own_stops else (stops or StopRequests())
    try:
        resources = connect_ray(settings)
        started.mark("ray")
        if own_ray:
            stops.install()  # again: ray.init takes SIGTERM for itself
        if overlap:
            importer.join()
        return _run(settings, info, run_dir, resume, reporter, started, placement, resources, stops)
    except BaseException:
        if fresh:
            _remove_if_empty(run_dir)
        raise
    finally:
        stops.phase = CLOSING
        if own_ray:
            ray.shutdown()
        if own_stops:
            stops.restore()


def _remove_if_empty(run_dir: Path) -> None:
    """A new run that failed before writing anything leaves no directory behind."""
    try:
        os.rmdir(run_dir)
    except OSError:
        pass


def _run(settings, info, run_dir: Path, resume, reporter, started: Startup, placement,
         resources: dict, stops: StopRequests) -> RunSummary:
    if placement is not None:
        runners, actor_options = placement_for(settings, placement, resources)
    else:
        preset = hyperparameters(settings, info.family).get("num_env_runners")
        runners, actor_options = wanted_runners(settings, preset, int(resources.get("CPU", 1))), {}
    config = build_config(settings, info, runners, actor_options)
    paths = RunPaths(run_dir)
    if not paths.spec.exists():
        settings.write_spec(run_dir)
    if not paths.config.exists():  # also for prepared cluster run dirs
        paths.config.write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True, default=str))
    complete_record(run_dir, settings, resumed=resume is not None)
    stops.phase = BUILDING
    driver_torch_threads(settings.framework)
    algo = config.build_algo()
    started.mark("build")
    try:
        return _loop(settings, algo, run_dir, resume, reporter, started, stops)
    finally:
        algo.stop()


def _resume_into(algo, run_dir: Path, log: RunLog, summary: RunSummary) -> float:
    """Restore the newest loadable checkpoint; return the training time it had."""
    iteration = restore_latest(algo, run_dir)
    log.truncate_after(iteration)
    summary.extra["resumed_from"] = iteration
    if not log.rows:
        return 0.0
    returns = [float(r["episode_return_mean"]) for r in log.rows if r.get("episode_return_mean")]
    summary.best_return = max(returns) if returns else None
    return float(log.rows[-1].get("time_total_s") or 0.0)


def _loop(settings, algo, run_dir: Path, resume, reporter, started: Startup,
          stops: StopRequests) -> RunSummary:
    log = RunLog(run_dir)
    summary = RunSummary(run_dir=run_dir)
    best = BestCheckpoint(run_dir, by_evaluation=bool(algo.config.evaluation_interval))
    prior_train_s = _resume_into(algo, run_dir, log, summary) if resume is not None else 0.0
    if reporter:
        reporter.start(settings, run_dir, algo.iteration)
    meter = Throughput(algo)
    meter.start(log.last_env_steps())
    loop_start = time.monotonic()
    last_saved = algo.iteration
    window = ReturnWindow(algo.config.metrics_num_episodes_for_smoothing)
    stops.phase = TRAINING
    with Deadline(settings.stop.time_s, prior_train_s) as deadline:
        while True:
            iteration_start = time.monotonic()
            result = deadline.train(algo)
            started.mark("first_iteration")
            now = time.monotonic()
            train_s = prior_train_s + now - loop_start
            if result is None:
                reason, row = _cut(settings, algo, log, meter, (train_s, now - iteration_start))
                summary.record(row)
                if reporter:
                    reporter.update(row, time.monotonic() - started.start)
                break
            if algo.config.enable_env_runner_and_connector_v2:  # the old stack smooths its own
                window.smooth(result)
            result["time_total_s"] = train_s
            row = log.append(result, meter.columns(result, env_steps(result), now - iteration_start))
            summary.record(row)
            best.offer(algo, row)
            if reporter:
                reporter.update(row, time.monotonic() - started.start)
            reason = stop_reason(settings, row, train_s)
            if stops.received and not reason:
                reason = f"stopped by {stops.received}"
                summary.interrupted = True
            elif stops.requeue and not reason:
                reason, summary.interrupted = "stopped by SIGUSR1", True
            if reason:
                break
            if settings.checkpoint_every and algo.iteration - last_saved >= settings.checkpoint_every:
                save_checkpoint(algo, run_dir, algo.iteration)
                last_saved = algo.iteration
    summary.extra["time_split"] = meter.summary_line()
    summary.extra["startup"] = started.line()
    return _finish(algo, run_dir, log, summary, reason, reporter, started, (best, row))


def _cut(settings, algo, log: RunLog, meter: Throughput, times: tuple[float, float]):
    """The deadline cut the iteration in progress (deadline.py): release the remote env
    runners, write the cut iteration's row; return the stop reason and the row.

    The cut iteration counts: the final checkpoint is named after it (with the weights at
    the cut), so its row is kept on resume and the run reads as complete (resume.py)."""
    train_s, iteration_s = times
    release_runners(algo)
    algo._iteration += 1  # Trainable's counter (restore_latest sets it from the name too)
    steps = log.last_env_steps()
    result = cut_result(algo.iteration, steps, train_s, iteration_s)
    row = log.append(result, meter.columns(result, steps, iteration_s))
    return (f"reached the time limit of {settings.stop.time_s:g} s (iteration "
            f"{algo.iteration} cut at {train_s:.1f} s)"), row


def _finish(algo, run_dir: Path, log: RunLog, summary: RunSummary, reason: str, reporter,
            started: Startup, best_and_row: tuple[BestCheckpoint, dict]) -> RunSummary:
    summary.checkpoint = save_checkpoint(algo, run_dir, algo.iteration)
    best, row = best_and_row
    best.finish(summary.checkpoint, row)
    summary.stopped_because = reason
    summary.wall_s = time.monotonic() - started.start
    log.close()
    if reporter:
        reporter.finish(summary)
    return summary
