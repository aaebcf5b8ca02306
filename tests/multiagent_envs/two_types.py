"""An RLlib MultiAgentEnv with two kinds of agents (tests/test_multiagent*.py).

Two "scouts" see 3 numbers and choose among 2 actions; one "guard" sees 5 numbers and
chooses among 3. A scout is paid for matching the sign of its first observation, the
guard for choosing the action given by its observation's argmax over the first three:
both are learnable within a few iterations.
"""

import gymnasium as gym
import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv

SCOUTS = ("scout_0", "scout_1")
GUARD = "guard_0"


class TwoTypes(MultiAgentEnv):
    def __init__(self, config=None):
        super().__init__()
        config = config or {}
        self.length = int(config.get("length", 20))
        self.possible_agents = [*SCOUTS, GUARD]
        self.agents = list(self.possible_agents)
        scout_obs = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
        guard_obs = gym.spaces.Box(-1.0, 1.0, (5,), np.float32)
        self.observation_spaces = {a: scout_obs for a in SCOUTS} | {GUARD: guard_obs}
        self.action_spaces = {a: gym.spaces.Discrete(2) for a in SCOUTS} | {GUARD: gym.spaces.Discrete(3)}
        self.rng = np.random.default_rng()
        self.t = 0

    def _observe(self):
        self.obs = {a: self.rng.uniform(-1, 1, space.shape).astype(np.float32)
                    for a, space in self.observation_spaces.items()}
        return dict(self.obs)

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.t = 0
        return self._observe(), {}

    def step(self, action_dict):
        rewards = {}
        for agent, action in action_dict.items():
            if agent == GUARD:
                rewards[agent] = float(int(action) == int(np.argmax(self.obs[agent][:3])))
            else:
                rewards[agent] = float(int(action) == int(self.obs[agent][0] > 0))
        self.t += 1
        done = self.t >= self.length
        terminateds = {"__all__": done}
        truncateds = {"__all__": False}
        return self._observe(), rewards, terminateds, truncateds, {}
