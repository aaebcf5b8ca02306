"""Env resolution and the old-gym adapter, without Ray."""

from __future__ import annotations

import subprocess
import sys

import gymnasium
import numpy as np
import pytest

from launcher.errors import UserError
from launcher.training import envs
from tests.conftest import GYMNASIUM_ENV, REPO


@pytest.fixture
def old_env_file():
    """The tutorial's BasicEnv, exactly as the tutorial writes it (old gym API)."""
    return REPO / "examples" / "custom_env.py"


def test_gymnasium_id_probe_reads_spaces_and_threshold():
    info = envs.probe("CartPole-v1")
    assert isinstance(info.action_space, gymnasium.spaces.Discrete)
    assert info.reward_threshold == 475.0
    assert info.family == "classic"


def test_unknown_id_suggests_the_closest():
    with pytest.raises(UserError, match=r"unknown environment id 'CartPole-v9'.*did you mean 'CartPole-v"):
        envs.probe("CartPole-v9")


def test_old_gym_env_from_file_is_adapted(old_env_file):
    env = envs.make_env(f"{old_env_file}:BasicEnv")
    assert isinstance(env, envs.LegacyGymEnv)
    assert env.action_space == gymnasium.spaces.Discrete(5)
    assert env.observation_space == gymnasium.spaces.Discrete(2)
    obs, info = env.reset(seed=3)
    assert (obs, info) == (0, {})
    assert env.step(2) == (1, 1, True, False, {})
    assert env.step(0)[1] == -1


def test_old_gym_truncation_flag_becomes_truncated():
    class Old:
        action_space = gymnasium.spaces.Discrete(2)
        observation_space = gymnasium.spaces.Discrete(2)

        def reset(self):
            return 0

        def step(self, action):
            return 1, 0.5, True, {"TimeLimit.truncated": True, "k": 1}

    env = envs.LegacyGymEnv(Old())
    assert env.step(0) == (1, 0.5, False, True, {"k": 1})


def test_gym_026_style_env_passes_seed_and_keeps_info():
    class New026:
        action_space = gymnasium.spaces.Discrete(2)
        observation_space = gymnasium.spaces.Box(-1, 1, (1,))

        def reset(self, seed=None, options=None):
            self.seed_seen = seed
            return np.zeros(1), {"seeded": seed}

        def step(self, action):
            return np.zeros(1), 1.0, False, True, {}

    inner = New026()
    env = envs.LegacyGymEnv(inner)
    assert env.reset(seed=7)[1] == {"seeded": 7}
    assert inner.seed_seen == 7
    assert env.step(1)[3] is True


def test_gym_spaces_are_converted():
    import gym

    space = gym.spaces.Dict({"a": gym.spaces.Box(0, 1, (3,)), "b": gym.spaces.MultiDiscrete([2, 3])})
    converted = envs.to_gymnasium_space(space)
    assert isinstance(converted, gymnasium.spaces.Dict)
    assert converted["a"].shape == (3,)
    assert list(converted["b"].nvec) == [2, 3]


def test_file_entry_point_gets_env_config(tmp_path):
    path = tmp_path / "guess.py"
    path.write_text(GYMNASIUM_ENV)
    env = envs.make_env(f"{path}:GuessEnv", {"target": 3})
    env.reset()
    assert env.step(3)[1] == 1.0 and env.step(0)[1] == 0.0


def test_module_entry_point():
    env = envs.make_env("gymnasium.envs.classic_control.cartpole:CartPoleEnv")
    assert env.action_space.n == 2


@pytest.mark.parametrize(
    "spec, message",
    [
        ("no_such_module_xyz:Env", "cannot import module 'no_such_module_xyz'"),
        ("/nonexistent/dir/env.py:Env", "environment file not found"),
        ("gymnasium.envs.classic_control.cartpole:CartPol", "did you mean 'CartPoleEnv'"),
    ],
)
def test_entry_point_errors_are_one_line(spec, message):
    with pytest.raises(UserError, match=message):
        envs.probe(spec)


def test_env_that_fails_to_construct_names_the_file_line(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("class Broken:\n    def __init__(self, config):\n        raise ValueError('no map')\n")
    with pytest.raises(UserError, match=r"failed to construct \(broken.py:3\): ValueError: no map"):
        envs.probe(f"{path}:Broken")


def test_file_that_does_not_import(tmp_path):
    path = tmp_path / "syntax.py"
    path.write_text("def broken(:\n")
    with pytest.raises(UserError, match="cannot import .*syntax.py: SyntaxError"):
        envs.probe(f"{path}:Env")


# --- code: the directory an entry point is imported from (a cluster job's snapshot) ---
def two_module_package(root):
    """gpkg/{world,env}.py under root, env importing world by absolute name."""
    (root / "gpkg").mkdir(parents=True)
    (root / "gpkg" / "__init__.py").write_text("")
    (root / "gpkg" / "world.py").write_text("TARGET = 1\n")
    (root / "gpkg" / "env.py").write_text(GYMNASIUM_ENV.replace(
        'int(config.get("target", 0))', 'int(config.get("target", TARGET))')
        + "\nfrom gpkg.world import TARGET\n")
    return root


def test_code_is_put_first_on_the_path_before_the_import(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    code = two_module_package(tmp_path / "code")
    cls = envs.load_class("gpkg.env:GuessEnv", str(code))
    assert sys.path[0] == str(code)
    assert cls.__module__ == "gpkg.env"
    for name in ("gpkg", "gpkg.env", "gpkg.world"):
        sys.modules.pop(name, None)


def test_registered_creator_carries_code_to_another_process(tmp_path, monkeypatch):
    """What an env runner on another node gets: the creator RLlib stores (pickled), called
    in a process whose sys.path knows nothing of the code."""
    from ray import cloudpickle  # how Ray stores the creator
    from ray.tune import registry

    code = two_module_package(tmp_path / "code")
    registered = {}
    monkeypatch.setattr(registry, "register_env", lambda name, fn: registered.update({name: fn}))
    assert envs.rllib_env_name("gpkg.env:GuessEnv", str(code)) == "gpkg.env:GuessEnv"
    blob = tmp_path / "creator.pkl"
    blob.write_bytes(cloudpickle.dumps(registered["gpkg.env:GuessEnv"]))
    script = ("import pickle, sys, inspect\n"
              "env = pickle.loads(open(sys.argv[1], 'rb').read())({'target': 3})\n"
              "print(inspect.getfile(type(env)), env.target)\n")
    proc = subprocess.run([sys.executable, "-c", script, str(blob)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(code / "gpkg" / "env.py"), "3"]
