"""A trained policy brought back from a run's checkpoint, in this process, with no Ray.

`evaluate` and `export` both start here. The run's spec.yaml rebuilds the same RLlib
config that trained it (launcher/training/rllib_config.py), so the env-to-module and
module-to-env connector pipelines are the ones training used; an RLlib
`SingleAgentEnvRunner` is built from that config right in this process (no `ray.init`,
no actors), its connectors' state is restored from the checkpoint's `env_runner/` and
its RLModule's weights from `learner_group/learner/rl_module/`. Episodes are then
played by RLlib's own sampling code, greedily unless asked to explore: the observation
processing is the one the agent was trained with, so a restored agent scores what it
scored in training (the failure reported in ray-project/ray#53588 and #44475 is a
hand-written inference loop that skips the connectors).

Every env the runner builds is wrapped by `Recorder`, which sees each observation and
the action RLlib sends back (what export verifies against), the frames when a video is
asked for, and when each episode ends.

Only the new API stack (torch) is supported: a tf2 run is refused with one line.
"""

from __future__ import annotations

import copy
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium

from launcher.contract import CHECKPOINT_DIR, RunPaths
from launcher.errors import UserError
from launcher.training import envs
from launcher.training.checkpoints import checkpoint_for_use
from launcher.training.settings import TrainSettings, load_spec

ENV_RUNNER_PART = "env_runner"  # RLlib's COMPONENT_ENV_RUNNER (tests/test_evaluate.py checks it)


@dataclass
class Source:
    """A run directory, the checkpoint taken from it and the settings it was trained with."""

    run_dir: Path
    checkpoint: Path
    settings: TrainSettings


def is_checkpoint(path: Path) -> bool:
    return path.is_dir() and (path / ENV_RUNNER_PART).is_dir() and path.parent.name == CHECKPOINT_DIR


def locate(target: str | Path, what: str = "evaluate") -> Source:
    """RUN_DIR (its best checkpoint, else its newest) or RUN_DIR/checkpoints/NAME."""
    path = Path(target).expanduser()
    if not path.exists():
        raise UserError(f"{target}: no such run directory or checkpoint")
    if RunPaths(path).spec.is_file():
        run_dir, checkpoint = path, checkpoint_for_use(path)
        if checkpoint is None:
            raise UserError(f"no checkpoint in {RunPaths(path).checkpoints}: nothing to {what}")
    elif is_checkpoint(path):
        run_dir, checkpoint = path.parent.parent, path
    else:
        raise UserError(f"{target} is neither a launcher run directory (no "
                        f"{RunPaths(path).spec.name} in it) nor one of its checkpoints")
    settings = load_spec(run_dir)
    if settings.framework != "torch":
        raise UserError(f"{run_dir} was trained with --framework {settings.framework} (RLlib's old "
                        f"API stack): {what} supports torch runs only")
    policies = policies_in(checkpoint)
    multi = bool(policies)
    if multi and what not in ("evaluate", "export"):
        raise UserError(f"{run_dir} is a multi-agent run (policies: {', '.join(policies)}): "
                        f"{what} supports single-agent runs only so far")
    if not (checkpoint / ENV_RUNNER_PART).is_dir() or not (multi or module_dir(checkpoint).is_dir()):
        raise UserError(f"{checkpoint} is not a complete checkpoint (no {ENV_RUNNER_PART}/ or "
                        f"{module_dir(checkpoint).relative_to(checkpoint)}/ in it)")
    return Source(run_dir=run_dir.resolve(), checkpoint=checkpoint.resolve(), settings=settings)


def policies_in(checkpoint: Path) -> list[str]:
    """A multi-agent checkpoint's policy ids (one weights folder each); [] for one agent."""
    if module_dir(checkpoint).is_dir():
        return []
    return sorted(p.name for p in module_dir(checkpoint).parent.glob("*") if p.is_dir())


def module_dir(checkpoint: Path) -> Path:
    """Where an Algorithm checkpoint keeps the weights of its (single) RLModule."""
    from ray.rllib.core import (
        COMPONENT_LEARNER,
        COMPONENT_LEARNER_GROUP,
        COMPONENT_RL_MODULE,
        DEFAULT_MODULE_ID,
    )

    return checkpoint / COMPONENT_LEARNER_GROUP / COMPONENT_LEARNER / COMPONENT_RL_MODULE / DEFAULT_MODULE_ID


# --- what the runner's env sees ----------------------------------------------------------
@dataclass
class Tape:
    """What `Recorder` saw: (observation, action) pairs, frames per episode, episode ends."""

    keep_steps: int = 0  # how many (observation, action) pairs to keep
    on_frames: Callable[[list], None] | None = None  # called with each finished episode's frames
    steps: list[tuple[Any, Any]] = field(default_factory=list)
    episode_ends: list[float] = field(default_factory=list)  # time.monotonic() of each end


class Recorder(gymnasium.Wrapper):
    """Records what passes between the env and RLlib's env runner onto a `Tape`."""

    def __init__(self, env: gymnasium.Env, tape: Tape):
        super().__init__(env)
        self.tape = tape
        self.frames: list = []
        self.last_obs = None

    def _frame(self) -> None:
        if self.tape.on_frames is not None:
            self.frames.append(self.env.render())

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.last_obs, self.frames = obs, []
        self._frame()
        return obs, info

    def step(self, action):
        if len(self.tape.steps) < self.tape.keep_steps:
            self.tape.steps.append((copy.deepcopy(self.last_obs), copy.deepcopy(action)))
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.last_obs = obs
        self._frame()
        if terminated or truncated:
            self.tape.episode_ends.append(time.monotonic())
            if self.tape.on_frames is not None:
                self.tape.on_frames(self.frames)
            self.frames = []
        return obs, reward, terminated, truncated, info


def env_maker(settings: TrainSettings, tape: Tape, render: bool) -> Callable[..., gymnasium.Env]:
    """The env creator the restored runner calls: the training env, wrapped in Recorder."""
    def make(_context=None) -> gymnasium.Env:
        env_config = dict(settings.env_config)
        if render and not envs.is_entry_point(settings.env):
            env_config["render_mode"] = "rgb_array"
        env = envs.make_env(settings.env, env_config, settings.code)
        if render and getattr(env, "render_mode", None) != "rgb_array":
            try:  # an entry-point env that reads self.render_mode in render()
                env.render_mode = "rgb_array"
            except AttributeError:
                pass
        return Recorder(env, tape)

    return make


# --- the runner ----------------------------------------------------------------------------
def _multiagent_env(settings: TrainSettings, _context=None):
    return envs.make_env(settings.env, dict(settings.env_config), settings.code)


def eval_settings(source: Source, env_config: dict, seed: int | None) -> TrainSettings:
    settings = copy.deepcopy(source.settings)
    settings.env_config = {**settings.env_config, **env_config}
    settings.seed, settings.num_gpus, settings.eval_every = seed, 0, 0
    return settings


def restore_runner(source: Source, settings: TrainSettings, tape: Tape, *, explore: bool = False,
                   render: bool = False):
    """A `SingleAgentEnvRunner` in this process, with the checkpoint's connectors and weights."""
    from launcher.training.rllib_config import build_config, check_framework, quiet_libraries

    check_framework(settings.framework)
    quiet_libraries()
    info = envs.probe(settings.env, settings.env_config, settings.code)
    config = build_config(settings, info, 0)
    # One env, so that episodes (and their videos) come one after another.
    config.env_runners(num_envs_per_env_runner=1, explore=explore)
    config.debugging(log_level="ERROR")  # the runner applies it to RLlib's loggers
    if info.agents is not None:  # a multi-agent run: every policy, no recording (no videos)
        if render:
            raise UserError("videos of multi-agent runs are not supported yet")
        config.environment(env=functools.partial(_multiagent_env, settings), env_config=settings.env_config)
        from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner as Runner
        weights = module_dir(source.checkpoint).parent  # one folder per policy
    else:
        config.environment(env=env_maker(settings, tape, render), env_config=settings.env_config)
        from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner as Runner
        weights = module_dir(source.checkpoint)
    quiet_libraries()
    # RLlib's own RLModule constructor calls a deprecated form of itself (a notice per build).
    logging.getLogger("ray._common.deprecation").setLevel(logging.ERROR)
    runner = Runner(config=config)
    try:
        runner.restore_from_path(str(source.checkpoint / ENV_RUNNER_PART))
        runner.module.restore_from_path(str(weights))
    except Exception:
        runner.stop()
        raise
    return runner
