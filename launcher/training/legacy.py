"""Tutorial-era RLlib config keys -> what Ray 2.60 and the launcher call them now.

Configs written for `tune.run("PPO", config={...})` in Ray 1.x / early 2.x use
keys that current RLlib refuses (`ignore_worker_failures` raises), ignores
silently on the new API stack (`model`, `observation_filter`, `lr_schedule`) or
that now belong to the launcher (`env`, `framework`, `num_gpus`, `seed`).

`LEGACY` is the whole translation, one entry per old key:
  Rename(new)        the key has a new name; one notice line "old → new" on stderr.
                     `old_stack` is the name on RLlib's old API stack (--framework tf2)
                     when it differs there; "a.b" targets a key inside the mapping `a`.
  Launcher(field)    the key is a launcher setting (a TrainSettings field / CLI flag).
  Dropped(why)       the key has no effect any more; dropped with a notice.
  Gone(why)          no equivalent: refused with one line saying what replaced it.
`MODEL_KEYS` does the same for the keys inside the old `model` dict, `STOP_KEYS`
for Tune's stop metrics. Any key not listed here is passed on unchanged; the
launcher later checks it against the real AlgorithmConfig setters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from launcher.errors import UserError
from launcher.training.settings import Stop, closest

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
    flag: str = ""  # the CLI flag that sets it, for messages
    note: str = ""
    value: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class Dropped:
    why: str


@dataclass(frozen=True)
class Gone:
    why: str
    new_stack_only: bool = False  # still valid on the old API stack (--framework tf2)
    harmless: tuple = ()  # values that mean "off": dropped silently instead of refused


def _framework(value: Any) -> Any:
    """RLlib's old framework names -> the launcher's (torch, tf2)."""
    return {"tf": "tf2", "tfe": "tf2", "tf1": "tf2", "pytorch": "torch"}.get(value, value)


def _replay_type(value: Any) -> str:
    return "PrioritizedEpisodeReplayBuffer" if value else "EpisodeReplayBuffer"


_DRIVER_CPUS = ("the launcher gives the trainer process 1 CPU and fits env runners to the rest; "
                "set the total with --num-cpus")
_NO_MODELV2 = ("custom ModelV2 models are gone from the new API stack: write an RLModule "
               "(rl_module_spec), or keep the old stack with --framework tf2")
_RECORD = "record videos inside your env with gymnasium.wrappers.RecordVideo"

# One entry per old key. Keep sorted by theme; tests/test_legacy.py covers every entry.
LEGACY: dict[str, Rename | Launcher | Dropped | Gone] = {
    # --- what the launcher itself decides -------------------------------------------------
    "env": Launcher("env", "--env"),
    "env_config": Launcher("env_config", "--env-config"),
    "framework": Launcher("framework", "--framework", value=_framework),
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
    "observation_filter": Gone(
        "on the new API stack observation filters are env-to-module connectors "
        "(ray.rllib.connectors.env_to_module.MeanStdFilter), which a YAML file cannot set; "
        "remove it, or keep the old stack with --framework tf2",
        new_stack_only=True, harmless=("NoFilter", None)),
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
    "simple_optimizer": Gone("the Learner API does the SGD now; tune minibatch_size and num_epochs"),
    "use_critic": Gone("APPO always uses a value function (critic) now"),
    "num_aggregation_workers": Rename("num_aggregator_actors_per_learner"),
    "max_requests_in_flight_per_sampler_worker": Rename("max_requests_in_flight_per_env_runner"),
    "max_requests_in_flight_per_aggregator_worker": Rename("max_requests_in_flight_per_aggregator_actor"),
    "model_config_dict": Rename("model_config"),
    "exploration_config": Gone(
        "on the new API stack exploration is part of the RLModule; for DQN set "
        "epsilon: [[0, 1.0], [10000, 0.02]] instead", new_stack_only=True),
    # --- DQN replay buffer (moved into replay_buffer_config) -----------------------------
    "buffer_size": Rename("replay_buffer_config.capacity"),
    "prioritized_replay": Rename("replay_buffer_config.type", value=_replay_type),
    "prioritized_replay_alpha": Rename("replay_buffer_config.alpha"),
    "prioritized_replay_beta": Rename("replay_buffer_config.beta"),
    "learning_starts": Rename("num_steps_sampled_before_learning_starts"),
    "prioritized_replay_eps": Gone("the new replay buffers have no epsilon; drop it"),
    "replay_batch_size": Gone("the replay batch is train_batch_size_per_learner now"),
    "worker_side_prioritization": Gone("env runners no longer compute priorities"),
    "replay_mode": Gone("replay_mode moved into replay_buffer_config (replay_mode: independent)"),
    # --- reporting ------------------------------------------------------------------------
    "metrics_smoothing_episodes": Rename("metrics_num_episodes_for_smoothing"),
    "min_iter_time_s": Rename("min_time_s_per_iteration"),
    "min_time_s_per_reporting": Rename("min_time_s_per_iteration"),
    "min_sample_timesteps_per_reporting": Rename("min_sample_timesteps_per_iteration"),
    "min_train_timesteps_per_reporting": Rename("min_train_timesteps_per_iteration"),
    "collect_metrics_timeout": Rename("metrics_episode_collection_timeout_s"),
    "timesteps_per_iteration": Gone(
        "split in two: min_sample_timesteps_per_iteration or min_train_timesteps_per_iteration"),
    # --- evaluation -----------------------------------------------------------------------
    "evaluation_num_workers": Rename("evaluation_num_env_runners"),
    "evaluation_num_episodes": Rename("evaluation_duration", also={"evaluation_duration_unit": "episodes"}),
    "always_attach_evaluation_results": Dropped("evaluation results are always attached now"),
    "enable_async_evaluation": Gone("use evaluation_parallel_to_training: true"),
    "custom_async_evaluation_function": Gone("use custom_evaluation_function"),
    "input_evaluation": Gone("offline evaluation is off_policy_estimation_methods now"),
    # --- gone with the old execution / env APIs -------------------------------------------
    "enable_connectors": Dropped("connectors are always on in the new API stack"),
    "_disable_execution_plan_api": Dropped("the execution-plan API is gone; training_step() is always used"),
    "_enable_rl_module_api": Dropped("RLModules are on by default (the launcher picks the API stack)"),
    "_enable_learner_api": Dropped("Learners are on by default (the launcher picks the API stack)"),
    "_enable_new_api_stack": Dropped("the launcher picks the API stack from --framework"),
    "auto_wrap_old_gym_envs": Dropped("the launcher wraps old-gym envs itself"),
    "horizon": Gone("episodes end when the env truncates: register the env with max_episode_steps "
                    "or wrap it in gymnasium.wrappers.TimeLimit"),
    "soft_horizon": Gone("episodes end when the env truncates; RLlib no longer cuts them"),
    "no_done_at_end": Gone("Gymnasium envs report truncated separately from terminated now"),
    "monitor": Gone(f"the gym Monitor wrapper is gone: {_RECORD}"),
    "record_env": Gone(f"gone with the gym Monitor: {_RECORD}"),
    "env_task_fn": Gone("task-settable envs: call set_task from a callback (on_train_result)"),
    "policy_map_cache": Gone("policies are no longer cached on disk"),
    "use_state_preprocessor": Gone("preprocessors are env-to-module connectors on the new API stack"),
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


@dataclass
class Translation:
    config: dict[str, Any] = field(default_factory=dict)  # current RLlib keys
    settings: dict[str, Any] = field(default_factory=dict)  # launcher TrainSettings fields
    notices: list[str] = field(default_factory=list)  # "old → new" lines for stderr


def stack_for(framework: Any) -> str:
    """tf2 (and the old TF names) run on RLlib's old API stack, torch on the new one."""
    return OLD_STACK if _framework(framework) == "tf2" else NEW_STACK


def translate(config: dict[str, Any], where: str, stack: str = NEW_STACK,
              nested: bool = False) -> Translation:
    """Translate one RLlib config dict. `nested`: an override dict such as
    evaluation_config, where launcher-owned keys (env_config ...) stay RLlib keys."""
    if not isinstance(config, dict):
        raise UserError(f"the RLlib config in {where} must be a mapping, got {type(config).__name__}")
    out = Translation()
    origin: dict[str, str] = {}  # target key -> the key the user wrote for it

    def put(target: str, value: Any, source: str) -> None:
        head, _, sub = target.partition(".")
        if sub:
            current = out.config.setdefault(head, {})
            if not isinstance(current, dict):
                raise UserError(f"{head} in {where} must be a mapping")
            current[sub] = value
            return
        current = out.config.get(target)
        if isinstance(value, dict) and isinstance(current, dict):
            value = {**current, **value}  # e.g. model_config from `model` and `vf_share_layers`
        elif target in out.config and origin.get(target, target) != source and current != value:
            raise UserError(f"{where} sets {target} twice with different values: "
                            f"as {origin.get(target, target)!r} and as {source!r}; keep one")
        out.config[target] = value
        origin[target] = source

    for key, value in config.items():
        key = str(key)
        rule = LEGACY.get(key)
        if key == "model" and isinstance(value, dict):
            _translate_model(value, where, stack, out, put)
        elif key == "evaluation_config" and isinstance(value, dict):
            inner = translate(value, f"{where}: evaluation_config", stack, nested=True)
            out.notices += [f"evaluation_config.{line}" for line in inner.notices]
            put(key, inner.config, key)
        elif rule is None:
            put(key, value, key)
        elif isinstance(rule, Launcher):
            if nested:
                put(key, value, key)
                continue
            new_value = rule.value(value) if rule.value else value
            out.settings[rule.field] = new_value
            if new_value != value:
                out.notices.append(f"{key}: {value} → {new_value}")
            elif rule.note:
                out.notices.append(f"{key} → {rule.flag} ({rule.note})")
        elif isinstance(rule, Rename):
            target = rule.old_stack if stack == OLD_STACK and rule.old_stack else rule.new
            new_value = rule.value(value) if rule.value else value
            put(target, new_value, key)
            for extra_key, extra_value in rule.also.items():
                put(extra_key, extra_value, key)
            if target != key:
                extra = "".join(f", {k}: {v}" for k, v in rule.also.items())
                note = f" ({rule.note})" if rule.note and stack == NEW_STACK else ""
                out.notices.append(f"{key} → {target}{extra}{note}")
        elif isinstance(rule, Dropped):
            out.notices.append(f"{key} → (dropped: {rule.why})")
        elif isinstance(rule, Gone):
            if rule.new_stack_only and stack == OLD_STACK:
                put(key, value, key)
            elif value in rule.harmless:
                continue
            else:
                raise UserError(f"{key!r} in {where} has no equivalent any more: {rule.why}")
    return out


def _translate_model(model: dict, where: str, stack: str, out: Translation, put) -> None:
    """The old `model` dict: kept on the old stack, model_config on the new one."""
    if stack == OLD_STACK:
        put("model", dict(model), "model")
        return
    for key, value in model.items():
        key = str(key)
        rule = MODEL_KEYS.get(key)
        if rule is None:
            raise UserError(f"unknown key {key!r} in model in {where}{closest(key, MODEL_KEYS)}")
        if isinstance(rule, Rename):
            put(f"model_config.{rule.new}", value, f"model.{key}")
            out.notices.append(f"model.{key} → model_config.{rule.new}")
        elif isinstance(rule, Dropped):
            out.notices.append(f"model.{key} → (dropped: {rule.why})")
        else:
            if value in (None, False, {}, ""):
                continue  # an "off" value of a gone feature changes nothing
            raise UserError(f"'model.{key}' in {where} has no equivalent any more: {rule.why}")


def translate_stop(stop: Any, where: str) -> tuple[dict[str, Any], list[str]]:
    """Tune stop criteria {metric: value} -> launcher stop criteria {iters, ...}."""
    if stop is None:
        return {}, []
    if not isinstance(stop, dict):
        raise UserError(f"'stop' in {where} must be a mapping of metric: value")
    out: dict[str, Any] = {}
    notices = []
    launcher_fields = {f.name for f in fields(Stop)}
    for key, value in stop.items():
        key = str(key)
        if key in launcher_fields:
            name = key
        elif key in STOP_KEYS:
            name, old = STOP_KEYS[key]
            if old:
                notices.append(f"stop: {key} → stop.{name}")
        elif key.startswith("evaluation/"):
            raise UserError(f"stop criterion {key!r} in {where}: the launcher stops on the training "
                            "return, not on evaluation results; use episode_return_mean")
        else:
            valid = sorted(STOP_KEYS) + sorted(launcher_fields)
            raise UserError(f"unknown stop criterion {key!r} in {where}{closest(key, valid)}; "
                            f"valid: {', '.join(sorted(STOP_KEYS))}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"stop criterion {key!r} in {where} must be a number, got {value!r}")
        if name in out and out[name] != value:
            raise UserError(f"{where} gives two different stop values for {name}")
        out[name] = int(value) if name in ("iters", "timesteps") else float(value)
    return out, notices


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
    rows.append(("`model.<other>` (fcnet_hiddens, fcnet_activation, vf_share_layers, use_lstm, ...)",
                 "`model_config.<same name>` (new API stack; kept as `model` with --framework tf2)"))
    flags = {"iters": "--stop-iters", "timesteps": "--stop-timesteps", "reward": "--stop-reward",
             "time_s": "--stop-time"}
    for key, (name, _old) in STOP_KEYS.items():
        rows.append((f"stop: `{key}`", f"stop `{name}` (`{flags[name]}`)"))
    return rows


def _describe(rule, prefix: str = "") -> str:
    if isinstance(rule, Launcher):
        return f"launcher setting `{rule.field}` (`{rule.flag}`)" + (f": {rule.note}" if rule.note else "")
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
    return f"**error**{stack}: {rule.why}"


def markdown_table() -> str:
    lines = ["| tutorial-era key | now |", "|---|---|"]
    lines += [f"| {old} | {new} |" for old, new in table_rows()]
    return "\n".join(lines)
