"""`launcher train -f FILE`: the launcher's format, the tutorial's config dict, RLlib
experiment files; malformed files and unknown keys; real trainings from old configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from launcher.errors import UserError
from launcher.training.experiment import detect_shape, load_experiment, translate_config
from launcher.training.settings import TrainSettings
from tests.conftest import call_cli, only_run_dir, progress_rows, run_launcher

REPO = Path(__file__).resolve().parent.parent
TUTORIAL = REPO / "examples" / "tutorial_cartpole.yaml"
RLLIB_EXPERIMENT = REPO / "examples" / "cartpole-ppo.yaml"


def write(tmp_path: Path, data, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def load(path, notes: list | None = None, framework: str | None = None) -> dict:
    return load_experiment(path, say=(notes.append if notes is not None else lambda _line: None),
                           framework=framework)


def one_line_error(code: int, err: str, *fragments: str) -> None:
    """Exit 2, no traceback, exactly one 'error:' line (library log lines aside)."""
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and "Traceback" not in err, err
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# --- the three shapes --------------------------------------------------------------------
def test_launcher_format_keeps_working(tmp_path):
    path = write(tmp_path, {"algo": "DQN", "env": "CartPole-v1", "stop": {"iters": 3},
                            "num_cpus": 2, "config": {"lr": 0.001}})
    notes: list[str] = []
    data = load(path, notes)
    assert data == {"algo": "DQN", "env": "CartPole-v1", "stop": {"iters": 3}, "num_cpus": 2,
                    "config": {"lr": 0.001}}
    assert notes == []
    TrainSettings.from_dict(data).validate()


def test_launcher_format_with_old_names_in_its_config(tmp_path):
    path = write(tmp_path, {"algo": "PPO", "config": {"num_sgd_iter": 4, "num_gpus": 0},
                            "stop": {"episode_reward_mean": 100}})
    notes: list[str] = []
    data = load(path, notes)
    assert data["config"] == {"num_epochs": 4}
    assert data["num_gpus"] == 0 and data["stop"] == {"reward": 100.0}
    assert "num_sgd_iter → num_epochs" in notes


def test_tutorial_config_dict():
    notes: list[str] = []
    data = load(TUTORIAL, notes)
    assert data == {"env": "CartPole-v0", "num_gpus": 0,
                    "config": {"num_env_runners": 1, "ignore_env_runner_failures": True}}
    assert notes == [
        "num_workers → num_env_runners (the launcher lowers it to fit the CPUs)",
        "num_gpus → --num-gpus (GPUs for the learner: num_gpus_per_learner on the new API stack)",
        "ignore_worker_failures → ignore_env_runner_failures",
    ]
    settings = TrainSettings.from_dict(data).validate()
    assert settings.env == "CartPole-v0" and settings.algo == "PPO"


def test_rllib_experiment_file():
    notes: list[str] = []
    data = load(RLLIB_EXPERIMENT, notes)
    assert data["algo"] == "PPO" and data["env"] == "CartPole-v1" and data["framework"] == "torch"
    assert data["stop"] == {"reward": 150.0, "timesteps": 100000, "time_s": 60.0}
    assert data["config"]["num_epochs"] == 6 and data["config"]["minibatch_size"] == 250
    assert data["config"]["train_batch_size_per_learner"] == 2000
    assert data["config"]["model_config"] == {"fcnet_hiddens": [32], "fcnet_activation": "linear",
                                              "vf_share_layers": True}
    assert "stop: episode_reward_mean → stop.reward" in notes
    assert "enable_connectors → (dropped: connectors are always on in the new API stack)" in notes


def test_stop_keys_of_the_current_api(tmp_path):
    path = write(tmp_path, {"exp": {"run": "PPO", "env": "CartPole-v1", "stop": {
        "training_iteration": 7, "env_runners/episode_return_mean": 400,
        "env_runners/num_env_steps_sampled_lifetime": 50000, "time_total_s": 30}}})
    assert load(path)["stop"] == {"iters": 7, "reward": 400.0, "timesteps": 50000, "time_s": 30.0}


def test_a_single_experiment_body_without_a_name(tmp_path):
    """tune.run's keyword arguments as YAML: run, stop, config at the top."""
    path = write(tmp_path, {"run": "DQN", "stop": {"training_iteration": 10000},
                            "config": {"env": "CartPole-v0", "num_workers": 0}})
    data = load(path)
    assert data == {"algo": "DQN", "env": "CartPole-v0", "config": {"num_env_runners": 0},
                    "stop": {"iters": 10000}}


def test_experiment_level_keys(tmp_path):
    path = write(tmp_path, {"e": {"run": "PPO", "env": "CartPole-v1", "checkpoint_freq": 5,
                                  "checkpoint_at_end": True, "local_dir": str(tmp_path / "r"),
                                  "num_samples": 1}})
    notes: list[str] = []
    data = load(path, notes)
    assert data["checkpoint_every"] == 5 and data["output"] == str(tmp_path / "r")
    assert any(n.startswith("checkpoint_at_end → (dropped") for n in notes)


def test_tf_in_an_experiment_file_uses_the_old_stack_names(tmp_path):
    path = write(tmp_path, {"e": {"run": "PPO", "env": "CartPole-v1", "config": {
        "framework": "tf", "train_batch_size": 1000, "model": {"fcnet_hiddens": [32]},
        "observation_filter": "MeanStdFilter"}}})
    data = load(path)
    assert data["framework"] == "tf2"
    assert data["config"] == {"train_batch_size": 1000, "model": {"fcnet_hiddens": [32]},
                              "observation_filter": "MeanStdFilter"}


def test_framework_flag_picks_the_stack_the_file_is_translated_to(tmp_path):
    path = write(tmp_path, {"env": "CartPole-v1", "train_batch_size": 1000,
                            "lr_schedule": [[0, 0.001], [1000, 0.0001]]})
    assert load(path)["config"] == {"train_batch_size_per_learner": 1000,
                                    "lr": [[0, 0.001], [1000, 0.0001]]}
    assert load(path, framework="tf2")["config"] == {"train_batch_size": 1000,
                                                     "lr_schedule": [[0, 0.001], [1000, 0.0001]]}
    tf_file = write(tmp_path, {"e": {"run": "PPO", "config": {"framework": "tf", "model": {
        "fcnet_hiddens": [8]}}}}, name="tf.yaml")
    assert load(tf_file, framework="torch")["config"] == {"model_config": {"fcnet_hiddens": [8]}}
    assert translate_config({"train_batch_size": 64}, "--set", framework="tf2") == {
        "train_batch_size": 64}


def test_cli_framework_reaches_the_translation(tmp_path):
    from launcher.training.options import merge_training_options as train_options

    path = write(tmp_path, {"env": "CartPole-v1", "train_batch_size": 500})
    data = train_options(algo="PPO", framework="tf2", config_file=path, sets=["sgd_minibatch_size=64"])
    assert data["config"] == {"train_batch_size": 500, "minibatch_size": 64}
    data = train_options(algo="PPO", config_file=path, sets=["train_batch_size=64"])
    assert data["config"] == {"train_batch_size_per_learner": 64}


def test_several_experiments_need_a_pick(tmp_path):
    body = {"run": "PPO", "env": "CartPole-v1"}
    path = write(tmp_path, {"first": body, "second": {**body, "run": "DQN"}})
    with pytest.raises(UserError, match=r"holds 2 experiments \(first, second\): pick one with -f .*:first"):
        load(path)
    assert load(f"{path}:second")["algo"] == "DQN"
    with pytest.raises(UserError, match="no experiment 'secnd'.*did you mean 'second'"):
        load(f"{path}:secnd")


def test_pick_on_a_file_that_is_not_an_experiment_file():
    with pytest.raises(UserError, match="picks an experiment, but .* is not an RLlib experiment file"):
        load(f"{TUTORIAL}:cartpole")


@pytest.mark.parametrize("data, shape", [
    ({"algo": "PPO", "stop": {"iters": 1}}, "launcher"),
    ({"env": "CartPole-v1", "seed": 3}, "launcher"),  # only shared keys: both readings agree
    ({"env": "CartPole-v0", "num_workers": 2}, "tutorial"),
    ({"lr": 0.1}, "tutorial"),
    ({"a": {"run": "PPO"}, "b": {"run": "DQN"}}, "experiments"),
    ({"run": "PPO", "config": {}}, "experiment"),
])
def test_shape_detection(data, shape):
    assert detect_shape(data, "f.yaml") == shape


# --- malformed files and unknown keys ----------------------------------------------------
@pytest.mark.parametrize("content, fragments", [
    ("env: [CartPole\n", ["malformed YAML in", "line 2"]),
    ("- 1\n- 2\n", ["must hold a mapping of settings, got list"]),
    ("algo: PPO\nnum_workers: 2\n", ["mixes launcher settings (algo) with RLlib config keys (num_workers)",
                                     "put the RLlib keys under 'config:'"]),
    ("algo: PPO\nstpo: {iters: 1}\n", ["unknown key 'stpo'", "did you mean 'stop'"]),
    ("e: {run: PPO, env: CartPole-v1, stpo: {}}\n", ["unknown key 'stpo' in experiment", "'stop'"]),
    ("e: {run: PPO}\nother: 3\n", ["looks like an RLlib experiment file, but 'other' is not an experiment"]),
    ("e: {run: PPO, stop: {episode_len_mean: 20}}\n", ["unknown stop criterion 'episode_len_mean'"]),
    ("e: {run: PPO, config: [1]}\n", ["'config' in experiment", "must be a mapping"]),
    ("e: {run: 3}\n", ["'run' must name an algorithm"]),
    ("e: {run: PPO, env: CartPole-v1, config: {env: CartPole-v0}}\n",
     ["gives env twice with different values"]),
    ("env: CartPole-v0\nworker_cls: my.Worker\n", ["'worker_cls'", "has no equivalent any more",
                                                   "env_runner_cls"]),
    ("env: CartPole-v0\nlr: -0.1\n", ["lr=-0.1 in", "lr must be a number greater than 0"]),
    ("e: {run: PPO, config: {gamma: 1.5}}\n", ["gamma=1.5 in", "gamma must be a number in (0, 1]"]),
    ("e: {run: PPO, config: {model: {fcnet_hiddens: [0]}}}\n", ["model_config.fcnet_hiddens=[0]",
                                                                 "list of layer sizes"]),
    ("env: CartPole-v0\nhorizon: 0\n", ["horizon: 0 in", "whole number of steps"]),
    ("env: CartPole-v0\nobservation_filter: MyFilter\n", ["observation_filter: 'MyFilter'", "ConnectorV2"]),
    ("env: CartPole-v0\nmodel: {custom_model: my_net}\n", ["'model.custom_model'", "RLModule"]),
    ("env: CartPole-v0\nmodel: {fcnet_hidden: [8]}\n", ["unknown key 'fcnet_hidden' in model",
                                                        "did you mean 'fcnet_hiddens'"]),
    ("env: CartPole-v0\n_redis_password: abc\n", ["token authentication"]),
    ("env: CartPole-v0\nnum_workres: 1\n", ["unknown key 'num_workres' in the PPO config"]),
])
def test_bad_files_get_one_line(capsys, tmp_path, content, fragments):
    path = write(tmp_path, content)
    code, _out, err = call_cli(capsys, "train", "-f", str(path), "-o", str(tmp_path / "out"))
    one_line_error(code, err, *fragments)


def test_missing_file(capsys, tmp_path):
    code, _out, err = call_cli(capsys, "train", "-f", str(tmp_path / "nope.yaml"))
    one_line_error(code, err, "file not found")


def test_empty_file_is_no_settings(tmp_path):
    assert load(write(tmp_path, "")) == {}


# --- --set ---------------------------------------------------------------------------------
def test_set_translates_old_names():
    notes: list[str] = []
    assert translate_config({"num_sgd_iter": 3, "lr": 0.1}, "--set", say=notes.append) == {
        "num_epochs": 3, "lr": 0.1}
    assert notes == ["num_sgd_iter → num_epochs"]


def test_set_refuses_launcher_settings():
    with pytest.raises(UserError, match="num_gpus is a launcher setting, not an RLlib key: use --num-gpus"):
        translate_config({"num_gpus": 1}, "--set")
    with pytest.raises(UserError, match="horizon is a launcher setting, not an RLlib key: write it in an "
                                        "experiment file"):
        translate_config({"horizon": 200}, "--set")
    # On the old API stack observation_filter is RLlib's own key.
    assert translate_config({"observation_filter": "MeanStdFilter"}, "--set", framework="tf2") == {
        "observation_filter": "MeanStdFilter"}


# --- value ranges (value_checks.py) -----------------------------------------------------------
@pytest.mark.parametrize("key, bad, good", [
    ("lr", [-1, 0, "abc", True, float("nan"), [[0, -1e-3]]], [1e-3, "1e-3", [[0, 1e-3], [1000, 0.0]], None]),
    ("gamma", [2, 0, -0.5, 1.01], [1, 0.99, "0.9"]),
    ("lambda_", [-0.1, 1.5], [0, 1, 0.95]),
    ("clip_param", [0, -0.2], [0.2]),
    ("train_batch_size_per_learner", [0, 2.5, -1], [1, 4000, "4000"]),
    ("minibatch_size", [0], [64]),
    ("num_epochs", [0, 1.5], [1, 10]),
    ("entropy_coeff", [-0.01, [[0, -1]]], [0, 0.01, [[0, 0.01], [10000, 0.0]]]),
    ("num_env_runners", [-1], [0, 2]),
])
def test_common_keys_are_range_checked(key, bad, good):
    from launcher.training import value_checks

    for value in bad:
        with pytest.raises(UserError, match=rf"^{key}=.* in --set: {key} must be "):
            value_checks.check({key: value}, "--set")
    for value in good:
        checked = value_checks.check({key: value}, "--set")[key]
        assert checked == (float(value) if isinstance(value, str) else value)


def test_set_values_are_checked_and_spelled_numbers_read():
    assert translate_config({"lr": "3e-4", "num_sgd_iter": "5"}, "--set") == {"lr": 3e-4, "num_epochs": 5}
    with pytest.raises(UserError, match=r"^gamma=2 in --set: gamma must be a number in \(0, 1\]$"):
        translate_config({"gamma": 2}, "--set")


def test_model_config_keys_are_rllibs():
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    from launcher.training import value_checks

    assert set(value_checks.MODEL_CONFIG_FIELDS) == set(DefaultModelConfig.__dataclass_fields__)
    with pytest.raises(UserError, match="unknown key 'fcnet_hidens' in model_config in --set.*'fcnet_hid"):
        translate_config({"model_config": {"fcnet_hidens": [64]}}, "--set")
    with pytest.raises(UserError, match="model_config in --set must be a mapping"):
        translate_config({"model_config": [64]}, "--set")
    assert translate_config({"model_config": {"fcnet_hiddens": [64, 64]}}, "--set") == {
        "model_config": {"fcnet_hiddens": [64, 64]}}


# --- env ids and Tune's grid_search in experiment files -----------------------------------------
def test_a_renamed_env_id_in_a_file_is_the_new_one(tmp_path):
    notes: list[str] = []
    data = load(write(tmp_path, "e: {run: PPO, env: Pendulum-v0}\n"), notes)
    assert data["env"] == "Pendulum-v1" and "env Pendulum-v0 → Pendulum-v1 (Gymnasium renamed it)" in notes
    assert load(write(tmp_path, "env: Unknown-v3\n"))["env"] == "Unknown-v3"  # the probe reports it


def test_grid_search_in_an_experiment_stays_a_grid_for_the_sweep(tmp_path):
    text = ("e: {run: PPO, env: {grid_search: [CartPole-v1, Acrobot-v1]},\n"
            "    config: {framework: {grid_search: [tf, torch]}, seed: {grid_search: [1, 2]}}}\n")
    data = load(write(tmp_path, text))
    assert data["env"] == {"grid_search": ["CartPole-v1", "Acrobot-v1"]}
    assert data["seed"] == {"grid_search": [1, 2]}
    assert data["framework"] == {"grid_search": ["tf2", "torch"]}  # a sweep refuses it: one per sweep
    text = "e: {run: PPO, config: {lr: {grid_search: [0.001, -1]}}}\n"
    with pytest.raises(UserError, match="lr=-1 .* must be a number greater than 0"):
        load(write(tmp_path, text))
    text = "e: {run: PPO, config: {model: {fcnet_hiddens: {grid_search: [[32], [64, 64]]}}}}\n"
    assert load(write(tmp_path, text))["config"]["model_config"] == {
        "fcnet_hiddens": {"grid_search": [[32], [64, 64]]}}


def test_horizon_and_observation_filter_become_launcher_settings(tmp_path):
    data = load(write(tmp_path, "e: {run: PPO, env: Pendulum-v1, config: {horizon: 50, "
                                "observation_filter: MeanStdFilter}}\n"), framework="torch")
    assert data["max_episode_steps"] == 50 and data["observation_filter"] == "MeanStdFilter"
    assert data["config"] == {}
    text = "e: {run: PPO, env: Pendulum-v1, config: {observation_filter: MeanStdFilter}}\n"
    kept = load(write(tmp_path, text), framework="tf2")
    assert kept["config"] == {"observation_filter": "MeanStdFilter"} and "observation_filter" not in kept


# --- both example files pass every check that runs before Ray -----------------------------
@pytest.mark.parametrize("example", [TUTORIAL, RLLIB_EXPERIMENT])
def test_examples_pass_the_checks_before_ray(tmp_path, example):
    from launcher.training.loop import check_settings
    from launcher.training.rllib_config import build_config

    data = load(example)
    data["output"] = str(tmp_path)
    settings = TrainSettings.from_dict(data).validate()
    info = check_settings(settings)
    config = build_config(settings, info, 0)
    if example == RLLIB_EXPERIMENT:
        assert config.num_epochs == 6 and config.model_config["fcnet_hiddens"] == [32]
    else:
        assert config.ignore_env_runner_failures is True


# --- real trainings -------------------------------------------------------------------------
@pytest.mark.slow
def test_trains_from_the_tutorials_own_config(tmp_path):
    """CartPole-v0, num_workers, ignore_worker_failures: the dict the tutorial hands to tune.run."""
    result = run_launcher("train", "-f", str(TUTORIAL), "--stop-iters", "2", "-o", str(tmp_path),
                          timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "note: ignore_worker_failures → ignore_env_runner_failures" in result.stderr
    assert "note: num_workers → num_env_runners" in result.stderr
    run_dir = only_run_dir(tmp_path)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["ignore_env_runner_failures"] is True
    assert config["num_env_runners"] == 1
    assert config["env"] == "CartPole-v0"
    assert len(progress_rows(run_dir)) == 2


@pytest.mark.slow
def test_trains_from_an_rllib_experiment_file_with_legacy_keys(tmp_path):
    result = run_launcher("train", "-f", str(RLLIB_EXPERIMENT), "--stop-iters", "3",
                          "-o", str(tmp_path), timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    for line in ("num_sgd_iter → num_epochs", "sgd_minibatch_size → minibatch_size",
                 "model.fcnet_hiddens → model_config.fcnet_hiddens",
                 "stop: episode_reward_mean → stop.reward"):
        assert f"note: {line}" in result.stderr
    run_dir = only_run_dir(tmp_path)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["num_epochs"] == 6 and config["minibatch_size"] == 250
    assert config["num_envs_per_env_runner"] == 8
    assert config["_train_batch_size_per_learner"] == 2000
    assert config["_model_config"]["fcnet_hiddens"] == [32]
    spec = yaml.safe_load((run_dir / "spec.yaml").read_text())
    assert spec["stop"] == {"iters": 3, "timesteps": 100000, "reward": 150.0, "time_s": 60.0,
                            "policy": None}
    rows = progress_rows(run_dir)
    assert 1 <= len(rows) <= 3
    assert int(rows[-1]["num_env_steps_sampled_lifetime"]) >= 2000
