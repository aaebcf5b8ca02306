"""Every bad input to `launcher train` gets one line and exit 2, before Ray starts."""

from __future__ import annotations

import pytest

from tests.conftest import GYMNASIUM_ENV, assert_one_line_error, call_cli, free_port


@pytest.fixture(autouse=True)
def _ray_never_started(monkeypatch):
    """A bad input must be refused before Ray starts: starting it fails the test."""
    import ray

    def refuse(*args, **kwargs):
        raise AssertionError("ray.init was called for a bad input")

    monkeypatch.setattr(ray, "init", refuse)


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--env", "CartPol-v1"], ["unknown environment id 'CartPol-v1'", "did you mean 'CartPole-v1'"]),
        (["--env", "not_a_module_xyz:Env"], ["cannot import module 'not_a_module_xyz'"]),
        (["--algo", "PPG"], ["unknown algorithm 'PPG'", "valid: PPO, APPO, IMPALA, DQN, SAC"]),
        (["--run", "A2C"], ["unknown algorithm 'A2C'"]),
        (["--algo", "DQN", "--env", "Pendulum-v1"], ["DQN cannot handle the action space", "Box"]),
        (["--num-cpus", "-1"], ["--num-cpus must be at least 1"]),
        (["--num-gpus", "-0.5"], ["--num-gpus must be 0 or more"]),
        (["--num-env-runners", "-3"], ["--num-env-runners must be 0 or more"]),
        (["--stop-iters", "0"], ["stop criterion iters must be positive"]),
        (["--framework", "mxnet"], ["unknown framework 'mxnet'"]),
        (["--set", "lrr=0.1"], ["unknown key 'lrr' in the PPO config", "did you mean 'lr'"]),
        (["--set", "lr"], ["--set expects key=value"]),
        (["--set", "lr=-1"], ["lr=-1 in --set: lr must be a number greater than 0"]),
        (["--set", "gamma=2"], ["gamma=2 in --set: gamma must be a number in (0, 1]"]),
        (["--set", "lambda=1.5"], ["lambda_=1.5 in --set"]),
        (["--set", "num_sgd_iter=0"], ["num_epochs=0 in --set: num_epochs must be a whole number"]),
        (["--set", "model_config={fcnet_hidens: [64]}"],
         ["unknown key 'fcnet_hidens' in model_config in --set", "did you mean 'fcnet_hiddens'"]),
        (["--set", "horizon=200"], ["horizon is a launcher setting", "experiment file"]),
        (["--env", "my_env.py"], ["--env my_env.py names a file but not the env class in it",
                                  "write my_env.py:ClassName"]),
        (["--env", "Pendulum-v7"], ["unknown environment id 'Pendulum-v7'"]),
        (["--address", "localhost"], ["--address 'localhost' must be HOST:PORT"]),
    ],
)
def test_bad_flags(capsys, tmp_path, args, fragments):
    code, _, err = call_cli(capsys, "train", "-o", str(tmp_path), *args)
    assert_one_line_error(code, err, *fragments)


def test_env_constructor_failure(capsys, tmp_path):
    path = tmp_path / "env.py"
    path.write_text("class E:\n    def __init__(self, config):\n        raise RuntimeError('boom')\n")
    code, _, err = call_cli(capsys, "train", "-o", str(tmp_path), "--env", f"{path}:E")
    assert_one_line_error(code, err, "failed to construct", "RuntimeError: boom")


def test_env_config_reaches_a_constructor_that_rejects_it(capsys, tmp_path):
    path = tmp_path / "guess.py"
    path.write_text(GYMNASIUM_ENV)
    code, _, err = call_cli(capsys, "train", "-o", str(tmp_path), "--env", f"{path}:GuessEnv",
                            "--env-config", "target=notanint")
    assert_one_line_error(code, err, "failed to construct", "ValueError")


def test_malformed_yaml(capsys, tmp_path):
    bad = tmp_path / "exp.yaml"
    bad.write_text("algo: PPO\nconfig: [lr: 1\n")
    code, _, err = call_cli(capsys, "train", "-o", str(tmp_path), "--config", str(bad))
    assert_one_line_error(code, err, "malformed YAML", "exp.yaml")


def test_missing_config_file(capsys, tmp_path):
    code, _, err = call_cli(capsys, "train", "--config", str(tmp_path / "nope.yaml"))
    assert_one_line_error(code, err, "file not found")


def test_unwritable_output(capsys, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code, _, err = call_cli(capsys, "train", "-o", str(blocker / "results"), "--stop-iters", "1")
    assert_one_line_error(code, err, "cannot write to output directory")


def test_more_cpus_than_the_machine_has(capsys, tmp_path):
    code, _, err = call_cli(capsys, "train", "-o", str(tmp_path), "--num-cpus", "100000")
    assert_one_line_error(code, err, "--num-cpus 100000 asks for more CPUs than this machine has")


def test_more_env_runners_than_cpus(capsys, tmp_path):
    code, _, err = call_cli(capsys, "train", "-o", str(tmp_path), "--num-cpus", "1",
                            "--num-env-runners", "4")
    assert_one_line_error(code, err, "4 env runners need 5 CPUs")


def test_resume_a_directory_without_checkpoints(capsys, tmp_path):
    code, _, err = call_cli(capsys, "train", "--resume", str(tmp_path))
    assert_one_line_error(code, err, "not a launcher run directory")


def test_tf2_without_tensorflow(capsys, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorflow" else real(name, *a))
    code, _, err = call_cli(capsys, "train", "-o", str(tmp_path), "--framework", "tf2")
    assert_one_line_error(code, err, "needs TensorFlow", "launcher[tf]")


def test_inconsistent_rllib_settings_are_refused_before_ray(capsys, tmp_path):
    code, _, err = call_cli(capsys, "train", "-o", str(tmp_path), "--set",
                            "train_batch_size_per_learner=100", "--set", "minibatch_size=500")
    assert_one_line_error(code, err, "invalid PPO config", "minibatch_size")


def test_atari_without_ale_py_names_the_package(capsys, tmp_path):
    import importlib.util

    if importlib.util.find_spec("ale_py") is not None:
        pytest.skip("ale-py is installed here")
    code, _, err = call_cli(capsys, "train", "-o", str(tmp_path), "--env", "ALE/Pong-v5")
    assert_one_line_error(code, err, "ALE/Pong-v5 is an Atari env, which needs the ale_py package",
                          "pip install ale-py")
    assert "Ant-v5" not in err


def test_a_file_env_without_its_class_lists_the_classes(capsys, tmp_path):
    path = tmp_path / "guess.py"
    path.write_text(GYMNASIUM_ENV)
    code, _, err = call_cli(capsys, "train", "-o", str(tmp_path), "--env", str(path))
    assert_one_line_error(code, err, f"write {path}:ClassName (it defines GuessEnv)")


def test_an_unreachable_address_is_one_line_and_leaves_no_run_dir(capsys, tmp_path):
    """Nothing listens there: one line at once (not Ray's minutes of GCS retries), and the
    run directory reserved for the run is gone again."""
    out = tmp_path / "out"
    code, stdout, err = call_cli(capsys, "train", "-o", str(out), "--address", f"127.0.0.1:{free_port()}")
    assert_one_line_error(code, err, "cannot connect to the Ray cluster at 127.0.0.1:",
                          "connection refused", "ray start --head")
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())
