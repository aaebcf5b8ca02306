"""Settings -> an RLlib AlgorithmConfig: presets, the user's keys, the env, placement.

Every key a user writes is set through the AlgorithmConfig method that owns it, so an
unknown key is refused with the closest valid name instead of being ignored.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

from launcher.errors import UserError
from launcher.training import algorithms, connectors, envs, policies, presets, vectorize
from launcher.training.settings import check_keys


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


def hyperparameters(settings, family: str) -> dict[str, Any]:
    """Presets for the algorithm and env family, overridden by the user's config."""
    merged = presets.preset(settings.algo, family)
    if settings.framework == "tf2" and "train_batch_size_per_learner" in merged:
        # The presets are written for the new API stack; the old one (tf2) names it so.
        merged["train_batch_size"] = merged.pop("train_batch_size_per_learner")
    merged.update(settings.config)
    return merged


def build_config(settings, info: envs.EnvInfo, runners: int, actor_options: dict | None = None):
    """The RLlib AlgorithmConfig for these settings (no Ray needed); `actor_options` place
    the actors on a cluster's node roles (resources.placement_for)."""
    placement = actor_options or {}
    config = algorithms.config_class(settings.algo)()
    quiet_libraries()  # after RLlib's import, which sets its own log levels
    if settings.framework == "tf2":
        config.api_stack(enable_rl_module_and_learner=False, enable_env_runner_and_connector_v2=False)
    config.framework(settings.framework)
    hyper = hyperparameters(settings, info.family)
    hyper.pop("num_env_runners", None)
    hyper.update(vectorize.choice(settings, info)[0])  # envs in flight for a slow, waiting env
    # Algorithm.__init__ sets RLlib's loggers to log_level (WARN by default): its advice
    # ("You are running SAC on the new API stack!") would print again. A user's log_level wins.
    config.debugging(log_level="ERROR")
    # Before the user's settings, which may override it. On one machine an env runner
    # only dies when the env raises: restarting it would hide the error and train on
    # nothing, so the run fails with the env's error instead.
    config.fault_tolerance(**placement.get("fault_tolerance", {"restart_failed_env_runners": False}))
    apply_hyperparameters(config, hyper, f"the {settings.algo} config")
    if info.agents is not None:
        policies.configure(config, policies.plan(settings, info.agents))
    time_slices(config, settings, hyper)
    connectors.attach(config, settings, info)  # the env (TimeLimit) and env-to-module connectors
    config.env_runners(num_env_runners=runners, **placement.get("env_runners", {}))
    flat_replay(config, settings, info)
    if placement.get("learners"):
        config.learners(**placement["learners"])
    elif settings.num_gpus and settings.framework == "torch":
        config.learners(num_learners=0, num_gpus_per_learner=settings.num_gpus)
    elif settings.num_gpus:
        config.resources(num_gpus=settings.num_gpus)
    if settings.seed is not None:
        config.debugging(seed=settings.seed)
    if settings.eval_every:
        add_evaluation(config, settings.eval_every, settings.eval_episodes)
    return config


# Longest iteration of a step-looped algorithm under a time limit: the limit is checked
# between iterations, so a run ends within about this much (plus one training step) after
# it. An iteration that runs on past the limit (PPO's batch) is cut: training/deadline.py.
TIME_SLICE_S = 2.0
ITERATION_KEYS = ("min_time_s_per_iteration", "min_sample_timesteps_per_iteration",
                  "min_train_timesteps_per_iteration")


def time_slices(config, settings, hyper: dict) -> None:
    """Under `--stop-time`, a DQN/SAC/APPO/IMPALA iteration ends by time, not by env steps.

    Their default iteration samples a fixed number of env steps (DQN: 1000), which with a
    slow env takes minutes, or lasts 10 s (APPO, IMPALA), and the limit is checked
    between iterations (deadline.py cuts one that runs more than 2 s past it). Here
    an iteration lasts `TIME_SLICE_S` (a quarter of a short limit). A user who set one of
    ITERATION_KEYS keeps the iteration they asked for."""
    limit = settings.stop.time_s
    if limit is None or settings.algo not in algorithms.STEP_LOOPED:
        return
    if any(key in hyper for key in ITERATION_KEYS):
        return
    config.reporting(min_time_s_per_iteration=min(TIME_SLICE_S, limit / 4),
                     min_sample_timesteps_per_iteration=0, min_train_timesteps_per_iteration=0)


def flat_replay(config, settings, info) -> None:
    """DQN and SAC with uniform replay train through offpolicy.py's flat replay buffer and
    batched updates, where it applies; elsewhere RLlib's own training step runs."""
    if settings.algo not in algorithms.REPLAY_BASED:
        return
    from launcher.training import offpolicy

    if offpolicy.eligible(config, info.observation_space, multi_agent=info.agents is not None):
        config.algo_class = offpolicy.FLAT_CLASSES[settings.algo]
        config.training(tau=offpolicy.compounded_tau(config.tau, offpolicy.updates_per_step(config)))


def add_evaluation(config, every: int, episodes: int) -> None:
    """Greedy evaluation every `every` iterations, `episodes` episodes long.

    `evaluation_num_env_runners=0` gives the evaluation its own env runner inside the
    algorithm's process (a second EnvRunnerGroup with a local runner, never the training
    runners' envs), so it needs no CPU beyond what training was sized for. Its results
    arrive under `evaluation/` in the iteration's result (runlog.EVAL_RETURN_KEYS)."""
    config.evaluation(
        evaluation_interval=every,
        evaluation_duration=episodes,
        evaluation_duration_unit="episodes",
        evaluation_num_env_runners=0,
        evaluation_config={"explore": False},
    )


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


def quiet_libraries() -> None:
    """RLlib's advice-level warnings (new API stack notices...) drown the progress lines."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    for name in ("ray.rllib", "ray.tune", "ray.train"):
        logging.getLogger(name).setLevel(logging.ERROR)
