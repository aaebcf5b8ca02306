"""One validated object for a training run, and its YAML form.

`TrainSettings` is what `launcher train` runs, what a Slurm job or a container
cluster passes to its nodes (as a spec file in the run directory), and what
`--resume` reads back. The keyword names of the dataclasses are the schema: an
unknown key fails with the closest valid name, so a typo never silently falls
back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from launcher.contract import RunPaths
from launcher.errors import UserError
from launcher.files import check_trusted, write_atomic
from launcher.schema import check_fields
from launcher.training.algorithms import ALGORITHM_TABLE

ALGORITHMS = tuple(ALGORITHM_TABLE)
FRAMEWORKS = ("torch", "tf2")
# Keys that spec files written by earlier versions hold but that are derived now (a
# cluster job's placement comes from its cluster.yaml): read and ignored.
DERIVED_KEYS = ("num_learners", "place_on_cluster_roles")


def closest(word: str, choices) -> str:
    """' (did you mean X?)' for the nearest valid choice, or '' when none is near."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def check_keys(given: dict, valid, where: str) -> None:
    """Refuse keys that are not in `valid`, naming the closest valid one."""
    for key in given:
        if key not in valid:
            raise UserError(f"unknown key {key!r} in {where}{closest(str(key), valid)}")


# Iterations between periodic checkpoints: `launcher train` every 10; a cluster job every
# one, since a lost head (node failure, a kill without warning) resumes from the last
# checkpoint and an RL policy's checkpoint is small (the newest 3 are kept).
CHECKPOINT_EVERY = 10
CLUSTER_CHECKPOINT_EVERY = 1
EVAL_EPISODES = 10
# Multi-agent envs (training/policies.py): one policy for all agents, or one per agent;
# an experiment file may instead give groups (policy name -> glob patterns of agent ids).
SHARED, PER_AGENT = "shared", "per-agent"
POLICY_MODES = (SHARED, PER_AGENT)


@dataclass
class Stop:
    """Stop criteria: whichever is reached first ends training."""

    iters: int | None = None
    timesteps: int | None = None
    reward: float | None = None  # mean episode return (of a multi-agent env: summed over agents)
    policy: str | None = None  # a multi-agent run: `reward` is this policy's mean return instead
    time_s: float | None = None  # wall-clock seconds of training

    def is_empty(self) -> bool:
        return all(v is None for k, v in dataclasses.asdict(self).items() if k != "policy")

    def validate(self) -> None:
        for name in ("iters", "timesteps", "time_s"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value <= 0):
                raise UserError(f"stop criterion {name} must be positive, got {value}")
        if self.reward is not None and not math.isfinite(self.reward):
            raise UserError(f"stop criterion reward must be a finite number, got {self.reward}")
        if self.policy is not None and self.reward is None:
            raise UserError(f"stop: policy {self.policy!r} needs a reward to reach (stop: reward)")


@dataclass
class TrainSettings:
    """Everything that defines a training run. Defaults are what `launcher train` uses."""

    algo: str = "PPO"
    env: str = "CartPole-v1"
    env_config: dict[str, Any] = field(default_factory=dict)
    # The folder put first on sys.path wherever the env is built: `--code DIR`, and for a
    # cluster job the snapshot of the user's code in the run dir (cluster/code_snapshot.py).
    code: str | None = None
    # Translated from an old config's `horizon` and `observation_filter` (legacy_keys.py),
    # applied by training/connectors.py: episodes truncated after this many steps
    # (Gymnasium's TimeLimit), and "MeanStdFilter" (an env-to-module connector).
    max_episode_steps: int | None = None
    observation_filter: str | None = None
    framework: str = "torch"
    stop: Stop = field(default_factory=Stop)
    # Resources. None means "size from what the machine or cluster has".
    num_cpus: int | None = None
    num_gpus: float = 0
    num_env_runners: int | None = None
    local_mode: bool = False
    # RLlib AlgorithmConfig keys, applied on top of the presets (launcher/presets.py).
    config: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    output: str = "./ray_results"
    name: str | None = None
    checkpoint_every: int = CHECKPOINT_EVERY  # iterations between checkpoints; 0 = final only
    # Greedy evaluation during training: every `eval_every` iterations (0 = none), on an
    # env runner of its own, `eval_episodes` episodes long.
    eval_every: int = 0
    eval_episodes: int = EVAL_EPISODES
    address: str | None = None  # a running Ray cluster; None = embedded Ray
    # Multi-agent envs: "shared", "per-agent" or {policy: [glob, ...]}; the policies that learn.
    policies: str | dict[str, list[str] | str] = SHARED
    train_policies: list[str] | None = None

    def validate(self) -> TrainSettings:
        """Check everything that can be checked without importing Ray."""
        self.algo = normalise_algo(self.algo)
        if self.framework not in FRAMEWORKS:
            raise UserError(
                f"unknown framework {self.framework!r}; valid: {', '.join(FRAMEWORKS)}"
                f"{closest(self.framework, FRAMEWORKS)}"
            )
        if not isinstance(self.env, str) or not self.env.strip():
            raise UserError("--env must name a Gymnasium id or an entry point module:Class")
        if not isinstance(self.env_config, dict):
            raise UserError("env_config must be a mapping of keyword arguments")
        if not isinstance(self.config, dict):
            raise UserError("config must be a mapping of RLlib settings")
        if self.max_episode_steps is not None and self.max_episode_steps < 1:
            raise UserError(f"max_episode_steps must be at least 1, got {self.max_episode_steps}")
        if self.observation_filter not in (None, "MeanStdFilter"):
            raise UserError(f"unknown observation_filter {self.observation_filter!r}; valid: MeanStdFilter")
        self.stop.validate()
        check_policies(self.policies, self.train_policies)
        if self.num_cpus is not None and self.num_cpus < 1:
            raise UserError(f"--num-cpus must be at least 1, got {self.num_cpus}")
        if self.num_gpus < 0 or not math.isfinite(self.num_gpus):
            raise UserError(f"--num-gpus must be 0 or more, got {self.num_gpus}")
        if self.num_env_runners is not None and self.num_env_runners < 0:
            raise UserError(f"--num-env-runners must be 0 or more, got {self.num_env_runners}")
        if self.checkpoint_every < 0:
            raise UserError(f"--checkpoint-every must be 0 or more, got {self.checkpoint_every}")
        if self.eval_every < 0:
            raise UserError(f"--eval-every must be 0 or more, got {self.eval_every}")
        if self.eval_episodes < 1:
            raise UserError(f"--eval-episodes must be at least 1, got {self.eval_episodes}")
        return self

    # --- YAML in and out -----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "settings") -> TrainSettings:
        if not isinstance(data, dict):
            raise UserError(f"{where} must be a mapping, got {type(data).__name__}")
        data = {k: v for k, v in data.items() if k not in DERIVED_KEYS}
        check_keys(data, [f.name for f in dataclasses.fields(cls)], where)
        check_fields(cls, data, where)
        stop = data.pop("stop", None) or {}
        check_keys(stop, [f.name for f in dataclasses.fields(Stop)], f"{where}: stop")
        check_fields(Stop, stop, f"{where}: stop")
        try:
            return cls(stop=Stop(**stop), **data)
        except TypeError as exc:  # pragma: no cover - guarded by check_keys
            raise UserError(f"{where}: {exc}") from None

    def write_spec(self, run_dir: Path) -> Path:
        """Write the settings as the run's spec file, writable by the user only."""
        path = RunPaths(run_dir).spec
        write_atomic(path, yaml.safe_dump(self.to_dict(), sort_keys=False))
        return path


def check_policies(policies, train_policies) -> None:
    """The shape of `policies` and `train_policies` (the agents are checked against the env
    in training/policies.py)."""
    if isinstance(policies, str) and policies not in POLICY_MODES:
        raise UserError(f"unknown --policies {policies!r}; valid: {', '.join(POLICY_MODES)}, "
                        f"or groups in an experiment file{closest(policies, POLICY_MODES)}")
    if isinstance(policies, dict) and (not policies or not all(policies.values())):
        raise UserError("policies: each group needs at least one agent pattern, e.g. "
                        "{pursuers: [pursuer_*]}")
    if train_policies is not None and not train_policies:
        raise UserError("--train-policies names no policy")


def normalise_algo(name: str) -> str:
    upper = str(name).upper()
    if upper not in ALGORITHMS:
        raise UserError(
            f"unknown algorithm {name!r}; valid: {', '.join(ALGORITHMS)}"
            f"{closest(upper, ALGORITHMS)}"
        )
    return upper


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file, turning every failure into one line for the user."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"file not found: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"malformed YAML in {path}{where}: {problem}") from None


def load_spec(run_dir: str | Path) -> TrainSettings:
    """Read back the spec file a run directory was started with."""
    path = RunPaths(run_dir).spec
    if not path.is_file():
        raise UserError(f"{run_dir} is not a launcher run directory (no {path.name} in it)")
    check_trusted(path)
    return TrainSettings.from_dict(read_yaml(path), where=str(path)).validate()
