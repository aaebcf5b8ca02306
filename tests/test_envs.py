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


# --- ids as tutorial-era files write them (env_ids.py) --------------------------------
@pytest.mark.parametrize("old, new", [("Pendulum-v0", "Pendulum-v1"), ("LunarLander-v2", "LunarLander-v3"),
                                      ("FrozenLake-v0", "FrozenLake-v1"), ("Taxi-v2", "Taxi-v3")])
def test_versions_gymnasium_renamed_resolve_with_a_notice(old, new):
    from launcher.training import env_ids

    resolved = env_ids.resolve(old)
    assert resolved.env_id == new
    assert resolved.notice == f"env {old} → {new} (Gymnasium renamed it)"


def test_current_and_still_registered_ids_resolve_to_themselves():
    from launcher.training import env_ids

    for env_id in ("CartPole-v0", "CartPole-v1", "MountainCarContinuous-v0"):
        assert env_ids.resolve(env_id) == env_ids.Resolved(env_id)


def test_mujoco_py_ids_go_to_the_newest_version():
    from launcher.training import env_ids

    resolved = env_ids.resolve("HalfCheetah-v3")
    assert resolved.env_id == "HalfCheetah-v5" and "mujoco-py" in resolved.notice


def test_probe_of_a_renamed_id_says_so_and_builds_the_new_one():
    notices = []
    info = envs.probe("Pendulum-v0", say=notices.append)
    assert notices == ["env Pendulum-v0 → Pendulum-v1 (Gymnasium renamed it)"]
    assert info.family == "classic" and info.reward_threshold is None
    assert envs.make_env("Pendulum-v0").spec.id == "Pendulum-v1"


@pytest.mark.parametrize("spec", ["ALE/Pong-v5", "PongNoFrameskip-v4", "BreakoutDeterministic-v4"])
def test_an_atari_id_without_ale_py_names_the_package(spec):
    import importlib.util

    if importlib.util.find_spec("ale_py") is not None:
        pytest.skip("ale-py is installed here")
    with pytest.raises(UserError) as caught:
        envs.probe(spec)
    assert str(caught.value) == f"{spec} is an Atari env, which needs the ale_py package: pip install ale-py"
    assert "did you mean" not in str(caught.value)


def test_a_file_without_its_class_says_the_class_is_missing(tmp_path, old_env_file):
    with pytest.raises(UserError, match=r"--env my_env.py names a file but not the env class in it: "
                                        r"write my_env.py:ClassName$"):
        envs.probe("my_env.py")
    with pytest.raises(UserError, match=r"write .*custom_env.py:ClassName \(it defines BasicEnv\)"):
        envs.probe(str(old_env_file))


def test_unknown_ids_still_suggest_the_closest_and_never_a_lower_version():
    with pytest.raises(UserError, match=r"unknown environment id 'Pendulum-v7'.*did you mean 'Pendulum-v1'"):
        envs.probe("Pendulum-v7")


# --- max_episode_steps (an old config's horizon) ---------------------------------------
def _episode_length(env) -> int:
    env.reset(seed=0)
    for steps in range(1, 10_000):
        _obs, _reward, terminated, truncated, _info = env.step(env.action_space.sample())
        if terminated or truncated:
            return steps
    return -1


def test_max_episode_steps_truncates_a_gymnasium_id_and_an_entry_point(tmp_path, old_env_file):
    assert _episode_length(envs.make_env("Pendulum-v1")) == 200
    assert _episode_length(envs.make_env("Pendulum-v1", max_episode_steps=17)) == 17
    path = tmp_path / "guess.py"
    path.write_text(GYMNASIUM_ENV)  # episodes of 5 steps
    assert _episode_length(envs.make_env(f"{path}:GuessEnv", max_episode_steps=3)) == 3
    legacy = envs.make_env(f"{old_env_file}:BasicEnv", max_episode_steps=3)
    assert isinstance(legacy.unwrapped, envs.LegacyGymEnv)


def test_rllib_gets_a_registered_creator_only_where_one_is_needed(tmp_path):
    from ray.tune.registry import ENV_CREATOR, _global_registry

    assert envs.rllib_env_name("CartPole-v1") == "CartPole-v1"
    name = envs.rllib_env_name("Pendulum-v1", max_episode_steps=50)
    assert name == "Pendulum-v1 (max 50 steps)"
    env = _global_registry.get(ENV_CREATOR, name)({})
    assert _episode_length(env) == 50
    renamed = envs.rllib_env_name("Pendulum-v0")
    assert _global_registry.get(ENV_CREATOR, renamed)({}).spec.id == "Pendulum-v1"


def test_an_old_gym_env_loads_without_the_gym_banner(old_env_file):
    """gym prints 'Gym has been unmaintained...' on stderr when imported; not through us."""
    code = (f"from launcher.training import envs\n"
            f"env = envs.make_env({str(old_env_file) + ':BasicEnv'!r})\n"
            "import gym\nprint(type(env).__name__)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "LegacyGymEnv"
    assert "unmaintained" not in proc.stderr and "Gym" not in proc.stderr, proc.stderr
