"""Every preset is a valid, consistent RLlib config. `launcher train`, `local` and `submit`
trust the presets without importing RLlib when the user set no keys of their own (RLlib's
import costs seconds), so this test is what stands behind them."""

from __future__ import annotations

import pytest

from launcher.training import algorithms, envs, rllib_config
from launcher.training.presets import PRESETS
from launcher.training.settings import TrainSettings
from tests.conftest import GYMNASIUM_ENV

FAMILY_ENVS = {("SAC", "classic"): "Pendulum-v1", ("DQN", "classic"): "CartPole-v1",
               ("PPO", "multiagent"): "mpe2.simple_spread_v3"}


@pytest.fixture(scope="module")
def default_family_env(tmp_path_factory):
    path = tmp_path_factory.mktemp("env") / "guess.py"
    path.write_text(GYMNASIUM_ENV)
    return f"{path}:GuessEnv"


@pytest.mark.parametrize("algo, family", sorted(PRESETS))
def test_preset_builds_a_config_rllib_validates(algo, family, default_family_env):
    env = FAMILY_ENVS.get((algo, family), "CartPole-v1" if family == "classic" else default_family_env)
    settings = TrainSettings(algo=algo, env=env).validate()
    info = envs.probe(settings.env)
    assert info.family == family
    config = rllib_config.build_config(settings, info, runners=1)
    config.validate()  # RLlib's own consistency checks (batch sizes, spaces...)
    for key, value in PRESETS[(algo, family)].items():
        if key != "num_env_runners" and (key in vars(config) or f"_{key}" in vars(config)):
            built = getattr(config, key)
            if isinstance(value, dict):  # RLlib merges a model_config into its defaults
                built = {name: built.get(name) for name in value}
            assert built == value, key


def test_every_algorithm_has_a_default_preset():
    assert {algo for algo, _ in PRESETS} == set(algorithms.ALGORITHM_TABLE)
    assert all((algo, "default") in PRESETS for algo in algorithms.ALGORITHM_TABLE)


@pytest.mark.parametrize("algo", sorted(algorithms.ALGORITHM_TABLE))
def test_a_time_limit_slices_every_iteration_made_of_short_steps(algo):
    """Under --stop-time, DQN/SAC/APPO/IMPALA iterations last 2 s (a quarter of a short
    limit); PPO's is one batch (training/deadline.py cuts it); a user's own iteration
    length is kept."""
    env = "Pendulum-v1" if algo == "SAC" else "CartPole-v1"
    settings = TrainSettings(algo=algo, env=env).validate()
    settings.stop.time_s = 4.0
    config = rllib_config.build_config(settings, envs.probe(env), runners=1)
    sliced = algo in algorithms.STEP_LOOPED
    assert sliced == (algo != "PPO")
    assert (config.min_time_s_per_iteration == 1.0) == sliced, config.min_time_s_per_iteration
    settings.config = {"min_time_s_per_iteration": 30}
    assert rllib_config.build_config(settings, envs.probe(env), runners=1).min_time_s_per_iteration == 30
