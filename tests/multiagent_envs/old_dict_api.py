"""A multi-agent env written against RLlib's older dict API (tests/test_multiagent*.py):
no base class, `reset()` returns the observations only, `step()` returns 4 dicts with
`"__all__"` in the done dict and no truncation, one observation and one action space for
every agent, the agents named by `_agent_ids`. Each agent is paid for repeating the bit
it observes."""

import gymnasium as gym
import numpy as np


class OldDictEnv:
    def __init__(self, config=None):
        self.num_agents = int((config or {}).get("agents", 2))
        self._agent_ids = {f"worker_{i}" for i in range(self.num_agents)}
        self.observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.rng = np.random.default_rng(0)
        self.t = 0

    def _observe(self):
        self.bits = {a: int(self.rng.integers(2)) for a in self._agent_ids}
        return {a: np.array([bit], np.float32) for a, bit in self.bits.items()}

    def reset(self):
        self.t = 0
        return self._observe()

    def step(self, action_dict):
        rewards = {a: float(int(action) == self.bits[a]) for a, action in action_dict.items()}
        self.t += 1
        done = self.t >= 10
        dones = {a: done for a in action_dict}
        dones["__all__"] = done
        return self._observe(), rewards, dones, {}
