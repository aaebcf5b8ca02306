"""Multi-agent envs without training: detection, agents' spaces, policy plans, the
adapters and the one-line refusals (real PettingZoo / mpe2 envs, real env files, no Ray
cluster; the tests that import RLlib are marked slow)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from launcher.errors import UserError
from launcher.training import envs, multiagent, policies
from launcher.training.settings import Stop, TrainSettings
from tests.conftest import REPO, assert_one_line_error, call_cli

ENV_FILES = REPO / "tests" / "multiagent_envs"
TWO_TYPES = f"{ENV_FILES}/two_types.py:TwoTypes"
OLD_DICT = f"{ENV_FILES}/old_dict_api.py:OldDictEnv"


def _plan(env: str, **settings):
    info = envs.probe(env, say=lambda line: None)
    return policies.plan(TrainSettings(env=env, **settings).validate(), info.agents)


@pytest.mark.parametrize("spec, kind", [
    ("mpe2.simple_spread_v3", multiagent.PARALLEL),
    ("mpe2.simple_spread_v3:parallel_env", multiagent.PARALLEL),
    ("mpe2.simple_spread_v3:env", multiagent.AEC),
    (OLD_DICT, multiagent.DICT_API),
])
def test_multiagent_kinds_are_detected_and_named_in_one_line(spec, kind):
    said = []
    info = envs.probe(spec, say=said.append)
    assert info.family == envs.MULTIAGENT_FAMILY
    assert info.agents.kind == kind
    assert said == [f"multi-agent env: {len(info.agents.ids)} agents, {kind}"]


def test_env_module_factory_takes_env_config_as_keywords():
    info = envs.probe("mpe2.simple_spread_v3", {"N": 2}, say=lambda line: None)
    assert info.agents.ids == ["agent_0", "agent_1"]


@pytest.mark.slow  # imports RLlib (~10 s), as the env file does
def test_rllib_multiagentenv_with_two_agent_types_gets_a_policy_per_type():
    plan = _plan(TWO_TYPES)
    assert plan.policies == ["scout", "guard"]
    assert plan.mapping == {"scout_0": "scout", "scout_1": "scout", "guard_0": "guard"}
    assert plan.line() == "policies: scout (2 agents), guard (1 agent)"


def test_shared_per_agent_and_glob_groups():
    assert _plan("mpe2.simple_spread_v3").policies == ["shared"]
    assert _plan("mpe2.simple_spread_v3", policies="per-agent").policies == [
        "agent_0", "agent_1", "agent_2"]
    plan = _plan("mpe2.simple_tag_v3", policies={"chasers": ["adversary_*"], "prey": "agent_*"},
                 train_policies=["prey"])
    assert plan.agents_of("chasers") == ["adversary_0", "adversary_1", "adversary_2"]
    assert plan.mapping["agent_0"] == "prey" and plan.train == ["prey"]


@pytest.mark.parametrize("settings, message", [
    ({"policies": {"pursuers": ["pursuer_*"], "all": ["*"]}},
     r"policy group 'pursuers' \(pursuer_\*\) matches no agent; agents: adversary_0"),
    ({"policies": {"chasers": ["adversary_*"]}}, "agent 'agent_0' matches no policy group"),
    ({"policies": {"everyone": ["*"]}}, "policy group 'everyone' mixes agents with different spaces"),
    ({"train_policies": ["advesary"]}, "unknown policy 'advesary'.*did you mean 'adversary'"),
    ({"stop": Stop(reward=1, policy="nobody")}, "unknown policy 'nobody'"),
])
def test_bad_policy_groups_are_one_line(settings, message):
    with pytest.raises(UserError, match=message):
        _plan("mpe2.simple_tag_v3", **settings)


def test_policies_flag_is_checked_before_the_env():
    with pytest.raises(UserError, match="unknown --policies 'per_agent'.*did you mean 'per-agent'"):
        TrainSettings(policies="per_agent").validate()
    with pytest.raises(UserError, match="stop: policy 'a' needs a reward"):
        TrainSettings(stop=Stop(policy="a")).validate()


@pytest.mark.slow  # imports RLlib (~10 s)
def test_old_dict_api_env_is_adapted_to_rllibs_five_tuple():
    from launcher.training.multiagent_env import DictApiEnv

    env = envs.make_env(OLD_DICT, {"agents": 3})
    assert isinstance(env, DictApiEnv)
    assert env.possible_agents == ["worker_0", "worker_1", "worker_2"]
    assert env.get_observation_space("worker_1") == gym.spaces.Box(0.0, 1.0, (1,), np.float32)
    obs, infos = env.reset(seed=1)
    assert set(obs) == set(env.possible_agents) and infos == {}
    for _ in range(10):
        obs, rewards, terminateds, truncateds, infos = env.step({a: 0 for a in obs})
    assert terminateds["__all__"] is True and truncateds["__all__"] is False
    assert set(rewards) == set(env.possible_agents)


@pytest.mark.slow  # imports RLlib (~10 s)
def test_pettingzoo_envs_become_rllib_wrappers():
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv, PettingZooEnv

    assert isinstance(envs.make_env("mpe2.simple_spread_v3"), ParallelPettingZooEnv)
    assert isinstance(envs.make_env("mpe2.simple_spread_v3:env"), PettingZooEnv)


def test_agents_without_spaces_and_non_envs_are_refused_in_one_line(capsys, tmp_path):
    code, out, err = call_cli(capsys, "train", "--env", f"{ENV_FILES}/no_spaces.py:NoSpaces")
    assert_one_line_error(code, err, "agent 'a_0' of", "has no observation space "
                          "(set observation_spaces: a dict from agent id to space)")
    not_env = tmp_path / "not_env.py"
    not_env.write_text("def make(config=None):\n    return 42\n")
    code, out, err = call_cli(capsys, "train", "--env", f"{not_env}:make")
    assert_one_line_error(code, err, "did not build an environment, single- or multi-agent (got int)")


def test_policies_on_a_single_agent_env_are_refused(capsys):
    code, out, err = call_cli(capsys, "train", "--env", "CartPole-v1", "--policies", "per-agent")
    assert_one_line_error(code, err, "policies apply to multi-agent envs only")


def test_an_env_module_of_ones_own_ships_with_the_job_and_loads_from_code(tmp_path):
    from launcher.cluster.code_snapshot import plan_copy, ship_code

    package = tmp_path / "src" / "myzoo"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "spread_v0.py").write_text("from mpe2.simple_spread_v3 import env, parallel_env  # noqa\n")
    assert plan_copy("mpe2.simple_spread_v3", None) is None  # installed: in the image already
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    env, code = ship_code("myzoo.spread_v0", run_dir, tmp_path / "src")
    assert env == "myzoo.spread_v0" and (run_dir / "code" / "myzoo" / "spread_v0.py").is_file()
    info = envs.probe(env, {"N": 2}, code, say=lambda line: None)
    assert info.agents.kind == multiagent.PARALLEL and info.agents.ids == ["agent_0", "agent_1"]
