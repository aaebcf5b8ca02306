"""Which policy each agent of a multi-agent env acts with, and which policies learn.

`settings.policies` is "shared" (the default: one policy for every agent), "per-agent"
(one policy per agent, named after it), or groups from an experiment file: a mapping
from a policy name to glob patterns of agent ids (`{pursuers: [pursuer_*], evaders:
[evader_*]}`; an agent takes the first group that matches it). Agents whose observation
or action spaces differ cannot share a network: with "shared" they are split by space
into one policy each (named after their ids without the trailing number, `adversary_0`
-> `adversary`); a group that mixes spaces is refused. `settings.train_policies` names
the policies that learn (default: all); the others act with their initial weights.

`plan` does all the checking without RLlib (one line for a group that matches no agent,
an agent that matches no group, an unknown policy name); `configure` sets the plan on an
AlgorithmConfig of RLlib's new API stack (`multi_agent` and a MultiRLModuleSpec).
"""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass

from launcher.errors import UserError
from launcher.training.multiagent import Agents
from launcher.training.settings import PER_AGENT, SHARED, closest

TRAILING_NUMBER = re.compile(r"[_\-.]?\d+$")


@dataclass
class PolicyPlan:
    """Agent id -> policy id, the policies in order, and those that learn (None = all)."""

    mapping: dict
    policies: list[str]
    train: list[str] | None = None

    def agents_of(self, policy: str) -> list:
        return [agent for agent, owner in self.mapping.items() if owner == policy]

    def line(self) -> str:
        """'policies: adversary (3 agents), agent (1 agent)' (and which learn)."""
        parts = []
        for policy in self.policies:
            count = len(self.agents_of(policy))
            parts.append(f"{policy} ({count} agent{'s' if count != 1 else ''})")
        learn = f"; training {', '.join(self.train)}" if self.train else ""
        return "policies: " + ", ".join(parts) + learn


def _signature(agents: Agents, agent) -> tuple:
    return agents.observation_spaces[agent], agents.action_spaces[agent]


def _by_space(agents: Agents) -> dict[str, list]:
    """'shared': one group, or one per distinct pair of spaces when the agents differ."""
    kinds: list[tuple] = []
    for agent in agents.ids:
        if _signature(agents, agent) not in kinds:
            kinds.append(_signature(agents, agent))
    if len(kinds) == 1:
        return {SHARED: list(agents.ids)}
    groups: dict[str, list] = {}
    for index, kind in enumerate(kinds):
        members = [a for a in agents.ids if _signature(agents, a) == kind]
        name = TRAILING_NUMBER.sub("", str(members[0])) or f"{SHARED}_{index}"
        groups[name if name not in groups else f"{name}_{index}"] = members
    return groups


def _by_patterns(groups: dict, agents: Agents) -> dict[str, list]:
    """Glob groups from an experiment file; every group and every agent must match."""
    taken: dict[str, list] = {name: [] for name in groups}
    for agent in agents.ids:
        owner = next((name for name, patterns in groups.items()
                      if any(fnmatch.fnmatchcase(str(agent), p) for p in _patterns(patterns))), None)
        if owner is None:
            raise UserError(f"agent {agent!r} matches no policy group "
                            f"(groups: {', '.join(map(str, groups))})")
        taken[owner].append(agent)
    for name, members in taken.items():
        if not members:
            ids = ", ".join(map(str, agents.ids))
            raise UserError(f"policy group {name!r} ({', '.join(_patterns(groups[name]))}) "
                            f"matches no agent; agents: {ids}")
        first = _signature(agents, members[0])
        if any(_signature(agents, a) != first for a in members):
            raise UserError(f"policy group {name!r} mixes agents with different spaces: "
                            f"{', '.join(map(str, members))}")
    return taken


def _patterns(value) -> list[str]:
    return [value] if isinstance(value, str) else [str(p) for p in value]


def plan(settings, agents: Agents) -> PolicyPlan:
    """The policies of a multi-agent run; every mistake is one line, before Ray starts."""
    if settings.policies == SHARED:
        groups = _by_space(agents)
    elif settings.policies == PER_AGENT:
        groups = {str(agent): [agent] for agent in agents.ids}
    else:
        groups = _by_patterns(settings.policies, agents)
    mapping = {agent: name for name, members in groups.items() for agent in members}
    names = list(groups)
    for wanted in list(settings.train_policies or []) + [settings.stop.policy]:
        if wanted is not None and wanted not in names:
            raise UserError(f"unknown policy {wanted!r}; this run's policies: "
                            f"{', '.join(names)}{closest(str(wanted), names)}")
    return PolicyPlan(mapping, names, list(settings.train_policies) if settings.train_policies else None)


def policy_of(mapping: dict, agent_id, episode=None, **kwargs) -> str:
    """RLlib's policy_mapping_fn: the policy of one agent (the plan's mapping)."""
    return mapping[agent_id]


def configure(config, policy_plan: PolicyPlan) -> None:
    """Set the plan on an AlgorithmConfig: RLlib's new API stack, one RLModule per policy
    (spaces and model_config filled in by RLlib from the env and the config)."""
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    config.multi_agent(
        policies=set(policy_plan.policies),
        policy_mapping_fn=functools.partial(policy_of, dict(policy_plan.mapping)),
        policies_to_train=policy_plan.train,
    )
    config.rl_module(rl_module_spec=MultiRLModuleSpec(
        rl_module_specs={policy: RLModuleSpec() for policy in policy_plan.policies}))
