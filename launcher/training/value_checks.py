"""Ranges of the common RLlib keys, checked where a user's config enters (`--set`, an
experiment file) so that `lr=-1` or `gamma=2` is one line before anything starts,
not an error inside RLlib after Ray has started (or a run that silently learns nothing).

Values are checked after the legacy translation, so they carry current names. A number
written as YAML parses some forms as strings (`1e-3` is a string in YAML 1.1): for the
numeric keys below such a string is read as the number it spells. Keys inside
`model_config` are checked against RLlib 2.60's DefaultModelConfig fields (the list
below; tests/test_experiment.py compares it with RLlib's own).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from launcher.errors import UserError
from launcher.training.settings import closest


@dataclass(frozen=True)
class Range:
    """A number from `low` to `high`; `open_low`: strictly above low. `whole`: an integer.
    `schedule`: also a list of [timestep, value] pairs; `none`: None is allowed."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    whole: bool = False
    schedule: bool = False
    none: bool = False

    def describe(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        if self.low is not None and self.high is not None:
            left = "(" if self.open_low else "["
            return f"{kind} in {left}{self.low:g}, {self.high:g}]"
        if self.low is not None:
            return f"{kind} {'greater than' if self.open_low else 'at least'} {self.low:g}"
        return kind

    def holds(self, value: float) -> bool:
        if self.whole and value != int(value):
            return False
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or value <= self.high


POSITIVE = Range(0, open_low=True)
FRACTION = Range(0, 1)
COUNT = Range(1, whole=True)
RANGES: dict[str, Range] = {
    "lr": Range(0, open_low=True, schedule=True, none=True),
    "actor_lr": Range(0, open_low=True, schedule=True),
    "critic_lr": Range(0, open_low=True, schedule=True),
    "alpha_lr": Range(0, open_low=True, schedule=True),
    "gamma": Range(0, 1, open_low=True),
    "lambda_": FRACTION,
    "tau": FRACTION,
    "clip_param": POSITIVE,
    "vf_clip_param": POSITIVE,
    "grad_clip": Range(0, open_low=True, none=True),
    "entropy_coeff": Range(0, schedule=True),
    "vf_loss_coeff": Range(0),
    "kl_coeff": Range(0),
    "initial_alpha": POSITIVE,
    "epsilon": Range(0, 1, schedule=True),
    "train_batch_size_per_learner": COUNT,
    "train_batch_size": COUNT,
    "minibatch_size": COUNT,
    "num_epochs": COUNT,
    "num_envs_per_env_runner": COUNT,
    "num_env_runners": Range(0, whole=True),
    "target_network_update_freq": Range(0, whole=True),
    "num_steps_sampled_before_learning_starts": Range(0, whole=True),
}

# RLlib 2.60: ray.rllib.core.rl_module.default_model_config.DefaultModelConfig's fields.
MODEL_CONFIG_FIELDS = (
    "conv_activation", "conv_bias_initializer", "conv_bias_initializer_kwargs", "conv_filters",
    "conv_kernel_initializer", "conv_kernel_initializer_kwargs", "fcnet_activation",
    "fcnet_bias_initializer", "fcnet_bias_initializer_kwargs", "fcnet_hiddens",
    "fcnet_kernel_initializer", "fcnet_kernel_initializer_kwargs", "fcnet_use_layernorm",
    "free_log_std", "fusionnet_activation", "fusionnet_bias_initializer",
    "fusionnet_bias_initializer_kwargs", "fusionnet_hiddens", "fusionnet_kernel_initializer",
    "fusionnet_kernel_initializer_kwargs", "head_fcnet_activation", "head_fcnet_bias_initializer",
    "head_fcnet_bias_initializer_kwargs", "head_fcnet_hiddens", "head_fcnet_kernel_initializer",
    "head_fcnet_kernel_initializer_kwargs", "head_fcnet_use_layernorm", "log_std_clip_param",
    "lstm_bias_initializer", "lstm_bias_initializer_kwargs", "lstm_cell_size",
    "lstm_kernel_initializer", "lstm_kernel_initializer_kwargs", "lstm_use_prev_action",
    "lstm_use_prev_reward", "max_seq_len", "use_lstm", "vf_share_layers",
)
LAYER_LISTS = ("fcnet_hiddens", "head_fcnet_hiddens", "fusionnet_hiddens")


def _number(value: Any) -> float | None:
    """A real number, or a string that spells one (YAML 1.1's `1e-3`); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _checked(key: str, value: Any, rule: Range, where: str) -> Any:
    """The value (a spelled number read as one), or a UserError saying what it must be."""
    def refuse(what: str = "") -> UserError:
        return UserError(f"{key}={value!r} in {where}: {key} must be {what or rule.describe()}")

    if value is None and rule.none:
        return None
    if rule.schedule and isinstance(value, list):
        return [_schedule_point(point, rule, refuse) for point in value]
    number = _number(value)
    if number is None or not math.isfinite(number) or not rule.holds(number):
        raise refuse()
    return int(number) if rule.whole else number


def _schedule_point(point: Any, rule: Range, refuse: Callable[[str], UserError]) -> list:
    """One [timestep, value] pair of a schedule; a schedule may end at 0 (a decay to zero)."""
    what = f"{rule.describe()}, or a schedule [[timestep, value], ...]"
    if not isinstance(point, (list, tuple)) or len(point) != 2:
        raise refuse(what)
    step, number = _number(point[0]), _number(point[1])
    low = Range(rule.low, rule.high) if rule.open_low else rule
    if step is None or step < 0 or number is None or not math.isfinite(number) or not low.holds(number):
        raise refuse(what)
    return [int(step), number]


def per_value(value: Any, check_one: Callable[[Any], Any]) -> Any:
    """`check_one(value)`; Tune's `{grid_search: [...]}` (a sweep) checked value by value
    and kept a grid."""
    if isinstance(value, dict) and list(value) == ["grid_search"] and isinstance(value["grid_search"], list):
        return {"grid_search": [check_one(v) for v in value["grid_search"]]}
    return check_one(value)


def check_model_config(model: Any, where: str) -> None:
    if isinstance(model, dict) and list(model) == ["grid_search"]:
        per_value(model, lambda one: check_model_config(one, where))
        return
    if not isinstance(model, dict):
        raise UserError(f"model_config in {where} must be a mapping, got {model!r}")
    for key, value in model.items():
        if key not in MODEL_CONFIG_FIELDS:
            raise UserError(f"unknown key {key!r} in model_config in {where}"
                            f"{closest(str(key), MODEL_CONFIG_FIELDS)}")
        if key in LAYER_LISTS:
            per_value(value, lambda one, key=key: _layer_list(key, one, where))


def _layer_list(key: str, value: Any, where: str) -> None:
    if not (isinstance(value, list)
            and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in value)):
        raise UserError(f"model_config.{key}={value!r} in {where}: "
                        "must be a list of layer sizes, e.g. [256, 256]")


def check(config: dict[str, Any], where: str) -> dict[str, Any]:
    """The config with its common keys checked (see the module docstring); a copy."""
    out = dict(config)
    for key, rule in RANGES.items():
        if key in out:
            out[key] = per_value(out[key], lambda one, key=key, rule=rule: _checked(key, one, rule, where))
    fragment = out.get("rollout_fragment_length")
    if fragment is not None:
        out["rollout_fragment_length"] = per_value(fragment, lambda one: one if one == "auto" else _checked(
            "rollout_fragment_length", one, COUNT, where))
    if "n_step" in out:
        out["n_step"] = per_value(out["n_step"], lambda one: one if isinstance(one, (list, tuple))
                                  else _checked("n_step", one, COUNT, where))
    if "model_config" in out:
        check_model_config(out["model_config"], where)
    return out
