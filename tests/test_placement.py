"""launcher/cluster/placement.py: which actors run where."""

from launcher.cluster import placement


def test_actor_kinds():
    assert placement.actor_kind("SingleAgentEnvRunner") == "env_runner"
    assert placement.actor_kind("create_executable_class.<locals>._WrappedExecutable") == "learner"
    assert placement.actor_kind("PPOTorchLearner") == "learner"
    assert placement.actor_kind("SomethingElse") == "other"


def test_placement_line():
    actors = [{"kind": "env_runner", "role": "rollout", "host": "b"},
              {"kind": "env_runner", "role": "rollout", "host": "a"},
              {"kind": "learner", "role": "learner", "host": "g"}]
    assert placement.placement_line(actors) == ("placement: env_runner on rollout a, rollout b; "
                                                "learner on learner g")
