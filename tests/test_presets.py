"""Every preset is a valid RLlib config: `launcher train` trusts them without checking
(so that RLlib can be imported while Ray starts)."""

from __future__ import annotations

import pytest

from launcher import algorithms, train
from launcher.presets import PRESETS


@pytest.mark.parametrize("algo, family", sorted(PRESETS))
def test_preset_keys_are_valid_rllib_settings(algo, family):
    hyper = dict(PRESETS[(algo, family)])
    hyper.pop("num_env_runners", None)  # a launcher preference, sized at run time
    config = algorithms.config_class(algo)()
    train.apply_hyperparameters(config, hyper, f"preset {algo}/{family}")
    for key, value in hyper.items():
        if key in vars(config) or f"_{key}" in vars(config):
            assert getattr(config, key) == value, key


def test_every_algorithm_has_a_default_preset():
    assert {algo for algo, _ in PRESETS} == set(algorithms.ALGORITHM_TABLE)
    assert all((algo, "default") in PRESETS for algo in algorithms.ALGORITHM_TABLE)
