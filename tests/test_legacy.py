"""launcher/legacy.py: every entry of the translation table, checked against RLlib 2.60."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from launcher.errors import UserError
from launcher.training import algorithms, legacy
from launcher.training.legacy import (
    LEGACY,
    MODEL_KEYS,
    STOP_KEYS,
    Dropped,
    Gone,
    Launcher,
    Nested,
    Rename,
)

REPO = Path(__file__).resolve().parent.parent

# A value that exercises each key's rule (3 for everything else).
SAMPLE = {
    "framework": "tf",
    "prioritized_replay": True,
    "observation_filter": "MeanStdFilter",
    "exploration_config": {"type": "EpsilonGreedy"},
    "custom_resources_per_worker": {"special": 1},
    "model_config_dict": {"fcnet_hiddens": [8]},
    "env": "CartPole-v0",
    "env_config": {"size": 3},
}


def sample(key: str):
    return SAMPLE.get(key, 3)


def _set_at(config: dict, target: str):
    head, _, sub = target.partition(".")
    return config[head][sub] if sub else config[head]


# --- every entry of LEGACY ---------------------------------------------------------------
@pytest.mark.parametrize("key", sorted(k for k, r in LEGACY.items() if isinstance(r, Rename)))
def test_renamed_key_is_translated_with_one_notice(key):
    rule = LEGACY[key]
    value = sample(key)
    out = legacy.translate({key: value}, "test.yaml")
    expected = rule.value(value) if rule.value else value
    assert _set_at(out.config, rule.new) == expected
    for extra_key, extra_value in rule.also.items():
        assert out.config[extra_key] == extra_value
    assert key not in out.config or rule.new == key
    assert len(out.notices) == 1 and out.notices[0].startswith(f"{key} → {rule.new}"), out.notices
    assert out.settings == {}


@pytest.mark.parametrize("key", sorted(k for k, r in LEGACY.items() if isinstance(r, Rename)))
def test_renamed_key_on_the_old_api_stack(key):
    rule = LEGACY[key]
    target = rule.old_stack or rule.new
    out = legacy.translate({key: sample(key)}, "test.yaml", stack=legacy.OLD_STACK)
    assert _set_at(out.config, target) == (rule.value(sample(key)) if rule.value else sample(key))
    if target == key:
        assert out.notices == []
    else:
        assert len(out.notices) == 1 and out.notices[0].startswith(f"{key} → {target}")


@pytest.mark.parametrize("key", sorted(k for k, r in LEGACY.items() if isinstance(r, Launcher)))
def test_launcher_keys_become_launcher_settings(key):
    rule = LEGACY[key]
    value = sample(key)
    out = legacy.translate({key: value}, "test.yaml")
    assert out.config == {}
    assert out.settings == {rule.field: rule.value(value) if rule.value else value}
    # In an override dict (evaluation_config) they stay RLlib keys.
    assert legacy.translate({key: value}, "x", nested=True).config == {key: value}


@pytest.mark.parametrize("key", sorted(k for k, r in LEGACY.items() if isinstance(r, Dropped)))
def test_dropped_keys_leave_a_notice(key):
    out = legacy.translate({key: True}, "test.yaml")
    assert out.config == {} and out.settings == {}
    assert out.notices == [f"{key} → (dropped: {LEGACY[key].why})"]


@pytest.mark.parametrize("key", sorted(k for k, r in LEGACY.items() if isinstance(r, Gone)))
def test_gone_keys_are_refused_saying_why(key):
    with pytest.raises(UserError) as caught:
        legacy.translate({key: sample(key)}, "test.yaml")
    message = str(caught.value)
    assert "\n" not in message
    assert repr(key) in message and "test.yaml" in message and LEGACY[key].why in message


@pytest.mark.parametrize("key", sorted(k for k, r in LEGACY.items()
                                       if isinstance(r, (Gone, Launcher)) and r.new_stack_only))
def test_new_stack_only_entries_stay_rllib_keys_on_the_old_stack(key):
    out = legacy.translate({key: sample(key)}, "test.yaml", stack=legacy.OLD_STACK)
    assert out.config == {key: sample(key)} and out.settings == {}


@pytest.mark.parametrize("key", sorted(k for k, r in LEGACY.items() if isinstance(r, Gone) and r.harmless))
def test_harmless_values_of_gone_keys_are_dropped_with_a_notice(key):
    for value in LEGACY[key].harmless:
        out = legacy.translate({key: value}, "x")
        assert out.config == {} and out.notices == [f"{key}: {value} → (dropped: changes nothing)"]


# --- the translations RLlib's tuned examples need ---------------------------------------
def test_horizon_becomes_a_time_limit_setting():
    out = legacy.translate({"horizon": 200, "soft_horizon": False, "no_done_at_end": True}, "x")
    assert out.config == {} and out.settings == {"max_episode_steps": 200}
    assert out.notices[0] == ("horizon → max_episode_steps (a TimeLimit wrapper the launcher adds "
                              "around the env)")
    assert out.notices[1] == "soft_horizon: False → (dropped: changes nothing)"
    assert out.notices[2].startswith("no_done_at_end → (dropped: ")
    assert legacy.translate({"horizon": None}, "x").settings == {"max_episode_steps": None}
    for bad in (0, -5, 2.5, True, "200"):
        with pytest.raises(UserError, match=r"horizon: .* in x: a horizon is a whole number of steps"):
            legacy.translate({"horizon": bad}, "x")
    with pytest.raises(UserError, match="'soft_horizon' in x has no equivalent"):
        legacy.translate({"soft_horizon": True}, "x")


@pytest.mark.parametrize("value, setting, notice", [
    ("MeanStdFilter", "MeanStdFilter", "observation_filter: MeanStdFilter → an env-to-module connector"),
    ("ConcurrentMeanStdFilter", "MeanStdFilter",
     "observation_filter: ConcurrentMeanStdFilter → MeanStdFilter"),
    ("NoFilter", None, "observation_filter: NoFilter → (dropped: the default)"),
])
def test_observation_filter_becomes_a_connector_setting(value, setting, notice):
    out = legacy.translate({"observation_filter": value}, "x")
    assert out.config == {}
    assert out.settings == ({"observation_filter": setting} if setting else {})
    assert out.notices[0].startswith(notice), out.notices


def test_a_custom_observation_filter_says_what_to_write():
    with pytest.raises(UserError, match=r"observation_filter: 'MyFilter' in x: .*ConnectorV2"):
        legacy.translate({"observation_filter": "MyFilter"}, "x")


def test_sac_networks_and_learning_rates():
    old = {"Q_model": {"fcnet_activation": "relu", "fcnet_hiddens": [256, 256]},
           "policy_model": {"fcnet_activation": "relu", "fcnet_hiddens": [256, 256]},
           "optimization": {"actor_learning_rate": 3e-4, "critic_learning_rate": 1e-3,
                            "entropy_learning_rate": 2e-4}}
    out = legacy.translate(old, "x")
    assert out.config == {"model_config": {"fcnet_activation": "relu", "fcnet_hiddens": [256, 256]},
                          "actor_lr": 3e-4, "critic_lr": 1e-3, "alpha_lr": 2e-4}
    assert "Q_model.fcnet_hiddens → model_config.fcnet_hiddens" in out.notices
    assert "optimization.entropy_learning_rate → alpha_lr" in out.notices
    # Ray 0.8's SAC names and the 2.x names translate the same way.
    older = legacy.translate({"q_model_config": {"hidden_layer_sizes": [64], "hidden_activation": "relu"},
                              "policy_model_config": {"hidden_layer_sizes": [64]}}, "x")
    assert older.config == {"model_config": {"fcnet_hiddens": [64], "fcnet_activation": "relu"}}
    # On the old API stack they keep their form, under the 2.x names.
    kept = legacy.translate(old, "x", stack=legacy.OLD_STACK)
    assert kept.config == {"q_model_config": old["Q_model"], "policy_model_config": old["policy_model"],
                           "optimization_config": old["optimization"]}


def test_sac_networks_that_differ_are_refused_saying_what_to_do():
    with pytest.raises(UserError, match=r"different fcnet_hiddens .*share one model_config.*--framework tf2"):
        legacy.translate({"Q_model": {"fcnet_hiddens": [256]}, "policy_model": {"fcnet_hiddens": [64]}}, "x")
    with pytest.raises(UserError, match=r"unknown key 'actor_lr' in optimization in x"):
        legacy.translate({"optimization": {"actor_lr": 1e-3}}, "x")
    with pytest.raises(UserError, match=r"'Q_model.custom_model' in x has no equivalent"):
        legacy.translate({"Q_model": {"custom_model": "MyQ"}}, "x")


def test_epsilon_greedy_exploration_becomes_dqns_epsilon_schedule():
    out = legacy.translate({"exploration_config": {"epsilon_timesteps": 2000, "final_epsilon": 0.05}}, "x")
    assert out.config == {"epsilon": [[0, 1.0], [2000, 0.05]]}
    warm = legacy.translate({"exploration_config": {"type": "EpsilonGreedy", "warmup_timesteps": 100,
                                                    "initial_epsilon": 0.5}}, "x")
    assert warm.config == {"epsilon": [[0, 0.5], [100, 0.5], [10100, 0.02]]}
    for off in ({}, {"type": "StochasticSampling"}):
        assert legacy.translate({"exploration_config": off}, "x").config == {}
    with pytest.raises(UserError, match=r"exploration_config of type 'ParameterNoise' in x: .*RLModule"):
        legacy.translate({"exploration_config": {"type": "ParameterNoise"}}, "x")
    noise = {"exploration_config": {"type": "ParameterNoise"}}
    assert legacy.translate(noise, "x", stack=legacy.OLD_STACK).config == noise


def test_old_replay_buffers_become_episode_buffers():
    old = {"replay_buffer_config": {"type": "MultiAgentPrioritizedReplayBuffer", "capacity": 50000,
                                    "prioritized_replay_alpha": 0.6, "prioritized_replay_beta": 0.4,
                                    "prioritized_replay_eps": 1e-6, "min_size_for_sampling": 1000}}
    out = legacy.translate(old, "x")
    assert out.config == {"replay_buffer_config": {"type": "PrioritizedEpisodeReplayBuffer",
                                                   "capacity": 50000, "alpha": 0.6, "beta": 0.4},
                          "num_steps_sampled_before_learning_starts": 1000}
    plain = legacy.translate({"replay_buffer_config": {"type": "ray.rllib.utils.replay_buffers."
                                                               "MultiAgentReplayBuffer"}}, "x")
    assert plain.config == {"replay_buffer_config": {"type": "EpisodeReplayBuffer"}}
    current = {"replay_buffer_config": {"type": "EpisodeReplayBuffer", "capacity": 10}}
    assert legacy.translate(current, "x").config == current and legacy.translate(current, "x").notices == []
    with pytest.raises(UserError, match="replay buffer type 'ReservoirReplayBuffer' in x"):
        legacy.translate({"replay_buffer_config": {"type": "ReservoirReplayBuffer"}}, "x")
    with pytest.raises(UserError, match="unknown key 'capacityy' in replay_buffer_config"):
        legacy.translate({"replay_buffer_config": {"capacityy": 1}}, "x")


@pytest.mark.parametrize("key", sorted(k for k, r in LEGACY.items() if isinstance(r, Nested)))
def test_every_nested_entry_keeps_its_mapping_on_the_old_stack(key):
    rule = LEGACY[key]
    out = legacy.translate({key: {"a": 1}}, "x", stack=legacy.OLD_STACK)
    assert out.config == {rule.old_stack or key: {"a": 1}}
    assert legacy.translate({key: {}}, "x").config == {}


def test_grid_search_stays_a_grid_of_translated_values():
    out = legacy.translate({"seed": {"grid_search": [512, 42]}, "lr": {"grid_search": [1e-3]},
                            "num_sgd_iter": {"grid_search": [2, 4]},
                            "_disable_execution_plan_api": {"grid_search": [True, False]}}, "x")
    assert out.settings == {"seed": {"grid_search": [512, 42]}}
    assert out.config == {"lr": 1e-3, "num_epochs": {"grid_search": [2, 4]}}  # one value: no grid
    assert "num_sgd_iter → num_epochs" in out.notices
    with pytest.raises(UserError, match="grid_search of lr must list at least one value"):
        legacy.translate({"lr": {"grid_search": []}}, "x")


def test_a_fragment_shorter_than_n_step_is_lengthened():
    out = legacy.translate({"n_step": 3, "rollout_fragment_length": 1}, "x")
    assert out.config == {"n_step": 3, "rollout_fragment_length": 3}
    assert out.notices == ["rollout_fragment_length: 1 → 3 (RLlib samples at least n_step=3 steps "
                           "per fragment now)"]
    assert legacy.translate({"n_step": 3, "rollout_fragment_length": "auto"}, "x").notices == []


# --- the specific translations the tutorial and RLlib's tuned examples need -------------
def test_tutorial_config():
    out = legacy.translate({"env": "CartPole-v0", "num_workers": 35, "num_gpus": 1,
                            "ignore_worker_failures": True}, "tutorial")
    assert out.config == {"num_env_runners": 35, "ignore_env_runner_failures": True}
    assert out.settings == {"env": "CartPole-v0", "num_gpus": 1}
    assert out.notices == [
        "num_workers → num_env_runners (the launcher lowers it to fit the CPUs)",
        "num_gpus → --num-gpus (GPUs for the learner: num_gpus_per_learner on the new API stack)",
        "ignore_worker_failures → ignore_env_runner_failures",
    ]


def test_framework_values():
    assert legacy.translate({"framework": "tf"}, "x").settings == {"framework": "tf2"}
    assert legacy.translate({"framework": "tf"}, "x").notices == ["framework: tf → tf2"]
    assert legacy.translate({"framework": "tfe"}, "x").settings == {"framework": "tf2"}
    assert legacy.translate({"framework": "torch"}, "x").notices == []
    assert legacy.stack_for("tf") == legacy.stack_for("tf2") == legacy.OLD_STACK
    assert legacy.stack_for(None) == legacy.stack_for("torch") == legacy.NEW_STACK


def test_model_dict_becomes_model_config_on_the_new_stack():
    model = {"fcnet_hiddens": [32], "fcnet_activation": "linear", "vf_share_layers": True,
             "post_fcnet_hiddens": [16], "custom_model": None, "use_attention": False}
    out = legacy.translate({"model": model}, "x")
    assert out.config == {"model_config": {"fcnet_hiddens": [32], "fcnet_activation": "linear",
                                           "vf_share_layers": True, "head_fcnet_hiddens": [16]}}
    assert "model.post_fcnet_hiddens → model_config.head_fcnet_hiddens" in out.notices
    # ... and stays `model` on the old stack (tf2), where ModelV2 reads it.
    assert legacy.translate({"model": model}, "x", stack=legacy.OLD_STACK).config == {"model": model}


@pytest.mark.parametrize("key", sorted(MODEL_KEYS))
def test_every_model_key(key):
    rule = MODEL_KEYS[key]
    if isinstance(rule, Rename):
        out = legacy.translate({"model": {key: [7]}}, "x")
        assert out.config == {"model_config": {rule.new: [7]}}
        assert out.notices == [f"model.{key} → model_config.{rule.new}"]
    elif isinstance(rule, Dropped):
        out = legacy.translate({"model": {key: True}}, "x")
        assert out.config == {} and "dropped" in out.notices[0]
    else:
        with pytest.raises(UserError, match=re.escape(f"'model.{key}' in x has no equivalent")):
            legacy.translate({"model": {key: "something"}}, "x")


def test_unknown_model_key_names_the_closest():
    with pytest.raises(UserError, match="unknown key 'fcnet_hidden' in model in x.*'fcnet_hiddens'"):
        legacy.translate({"model": {"fcnet_hidden": [8]}}, "x")


def test_vf_share_layers_top_level_joins_model_config():
    out = legacy.translate({"vf_share_layers": False, "model": {"fcnet_hiddens": [8]}}, "x")
    assert out.config == {"model_config": {"vf_share_layers": False, "fcnet_hiddens": [8]}}


def test_vf_share_layers_and_model_merge_on_the_old_stack():
    for config in ({"vf_share_layers": True, "model": {"fcnet_hiddens": [8]}},
                   {"model": {"fcnet_hiddens": [8]}, "vf_share_layers": True}):
        out = legacy.translate(config, "x", stack=legacy.OLD_STACK)
        assert out.config == {"model": {"fcnet_hiddens": [8], "vf_share_layers": True}}


def test_a_translated_legacy_config_validates_on_the_old_stack():
    from ray.rllib.algorithms.ppo import PPOConfig

    from launcher.training.rllib_config import apply_hyperparameters

    old = {"num_workers": 1, "train_batch_size": 400, "sgd_minibatch_size": 100, "num_sgd_iter": 3,
           "lr_schedule": [[0, 1e-3], [10000, 1e-4]], "vf_share_layers": True,
           "observation_filter": "MeanStdFilter", "model": {"fcnet_hiddens": [16]},
           "ignore_worker_failures": True}
    out = legacy.translate(old, "x", stack=legacy.OLD_STACK)
    config = PPOConfig().api_stack(enable_rl_module_and_learner=False,
                                   enable_env_runner_and_connector_v2=False).environment("CartPole-v1")
    apply_hyperparameters(config, out.config, "x")
    config.validate()
    assert config.train_batch_size == 400 and config.minibatch_size == 100 and config.num_epochs == 3
    assert config.lr_schedule == [[0, 1e-3], [10000, 1e-4]]
    assert config.model["fcnet_hiddens"] == [16] and config.model["vf_share_layers"] is True
    assert config.observation_filter == "MeanStdFilter" and config.num_env_runners == 1


def test_old_and_new_name_with_different_values_is_refused():
    with pytest.raises(UserError, match="sets num_env_runners twice"):
        legacy.translate({"num_workers": 2, "num_env_runners": 4}, "x")
    out = legacy.translate({"num_workers": 2, "num_env_runners": 2}, "x")
    assert out.config == {"num_env_runners": 2}


def test_evaluation_config_is_translated_inside():
    out = legacy.translate({"evaluation_num_workers": 1,
                            "evaluation_config": {"num_envs_per_worker": 2, "env_config": {"a": 1}}},
                           "x")
    assert out.config == {"evaluation_num_env_runners": 1,
                          "evaluation_config": {"num_envs_per_env_runner": 2, "env_config": {"a": 1}}}
    assert "evaluation_config.num_envs_per_worker → num_envs_per_env_runner" in out.notices


def test_current_keys_pass_unchanged():
    current = {"lr": 1e-3, "gamma": 0.9, "rollout_fragment_length": 50, "num_env_runners": 1,
               "minibatch_size": 64, "model_config": {"fcnet_hiddens": [8]}}
    out = legacy.translate(current, "x")
    assert out.config == current and out.notices == [] and out.settings == {}


# --- stop criteria -----------------------------------------------------------------------
@pytest.mark.parametrize("key", sorted(STOP_KEYS))
def test_every_stop_key(key):
    name, old = STOP_KEYS[key]
    stop, notices = legacy.translate_stop({key: 10}, "x")
    assert stop == {name: 10}
    assert notices == ([f"stop: {key} → stop.{name}"] if old else [])


def test_bad_stop_criteria():
    with pytest.raises(UserError, match="unknown stop criterion 'episode_reward_man'.*episode_reward_mean"):
        legacy.translate_stop({"episode_reward_man": 1}, "x")
    with pytest.raises(UserError, match="evaluation results"):
        legacy.translate_stop({"evaluation/episode_return_mean": 1}, "x")
    with pytest.raises(UserError, match="must be a number"):
        legacy.translate_stop({"training_iteration": "ten"}, "x")
    with pytest.raises(UserError, match="must be a mapping"):
        legacy.translate_stop([1], "x")


# --- the table against the RLlib that is installed ---------------------------------------
def _config_classes():
    return tuple(algorithms.config_class(algo) for algo in algorithms.ALGORITHM_TABLE)


def _valid_and_deprecated():
    """Keys some setter accepts for real, and keys that are only ever deprecated."""
    from ray._common.deprecation import DEPRECATED_VALUE

    from launcher.training.rllib_config import CONFIG_SECTIONS

    valid, deprecated = set(), set()
    for cls in _config_classes():
        for klass in cls.__mro__:
            for section in CONFIG_SECTIONS:
                function = klass.__dict__.get(section)
                if function is None:
                    continue
                for name, param in inspect.signature(function).parameters.items():
                    is_deprecated = type(param.default) is int and param.default == DEPRECATED_VALUE
                    (deprecated if is_deprecated else valid).add(name)
        for name, value in vars(cls()).items():
            if type(value) is int and value == DEPRECATED_VALUE and not name.startswith("_"):
                deprecated.add(name)
            elif not name.startswith("_"):
                valid.add(name)
    return valid, deprecated - valid


def test_every_deprecated_rllib_key_is_in_the_table():
    """A deprecated key that slips through raises inside RLlib (a traceback) or is ignored."""
    _valid, deprecated = _valid_and_deprecated()
    missing = sorted(deprecated - set(LEGACY))
    assert missing == [], f"add these to launcher/legacy.py LEGACY: {missing}"


def test_every_translation_target_exists_in_rllib():
    valid, _deprecated = _valid_and_deprecated()
    assert set(legacy.UNCHANGED) <= valid, set(legacy.UNCHANGED) - valid
    assert not set(legacy.UNCHANGED) & set(LEGACY)
    for key, rule in LEGACY.items():
        if isinstance(rule, Rename):
            for target in {rule.new, rule.old_stack or rule.new}:
                head = target.partition(".")[0]
                assert head in valid, f"{key} → {target}: RLlib 2.60 has no {head}"
        if isinstance(rule, Nested) and rule.old_stack:
            assert rule.old_stack in valid, f"{key} → {rule.old_stack}: RLlib 2.60 has no such key"
    for new in ("actor_lr", "critic_lr", "alpha_lr", "epsilon", "num_steps_sampled_before_learning_starts",
                "min_sample_timesteps_per_iteration", "evaluation_parallel_to_training"):
        assert new in valid, new
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    fields = set(DefaultModelConfig.__dataclass_fields__)
    for key, rule in MODEL_KEYS.items():
        if isinstance(rule, Rename):
            assert rule.new in fields, f"model.{key} → {rule.new}: not a DefaultModelConfig field"


def test_a_translated_legacy_ppo_config_builds_and_validates():
    """Old keys of a Ray-1.x PPO config, translated, are accepted by PPOConfig for real."""
    from ray.rllib.algorithms.ppo import PPOConfig

    from launcher.training.rllib_config import apply_hyperparameters

    old = {"num_workers": 1, "num_envs_per_worker": 2, "ignore_worker_failures": True,
           "recreate_failed_workers": False, "train_batch_size": 400, "sgd_minibatch_size": 100,
           "num_sgd_iter": 3, "rollout_fragment_length": "auto", "lambda": 0.95,
           "lr_schedule": [[0, 1e-3], [10000, 1e-4]], "metrics_smoothing_episodes": 10,
           "evaluation_num_workers": 0, "evaluation_num_episodes": 2, "enable_connectors": True,
           "model": {"fcnet_hiddens": [16], "fcnet_activation": "relu", "vf_share_layers": True}}
    out = legacy.translate(old, "x")
    config = PPOConfig().environment("CartPole-v1")
    apply_hyperparameters(config, out.config, "x")
    config.validate()
    assert config.num_env_runners == 1 and config.num_envs_per_env_runner == 2
    assert config.ignore_env_runner_failures is True and config.restart_failed_env_runners is False
    assert config.train_batch_size_per_learner == 400 and config.minibatch_size == 100
    assert config.num_epochs == 3 and config.lambda_ == 0.95
    assert config.lr == [[0, 1e-3], [10000, 1e-4]]
    assert config.metrics_num_episodes_for_smoothing == 10
    assert config.evaluation_duration == 2 and config.evaluation_duration_unit == "episodes"
    assert config.model_config["fcnet_hiddens"] == [16]
    assert config.model_config["vf_share_layers"] is True


def test_readme_table_matches_legacy_py():
    text = (REPO / "README.md").read_text()
    section = text.split("<!-- section: tutorial -->")[1].split("<!-- /section: tutorial -->")[0]
    assert legacy.markdown_table() in section, (
        "README's key table is out of date: regenerate it with "
        "python -c 'from launcher.training.legacy import markdown_table; print(markdown_table())'"
    )
