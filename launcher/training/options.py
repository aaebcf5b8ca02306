"""The training options of a command line, merged into one settings dict.

`launcher train`, `local`, `prepare`, `submit` and `render` take the same training
options. Their values are merged here in one order: TrainSettings' defaults <
the experiment file (`--config`) < the flags. The result is a plain dict that
`TrainSettings.from_dict` validates; a cluster job first gets `cluster_defaults`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from launcher.errors import UserError
from launcher.training.settings import CLUSTER_CHECKPOINT_EVERY


def parse_assignments(items: list[str] | None, flag: str) -> dict[str, Any]:
    """`key=value` pairs; values are YAML scalars/lists/maps (1e-3, true, [64, 64])."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag} expects key=value, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            raise UserError(f"{flag} {key}: cannot parse the value {raw!r}") from None
    return out


def merge_training_options(
    *, algo: str | None = None, env: str | None = None, framework: str | None = None,
    config_file: Path | None = None, sets: list[str] | None = None,
    env_config: list[str] | None = None, stop_iters: int | None = None,
    stop_timesteps: int | None = None, stop_reward: float | None = None,
    stop_time: float | None = None, num_cpus: int | None = None, num_gpus: float | None = None,
    num_env_runners: int | None = None, local_mode: bool | None = None, seed: int | None = None,
    output: Path | None = None, name: str | None = None, checkpoint_every: int | None = None,
    address: str | None = None, eval_every: int | None = None, eval_episodes: int | None = None,
    code: Path | None = None, policies: str | None = None, train_policies: str | None = None,
) -> dict[str, Any]:
    """Merge: defaults < experiment file < flags. Returns a TrainSettings dict.

    A flag left at None keeps the file's value (or the default); `--set` and
    `--env-config` add to the file's `config` and `env_config` key by key."""
    from launcher.training.experiment import load_experiment

    data: dict[str, Any] = load_experiment(config_file, framework=framework) if config_file else {}
    flags = {
        "algo": algo, "env": env, "framework": framework, "num_cpus": num_cpus,
        "num_gpus": num_gpus, "num_env_runners": num_env_runners, "seed": seed,
        "output": str(output) if output else None, "name": name,
        "checkpoint_every": checkpoint_every, "address": address,
        "local_mode": local_mode or None, "eval_every": eval_every, "eval_episodes": eval_episodes,
        "code": str(Path(code).expanduser().resolve()) if code else None,
        "policies": policies,
        "train_policies": [p.strip() for p in train_policies.split(",") if p.strip()]
        if train_policies is not None else None,
    }
    data.update({k: v for k, v in flags.items() if v is not None})
    stop = {"iters": stop_iters, "timesteps": stop_timesteps, "reward": stop_reward,
            "time_s": stop_time}
    data["stop"] = {**(data.get("stop") or {}), **{k: v for k, v in stop.items() if v is not None}}
    if sets:
        from launcher.training.experiment import translate_config

        data["config"] = {**(data.get("config") or {}), **translate_config(
            parse_assignments(sets, "--set"), where="--set",
            framework=framework or data.get("framework"))}
    if env_config:
        data["env_config"] = {**(data.get("env_config") or {}),
                              **parse_assignments(env_config, "--env-config")}
    return data


def cluster_defaults(training: dict[str, Any]) -> dict[str, Any]:
    """A new cluster job's defaults where they differ from `launcher train`'s."""
    return {"checkpoint_every": CLUSTER_CHECKPOINT_EVERY, **training}
