"""Old RLlib keys whose value is a mapping, translated key by key.

SAC's `Q_model` / `policy_model` (Ray 1.x; `q_model_config` / `policy_model_config`
later) were ModelV2 dicts; on the new API stack SAC's policy and Q networks share one
`model_config`. SAC's `optimization` held the three learning rates that are
`actor_lr`, `critic_lr` and `alpha_lr` now. DQN's `exploration_config` of type
EpsilonGreedy is the `epsilon` schedule now. The old replay buffer types
(`MultiAgentPrioritizedReplayBuffer`, ...) are episode buffers on the new stack.
On the old API stack (--framework tf2) each mapping keeps its form, under its
current name. Each function takes the translator (legacy._Translator: `put`,
`out.notices`, `where`, `stack`), the key and its value.
"""

from __future__ import annotations

from typing import Any

from launcher.errors import UserError
from launcher.training.legacy_keys import MODEL_KEYS, OLD_STACK, Dropped, Gone, Nested, Rename
from launcher.training.settings import closest

_SAC_MODEL_KEYS = {"hidden_layer_sizes": "fcnet_hiddens", "hidden_activation": "fcnet_activation"}
_SAC_LEARNING_RATES = {"actor_learning_rate": "actor_lr", "critic_learning_rate": "critic_lr",
                       "entropy_learning_rate": "alpha_lr"}
_SHARED = ("on the new API stack SAC's policy and Q networks share one model_config; give both the "
           "same, or keep the old API stack with --framework tf2")
# Ray 1.x EpsilonGreedy defaults, for the keys a file leaves out.
_EPSILON = {"initial_epsilon": 1.0, "final_epsilon": 0.02, "epsilon_timesteps": 10000,
            "warmup_timesteps": 0}
_OTHER_EXPLORATION = ("exploration other than epsilon-greedy is written into an RLModule's "
                      "_forward_exploration on the new API stack (a custom RLModule), or keep the old "
                      "API stack with --framework tf2")
_BUFFER_TYPES = {
    "ReplayBuffer": "EpisodeReplayBuffer", "MultiAgentReplayBuffer": "EpisodeReplayBuffer",
    "EpisodeReplayBuffer": "EpisodeReplayBuffer",
    "PrioritizedReplayBuffer": "PrioritizedEpisodeReplayBuffer",
    "MultiAgentPrioritizedReplayBuffer": "PrioritizedEpisodeReplayBuffer",
    "PrioritizedEpisodeReplayBuffer": "PrioritizedEpisodeReplayBuffer",
    "MultiAgentEpisodeReplayBuffer": "MultiAgentEpisodeReplayBuffer",
    "MultiAgentPrioritizedEpisodeReplayBuffer": "MultiAgentPrioritizedEpisodeReplayBuffer",
}
_BUFFER_KEYS = {"capacity": "capacity", "alpha": "alpha", "beta": "beta",
                "prioritized_replay_alpha": "alpha", "prioritized_replay_beta": "beta"}
_BUFFER_DROPPED = {
    "prioritized_replay_eps": "the new prioritized buffers have no epsilon",
    "storage_unit": "episode buffers store timesteps of whole episodes",
    "replay_mode": "one policy per buffer",
    "no_local_replay_buffer": "the buffer lives in the algorithm",
    "worker_side_prioritization": "env runners no longer compute priorities",
    "replay_batch_size": "the replay batch is train_batch_size_per_learner",
}
_LEARNING_STARTS = ("min_size_for_sampling", "learning_starts")


def translate_nested(translator, key: str, value: Any, rule: Nested) -> None:
    """Translate the mapping `value` of `key` by its rule's handler."""
    if translator.stack == OLD_STACK:
        target = rule.old_stack or key
        translator.put(target, value, key)
        if target != key:
            translator.out.notices.append(f"{key} → {target}")
        return
    if value in (None, {}):
        translator.out.notices.append(f"{key}: {value} → (dropped: changes nothing)")
        return
    if not isinstance(value, dict):
        raise UserError(f"{key} in {translator.where} must be a mapping, got {value!r}")
    HANDLERS[rule.handler](translator, key, value)


def _sac_model(translator, key: str, model: dict) -> None:
    """Q_model / policy_model -> model_config; refused where the two differ."""
    config = translator.out.config.setdefault("model_config", {})
    for inner, value in model.items():
        inner = str(inner)
        new = _SAC_MODEL_KEYS.get(inner)
        rule = MODEL_KEYS.get(inner)
        if new is None and isinstance(rule, Rename):
            new = rule.new
        if new is None and isinstance(rule, Dropped):
            translator.out.notices.append(f"{key}.{inner} → (dropped: {rule.why})")
            continue
        if new is None and isinstance(rule, Gone):
            if value in (None, False, {}, ""):
                continue
            raise UserError(f"'{key}.{inner}' in {translator.where} has no equivalent any more: {rule.why}")
        if new is None:
            raise UserError(f"unknown key {inner!r} in {key} in {translator.where}"
                            f"{closest(inner, [*MODEL_KEYS, *_SAC_MODEL_KEYS])}")
        if new in config:
            if config[new] != value:
                raise UserError(f"{translator.where} gives SAC's networks different {new} "
                                f"({config[new]!r} and {value!r} in {key}): {_SHARED}")
            continue
        config[new] = value
        translator.out.notices.append(f"{key}.{inner} → model_config.{new}")


def _sac_optimization(translator, key: str, optimization: dict) -> None:
    """SAC's optimization: {actor_learning_rate, ...} -> actor_lr, critic_lr, alpha_lr."""
    for inner, value in optimization.items():
        new = _SAC_LEARNING_RATES.get(str(inner))
        if new is None:
            raise UserError(f"unknown key {inner!r} in {key} in {translator.where}"
                            f"{closest(str(inner), _SAC_LEARNING_RATES)}")
        translator.put(new, value, f"{key}.{inner}")
        translator.out.notices.append(f"{key}.{inner} → {new}")


def _exploration(translator, key: str, exploration: dict) -> None:
    """EpsilonGreedy -> DQN's `epsilon` schedule; StochasticSampling (the default) dropped."""
    kind = str(exploration.get("type", "EpsilonGreedy")).rpartition(".")[2]
    params = {k: v for k, v in exploration.items() if k != "type"}
    if kind == "StochasticSampling" and not params:
        translator.out.notices.append(f"{key} → (dropped: sampling from the action distribution "
                                      "is what the RLModule does when exploring)")
        return
    if kind != "EpsilonGreedy":
        raise UserError(f"{key} of type {kind!r} in {translator.where}: {_OTHER_EXPLORATION}")
    unknown = sorted(set(params) - set(_EPSILON))
    if unknown:
        raise UserError(f"unknown key {unknown[0]!r} in {key} in {translator.where}"
                        f"{closest(unknown[0], _EPSILON)}")
    p = {**_EPSILON, **params}
    start, warmup = p["initial_epsilon"], p["warmup_timesteps"]
    schedule = [[0, start]] + ([[warmup, start]] if warmup else [])
    schedule.append([warmup + p["epsilon_timesteps"], p["final_epsilon"]])
    translator.put("epsilon", schedule, key)
    translator.out.notices.append(f"{key} (EpsilonGreedy) → epsilon: {schedule}")


def _replay_buffer(translator, key: str, buffer: dict) -> None:
    """The old buffer types and their keys -> the episode buffers of the new API stack."""
    out: dict[str, Any] = {}
    notices = translator.out.notices
    for inner, value in buffer.items():
        inner = str(inner)
        if inner == "type":
            name = str(value).rpartition(".")[2]
            if name not in _BUFFER_TYPES:
                raise UserError(f"replay buffer type {value!r} in {translator.where}: the new API "
                                f"stack takes {', '.join(sorted(set(_BUFFER_TYPES.values())))}")
            out["type"] = _BUFFER_TYPES[name]
            if out["type"] != value:
                notices.append(f"{key}.type: {value} → {out['type']}")
        elif inner in _BUFFER_KEYS:
            out[_BUFFER_KEYS[inner]] = value
            if _BUFFER_KEYS[inner] != inner:
                notices.append(f"{key}.{inner} → {key}.{_BUFFER_KEYS[inner]}")
        elif inner in _LEARNING_STARTS:
            translator.put("num_steps_sampled_before_learning_starts", value, f"{key}.{inner}")
            notices.append(f"{key}.{inner} → num_steps_sampled_before_learning_starts")
        elif inner in _BUFFER_DROPPED:
            notices.append(f"{key}.{inner} → (dropped: {_BUFFER_DROPPED[inner]})")
        else:
            valid = [*_BUFFER_KEYS, *_LEARNING_STARTS, "type"]
            raise UserError(f"unknown key {inner!r} in {key} in {translator.where}{closest(inner, valid)}")
    translator.put(key, out, key)


HANDLERS = {"sac_model": _sac_model, "sac_optimization": _sac_optimization,
            "exploration": _exploration, "replay_buffer": _replay_buffer}
