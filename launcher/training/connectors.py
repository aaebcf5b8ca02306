"""What the launcher puts around the user's env in RLlib: the env itself (with Gymnasium's
TimeLimit where a run has `max_episode_steps`, an old config's `horizon`) and the
env-to-module connectors (FlattenObservations for observations that are not a Box,
MeanStdFilter where a run has `observation_filter: MeanStdFilter`).

`attach(config, settings, info)` is the one call rllib_config makes. On the new API stack
(torch) the filter is a connector whose running mean and std RLlib merges across env
runners and keeps in checkpoints; on the old stack (tf2) `observation_filter` stays an
RLlib key (legacy.py keeps it in the config) and only the TimeLimit applies here.
"""

from __future__ import annotations

import functools

from launcher.training import envs

FLATTEN, MEAN_STD = "FlattenObservations", "MeanStdFilter"
OBSERVATION_FILTERS = (MEAN_STD,)


def pieces(settings, info: envs.EnvInfo) -> list[str]:
    """The env-to-module connectors a run needs, in pipeline order (new API stack)."""
    if settings.framework != "torch":
        return []
    out = []
    spaces = info.agents.observation_spaces.values() if info.agents else [info.observation_space]
    if any(type(space).__name__ != "Box" for space in spaces):
        out.append(FLATTEN)  # Discrete / Tuple / Dict observations: one-hot and flatten
    if settings.observation_filter == MEAN_STD:
        out.append(MEAN_STD)
    return out


def build(names: tuple[str, ...], multi_agent: bool = False, env=None, spaces=None,
          device=None) -> list:
    """RLlib's `env_to_module_connector(env, spaces, device)`: fresh connector pieces
    (per agent, for a multi-agent env)."""
    from ray.rllib.connectors.env_to_module import FlattenObservations, MeanStdFilter

    classes = {FLATTEN: FlattenObservations, MEAN_STD: MeanStdFilter}
    return [classes[name](multi_agent=multi_agent) for name in names]


def attach(config, settings, info: envs.EnvInfo) -> None:
    """Set the env (registered with its TimeLimit where needed) and the env-to-module
    connectors of `settings` on the AlgorithmConfig `config`."""
    env = envs.rllib_env_name(settings.env, settings.code, settings.max_episode_steps)
    config.environment(env=env, env_config=settings.env_config)
    names = pieces(settings, info)
    if names:
        config.env_runners(env_to_module_connector=functools.partial(
            build, tuple(names), info.agents is not None))
