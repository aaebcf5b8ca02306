"""Tutorial-era RLlib config keys -> what Ray 2.60 and the launcher call them now.

Configs written for `tune.run("PPO", config={...})` in Ray 1.x / early 2.x use
keys that current RLlib refuses (`ignore_worker_failures` raises), ignores
silently on the new API stack (`model`, `observation_filter`, `lr_schedule`) or
that now belong to the launcher (`env`, `framework`, `num_gpus`, `seed`).

`LEGACY` (launcher/training/legacy_keys.py) is the whole translation, one entry per
old key, with `MODEL_KEYS` for the keys inside the old `model` dict and `STOP_KEYS`
for Tune's stop metrics; mappings translated key by key (SAC's networks, DQN's
exploration and replay buffer) are in legacy_nested.py. Any key not listed there is
passed on unchanged; the launcher later checks it against the real AlgorithmConfig
setters. A Tune `grid_search` value stays a grid, each of its values translated by
the key's rule: training/sweep.py expands it into a sweep of trials.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from launcher.errors import UserError
from launcher.training.legacy_keys import (  # noqa: F401 - the table's names, used from here
    LEGACY,
    MODEL_KEYS,
    NEW_STACK,
    OLD_STACK,
    STOP_KEYS,
    UNCHANGED,
    Dropped,
    Gone,
    Launcher,
    Nested,
    Rename,
    framework_name,
    markdown_table,
)
from launcher.training.legacy_nested import translate_nested
from launcher.training.settings import Stop, closest


@dataclass
class Translation:
    config: dict[str, Any] = field(default_factory=dict)  # current RLlib keys
    settings: dict[str, Any] = field(default_factory=dict)  # launcher TrainSettings fields
    notices: list[str] = field(default_factory=list)  # "old → new" lines for stderr


def stack_for(framework: Any) -> str:
    """tf2 (and the old TF names) run on RLlib's old API stack, torch on the new one."""
    return OLD_STACK if framework_name(framework) == "tf2" else NEW_STACK


GRID_SEARCH = "grid_search"


def grid_values(value: Any, key: str) -> list | None:
    """The values of Tune's `{grid_search: [a, b, ...]}`; None for any other value."""
    if not (isinstance(value, dict) and list(value) == [GRID_SEARCH]):
        return None
    values = value[GRID_SEARCH]
    if not isinstance(values, list) or not values:
        raise UserError(f"grid_search of {key} must list at least one value, got {values!r}")
    return values


def first_of_grid(value: Any, key: str, notices: list[str]) -> Any:
    """Tune's `{grid_search: [a, b, ...]}` -> a, with a notice naming the others (for what
    one command has one of: the framework, which picks the API stack)."""
    values = grid_values(value, key)
    if values is None:
        return value
    if len(values) > 1:
        rest = ", ".join(map(str, values[1:]))
        notices.append(f"{key}: grid_search → {values[0]} (the launcher runs one trial per command: "
                       f"start one run for each of {rest})")
    return values[0]


def translate(config: dict[str, Any], where: str, stack: str = NEW_STACK,
              nested: bool = False) -> Translation:
    """Translate one RLlib config dict. `nested`: an override dict such as
    evaluation_config, where launcher-owned keys (env_config ...) stay RLlib keys."""
    if not isinstance(config, dict):
        raise UserError(f"the RLlib config in {where} must be a mapping, got {type(config).__name__}")
    translator = _Translator(where, stack, nested)
    for key, value in config.items():
        translator.take(str(key), value)
    _fit_fragment_to_n_step(translator.out)
    return translator.out


def _fit_fragment_to_n_step(out: Translation) -> None:
    """Ray 1.x let SAC/DQN sample fragments shorter than n_step (`rollout_fragment_length: 1,
    n_step: 3`); RLlib 2.60 needs at least n_step steps per fragment."""
    fragment, n_step = out.config.get("rollout_fragment_length"), out.config.get("n_step")
    steps = max(n_step) if isinstance(n_step, (list, tuple)) and n_step else n_step
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (fragment, steps))
    if ints and fragment < steps:
        out.config["rollout_fragment_length"] = steps
        out.notices.append(f"rollout_fragment_length: {fragment} → {steps} "
                           f"(RLlib samples at least n_step={steps} steps per fragment now)")


class _Translator:
    """One config dict's translation: each key by the rule LEGACY has for it."""

    def __init__(self, where: str, stack: str, nested: bool):
        self.where, self.stack, self.nested = where, stack, nested
        self.out = Translation()
        self.origin: dict[str, str] = {}  # target key -> the key the user wrote for it

    def put(self, target: str, value: Any, source: str) -> None:
        config, where = self.out.config, self.where
        head, _, sub = target.partition(".")
        if sub:
            current = config.setdefault(head, {})
            if not isinstance(current, dict):
                raise UserError(f"{head} in {where} must be a mapping")
            current[sub] = value
            return
        current = config.get(target)
        if isinstance(value, dict) and isinstance(current, dict):
            value = {**current, **value}  # e.g. model_config from `model` and `vf_share_layers`
        elif target in config and self.origin.get(target, target) != source and current != value:
            raise UserError(f"{where} sets {target} twice with different values: "
                            f"as {self.origin.get(target, target)!r} and as {source!r}; keep one")
        config[target] = value
        self.origin[target] = source

    def take(self, key: str, value: Any) -> None:
        rule = LEGACY.get(key)
        grid = grid_values(value, key)
        if grid is not None and len(grid) > 1:
            self.take_grid(key, grid)
            return
        value = grid[0] if grid else value
        if key == "model" and isinstance(value, dict):
            _translate_model(value, self.where, self.stack, self.out, self.put)
        elif key == "evaluation_config" and isinstance(value, dict):
            inner = translate(value, f"{self.where}: evaluation_config", self.stack, nested=True)
            self.out.notices += [f"evaluation_config.{line}" for line in inner.notices]
            self.put(key, inner.config, key)
        elif rule is None or self.stays_rllib_key(rule):
            self.put(key, value, key)
        elif isinstance(rule, Launcher):
            self.launcher_setting(key, value, rule)
        elif isinstance(rule, Rename):
            self.rename(key, value, rule)
        elif isinstance(rule, Nested):
            translate_nested(self, key, value, rule)
        elif isinstance(rule, Dropped):
            self.out.notices.append(f"{key} → (dropped: {rule.why})")
        elif rule.new_stack_only and self.stack == OLD_STACK:
            self.put(key, value, key)
        elif value in rule.harmless:
            self.out.notices.append(f"{key}: {value} → (dropped: changes nothing)")
        else:
            raise UserError(f"{key!r} in {self.where} has no equivalent any more: {rule.why}")

    def take_grid(self, key: str, values: list) -> None:
        """A grid: each value translated by the key's rule, kept as a grid under the key
        (or launcher setting) it translates to."""
        parts = [translate({key: v}, self.where, self.stack, self.nested) for v in values]
        self.out.notices += parts[0].notices
        for target in parts[0].config:
            self.put(target, {GRID_SEARCH: [p.config.get(target) for p in parts]}, key)
        for name in parts[0].settings:
            self.out.settings[name] = {GRID_SEARCH: [p.settings.get(name) for p in parts]}

    def stays_rllib_key(self, rule) -> bool:
        """A launcher setting that is an RLlib key here: in an override dict such as
        evaluation_config, or on the old API stack where RLlib still takes it."""
        return isinstance(rule, Launcher) and (
            self.nested or (rule.new_stack_only and self.stack == OLD_STACK))

    def launcher_setting(self, key: str, value: Any, rule: Launcher) -> None:
        try:
            new_value = rule.value(value) if rule.value else value
        except ValueError as exc:
            raise UserError(f"{key}: {value!r} in {self.where}: {exc}") from None
        if new_value is None and value is not None:
            self.out.notices.append(f"{key}: {value} → (dropped: the default)")
            return
        self.out.settings[rule.field] = new_value
        if new_value != value:
            self.out.notices.append(f"{key}: {value} → {new_value}")
        elif rule.note and (rule.flag or rule.field) != key:
            self.out.notices.append(f"{key} → {rule.flag or rule.field} ({rule.note})")
        elif rule.note:
            self.out.notices.append(f"{key}: {value} → {rule.note}")

    def rename(self, key: str, value: Any, rule: Rename) -> None:
        target = rule.old_stack if self.stack == OLD_STACK and rule.old_stack else rule.new
        self.put(target, rule.value(value) if rule.value else value, key)
        for extra_key, extra_value in rule.also.items():
            self.put(extra_key, extra_value, key)
        if target != key:
            extra = "".join(f", {k}: {v}" for k, v in rule.also.items())
            note = f" ({rule.note})" if rule.note and self.stack == NEW_STACK else ""
            self.out.notices.append(f"{key} → {target}{extra}{note}")


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
        if name == "policy":  # which policy's return `reward` is for (a multi-agent run)
            if not isinstance(value, str):
                raise UserError(f"stop: policy in {where} must name a policy, got {value!r}")
            out[name] = value
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"stop criterion {key!r} in {where} must be a number, got {value!r}")
        if name in out and out[name] != value:
            raise UserError(f"{where} gives two different stop values for {name}")
        out[name] = int(value) if name in ("iters", "timesteps") else float(value)
    return out, notices
