"""Simulator-like envs for the speed benchmarks and the time-limit test: CartPole whose
step costs a set wall time, either waiting (`SleepyCartPole`: a simulator waiting on I/O
or another process) or computing (`BusyCartPole`: a CPU-bound simulator).

    launcher train --env bench/slow_envs.py:SleepyCartPole --env-config step_ms=5
"""

from __future__ import annotations

import time

from gymnasium.envs.classic_control.cartpole import CartPoleEnv

MAX_STEPS = 500  # CartPole-v1's episode limit


class _TimedCartPole(CartPoleEnv):
    def __init__(self, config: dict | None = None, step_ms: float = 5.0, **kwargs):
        super().__init__(**kwargs)
        self.step_s = float((config or {}).get("step_ms", step_ms)) / 1000.0
        self.steps = 0

    def reset(self, *, seed=None, options=None):
        self.steps = 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        self.spend()
        self.steps += 1
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated, truncated or self.steps >= MAX_STEPS, info

    def spend(self) -> None:
        raise NotImplementedError


class SleepyCartPole(_TimedCartPole):
    """CartPole-v1 whose every step sleeps `step_ms` milliseconds."""

    def spend(self) -> None:
        time.sleep(self.step_s)


class BusyCartPole(_TimedCartPole):
    """CartPole-v1 whose every step keeps a core busy for `step_ms` milliseconds."""

    def spend(self) -> None:
        until = time.perf_counter() + self.step_s
        while time.perf_counter() < until:
            pass
