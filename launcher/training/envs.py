"""Resolve what `--env` names into something RLlib can build, on every node.

An env is either a Gymnasium id (`CartPole-v1`) or an entry point
(`package.module:Class`, `path/to/file.py:Class`). Environments written for the
old `gym` API (reset returning only the observation, step returning 4 values,
gym spaces) are wrapped in `LegacyGymEnv`, so the tutorial's `BasicEnv` trains
unchanged. A PettingZoo env module may be named without `:attr`
(`mpe2.simple_spread_v3`), and multi-agent envs of every kind are detected and handed to
RLlib as MultiAgentEnvs (multiagent.py, multiagent_env.py).

`code`, when given, is a directory put first on `sys.path` before an entry point is
imported: for a cluster job, the snapshot of the user's code in the run directory
(launcher/cluster/code_snapshot.py), which sits at the same absolute path on every
node. The env creator registered with RLlib carries it, so each env runner (a Ray
actor on whichever node) adds it to its own `sys.path` before it imports the user's
module. No Ray runtime environment is needed for that: `py_modules` / `working_dir`
would upload a second copy of code already on shared storage through Ray's object
store, and a `PYTHONPATH` in `env_vars` would replace the node's own.

`probe()` builds the env once in the driver, before Ray starts, so a typo or a
constructor that raises fails in a second with one clear line. Gymnasium ids go
through `env_ids.resolve` first (renamed versions, Atari's package, a file without
its `:Class`). `max_episode_steps` (an old config's `horizon`) wraps the env in
Gymnasium's TimeLimit wherever it is built.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import inspect
import io
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium

from launcher.errors import UserError, first_line
from launcher.training import env_ids, multiagent, vectorize
from launcher.training.settings import closest


def is_entry_point(spec: str) -> bool:
    return ":" in spec


MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


def is_env_module(spec: str, code: str | None = None) -> bool:
    """`package.env_module` naming a PettingZoo env module (mpe2.simple_spread_v3): a dotted
    module name that is no Gymnasium id and whose package is installed or in `code`."""
    if is_entry_point(spec) or not MODULE_NAME.fullmatch(spec) or spec in gymnasium.envs.registry:
        return False
    top = spec.split(".")[0]
    if code and any((Path(code).expanduser() / name).exists() for name in (top, f"{top}.py")):
        return True
    return importlib.util.find_spec(top) is not None


# --- loading an entry point ------------------------------------------------------------
def _on_path(directory: str | Path) -> None:
    """Put a directory first on sys.path (once)."""
    directory = str(directory)
    if directory not in sys.path:
        sys.path.insert(0, directory)


def load_class(spec: str, code: str | None = None):
    """Import `module:Attr` or `path/file.py:Attr` and return the attribute, with the
    directory `code` (if any) first on sys.path."""
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise UserError(f"entry point {spec!r} must look like package.module:Class or file.py:Class")
    module = load_module(target, code)
    try:
        return getattr(module, attr)
    except AttributeError:
        names = [n for n in dir(module) if not n.startswith("_")]
        raise UserError(f"{target} has no attribute {attr!r}{closest(attr, names)}") from None


def load_module(target: str, code: str | None = None):
    """Import a module by name or a .py file by path, with `code` first on sys.path."""
    if code:
        _on_path(Path(code).expanduser().resolve())
    quiet_old_gym()
    if target.endswith(".py") or "/" in target:
        return _load_file(target)
    try:
        return importlib.import_module(target)
    except Exception as exc:
        raise UserError(f"cannot import module {target!r}: {_one_line(exc)}") from None


def quiet_old_gym() -> None:
    """Import old `gym` (if installed) with its import-time banner muted.

    gym 0.26 prints four lines on stderr when imported ("Gym has been unmaintained...");
    envs written for it are exactly what the adapter below is for, so the banner says
    nothing the user can act on. Imported once here, a user's `import gym` is silent."""
    if "gym" in sys.modules or importlib.util.find_spec("gym") is None:
        return
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            import gym  # noqa: F401
        except Exception:  # a broken gym: the user's own import reports it
            pass


def _load_file(target: str):
    """The module of a .py file, loaded once per process under a name of its own."""
    path = Path(target).expanduser().resolve()
    if not path.is_file():
        raise UserError(f"environment file not found: {target}")
    module_name = f"launcher_userenv_{path.stem}_{abs(hash(str(path))) & 0xFFFFFF:x}"
    module = sys.modules.get(module_name)
    if module is not None:
        return module
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    # The file's own folder is importable, as when running `python file.py`.
    _on_path(path.parent)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise UserError(f"cannot import {target}: {_one_line(exc)}") from None
    return module


def _one_line(exc: BaseException) -> str:
    """'TypeName: first line', the form env errors show (the type tells what went wrong)."""
    return f"{type(exc).__name__}: {first_line(exc)}" if str(exc).strip() else type(exc).__name__


# --- the old-gym adapter ----------------------------------------------------------------
def to_gymnasium_space(space):
    """Convert a `gym.spaces` space (old API) into the matching Gymnasium space."""
    if isinstance(space, gymnasium.spaces.Space):
        return space
    kind = type(space).__name__
    spaces = gymnasium.spaces
    if kind == "Discrete":
        return spaces.Discrete(int(space.n), start=int(getattr(space, "start", 0)))
    if kind == "Box":
        return spaces.Box(low=space.low, high=space.high, shape=space.shape, dtype=space.dtype)
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(space.nvec)
    if kind == "MultiBinary":
        return spaces.MultiBinary(space.n)
    if kind == "Tuple":
        return spaces.Tuple([to_gymnasium_space(s) for s in space.spaces])
    if kind == "Dict":
        return spaces.Dict({k: to_gymnasium_space(s) for k, s in space.spaces.items()})
    raise UserError(f"cannot convert the old gym space {space!r} to Gymnasium")


class LegacyGymEnv(gymnasium.Env):
    """Runs an environment written for old gym with the Gymnasium API.

    Handles both old shapes: gym <= 0.21 (`reset()` returns obs, `step()` returns
    obs, reward, done, info) and gym 0.26 (`reset(seed=...)` returns (obs, info),
    `step()` returns 5 values). The choice is made from the env's own `reset`
    signature and from the length of what `step` returns, not from version strings.
    """

    def __init__(self, env: Any):
        self.env = env
        self.observation_space = to_gymnasium_space(env.observation_space)
        self.action_space = to_gymnasium_space(env.action_space)
        params = inspect.signature(env.reset).parameters
        self._reset_takes_seed = "seed" in params
        self.metadata = getattr(env, "metadata", {}) or {}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if self._reset_takes_seed:
            out = self.env.reset(seed=seed)
            if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict):
                return out
            return out, {}
        if seed is not None and hasattr(self.env, "seed"):
            try:
                self.env.seed(seed)
            except Exception:  # old envs often implement seed() as a stub that raises
                pass
        return self.env.reset(), {}

    def step(self, action):
        out = self.env.step(action)
        if len(out) == 5:
            return out
        obs, reward, done, info = out
        info = dict(info or {})
        truncated = bool(info.pop("TimeLimit.truncated", False))
        return obs, reward, bool(done) and not truncated, truncated, info

    def render(self):
        return self.env.render()

    def close(self):
        close = getattr(self.env, "close", None)
        if close:
            close()


# --- building envs ------------------------------------------------------------------
def _construct(cls, env_config: dict):
    """Call an env class or factory with env_config, as RLlib does, or with nothing."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        params = {"config": None}
    if params and all(p.kind is p.VAR_KEYWORD for p in params.values()):
        return cls(**env_config)  # a factory of keyword arguments (PettingZoo's env modules)
    if params:
        return cls(env_config)
    if env_config:
        raise UserError(f"{cls.__name__} takes no arguments, but env_config was given")
    return cls()


def _env_module_factory(spec: str, code: str | None):
    """The factory of an env module named without `:attr` (PettingZoo's parallel_env)."""
    factory = multiagent.pettingzoo_factory(load_module(spec, code))
    if factory is None:
        raise UserError(f"module {spec!r} has no parallel_env or env: name the env as {spec}:Class")
    return factory


def build(spec: str, env_config: dict | None = None, code: str | None = None):
    """The env object `spec` builds, before RLlib's wrappers: a Gymnasium env (old gym
    envs adapted), or a multi-agent env object as its author wrote it."""
    env_config = dict(env_config or {})
    if is_env_module(spec, code):
        return _construct(_env_module_factory(spec, code), env_config)
    if not is_entry_point(spec):
        return gymnasium.make(env_ids.resolve(spec).env_id, **env_config)
    env = _construct(load_class(spec, code), env_config)
    if isinstance(env, gymnasium.Env) or multiagent.kind_of(env):
        return env
    if not (hasattr(env, "step") and hasattr(env, "reset") and hasattr(env, "action_space")):
        raise UserError(f"{spec} did not build an environment, single- or multi-agent "
                        f"(got {type(env).__name__})")
    return LegacyGymEnv(env)


def make_env(spec: str, env_config: dict | None = None, code: str | None = None,
             max_episode_steps: int | None = None):
    """Build one env instance for `spec`; used by RLlib on every env runner.
    `max_episode_steps`: truncate episodes there (Gymnasium's TimeLimit). A multi-agent
    env comes back as an RLlib MultiAgentEnv (multiagent_env.wrap)."""
    if not is_entry_point(spec) and not is_env_module(spec, code):
        limit = {"max_episode_steps": max_episode_steps} if max_episode_steps else {}
        return gymnasium.make(env_ids.resolve(spec).env_id, **limit, **dict(env_config or {}))
    env = build(spec, env_config, code)
    kind = multiagent.kind_of(env)
    if kind:
        from launcher.training import multiagent_env

        return multiagent_env.wrap(env, multiagent.agents_of(env, kind, spec))
    if max_episode_steps:
        env = gymnasium.wrappers.TimeLimit(env, max_episode_steps)
    return env


def rllib_env_name(spec: str, code: str | None = None, max_episode_steps: int | None = None) -> str:
    """Register `spec` with RLlib where it needs it, and return the name to pass it.

    A Gymnasium id that needs nothing of the launcher goes to RLlib as it is. Entry points,
    renamed or plugin ids and envs with a `max_episode_steps` are registered with a creator
    that builds them through `make_env` on each worker (re-importing an entry point's class
    with `code` first on its sys.path), so code on a shared filesystem works on every node.
    """
    plain = not is_entry_point(spec) and not is_env_module(spec, code) and not max_episode_steps
    if plain and env_ids.resolve(spec).env_id == spec and env_ids.builtin(spec):
        return spec
    from ray.tune.registry import register_env

    name = f"{spec} (max {max_episode_steps} steps)" if max_episode_steps else spec
    register_env(name, functools.partial(_rllib_creator, spec, code, max_episode_steps))
    return name


def _rllib_creator(spec: str, code: str | None, max_episode_steps: int | None, env_config):
    return make_env(spec, dict(env_config or {}), code, max_episode_steps)


@dataclass
class EnvInfo:
    """What the driver learns by building the env once. For a multi-agent env, `agents`
    holds every agent's spaces and the two spaces are the first agent's."""

    spec: str
    observation_space: gymnasium.spaces.Space
    action_space: gymnasium.spaces.Space
    reward_threshold: float | None
    family: str  # key into launcher.presets: "classic", "multiagent" or "default"
    agents: multiagent.Agents | None = None
    step_s: float | None = None  # a step's median wall time at the probe (vectorize.py)
    step_cpu_share: float | None = None  # the share of it this process spent computing


CLASSIC_CONTROL = ("CartPole", "Acrobot", "MountainCar", "Pendulum")
MULTIAGENT_FAMILY = "multiagent"


def notice(line: str) -> None:
    """A notice before training starts, on stderr: 'note: ...'."""
    print(f"note: {line}", file=sys.stderr)


def probe(spec: str, env_config: dict | None = None, code: str | None = None,
          say=notice) -> EnvInfo:
    """Build the env once to check it exists and constructs; read its spaces.
    `say` gets the notice of a renamed id (Pendulum-v0 → Pendulum-v1) and the line that
    names a multi-agent env's kind."""
    threshold, env_id = None, spec
    if not is_entry_point(spec) and not is_env_module(spec, code):
        resolved = env_ids.resolve(spec)
        env_id = resolved.env_id
        if resolved.notice:
            say(resolved.notice)
        threshold = gymnasium.envs.registry[env_id].reward_threshold
    try:
        env = build(spec, env_config, code)
        kind = multiagent.kind_of(env)
        info = _multiagent_info(spec, env, kind) if kind else _info(spec, env, env_id, threshold)
    except UserError:
        raise
    except Exception as exc:
        where = _user_frame(exc)
        raise UserError(f"environment {spec!r} failed to construct{where}: {_one_line(exc)}") from None
    finally:
        try:
            env.close()
        except Exception:
            pass
    if info.observation_space is None or info.action_space is None:
        raise UserError(f"environment {spec!r} does not define observation_space and action_space")
    if info.agents:
        say(info.agents.line())
    return info


def _info(spec: str, env, env_id: str, threshold: float | None) -> EnvInfo:
    family = "classic" if env_id.split("-")[0] in CLASSIC_CONTROL else "default"
    info = EnvInfo(spec, env.observation_space, env.action_space, threshold, family)
    info.step_s, info.step_cpu_share = vectorize.time_steps(env)
    return info


def _multiagent_info(spec: str, env, kind: str) -> EnvInfo:
    agents = multiagent.agents_of(env, kind, spec)
    first = agents.ids[0]
    return EnvInfo(spec, agents.observation_spaces[first], agents.action_spaces[first], None,
                   MULTIAGENT_FAMILY, agents)


def _user_frame(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    return f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
