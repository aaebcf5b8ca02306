"""Read an experiment file (`--config` / `-f`) into TrainSettings fields.

Three shapes are accepted, told apart by their top-level keys:

  launcher     top-level TrainSettings keys (algo, env, stop, config, num_cpus, ...):
                   algo: PPO
                   env: CartPole-v1
                   config: {lr: 0.0003}
  tutorial     the `config={...}` dict the tutorial passes to `tune.run`: RLlib keys,
               old names included, at the top level:
                   env: CartPole-v0
                   num_workers: 1
                   ignore_worker_failures: true
  experiments  RLlib's experiment-file format (its tuned_examples): one or more named
               experiments, each with `run` and usually `env`, `stop`, `config`:
                   cartpole-ppo:
                       run: PPO
                       env: CartPole-v1
                       stop: {episode_reward_mean: 150, timesteps_total: 100000}
                       config: {num_workers: 1, num_sgd_iter: 6}
               A file with several experiments needs one picked: `-f FILE:NAME`.
               A single experiment body without the name (run/stop/config at the top,
               i.e. tune.run's keyword arguments) is read the same way.

Old RLlib key names are translated by launcher/legacy.py; each translation prints
one "note: old → new" line on stderr, and so does an env id Gymnasium renamed
(Pendulum-v0 → Pendulum-v1, env_ids.py). The translated config's common values are
range-checked (value_checks.py), from a file as from `--set`. Mixing launcher settings
and RLlib keys at the top level is refused: the file would mean two different things.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from launcher.errors import UserError
from launcher.training import legacy, value_checks
from launcher.training.settings import TrainSettings, check_keys, closest, read_yaml

# `sweep:` (training/sweep.py) is the launcher's too: taken out before TrainSettings.
LAUNCHER_FIELDS = (*(f.name for f in dataclasses.fields(TrainSettings)), "sweep")
# Keys that mean the same as a launcher setting and as an RLlib config key.
SHARED_KEYS = ("env", "env_config", "framework", "seed", "num_gpus", "num_env_runners",
               "observation_filter")
# Keys of one experiment in RLlib's experiment-file format (tune.run's arguments).
EXPERIMENT_KEYS = ("run", "env", "stop", "config", "checkpoint_freq", "checkpoint_at_end",
                   "local_dir", "storage_path", "num_samples")


def notice(line: str) -> None:
    print(f"note: {line}", file=sys.stderr)


def translate_config(config: dict[str, Any], where: str, say: Callable[[str], None] = notice,
                     framework: str | None = None) -> dict[str, Any]:
    """RLlib config keys as users write them (e.g. `--set`) -> current AlgorithmConfig keys.

    Launcher-owned keys (env, num_gpus, ...) are refused here, naming their flag.
    `framework`: the one the run uses (tf2 -> old API stack names; default torch)."""
    stack = legacy.stack_for(framework)
    for key in config:
        rule = legacy.LEGACY.get(str(key))
        if isinstance(rule, legacy.Launcher) and not (rule.new_stack_only and stack == legacy.OLD_STACK):
            instead = (f"use {rule.flag} instead of {where} {key}=..." if rule.flag else
                       f"write it in an experiment file (--config): {key} under config:, "
                       f"or {rule.field} at the top level")
            raise UserError(f"{key} is a launcher setting, not an RLlib key: {instead}")
    translated = legacy.translate(config, where, stack)
    checked = value_checks.check(translated.config, where)  # a refusal comes alone, without notices
    for line in translated.notices:
        say(line)
    return checked


def split_pick(path: str | Path) -> tuple[Path, str | None]:
    """`FILE:NAME` picks experiment NAME from FILE; a plain existing path picks nothing."""
    text = str(path)
    if Path(text).exists() or ":" not in text:
        return Path(text), None
    file, _, name = text.rpartition(":")
    if Path(file).exists():
        return Path(file), name
    return Path(text), None


def load_experiment(path: str | Path, say: Callable[[str], None] = notice,
                    framework: str | None = None) -> dict[str, Any]:
    """Parse an experiment file into a (partial) TrainSettings dict.

    `framework`: given on the command line, it wins over the file's and picks the API
    stack whose key names the file is translated to."""
    path, pick = split_pick(path)
    where = str(path)
    data = read_yaml(path)
    if data is None:
        if pick:
            raise UserError(f"{where} is empty: there is no experiment {pick!r} in it")
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{where} must hold a mapping of settings, got {type(data).__name__}")
    notices: list[str] = []
    shape = detect_shape(data, where)
    if shape == "experiments":
        name = pick_experiment(data, pick, where)
        result = from_experiment(data[name], f"{where}: {name}", notices, framework)
    elif pick:
        raise UserError(f"{where}:{pick} picks an experiment, but {where} is not an RLlib "
                        "experiment file (name: {run, env, stop, config})")
    elif shape == "experiment":
        result = from_experiment(data, where, notices, framework)
    elif shape == "tutorial":
        result = from_config_dict(data, where, notices, framework)
    else:
        result = from_launcher_file(data, where, notices, framework)
    _renamed_env(result, notices)
    for line in notices:
        say(line)
    return result


def _renamed_env(result: dict, notices: list[str]) -> None:
    """A Gymnasium id that Gymnasium renamed becomes the new one, with a notice. Anything
    else stays as written: the env probe reports an id that does not resolve."""
    env = result.get("env")
    if not isinstance(env, str) or ":" in env:
        return
    try:
        from launcher.training import env_ids  # imports gymnasium
    except ImportError:  # a login node without the training stack: the image checks the id
        return
    try:
        resolved = env_ids.resolve(env)
    except UserError:
        return
    if resolved.notice:
        result["env"] = resolved.env_id
        notices.append(resolved.notice)


def detect_shape(data: dict, where: str) -> str:
    """'experiments', 'experiment', 'tutorial' or 'launcher' (see the module docstring)."""
    named = [k for k, v in data.items() if isinstance(v, dict) and "run" in v]
    if named:
        others = [str(k) for k in data if k not in named]
        if others:
            raise UserError(f"{where} looks like an RLlib experiment file, but {others[0]!r} is not an "
                            "experiment (an experiment is a mapping with a 'run' key)")
        return "experiments"
    if "run" in data:
        return "experiment"
    launcher_only = [str(k) for k in data if k in LAUNCHER_FIELDS and k not in SHARED_KEYS]
    rllib = [str(k) for k in data if k not in LAUNCHER_FIELDS]
    if launcher_only and rllib:
        for key in rllib:
            hint = closest(key, LAUNCHER_FIELDS)
            if key not in legacy.LEGACY and hint:
                raise UserError(f"unknown key {key!r} in {where}{hint}")
        raise UserError(
            f"{where} mixes launcher settings ({', '.join(launcher_only)}) with RLlib config keys "
            f"({', '.join(rllib)}) at the top level: put the RLlib keys under 'config:'"
        )
    return "tutorial" if rllib else "launcher"


def pick_experiment(data: dict, pick: str | None, where: str) -> str:
    names = [str(k) for k in data]
    if pick is not None:
        if pick not in data:
            raise UserError(f"no experiment {pick!r} in {where}{closest(pick, names)}; "
                            f"it holds: {', '.join(names)}")
        return pick
    if len(names) > 1:
        raise UserError(f"{where} holds {len(names)} experiments ({', '.join(names)}): "
                        f"pick one with -f {where}:{names[0]}")
    return names[0]


def _lift(result: dict, settings: dict, where: str) -> None:
    """Put launcher settings found in an RLlib config into the result, refusing conflicts."""
    for name, value in settings.items():
        if name in result and result[name] != value:
            raise UserError(f"{where} gives {name} twice with different values: "
                            f"{result[name]!r} and {value!r}")
        result[name] = value


def _stack(framework: str | None, config: dict) -> str:
    return legacy.stack_for(framework or legacy.first_of_grid(config.get("framework"), "framework", []))


def _put_config(result: dict, config: dict, where: str, config_where: str, stack: str,
                notices: list[str]) -> None:
    """Translate an RLlib config into result["config"]; lift the launcher settings in it."""
    translated = legacy.translate(config, config_where, stack)
    notices += translated.notices
    result["config"] = value_checks.check(translated.config, config_where)
    _lift(result, translated.settings, where)


def from_config_dict(data: dict, where: str, notices: list[str],
                     framework: str | None = None) -> dict[str, Any]:
    """The tutorial's `config={...}`: RLlib keys at the top level."""
    result: dict[str, Any] = {}
    _put_config(result, data, where, where, _stack(framework, data), notices)
    return result


def from_experiment(body: Any, where: str, notices: list[str],
                    framework: str | None = None) -> dict[str, Any]:
    """One experiment of RLlib's experiment-file format."""
    if not isinstance(body, dict):
        raise UserError(f"experiment {where} must be a mapping with run, env, stop, config")
    check_keys(body, EXPERIMENT_KEYS, f"experiment {where}")
    result: dict[str, Any] = {}
    run = body.get("run")
    if not isinstance(run, str) or not run.strip():
        raise UserError(f"experiment {where}: 'run' must name an algorithm (PPO, DQN, ...)")
    result["algo"] = run
    if body.get("env") is not None:
        result["env"] = body["env"]  # a grid_search of envs: a sweep (training/sweep.py)
    config = body.get("config") or {}
    if not isinstance(config, dict):
        raise UserError(f"'config' in experiment {where} must be a mapping of RLlib settings")
    _put_config(result, config, where, f"{where}: config", _stack(framework, config), notices)
    stop, stop_notices = legacy.translate_stop(body.get("stop"), f"experiment {where}")
    notices += stop_notices
    if stop:
        result["stop"] = stop
    if "checkpoint_freq" in body:
        result["checkpoint_every"] = body["checkpoint_freq"]
        notices.append("checkpoint_freq → checkpoint_every (--checkpoint-every)")
    if "checkpoint_at_end" in body:
        notices.append("checkpoint_at_end → (dropped: the launcher always saves a final checkpoint)")
    for key in ("local_dir", "storage_path"):
        if key in body:
            _lift(result, {"output": str(body[key])}, where)
            notices.append(f"{key} → output (--output)")
    if body.get("num_samples", 1) != 1:  # Tune's repeats: seeds, or draws (training/sweep.py)
        result["sweep"] = {"num_samples": body["num_samples"]}
    return result


def _top_level_filter(result: dict, where: str, stack: str, notices: list[str]) -> None:
    """`observation_filter` as a launcher setting, its value read as the legacy table does
    (NoFilter: none; another filter: refused saying what to write); on the old API stack
    it is RLlib's own key, in the config."""
    value = result.pop("observation_filter")
    translated = legacy.translate({"observation_filter": value}, where, stack)
    notices += translated.notices
    result.update(translated.settings)
    if translated.config:
        result["config"] = {**(result.get("config") or {}), **translated.config}


def from_launcher_file(data: dict, where: str, notices: list[str],
                       framework: str | None = None) -> dict[str, Any]:
    """The launcher's own format; its `config:` may still use old RLlib names."""
    result = dict(data)
    if "observation_filter" in result:  # also an RLlib key: the tutorial's config dict has it
        _top_level_filter(result, where, _stack(framework, result), notices)
    if "config" in result:
        _put_config(result, result["config"] or {}, where, f"{where}: config",
                    _stack(framework, result), notices)
    if isinstance(result.get("stop"), dict):
        result["stop"], stop_notices = legacy.translate_stop(result["stop"], where)
        notices += stop_notices
    return result
