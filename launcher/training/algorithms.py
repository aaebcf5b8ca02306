"""Which RLlib algorithms the launcher runs, and which action spaces each handles.

The config class is imported by module path, not through `Tuner("PPO")`, which
imports every algorithm RLlib has (one of them needs Pillow).
"""

from __future__ import annotations

import importlib

from launcher.errors import UserError

# name -> (module, config class, action spaces it handles)
ALGORITHM_TABLE = {
    "PPO": ("ray.rllib.algorithms.ppo", "PPOConfig", ("Discrete", "Box", "MultiDiscrete")),
    "APPO": ("ray.rllib.algorithms.appo", "APPOConfig", ("Discrete", "Box", "MultiDiscrete")),
    "IMPALA": ("ray.rllib.algorithms.impala", "IMPALAConfig", ("Discrete", "Box", "MultiDiscrete")),
    "DQN": ("ray.rllib.algorithms.dqn", "DQNConfig", ("Discrete",)),
    "SAC": ("ray.rllib.algorithms.sac", "SACConfig", ("Box", "Discrete")),
}

# Algorithms whose iteration is many short training steps (DQN, SAC: sample a few env
# steps, update from the replay buffer; APPO, IMPALA: collect the env runners' finished
# fragments, update asynchronously): their iterations can be cut by time
# (rllib_config.time_slices).
STEP_LOOPED = ("DQN", "SAC", "APPO", "IMPALA")
# Algorithms that learn from a replay buffer (offpolicy.py can feed them from a flat one).
REPLAY_BASED = ("DQN", "SAC")


def check_action_space(algo: str, action_space) -> None:
    """Refuse an action space the algorithm cannot handle, before Ray starts."""
    kinds = ALGORITHM_TABLE[algo][2]
    kind = type(action_space).__name__
    if kind not in kinds:
        raise UserError(
            f"{algo} cannot handle the action space {action_space} ({kind}); "
            f"it handles {', '.join(kinds)}"
        )


def config_class(algo: str):
    module, name, _ = ALGORITHM_TABLE[algo]
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:  # pragma: no cover - broken install
        raise UserError(f"cannot import RLlib's {algo}: {exc}") from None
