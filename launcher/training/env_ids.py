"""Gymnasium ids as users write them, resolved to what Gymnasium 1.x registers.

Tutorial-era files name envs by ids that Gymnasium has since renamed or moved:
`Pendulum-v0` is `Pendulum-v1` now, the MuJoCo `-v2`/`-v3` envs need mujoco-py,
which Gymnasium dropped (their newest version runs on `mujoco`), and Atari ids
(`ALE/Pong-v5`, `PongNoFrameskip-v4`) exist only once the ale-py package is
imported. `resolve` maps such an id to the one to build, with a notice saying
so, and refuses an id that cannot be built with one line naming what is missing
(a package to install, the `:Class` of a file). It runs in the driver and on
every env runner, so the env is built the same way everywhere.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import gymnasium
from gymnasium.envs.registration import find_highest_version, parse_env_id

from launcher.errors import UserError
from launcher.training.settings import closest

# Namespaces (and old id patterns) that a package registers when it is imported:
# namespace -> (module to import, what to install).
PLUGINS = {"ALE": ("ale_py", "pip install ale-py")}
# Atari ids of the gym era, registered by ale-py too (`PongNoFrameskip-v4`, `Breakout-v0`,
# `SpaceInvaders-ramDeterministic-v4`).
OLD_ATARI = re.compile(r"^[A-Z][A-Za-z]*(-ram)?(NoFrameskip|Deterministic)?-v[04]$")
ATARI = "ALE"


@dataclass(frozen=True)
class Resolved:
    """The id to build, and the notice to print when it differs from the one given."""

    env_id: str
    notice: str | None = None


def looks_like_a_file(spec: str) -> bool:
    return spec.endswith(".py")


def missing_class(spec: str) -> UserError:
    """`--env my_env.py`: the file is named, its class is not."""
    hint = ""
    try:
        tree = ast.parse(Path(spec).expanduser().read_text())
        classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
        if classes:
            hint = f" (it defines {', '.join(classes)})"
    except (OSError, SyntaxError, ValueError):
        pass
    return UserError(f"--env {spec} names a file but not the env class in it: "
                     f"write {spec}:ClassName{hint}")


def _import_plugin(spec: str, namespace: str) -> None:
    """Import the package that registers `namespace`; refuse naming it when missing."""
    module, install = PLUGINS[namespace]
    if importlib.util.find_spec(module) is None:
        raise UserError(f"{spec} is an Atari env, which needs the {module} package: {install}")
    plugin = importlib.import_module(module)
    register = getattr(gymnasium, "register_envs", None)
    if register is not None:
        register(plugin)


def builtin(spec: str) -> bool:
    """A registered id of Gymnasium's own envs, which any process builds without imports."""
    entry = getattr(gymnasium.envs.registry.get(spec), "entry_point", None)
    return isinstance(entry, str) and entry.startswith("gymnasium.")


def _mujoco_py_only(spec: str) -> bool:
    entry = gymnasium.envs.registry[spec].entry_point
    return getattr(entry, "__name__", "") == "_raise_mujoco_py_error"


def _parse(spec: str) -> tuple[str | None, str, int | None]:
    try:
        return parse_env_id(spec)
    except gymnasium.error.Error:
        return None, spec, None


def resolve(spec: str) -> Resolved:
    """The Gymnasium id to build for `spec` (not an entry point); see the module docstring."""
    if looks_like_a_file(spec):
        raise missing_class(spec)
    registry = gymnasium.envs.registry
    if spec in registry and not _mujoco_py_only(spec):
        return Resolved(spec)
    namespace, name, version = _parse(spec)
    if namespace in PLUGINS:
        _import_plugin(spec, namespace)
        if spec in registry:
            return Resolved(spec)
    newest = find_highest_version(namespace, name)
    if newest is not None and version is not None and newest > version:
        new_id = f"{namespace + '/' if namespace else ''}{name}-v{newest}"
        why = ("the -v2/-v3 MuJoCo envs need mujoco-py, which Gymnasium dropped"
               if spec in registry else "Gymnasium renamed it")
        return Resolved(new_id, f"env {spec} → {new_id} ({why})")
    if namespace is None and newest is None and OLD_ATARI.match(spec):
        _import_plugin(spec, ATARI)
        if spec in registry:
            return Resolved(spec)
    raise UserError(f"unknown environment id {spec!r}{closest(spec, registry.keys())}")
