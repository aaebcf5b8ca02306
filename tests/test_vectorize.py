"""Envs in flight per env runner, chosen from the step time the probe measures: real envs
from bench/slow_envs.py (a step that sleeps, a step that computes)."""

from __future__ import annotations

import json

import pytest

from launcher.training import envs, vectorize
from launcher.training.settings import TrainSettings
from tests.conftest import REPO, only_run_dir, run_launcher

SLOW_ENVS = str(REPO / "bench" / "slow_envs.py")


def probed(cls: str, step_ms: float, **config) -> tuple[TrainSettings, envs.EnvInfo]:
    settings = TrainSettings(env=f"{SLOW_ENVS}:{cls}", env_config={"step_ms": step_ms}, config=config)
    return settings, envs.probe(settings.env, settings.env_config, settings.code)


def test_a_waiting_env_gets_envs_stepped_in_parallel_and_says_why():
    settings, info = probed("SleepyCartPole", 5)
    assert info.step_s == pytest.approx(0.005, abs=0.004) and info.step_cpu_share < 0.5
    keys, why = vectorize.choice(settings, info)
    assert keys == {"num_envs_per_env_runner": vectorize.ENVS_IN_FLIGHT, "gym_env_vectorize_mode": "async"}
    assert "waiting" in why and "num_envs_per_env_runner" in why


def test_a_computing_env_keeps_one_env_per_runner():
    settings, info = probed("BusyCartPole", 5)
    keys, why = vectorize.choice(settings, info)
    assert keys == {} and "computing" in why


def test_a_fast_env_and_the_users_own_choice_are_left_alone():
    settings = TrainSettings(env="CartPole-v1")
    info = envs.probe(settings.env)
    assert info.step_s < vectorize.SLOW_STEP_S and vectorize.choice(settings, info) == ({}, None)
    settings, info = probed("SleepyCartPole", 5, num_envs_per_env_runner=2)
    assert vectorize.choice(settings, info) == ({}, None)


@pytest.mark.slow
def test_training_a_waiting_env_runs_the_chosen_vector_env(tmp_path):
    proc = run_launcher("train", "--env", f"{SLOW_ENVS}:SleepyCartPole", "--env-config", "step_ms=5",
                        "--stop-iters", "1", "--set", "train_batch_size_per_learner=400",
                        "--set", "minibatch_size=100", "--num-env-runners", "0", "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(waiting): 8 envs per env runner" in proc.stderr
    config = json.loads((only_run_dir(tmp_path) / "config.json").read_text())
    assert config["num_envs_per_env_runner"] == 8 and config["gym_env_vectorize_mode"] == "async"
