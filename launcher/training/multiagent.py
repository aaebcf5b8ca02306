"""Multi-agent envs: what kind an env object is, and its agents with their spaces.

`--env` may build something with many agents: a PettingZoo parallel env, a PettingZoo
AEC (turn-based) env, an RLlib `MultiAgentEnv`, or an env written against RLlib's older
dict API (`reset()` returning the observations only, `step()` returning 4 dicts with
`"__all__"` in the done dict and no truncation). `kind_of` tells which, from the object
itself (duck typing; PettingZoo and RLlib classes are checked only when their module is
already imported, so probing a single-agent env never imports RLlib). `agents_of` reads
every agent's observation and action space, however the env declares them; an agent
without one is one line of error, before Ray starts.

What RLlib gets on the env runners (PettingZoo's wrappers, or the dict-API adapter) is in
multiagent_env.py, which imports RLlib; the policies are in policies.py.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import gymnasium

from launcher.errors import UserError

PARALLEL = "PettingZoo parallel"
AEC = "PettingZoo AEC"
RLLIB = "RLlib MultiAgentEnv"
DICT_API = "RLlib dict API"
KINDS = (PARALLEL, AEC, RLLIB, DICT_API)
# What a PettingZoo env module offers, in order of preference: the parallel API steps all
# agents at once (one RLlib step per env step), the AEC API one agent at a time.
PETTINGZOO_FACTORIES = ("parallel_env", "env")
# Attributes by which an env that is no Gymnasium env names its agents.
AGENT_ATTRIBUTES = ("possible_agents", "_agent_ids", "agents")


@dataclass
class Agents:
    """The agents of a multi-agent env, in a fixed order, with their spaces."""

    kind: str
    ids: list  # as the env spells them (RLlib allows any hashable id)
    observation_spaces: dict
    action_spaces: dict

    def line(self) -> str:
        """'multi-agent env: 3 agents, PettingZoo parallel': printed once at start."""
        return f"multi-agent env: {len(self.ids)} agents, {self.kind}"


def _is_instance(obj: Any, module: str, names: tuple[str, ...]) -> bool:
    """isinstance against classes of `module`, only when that module is already imported."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(obj, tuple(getattr(loaded, n) for n in names))


def kind_of(obj: Any) -> str | None:
    """The multi-agent kind of an env object (one of KINDS), or None for a single-agent env."""
    if _is_instance(obj, "pettingzoo.utils.env", ("ParallelEnv",)):
        return PARALLEL
    if _is_instance(obj, "pettingzoo.utils.env", ("AECEnv",)):
        return AEC
    if _is_instance(obj, "ray.rllib.env.multi_agent_env", ("MultiAgentEnv",)):
        return RLLIB
    if isinstance(obj, gymnasium.Env):
        return None
    if not (hasattr(obj, "reset") and hasattr(obj, "step")):
        return None
    if any(getattr(obj, name, None) for name in AGENT_ATTRIBUTES) or \
            isinstance(getattr(obj, "observation_spaces", None), dict):
        return DICT_API
    return None


def _ids(obj: Any, kind: str) -> list:
    """Agent ids in a stable order: PettingZoo's possible_agents, else RLlib's attributes,
    else the keys of the first observation (old dict-API envs often declare nothing)."""
    for name in AGENT_ATTRIBUTES:
        found = getattr(obj, name, None)
        if found:
            return sorted(found, key=str) if isinstance(found, (set, frozenset)) else list(found)
    spaces = getattr(obj, "observation_spaces", None)
    if isinstance(spaces, dict) and spaces:
        return list(spaces)
    if kind in (RLLIB, DICT_API):
        first = obj.reset()
        observations = first[0] if isinstance(first, tuple) else first
        if isinstance(observations, dict):
            return list(observations)
    return []


def _space(obj: Any, kind: str, agent: str, which: str):
    """One agent's observation ("observation") or action ("action") space, or None."""
    if kind in (PARALLEL, AEC):
        return getattr(obj, f"{which}_space")(agent)
    per_agent = getattr(obj, f"{which}_spaces", None)
    if isinstance(per_agent, dict):
        return per_agent.get(agent)
    getter = getattr(obj, f"get_{which}_space", None)
    if callable(getter):
        try:
            return getter(agent)
        except (KeyError, TypeError):
            pass
    whole = getattr(obj, f"{which}_space", None)
    if isinstance(whole, gymnasium.spaces.Dict) and agent in whole.spaces:
        return whole[agent]
    # One space for every agent (RLlib's old convention).
    return whole if not isinstance(whole, gymnasium.spaces.Dict) else None


def agents_of(obj: Any, kind: str, spec: str) -> Agents:
    """Every agent of a multi-agent env object with its spaces (Gymnasium spaces)."""
    from launcher.training.envs import to_gymnasium_space

    ids = _ids(obj, kind)
    if not ids:
        raise UserError(f"multi-agent env {spec!r} names no agents (set possible_agents)")
    observation_spaces, action_spaces = {}, {}
    for agent in ids:
        for which, into in (("observation", observation_spaces), ("action", action_spaces)):
            space = _space(obj, kind, agent, which)
            if space is None:
                raise UserError(f"agent {agent!r} of {spec!r} has no {which} space "
                                f"(set {which}_spaces: a dict from agent id to space)")
            into[agent] = to_gymnasium_space(space)
    return Agents(kind, list(ids), observation_spaces, action_spaces)


def pettingzoo_factory(module: Any):
    """The env factory of a PettingZoo env module (mpe2.simple_spread_v3), or None."""
    for name in PETTINGZOO_FACTORIES:
        factory = getattr(module, name, None)
        if callable(factory):
            return factory
    return None
