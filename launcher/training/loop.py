"""Settings -> RLlib AlgorithmConfig -> a training loop that leaves readable results.

The loop is ours, not Tune's: the algorithm runs in this process, one `train()`
per iteration, so startup costs one `ray.init` and nothing else, and every step
(stop criteria, checkpoints, signals, resume) is visible here. The run directory
gets what Tune would write (progress.csv, result.json, TensorBoard events, the
full config, checkpoints) plus the spec file and a reward plot.

Order matters: everything the user typed is checked before Ray starts.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.errors import UserError, first_line
from launcher.training import algorithms, envs, presets
from launcher.training.runlog import RunLog
from launcher.training.settings import SPEC_FILE, TrainSettings, check_keys, load_spec

CHECKPOINT_DIR = "checkpoints"
KEEP_CHECKPOINTS = 3
EXIT_INTERRUPTED = 75  # EX_TEMPFAIL: stopped by a signal after saving a checkpoint; resumable
# Custom Ray resources that cluster nodes advertise (launcher/node.py) to place actors.
LEARNER_RESOURCE = "learner_node"
ROLLOUT_RESOURCE = "rollout_node"


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


# --- before Ray starts -------------------------------------------------------------------
def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def check_framework(framework: str) -> None:
    """Make the framework importable-or-absent before RLlib is imported.

    RLlib imports TensorFlow whenever it is installed (seconds of startup and a
    screen of logs); torch runs tell it not to. The variables are inherited by
    the Ray workers started after this.
    """
    if framework == "torch":
        os.environ.setdefault("RLLIB_TEST_NO_TF_IMPORT", "1")
        # ...which RLlib acknowledges with a warning at every import site.
        logging.getLogger("ray.rllib.utils.framework").setLevel(logging.ERROR)
    if framework == "tf2":
        # Inherited from a torch run's environment (a parent process), it would hide TF.
        os.environ.pop("RLLIB_TEST_NO_TF_IMPORT", None)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import importlib.util

        if importlib.util.find_spec("tensorflow") is None:
            raise UserError(
                "--framework tf2 needs TensorFlow, which is not installed: "
                "pip install 'launcher[tf]' (or use --framework torch)"
            )
        # RLlib's old API stack needs Keras 2; must be set before TF is imported,
        # also in the Ray workers, which inherit this environment.
        os.environ["TF_USE_LEGACY_KERAS"] = "1"


def run_dir_name(settings: TrainSettings) -> str:
    if settings.name:
        name = settings.name
    else:
        env = settings.env.rpartition(":")[2] if envs.is_entry_point(settings.env) else settings.env
        stamp = dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        name = f"{settings.algo}_{env}_{stamp}"
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "run"
    return safe


def prepare_run_dir(settings: TrainSettings) -> Path:
    """Create the run directory, failing with one line if the output is unwritable."""
    output = Path(settings.output).expanduser()
    run_dir = output / run_dir_name(settings)
    if (run_dir / SPEC_FILE).exists():
        raise UserError(
            f"run directory {run_dir} already exists: continue it with --resume {run_dir} "
            "or choose another --name"
        )
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=run_dir):
            pass
    except OSError as exc:
        raise UserError(f"cannot write to output directory {output}: {exc.strerror}") from None
    return run_dir


def hyperparameters(settings: TrainSettings, family: str) -> dict[str, Any]:
    """Presets for the algorithm and env family, overridden by the user's config."""
    merged = presets.preset(settings.algo, family)
    if settings.framework == "tf2" and "train_batch_size_per_learner" in merged:
        # The presets are written for the new API stack; the old one (tf2) names it so.
        merged["train_batch_size"] = merged.pop("train_batch_size_per_learner")
    merged.update(settings.config)
    return merged


def build_config(settings: TrainSettings, info: envs.EnvInfo, runners: int, placement: dict):
    """The RLlib AlgorithmConfig for these settings (no Ray needed)."""
    config = algorithms.config_class(settings.algo)()
    quiet_libraries()  # after RLlib's import, which sets its own log levels
    if settings.framework == "tf2":
        config.api_stack(enable_rl_module_and_learner=False, enable_env_runner_and_connector_v2=False)
    config.framework(settings.framework)
    hyper = hyperparameters(settings, info.family)
    hyper.pop("num_env_runners", None)
    if placement.get("fault_tolerance"):  # before the user's settings, which may override it
        config.fault_tolerance(**placement["fault_tolerance"])
    apply_hyperparameters(config, hyper, f"the {settings.algo} config")
    config.environment(env=envs.rllib_env_name(settings.env), env_config=settings.env_config)
    config.env_runners(num_env_runners=runners, **placement.get("env_runners", {}))
    if placement.get("learners"):
        config.learners(**placement["learners"])
    elif settings.num_gpus and settings.framework == "torch":
        config.learners(num_learners=0, num_gpus_per_learner=settings.num_gpus)
    elif settings.num_gpus:
        config.resources(num_gpus=settings.num_gpus)
    if settings.framework == "torch" and type(info.observation_space).__name__ != "Box":
        # Discrete / Tuple / Dict observations: one-hot and flatten for the default nets.
        from ray.rllib.connectors.env_to_module import FlattenObservations

        config.env_runners(env_to_module_connector=lambda *_args, **_kw: FlattenObservations())
    if settings.seed is not None:
        config.debugging(seed=settings.seed)
    return config


# AlgorithmConfig's setter methods; their keyword names are the settings users write.
CONFIG_SECTIONS = (
    "training", "env_runners", "learners", "environment", "evaluation", "reporting",
    "debugging", "fault_tolerance", "rl_module", "resources", "checkpointing", "callbacks",
    "multi_agent", "offline_data", "framework", "api_stack",
)


def config_setters(config) -> dict[str, Any]:
    """Map every settable key to the AlgorithmConfig method that sets it."""
    import inspect

    setters: dict[str, Any] = {}
    for section in CONFIG_SECTIONS:
        # Subclasses (PPOConfig.training) pass **kwargs up to AlgorithmConfig's method,
        # so the keys of every class in the MRO are valid for the bound method.
        for klass in type(config).__mro__:
            function = klass.__dict__.get(section)
            if function is None:
                continue
            for pname, param in inspect.signature(function).parameters.items():
                # RLlib marks renamed arguments with DEPRECATED_VALUE (-1) defaults: they
                # raise when set, so they are not valid keys (legacy.py translates them).
                deprecated = isinstance(param.default, int) and param.default == -1
                if pname not in ("self", "args", "kwargs") and not deprecated:
                    setters.setdefault(pname, getattr(config, section))
    return setters


def apply_hyperparameters(config, hyper: dict[str, Any], where: str) -> None:
    """Set each key through its AlgorithmConfig method; unknown keys are refused."""
    setters = config_setters(config)
    plain = {k for k in vars(config) if not k.startswith("_")}
    check_keys(hyper, sorted(set(setters) | plain), where)
    for key, value in hyper.items():
        if key in setters:
            setters[key](**{key: value})
        else:
            config.update_from_dict({key: value})


def wanted_runners(settings: TrainSettings, family: str, cpus: int) -> int:
    """How many remote env runners: the user's number if set, else what fits."""
    if settings.local_mode:
        return 0
    asked = settings.num_env_runners
    if asked is None:
        asked = hyperparameters(settings, family).get("num_env_runners")
        if asked is None:
            return max(cpus - 1, 0)
        return min(int(asked), max(cpus - 1, 0))
    if asked > 0 and asked > cpus - 1:
        raise UserError(
            f"{asked} env runners need {asked + 1} CPUs (one each plus one for the trainer), "
            f"but only {cpus} are available; lower --num-env-runners or raise --num-cpus"
        )
    return asked


def quiet_libraries() -> None:
    """RLlib's advice-level warnings (new API stack notices...) drown the progress lines."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    for name in ("ray.rllib", "ray.tune", "ray.train"):
        logging.getLogger(name).setLevel(logging.ERROR)


# --- Ray ---------------------------------------------------------------------------------
# Ray's processes retry their first connection to a local socket (the raylet to its own
# object store, a worker to its raylet) after raylet_client_connect_timeout_milliseconds,
# 1 s by default; that first try often races the socket's creation and costs a whole
# second of every node's start. Retry every 0.1 s instead, with the same 10 s of patience.
# A value the user exported wins.
RAY_FAST_CONNECT = {"RAY_raylet_client_connect_timeout_milliseconds": "100",
                    "RAY_raylet_client_num_connect_attempts": "100"}


def fast_connect_env() -> dict[str, str]:
    return {name: os.environ.get(name, value) for name, value in RAY_FAST_CONNECT.items()}


def start_ray(settings: TrainSettings) -> dict[str, float]:
    """Start embedded Ray sized to this machine, or join a cluster; return its resources."""
    import ray

    quiet = {"include_dashboard": False, "logging_level": "ERROR", "log_to_driver": False}
    address = settings.address or os.environ.get("RAY_ADDRESS")
    if address:
        if ray.is_initialized():  # `launcher node` connected already, to wait for the nodes
            return ray.cluster_resources()
        try:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        except Exception as exc:
            raise UserError(f"cannot connect to the Ray cluster at {address}: {exc}") from None
        return ray.cluster_resources()
    cpus = embedded_cpus(settings)
    gpus = settings.num_gpus
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ.update(fast_connect_env())
    ray.init(num_cpus=cpus, num_gpus=gpus or 0, **quiet)
    return ray.cluster_resources()


def embedded_cpus(settings: TrainSettings) -> int:
    """CPUs for an embedded Ray: all usable ones unless fewer are asked for."""
    have = usable_cpus()
    cpus = 1 if settings.local_mode else (settings.num_cpus or have)
    if cpus > have:
        raise UserError(f"--num-cpus {cpus} asks for more CPUs than this machine has ({have})")
    return cpus


def visible_gpus() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except ImportError:  # pragma: no cover
        return 0


def placement_for(settings: TrainSettings, resources: dict[str, float]) -> tuple[int, dict]:
    """Env-runner count and actor placement on a cluster whose nodes carry role resources."""
    rollout_slots = int(resources.get(ROLLOUT_RESOURCE, 0))
    learner_slots = int(resources.get(LEARNER_RESOURCE, 0))
    runners = settings.num_env_runners if settings.num_env_runners is not None else rollout_slots
    if runners > rollout_slots:
        raise UserError(f"{runners} env runners asked for, but the rollout nodes offer {rollout_slots}")
    placement: dict[str, Any] = {
        "env_runners": {"custom_resources_per_env_runner": {ROLLOUT_RESOURCE: 1}},
        # A lost rollout node: its env runners are restarted when a node offers room again;
        # meanwhile training goes on with the others. The restarted actors stay pending
        # while no node has room, and RLlib pings them every iteration: keep that short.
        "fault_tolerance": {"restart_failed_env_runners": True,
                            "env_runner_health_probe_timeout_s": 2.0},
    }
    if settings.num_learners:
        if settings.num_learners > learner_slots:
            raise UserError(
                f"{settings.num_learners} learners asked for, but the cluster has "
                f"{learner_slots} learner slot(s)"
            )
        per_learner_gpu = settings.num_gpus / settings.num_learners if settings.num_gpus else 0
        placement["learners"] = {
            "num_learners": settings.num_learners,
            "num_cpus_per_learner": 1,
            "num_gpus_per_learner": per_learner_gpu,
            "custom_resources_per_learner": {LEARNER_RESOURCE: 1},
        }
    return runners, placement


# --- checkpoints -------------------------------------------------------------------------
def checkpoints(run_dir: Path) -> list[Path]:
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("checkpoint_*") if p.is_dir() and p.name[11:].isdigit())


def save_checkpoint(algo, run_dir: Path, iteration: int) -> Path:
    """Save atomically (write aside, then rename), keep the newest few."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    folder.mkdir(exist_ok=True)
    final = folder / f"checkpoint_{iteration:06d}"
    if final.exists():
        return final
    partial = folder / f".partial_{iteration:06d}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    algo.save_checkpoint(str(partial.resolve()))  # both API stacks (tf2 is the old one)
    partial.rename(final)
    for old in checkpoints(run_dir)[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return final


# --- the loop ----------------------------------------------------------------------------
class StopSignals:
    """SIGTERM / SIGUSR1 (Slurm's warning before the time limit) / SIGINT: finish the
    current iteration, checkpoint, exit. A second SIGINT stops at once."""

    def __init__(self, signals=(signal.SIGTERM, signal.SIGUSR1, signal.SIGINT),
                 received: str | None = None):
        self.signals = signals
        self.received = received
        self._previous = {}

    def __enter__(self):
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, _frame):
        if self.received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def stop_reason(settings: TrainSettings, summary: dict, train_s: float) -> str | None:
    stop = settings.stop
    if stop.iters is not None and summary["training_iteration"] >= stop.iters:
        return f"reached {stop.iters} iterations"
    if stop.timesteps is not None and summary["num_env_steps_sampled_lifetime"] >= stop.timesteps:
        return f"reached {stop.timesteps} env steps"
    ret = summary["episode_return_mean"]
    if stop.reward is not None and ret is not None and ret >= stop.reward:
        return f"mean return {ret:.1f} >= {stop.reward:g}"
    if stop.time_s is not None and train_s >= stop.time_s:
        return f"reached the time limit of {stop.time_s:g} s"
    return None


def default_stop(settings: TrainSettings, info: envs.EnvInfo) -> None:
    """No stop criterion given: the env's solve threshold, capped at 100 iterations."""
    if settings.stop.is_empty():
        settings.stop.iters = 100
        if info.reward_threshold is not None:
            settings.stop.reward = float(info.reward_threshold)


def check(settings: TrainSettings, validate_keys: bool = True) -> envs.EnvInfo:
    """Validate everything that can be checked before Ray starts, and fill in the
    default stop criteria. `launcher submit` / `launcher local` call this too, so a
    bad input fails before anything is submitted or started.

    `validate_keys=False` skips the RLlib-key check (which imports RLlib, ~3 s) when
    the user set no keys: the presets are checked by the test suite."""
    settings.validate()
    quiet_libraries()
    check_framework(settings.framework)
    info = envs.probe(settings.env, settings.env_config)
    algorithms.check_action_space(settings.algo, info.action_space)
    default_stop(settings, info)
    if not (settings.address or os.environ.get("RAY_ADDRESS") or settings.place_on_cluster_roles):
        cpus = embedded_cpus(settings)
        wanted_runners(settings, info.family, cpus)
        found = visible_gpus() if settings.num_gpus else 0
        if settings.num_gpus > found:
            raise UserError(
                f"--num-gpus {settings.num_gpus:g} asks for more GPUs than this machine has ({found})"
            )
    if validate_keys:  # a typo or an inconsistent setting must not cost a Ray start
        config = build_config(settings, info, 0, {})
        try:
            config.validate()
        except ValueError as exc:
            raise UserError(f"invalid {settings.algo} config: {first_line(exc)}") from None
    return info


def prepare(settings: TrainSettings, resume=None, run_dir=None, validate_keys: bool = True):
    """Everything before Ray: validate, probe the env, pick the run dir.

    `resume`: continue that run dir from its last checkpoint (error if it has none).
    `run_dir`: a directory prepared for a cluster job (spec already written); it is
    resumed when it holds checkpoints, e.g. after a Slurm requeue.
    """
    if resume is not None:
        run_dir = Path(resume)
        if not checkpoints(run_dir):
            raise UserError(f"no checkpoint in {run_dir} to resume from")
    info = check(settings, validate_keys)
    if run_dir is not None:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        if resume is None and checkpoints(run_dir):
            resume = run_dir
    else:
        run_dir = prepare_run_dir(settings)
    return info, run_dir, resume


def train(settings: TrainSettings, resume: str | Path | None = None, reporter=None,
          run_dir: str | Path | None = None) -> RunSummary:
    """Run training to a stop criterion; return what happened. See module docstring.

    `resume` continues a run; `run_dir` trains into a prepared cluster-job directory
    (and resumes it when it already holds checkpoints). Neither: a new run dir.
    """
    started = time.monotonic()
    import ray

    # Startup: with no user keys to validate, RLlib is imported in a thread while Ray's
    # processes start (both take seconds; the import is CPU, the start mostly waiting).
    overlap = not settings.config and not ray.is_initialized()
    info, run_dir, resume = prepare(settings, resume, run_dir, validate_keys=not overlap)
    importer = threading.Thread(target=algorithms.config_class, args=(settings.algo,), daemon=True)
    if overlap:
        importer.start()
    resources = start_ray(settings)
    if overlap:
        importer.join()
    try:
        if settings.place_on_cluster_roles:
            runners, placement = placement_for(settings, resources)
        else:
            runners = wanted_runners(settings, info.family, int(resources.get("CPU", 1)))
            placement = {}
        config = build_config(settings, info, runners, placement)
        if not (run_dir / SPEC_FILE).exists():
            settings.write_spec(run_dir)
        if not (run_dir / "config.json").exists():  # also for prepared cluster run dirs
            (run_dir / "config.json").write_text(
                json.dumps(config.to_dict(), indent=2, sort_keys=True, default=str)
            )
        # Slurm's time-limit warning may come while the algorithm builds: keep it for
        # the loop, which then checkpoints after its first iteration and exits 75.
        with StopSignals(signals=(signal.SIGUSR1,)) as early:
            algo = config.build_algo()
        try:
            return _loop(settings, algo, run_dir, resume, reporter, started, early.received)
        finally:
            algo.stop()
    finally:
        ray.shutdown()


def _loop(settings, algo, run_dir: Path, resume, reporter, started: float,
          received: str | None = None) -> RunSummary:
    log = RunLog(run_dir)
    summary = RunSummary(run_dir=run_dir)
    prior_train_s = 0.0
    if resume is not None:
        latest = checkpoints(run_dir)[-1]
        algo.load_checkpoint(str(latest.resolve()))
        # The old API stack (tf2) does not keep the iteration count in its state;
        # the checkpoint's name does.
        algo._iteration = int(latest.name.removeprefix("checkpoint_"))
        log.truncate_after(algo.iteration)
        if log.rows:
            prior_train_s = float(log.rows[-1].get("time_total_s") or 0.0)
            returns = [float(r["episode_return_mean"]) for r in log.rows if r.get("episode_return_mean")]
            summary.best_return = max(returns) if returns else None
        summary.extra["resumed_from"] = algo.iteration
    if reporter:
        reporter.start(settings, run_dir, algo.iteration)
    loop_start = time.monotonic()
    last_saved = algo.iteration
    with StopSignals(received=received) as signals:
        while True:
            result = algo.train()
            train_s = prior_train_s + time.monotonic() - loop_start
            result["time_total_s"] = train_s
            row = log.append(result)
            summary.iterations = row["training_iteration"]
            summary.env_steps = row["num_env_steps_sampled_lifetime"]
            summary.last_return = row["episode_return_mean"]
            if row["episode_return_mean"] is not None:
                summary.best_return = max(summary.best_return or row["episode_return_mean"],
                                          row["episode_return_mean"])
            if reporter:
                reporter.update(row, time.monotonic() - started)
            reason = stop_reason(settings, row, train_s)
            if signals.received and not reason:
                reason = f"stopped by {signals.received}"
                summary.interrupted = True
            if reason:
                break
            every = settings.checkpoint_every
            if every and algo.iteration - last_saved >= every:
                save_checkpoint(algo, run_dir, algo.iteration)
                last_saved = algo.iteration
    summary.checkpoint = save_checkpoint(algo, run_dir, algo.iteration)
    summary.stopped_because = reason
    summary.wall_s = time.monotonic() - started
    log.close()
    _plot(run_dir)
    if reporter:
        reporter.finish(summary)
    return summary


def _plot(run_dir: Path) -> None:
    from launcher.results import tables as results

    try:
        results.plot([run_dir], run_dir / "reward.png")
    except UserError:
        pass  # e.g. no episode finished yet: nothing to draw


def resume_settings(run_dir: str | Path, overrides: dict[str, Any]) -> TrainSettings:
    """The spec a run started with, with resources and stop criteria the user re-set."""
    settings = load_spec(run_dir)
    for key, value in overrides.items():
        if key == "stop":
            for skey, svalue in value.items():
                setattr(settings.stop, skey, svalue)
        else:
            setattr(settings, key, value)
    return settings
