"""A multi-agent env object made into what RLlib's new API stack samples from.

Runs on every env runner (imports RLlib). PettingZoo envs go through RLlib's own wrappers
(`ParallelPettingZooEnv`, `PettingZooEnv` for AEC). Everything else, an RLlib
`MultiAgentEnv` or an env written against RLlib's older dict API, goes through
`DictApiEnv`, which does for multi-agent envs what envs.LegacyGymEnv does for old gym:
`reset()` returning the observations only gets empty infos, a 4-tuple `step()` (one done
dict with `"__all__"`, no truncation) becomes Gymnasium's 5-tuple, and the per-agent
spaces the launcher read (multiagent.agents_of) are set the way RLlib asks for them
(`observation_spaces` / `action_spaces`, `possible_agents`), so an old env needs no
porting by hand.
"""

from __future__ import annotations

import inspect
from typing import Any

import gymnasium
from ray.rllib.env.multi_agent_env import MultiAgentEnv
from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv, PettingZooEnv

from launcher.training import multiagent

ALL = "__all__"  # RLlib's key for "the whole episode" in done dicts


class DictApiEnv(MultiAgentEnv):
    """An RLlib MultiAgentEnv around an env of RLlib's dict API, old (4-tuple) or new."""

    def __init__(self, env: Any, agents: multiagent.Agents):
        super().__init__()
        self.env = env
        self.possible_agents = list(agents.ids)
        self.agents = list(agents.ids)
        self.observation_spaces = dict(agents.observation_spaces)
        self.action_spaces = dict(agents.action_spaces)
        self.observation_space = gymnasium.spaces.Dict(self.observation_spaces)
        self.action_space = gymnasium.spaces.Dict(self.action_spaces)
        params = inspect.signature(env.reset).parameters
        self._reset_keywords = "seed" in params or any(
            p.kind is p.VAR_KEYWORD for p in params.values())

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        out = self.env.reset(seed=seed, options=options) if self._reset_keywords else self.env.reset()
        observations, infos = out if isinstance(out, tuple) else (out, {})
        self.agents = list(observations)
        return observations, infos or {}

    def step(self, action_dict):
        out = self.env.step(action_dict)
        if len(out) == 5:
            return out
        observations, rewards, dones, infos = out
        terminateds = dict(dones)
        terminateds.setdefault(ALL, all(terminateds.values()) if terminateds else False)
        truncateds = {agent: False for agent in terminateds}
        return observations, rewards, terminateds, truncateds, infos or {}

    def render(self):
        return self.env.render()

    def close(self):
        close = getattr(self.env, "close", None)
        if close:
            close()


def wrap(env: Any, agents: multiagent.Agents):
    """The RLlib env for a multi-agent env object of kind `agents.kind`."""
    if agents.kind == multiagent.PARALLEL:
        return ParallelPettingZooEnv(env)
    if agents.kind == multiagent.AEC:
        return PettingZooEnv(env)
    return DictApiEnv(env, agents)
