"""GridEnv: walk right along a corridor (gridpkg.world) to the goal; Gymnasium API."""

import gymnasium as gym
import numpy as np

from gridpkg.world import World


class GridEnv(gym.Env):
    """Reward 1 at the goal, -0.01 per step; at most 4 * size steps. env_config: size."""

    def __init__(self, config=None):
        self.size = int((config or {}).get("size", 6))
        self.world = World(self.size)
        self.action_space = gym.spaces.Discrete(2)  # 0: left, 1: right
        self.observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
        self.steps = 0

    def _obs(self):
        return np.array([self.world.position / (self.size - 1)], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.world = World(self.size)
        self.steps = 0
        return self._obs(), {}

    def step(self, action):
        self.steps += 1
        done = self.world.move(1 if int(action) == 1 else -1)
        reward = 1.0 if done else -0.01
        return self._obs(), reward, done, self.steps >= 4 * self.size, {}
