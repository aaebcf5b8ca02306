"""Settings validation and YAML round trips, without Ray."""

from __future__ import annotations

import pytest

from launcher.errors import UserError
from launcher.training.settings import Stop, TrainSettings, load_spec, read_yaml


def test_round_trip_through_spec_file(tmp_path):
    settings = TrainSettings(algo="dqn", env="CartPole-v0", stop=Stop(iters=5, reward=190.0),
                             config={"lr": 1e-3}, env_config={"a": 1}).validate()
    settings.write_spec(tmp_path)
    again = load_spec(tmp_path)
    assert again == settings and again.algo == "DQN"


def test_unknown_top_level_key_names_the_closest():
    with pytest.raises(UserError, match=r"unknown key 'algorithm' in x \(did you mean 'algo'\?\)"):
        TrainSettings.from_dict({"algorithm": "PPO"}, where="x")


def test_unknown_stop_key():
    with pytest.raises(UserError, match=r"unknown key 'iterations' in x: stop \(did you mean 'iters'"):
        TrainSettings.from_dict({"stop": {"iterations": 3}}, where="x")


def test_unknown_algorithm_lists_valid_ones():
    with pytest.raises(UserError, match=r"unknown algorithm 'PPPO'; valid: PPO, APPO, IMPALA, DQN, SAC"):
        TrainSettings(algo="PPPO").validate()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_cpus": 0}, "--num-cpus must be at least 1"),
        ({"num_gpus": -1}, "--num-gpus must be 0 or more"),
        ({"num_env_runners": -2}, "--num-env-runners must be 0 or more"),
        ({"stop": Stop(iters=-1)}, "stop criterion iters must be positive"),
        ({"stop": Stop(time_s=0)}, "stop criterion time_s must be positive"),
        ({"framework": "jax"}, "unknown framework 'jax'"),
    ],
)
def test_impossible_values_are_refused(kwargs, message):
    with pytest.raises(UserError, match=message):
        TrainSettings(**kwargs).validate()


def test_malformed_yaml_says_where(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("algo: PPO\nstop: {iters: 3\n")
    with pytest.raises(UserError, match=r"malformed YAML in .*bad.yaml at line 3"):
        read_yaml(path)


def test_spec_missing_is_not_a_run_dir(tmp_path):
    with pytest.raises(UserError, match="not a launcher run directory"):
        load_spec(tmp_path)
