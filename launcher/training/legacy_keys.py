"""The translation table of tutorial-era RLlib keys, one entry per old key, and its
rendering for the README. launcher/training/legacy.py applies it.

  Rename(new)        the key has a new name; one notice line "old → new" on stderr.
                     `old_stack` is the name on RLlib's old API stack (--framework tf2)
                     when it differs there; "a.b" targets a key inside the mapping `a`.
  Launcher(field)    the key is a launcher setting (a TrainSettings field / CLI flag);
                     `new_stack_only`: an RLlib key still on the old API stack (tf2).
  Nested(handler)    a mapping translated key by key (launcher/training/legacy_nested.py).
  Dropped(why)       the key has no effect any more; dropped with a notice.
  Gone(why)          no equivalent: refused with one line saying what to write instead;
                     `harmless` values mean "off" and are dropped with a notice.
`MODEL_KEYS` does the same for the keys inside the old `model` dict, `STOP_KEYS`
for Tune's stop metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

NEW_STACK = "new"  # RLModule + Learner + EnvRunner (torch; the launcher's default)
OLD_STACK = "old"  # ModelV2 + RolloutWorker (--framework tf2)


@dataclass(frozen=True)
class Rename:
    new: str
    old_stack: str | None = None  # name on the old API stack when it differs
    note: str = ""
    value: Callable[[Any], Any] | None = None  # converts the value where its form changed
    also: dict[str, Any] = field(default_factory=dict)  # further keys the new form needs


@dataclass(frozen=True)
class Launcher:
    field: str  # TrainSettings field
    flag: str = ""  # the CLI flag that sets it, for messages ("": an experiment file only)
    note: str = ""
    value: Callable[[Any], Any] | None = None  # raises ValueError(why) for a value it refuses
    new_stack_only: bool = False  # on the old API stack (tf2) it stays an RLlib key


@dataclass(frozen=True)
class Nested:
    handler: str  # the function in legacy_nested.HANDLERS that translates the mapping
    new: str  # what it becomes on the new API stack (for the README)
    old_stack: str | None = None  # its name on the old API stack (tf2); None: kept as it is


@dataclass(frozen=True)
class Dropped:
    why: str


@dataclass(frozen=True)
class Gone:
    why: str
    new_stack_only: bool = False  # still valid on the old API stack (--framework tf2)
    harmless: tuple = ()  # values that mean "off": dropped silently instead of refused


def framework_name(value: Any) -> Any:
    """RLlib's old framework names -> the launcher's (torch, tf2)."""
    return {"tf": "tf2", "tfe": "tf2", "tf1": "tf2", "pytorch": "torch"}.get(value, value)


def _replay_type(value: Any) -> str:
    return "PrioritizedEpisodeReplayBuffer" if value else "EpisodeReplayBuffer"


def _steps(value: Any) -> int | None:
    """An old `horizon`: a whole number of steps, or None for none."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("a horizon is a whole number of steps, at least 1")
    return value


OBSERVATION_FILTERS = {"MeanStdFilter": "MeanStdFilter", "ConcurrentMeanStdFilter": "MeanStdFilter",
                       "NoFilter": None, None: None}


def _observation_filter(value: Any) -> str | None:
    if isinstance(value, str) and value in OBSERVATION_FILTERS or value is None:
        return OBSERVATION_FILTERS[value]
    raise ValueError("the launcher adds MeanStdFilter (or NoFilter); another filter is a "
                     "ConnectorV2 you write and set with config.env_runners(env_to_module_connector=...) "
                     "in your own script, or keep the old API stack with --framework tf2")


_DRIVER_CPUS = ("the launcher gives the trainer process 1 CPU and fits env runners to the rest; "
                "set the total with --num-cpus")
_NO_MODELV2 = ("custom ModelV2 models are gone from the new API stack: write an RLModule "
               "(rl_module_spec), or keep the old stack with --framework tf2")
_RECORD = "record videos inside your env with gymnasium.wrappers.RecordVideo"

# One entry per old key. Keep sorted by theme; tests/test_legacy.py covers every entry.
LEGACY: dict[str, Rename | Launcher | Nested | Dropped | Gone] = {
    # --- what the launcher itself decides -------------------------------------------------
    "env": Launcher("env", "--env"),
    "env_config": Launcher("env_config", "--env-config"),
    "framework": Launcher("framework", "--framework", value=framework_name),
    "seed": Launcher("seed", "--seed"),
    "num_gpus": Launcher("num_gpus", "--num-gpus",
                         note="GPUs for the learner: num_gpus_per_learner on the new API stack"),
    # --- env runners (were "workers") -----------------------------------------------------
    "num_workers": Rename("num_env_runners", note="the launcher lowers it to fit the CPUs"),
    "num_rollout_workers": Rename("num_env_runners", note="the launcher lowers it to fit the CPUs"),
    "num_envs_per_worker": Rename("num_envs_per_env_runner"),
    "num_cpus_per_worker": Rename("num_cpus_per_env_runner"),
    "num_gpus_per_worker": Rename("num_gpus_per_env_runner"),
    "custom_resources_per_worker": Rename("custom_resources_per_env_runner"),
    "create_env_on_driver": Rename("create_env_on_local_worker"),
    "validate_workers_after_construction": Rename("validate_env_runners_after_construction"),
    "synchronize_filter": Rename("update_worker_filter_stats"),
    "synchronize_filters": Rename("update_worker_filter_stats"),
    "num_cpus_for_driver": Gone(f"RLlib renamed it num_cpus_for_main_process, but {_DRIVER_CPUS}"),
    "num_cpus_for_local_worker": Gone(f"RLlib renamed it num_cpus_for_main_process, but {_DRIVER_CPUS}"),
    "worker_cls": Gone("RolloutWorker subclasses are gone: subclass EnvRunner and set env_runner_cls"),
    "observation_filter": Launcher(
        "observation_filter", note="an env-to-module connector the launcher adds "
        "(ray.rllib.connectors.env_to_module.MeanStdFilter)", value=_observation_filter,
        new_stack_only=True),
    # --- learners -------------------------------------------------------------------------
    "num_learner_workers": Rename("num_learners"),
    "num_cpus_per_learner_worker": Rename("num_cpus_per_learner"),
    "num_gpus_per_learner_worker": Rename("num_gpus_per_learner"),
    # --- fault tolerance ------------------------------------------------------------------
    "ignore_worker_failures": Rename("ignore_env_runner_failures"),
    "recreate_failed_workers": Rename("restart_failed_env_runners"),
    "recreate_failed_env_runners": Rename("restart_failed_env_runners"),
    "max_num_worker_restarts": Rename("max_num_env_runner_restarts"),
    "delay_between_worker_restarts_s": Rename("delay_between_env_runner_restarts_s"),
    "num_consecutive_worker_failures_tolerance": Rename("num_consecutive_env_runner_failures_tolerance"),
    "worker_health_probe_timeout_s": Rename("env_runner_health_probe_timeout_s"),
    "worker_restore_timeout_s": Rename("env_runner_restore_timeout_s"),
    # --- training -------------------------------------------------------------------------
    "train_batch_size": Rename("train_batch_size_per_learner", old_stack="train_batch_size",
                               note="per learner: one learner unless the run places several"),
    "sgd_minibatch_size": Rename("minibatch_size"),
    "num_sgd_iter": Rename("num_epochs"),
    "lambda": Rename("lambda_", old_stack="lambda_"),
    "lr_schedule": Rename("lr", old_stack="lr_schedule", note="lr takes the [[timestep, value], ...] list"),
    "entropy_coeff_schedule": Rename("entropy_coeff", old_stack="entropy_coeff_schedule",
                                     note="entropy_coeff takes the [[timestep, value], ...] list"),
    "vf_share_layers": Rename("model_config.vf_share_layers", old_stack="model.vf_share_layers"),
    "target_update_frequency": Rename("target_network_update_freq"),
    "simple_optimizer": Dropped("the Learner API does the SGD now; tune minibatch_size and num_epochs"),
    "use_critic": Gone("APPO always uses a value function (critic) now"),
    "num_aggregation_workers": Rename("num_aggregator_actors_per_learner"),
    "max_requests_in_flight_per_sampler_worker": Rename("max_requests_in_flight_per_env_runner"),
    "max_requests_in_flight_per_aggregator_worker": Rename("max_requests_in_flight_per_aggregator_actor"),
    "model_config_dict": Rename("model_config"),
    "exploration_config": Nested(
        "exploration", "EpsilonGreedy → `epsilon: [[0, initial_epsilon], [epsilon_timesteps, "
        "final_epsilon]]` (DQN); StochasticSampling or `{}` dropped; other kinds are an RLModule's "
        "forward_exploration"),
    # --- SAC's networks and optimizers ----------------------------------------------------
    "Q_model": Nested("sac_model", "`model_config` (shared by SAC's policy and Q networks)",
                      old_stack="q_model_config"),
    "policy_model": Nested("sac_model", "`model_config` (shared by SAC's policy and Q networks)",
                           old_stack="policy_model_config"),
    "q_model_config": Nested("sac_model", "`model_config` (shared by SAC's policy and Q networks)"),
    "policy_model_config": Nested("sac_model",
                                  "`model_config` (shared by SAC's policy and Q networks)"),
    "optimization": Nested("sac_optimization", "`actor_lr`, `critic_lr`, `alpha_lr`",
                           old_stack="optimization_config"),
    "optimization_config": Nested("sac_optimization", "`actor_lr`, `critic_lr`, `alpha_lr`"),
    # --- DQN replay buffer (moved into replay_buffer_config) -----------------------------
    "buffer_size": Rename("replay_buffer_config.capacity"),
    "prioritized_replay": Rename("replay_buffer_config.type", value=_replay_type),
    "prioritized_replay_alpha": Rename("replay_buffer_config.alpha"),
    "prioritized_replay_beta": Rename("replay_buffer_config.beta"),
    "learning_starts": Rename("num_steps_sampled_before_learning_starts"),
    "replay_buffer_config": Nested(
        "replay_buffer", "the episode buffers' names: (MultiAgent)ReplayBuffer → "
        "EpisodeReplayBuffer, (MultiAgent)PrioritizedReplayBuffer → PrioritizedEpisodeReplayBuffer, "
        "prioritized_replay_alpha/beta → alpha/beta, min_size_for_sampling → "
        "num_steps_sampled_before_learning_starts"),
    "prioritized_replay_eps": Dropped("the new prioritized replay buffers have no epsilon"),
    "final_prioritized_replay_beta": Dropped("the new buffers keep beta fixed: replay_buffer_config.beta"),
    "prioritized_replay_beta_annealing_timesteps": Dropped(
        "the new buffers keep beta fixed: replay_buffer_config.beta"),
    "replay_batch_size": Gone("the replay batch is train_batch_size_per_learner now"),
    "worker_side_prioritization": Dropped("env runners no longer compute priorities"),
    "replay_mode": Gone("replay_mode moved into replay_buffer_config (replay_mode: independent)"),
    # --- reporting ------------------------------------------------------------------------
    "metrics_smoothing_episodes": Rename("metrics_num_episodes_for_smoothing"),
    "min_iter_time_s": Rename("min_time_s_per_iteration"),
    "min_time_s_per_reporting": Rename("min_time_s_per_iteration"),
    "min_sample_timesteps_per_reporting": Rename("min_sample_timesteps_per_iteration"),
    "min_train_timesteps_per_reporting": Rename("min_train_timesteps_per_iteration"),
    "collect_metrics_timeout": Rename("metrics_episode_collection_timeout_s"),
    "timesteps_per_iteration": Rename(
        "min_sample_timesteps_per_iteration",
        note="env steps sampled per iteration at least: a replay algorithm's sampling minimum"),
    # --- evaluation -----------------------------------------------------------------------
    "evaluation_num_workers": Rename("evaluation_num_env_runners"),
    "evaluation_num_episodes": Rename("evaluation_duration", also={"evaluation_duration_unit": "episodes"}),
    "always_attach_evaluation_results": Dropped("evaluation results are always attached now"),
    "enable_async_evaluation": Rename("evaluation_parallel_to_training"),
    "custom_async_evaluation_function": Gone("use custom_evaluation_function"),
    "input_evaluation": Gone("offline evaluation is off_policy_estimation_methods now"),
    # --- gone with the old execution / env APIs -------------------------------------------
    "enable_connectors": Dropped("connectors are always on in the new API stack"),
    "_disable_execution_plan_api": Dropped("the execution-plan API is gone; training_step() is always used"),
    "_enable_rl_module_api": Dropped("RLModules are on by default (the launcher picks the API stack)"),
    "_enable_learner_api": Dropped("Learners are on by default (the launcher picks the API stack)"),
    "_enable_new_api_stack": Dropped("the launcher picks the API stack from --framework"),
    "auto_wrap_old_gym_envs": Dropped("the launcher wraps old-gym envs itself"),
    "horizon": Launcher("max_episode_steps", note="a TimeLimit wrapper the launcher adds around the env",
                        value=_steps),
    "soft_horizon": Gone("episodes that go on across the horizon have no equivalent: an episode "
                         "ends where the env or the horizon truncates it", harmless=(False, None)),
    "no_done_at_end": Dropped("Gymnasium envs report a time limit as truncated, apart from "
                              "terminated, and RLlib bootstraps truncated episodes itself"),
    "vtrace_drop_last_ts": Dropped("IMPALA's v-trace no longer drops the last timestep"),
    "num_data_loader_buffers": Rename("num_multi_gpu_tower_stacks"),
    "max_sample_requests_in_flight_per_worker": Rename("max_requests_in_flight_per_env_runner"),
    "monitor": Gone(f"the gym Monitor wrapper is gone: {_RECORD}", harmless=(False, None)),
    "record_env": Gone(f"gone with the gym Monitor: {_RECORD}", harmless=(False, None)),
    "env_task_fn": Gone("task-settable envs: call set_task from a callback (on_train_result)"),
    "policy_map_cache": Dropped("policies are no longer cached on disk"),
    "use_state_preprocessor": Gone("preprocessors are env-to-module connectors on the new API stack",
                                   harmless=(False, None)),
    # --- Ray / Tune settings that never were RLlib keys ----------------------------------
    "_redis_password": Gone("Ray has no Redis password any more: launcher clusters use Ray token "
                            "authentication (RAY_AUTH_MODE=token), set up by launcher submit"),
    "redis_password": Gone("Ray has no Redis password any more: launcher clusters use Ray token "
                           "authentication (RAY_AUTH_MODE=token), set up by launcher submit"),
    "local_mode": Gone("Ray's local mode is gone: launcher train --local-mode runs on one core"),
    "num_cpus": Gone("a launcher setting: launcher train --num-cpus (CPUs for the whole run)"),
}

# Common tutorial-era keys that kept their name and meaning (listed for the README table;
# a test checks RLlib 2.60 still accepts each). They pass through untouched.
UNCHANGED = ("lr", "gamma", "rollout_fragment_length", "batch_mode", "clip_param", "kl_coeff",
             "entropy_coeff", "vf_loss_coeff", "vf_clip_param", "grad_clip", "explore",
             "evaluation_interval", "evaluation_duration", "evaluation_config", "log_level",
             "clip_rewards", "normalize_actions", "remote_worker_envs", "placement_strategy")

# Keys inside the old `model` dict -> keys of `model_config` (DefaultModelConfig) on the
# new API stack. On the old stack (--framework tf2) `model` is kept as it is.
_SAME = ("fcnet_hiddens", "fcnet_activation", "vf_share_layers", "free_log_std", "use_lstm",
         "max_seq_len", "lstm_cell_size", "lstm_use_prev_action", "lstm_use_prev_reward",
         "conv_filters", "conv_activation", "fcnet_bias_initializer", "conv_bias_initializer",
         "conv_kernel_initializer", "log_std_clip_param")
MODEL_KEYS: dict[str, Rename | Dropped | Gone] = {
    **{key: Rename(key) for key in _SAME},
    "post_fcnet_hiddens": Rename("head_fcnet_hiddens"),
    "post_fcnet_activation": Rename("head_fcnet_activation"),
    "fcnet_weights_initializer": Rename("fcnet_kernel_initializer"),
    "fcnet_weights_initializer_config": Rename("fcnet_kernel_initializer_kwargs"),
    "fcnet_bias_initializer_config": Rename("fcnet_bias_initializer_kwargs"),
    "conv_kernel_initializer_config": Rename("conv_kernel_initializer_kwargs"),
    "conv_bias_initializer_config": Rename("conv_bias_initializer_kwargs"),
    "custom_model": Gone(_NO_MODELV2),
    "custom_model_config": Gone(_NO_MODELV2),
    "custom_action_dist": Gone(_NO_MODELV2),
    "custom_preprocessor": Gone("preprocessors are env-to-module connectors on the new API stack"),
    "use_attention": Gone("attention nets are not on the new API stack; use use_lstm, or --framework tf2"),
    "lstm_use_prev_action_reward": Gone("split in two: lstm_use_prev_action and lstm_use_prev_reward"),
    "dim": Gone("Atari preprocessing is an env wrapper now: gymnasium.wrappers.AtariPreprocessing"),
    "grayscale": Gone("Atari preprocessing is an env wrapper now: gymnasium.wrappers.AtariPreprocessing"),
    "zero_mean": Gone("Atari preprocessing is an env wrapper now: gymnasium.wrappers.AtariPreprocessing"),
    "framestack": Gone("frame stacking is an env wrapper now: gymnasium.wrappers.FrameStackObservation"),
    "_use_default_native_models": Gone("native models are RLModules on the new API stack"),
    "_disable_preprocessor_api": Dropped("no preprocessor API on the new API stack"),
    "_disable_action_flattening": Dropped("no action flattening API on the new API stack"),
    "_time_major": Dropped("RLModules are always batch-major"),
}

# Tune stop metrics -> launcher stop criteria (TrainSettings.stop). `True`: an old name,
# which gets a notice; `False`: a current name, translated silently.
STOP_KEYS: dict[str, tuple[str, bool]] = {
    "training_iteration": ("iters", False),
    "timesteps_total": ("timesteps", True),
    "num_env_steps_sampled": ("timesteps", True),
    "num_env_steps_sampled_lifetime": ("timesteps", False),
    "env_runners/num_env_steps_sampled_lifetime": ("timesteps", False),
    "episode_reward_mean": ("reward", True),
    "sampler_results/episode_reward_mean": ("reward", True),
    "env_runners/episode_reward_mean": ("reward", True),
    "episode_return_mean": ("reward", False),
    "env_runners/episode_return_mean": ("reward", False),
    "time_total_s": ("time_s", False),
}


def table_rows() -> list[tuple[str, str]]:
    """(old key, what it becomes) for every entry, for the README's migration table."""
    rows = []
    for key, rule in LEGACY.items():
        rows.append((f"`{key}`", _describe(rule)))
    for key, rule in MODEL_KEYS.items():
        if isinstance(rule, Rename) and rule.new == key:
            continue
        rows.append((f"`model.{key}`", _describe(rule, prefix="model_config.")))
    rows.append((", ".join(f"`{key}`" for key in UNCHANGED), "unchanged"))
    rows.append(("any value written as `{grid_search: [a, b, ...]}`",
                 "kept as a grid: the run is a sweep, one trial per value"))
    rows.append(("`rollout_fragment_length` below `n_step`", "raised to `n_step`, with a notice"))
    rows.append(("env ids Gymnasium renamed (`Pendulum-v0`, `LunarLander-v2`, MuJoCo `-v2`/`-v3`)",
                 "the newest version of that env (`Pendulum-v1`, ...), with a notice"))
    rows.append(("`model.<other>` (fcnet_hiddens, fcnet_activation, vf_share_layers, use_lstm, ...)",
                 "`model_config.<same name>` (new API stack; kept as `model` with --framework tf2)"))
    flags = {"iters": "--stop-iters", "timesteps": "--stop-timesteps", "reward": "--stop-reward",
             "time_s": "--stop-time"}
    for key, (name, _old) in STOP_KEYS.items():
        rows.append((f"stop: `{key}`", f"stop `{name}` (`{flags[name]}`)"))
    return rows


def _describe(rule, prefix: str = "") -> str:
    if isinstance(rule, Launcher):
        flag = f" (`{rule.flag}`)" if rule.flag else ""
        stack = "; kept with --framework tf2" if rule.new_stack_only else ""
        return f"launcher setting `{rule.field}`{flag}" + (f": {rule.note}" if rule.note else "") + stack
    if isinstance(rule, Nested):
        old = f" (with --framework tf2: `{rule.old_stack}`)" if rule.old_stack else ""
        return f"translated key by key: {rule.new}{old}"
    if isinstance(rule, Rename):
        text = f"`{prefix}{rule.new}`"
        if rule.also:
            text += " + " + ", ".join(f"`{k}: {v}`" for k, v in rule.also.items())
        if rule.old_stack and rule.old_stack != rule.new:
            text += f" (with --framework tf2: `{rule.old_stack}`)"
        if rule.note:
            text += f"; {rule.note}"
        return text
    if isinstance(rule, Dropped):
        return f"dropped: {rule.why}"
    stack = " (new API stack; kept with --framework tf2)" if rule.new_stack_only else ""
    off = f" ({', '.join(map(str, rule.harmless))}: dropped)" if rule.harmless else ""
    return f"**error**{stack}: {rule.why}{off}"


def markdown_table() -> str:
    lines = ["| tutorial-era key | now |", "|---|---|"]
    lines += [f"| {old} | {new} |" for old, new in table_rows()]
    return "\n".join(lines)
