"""Envs in flight per env runner, from the step time measured at the env probe.

An env runner steps its envs one after another and runs the policy between steps, so an
env that waits (a simulator on another process, I/O) leaves the runner's CPU idle. When
the probe finds a step slow and mostly waiting, several envs run per env runner as a
Gymnasium async vector env: each in a process of its own, stepped in parallel, the
policy batched over them. A slow step that computes gains nothing from that on the same
CPU (more rollout CPUs help instead), so the presets stay. A user who set
`num_envs_per_env_runner` or `gym_env_vectorize_mode` keeps what they set.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

SLOW_STEP_S = 0.0005  # about an env runner's own cost per step (policy, connectors)
WAITING_SHARE = 0.5  # below this share of the step on this process's CPU, the env waits
ENVS_IN_FLIGHT = 8
USER_KEYS = ("num_envs_per_env_runner", "gym_env_vectorize_mode")


def choice(settings, info) -> tuple[dict[str, Any], str | None]:
    """(the keys to set, the line that says why); ({}, None) when nothing changes."""
    step_s, cpu_share = getattr(info, "step_s", None), getattr(info, "step_cpu_share", None)
    if step_s is None or cpu_share is None or step_s < SLOW_STEP_S:
        return {}, None
    measured = f"env steps take {1000 * step_s:.1f} ms, {100 * cpu_share:.0f} % of it on the CPU"
    if any(key in settings.config for key in USER_KEYS):
        return {}, None
    if cpu_share >= WAITING_SHARE:
        return {}, (f"{measured} (computing): one env at a time per env runner; more rollout "
                    f"CPUs or nodes add throughput")
    keys = {"num_envs_per_env_runner": ENVS_IN_FLIGHT, "gym_env_vectorize_mode": "async"}
    return keys, (f"{measured} (waiting): {ENVS_IN_FLIGHT} envs per env runner, stepped in "
                  f"parallel (async vector env); --set num_envs_per_env_runner=N to choose")


# --- the probe's measurement --------------------------------------------------------------
PROBE_STEPS, PROBE_BUDGET_S = 10, 0.5


def time_steps(env) -> tuple[float | None, float | None]:
    """(median wall seconds of a step, share of the steps' time on this process's CPU,
    relative to the share it gets at all)
    over up to PROBE_STEPS random steps or PROBE_BUDGET_S; (None, None) when the env
    cannot be stepped here (it will say why when training steps it)."""
    walls, cpu = [], 0.0
    try:
        env.reset(seed=0)
        deadline = time.perf_counter() + PROBE_BUDGET_S
        while len(walls) < PROBE_STEPS and time.perf_counter() < deadline:
            action = env.action_space.sample()
            wall, proc = time.perf_counter(), time.process_time()
            _, _, terminated, truncated, _ = env.step(action)
            walls.append(time.perf_counter() - wall)
            cpu += time.process_time() - proc
            if terminated or truncated:
                env.reset()
    except Exception:
        return None, None
    if not walls:
        return None, None
    share = cpu / max(sum(walls), 1e-9) / _cpu_available(min(sum(walls), 0.05))
    return statistics.median(walls), min(share, 1.0)


def _cpu_available(seconds: float) -> float:
    """The share of a core this process gets while computing now (below 1 when other
    jobs share the cores), so a computing env is not taken for a waiting one."""
    wall, proc = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        pass
    return max((time.process_time() - proc) / max(time.perf_counter() - wall, 1e-9), 0.05)
