"""`launcher evaluate`: a checkpoint restored with its connectors, played greedily.

Fast: the one-line refusals (not a run dir, no checkpoint, a tf2 run, a bad --episodes,
an env that cannot render for --video), on run directories written as training writes
them. Slow: short real trainings (PPO on CartPole-v1 with evaluation during training,
SAC on Pendulum-v1, the tutorial's BasicEnv), then `launcher evaluate` on them in a
subprocess, as a user runs it; and a `launcher local` run evaluated inside the image.
The trained runs are session fixtures, shared with tests/test_export.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from launcher.training.settings import TrainSettings
from tests.conftest import (
    LAUNCHER,
    REPO,
    assert_one_line_error,
    call_cli,
    progress_rows,
    run_launcher,
)
from tests.test_images import cpu_image  # noqa: F401  (fixture: make image)
from tests.test_local_docker import IMAGE, QUICK, client  # noqa: F401  (fixture: the engine)

TUTORIAL_ENV = REPO / "examples" / "custom_env.py"
SMALL_PPO = ["--set", "train_batch_size_per_learner=256", "--set", "minibatch_size=64",
             "--set", "num_envs_per_env_runner=1", "--num-env-runners", "0"]


def run_dir_with_checkpoint(path: Path, **settings) -> Path:
    """A run directory as training leaves it: spec.yaml and a checkpoint's folders."""
    path.mkdir(parents=True)
    TrainSettings(**settings).write_spec(path)
    checkpoint = path / "checkpoints" / "checkpoint_000001"
    (checkpoint / "env_runner").mkdir(parents=True)
    (checkpoint / "learner_group" / "learner" / "rl_module" / "default_policy").mkdir(parents=True)
    return path


# --- fast: refusals ------------------------------------------------------------------------
def test_not_a_run_dir(capsys, tmp_path):
    code, _, err = call_cli(capsys, "evaluate", str(tmp_path))
    assert_one_line_error(code, err, "neither a launcher run directory")
    code, _, err = call_cli(capsys, "evaluate", str(tmp_path / "missing"))
    assert_one_line_error(code, err, "no such run directory or checkpoint")


def test_a_run_dir_without_checkpoint(capsys, tmp_path):
    TrainSettings().write_spec(tmp_path)
    code, _, err = call_cli(capsys, "evaluate", str(tmp_path))
    assert_one_line_error(code, err, "no checkpoint in", "nothing to evaluate")


def test_a_tf2_run_is_refused(capsys, tmp_path):
    run = run_dir_with_checkpoint(tmp_path / "run", framework="tf2")
    code, _, err = call_cli(capsys, "evaluate", str(run))
    assert_one_line_error(code, err, "--framework tf2", "torch runs only")


def test_bad_episode_count(capsys, tmp_path):
    run = run_dir_with_checkpoint(tmp_path / "run")
    code, _, err = call_cli(capsys, "evaluate", str(run), "--episodes", "0")
    assert_one_line_error(code, err, "--episodes must be at least 1")


NO_RENDER_ENV = """
import gymnasium


class Blind(gymnasium.Env):
    observation_space = gymnasium.spaces.Discrete(2)
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        return 0, {}

    def step(self, action):
        return 0, 1.0, True, False, {}
"""


def test_video_of_an_env_that_cannot_render(capsys, tmp_path):
    (tmp_path / "blind.py").write_text(NO_RENDER_ENV)
    run = run_dir_with_checkpoint(tmp_path / "run", env=f"{tmp_path / 'blind.py'}:Blind")
    code, _, err = call_cli(capsys, "evaluate", str(run), "--video", str(tmp_path / "v"))
    assert_one_line_error(code, err, "cannot render rgb_array frames")
    assert not (tmp_path / "v").exists()


def test_bad_env_config_is_one_line(capsys, tmp_path):
    run = run_dir_with_checkpoint(tmp_path / "run")
    code, _, err = call_cli(capsys, "evaluate", str(run), "--env-config", "novalue")
    assert_one_line_error(code, err, "--env-config expects key=value")


# --- slow: trained for real ---------------------------------------------------------------
def train(output: Path, name: str, *args: str) -> Path:
    proc = run_launcher("train", "-o", str(output), "--name", name, *args, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return output / name


@pytest.fixture(scope="session")
def ppo_run(tmp_path_factory) -> Path:
    """PPO on CartPole-v1, evaluated greedily every iteration during training."""
    return train(tmp_path_factory.mktemp("ppo"), "ppo", "--env", "CartPole-v1", "--seed", "0",
                 "--stop-iters", "4", "--eval-every", "1", "--eval-episodes", "3")


@pytest.fixture(scope="session")
def sac_run(tmp_path_factory) -> Path:
    return train(tmp_path_factory.mktemp("sac"), "sac", "--algo", "SAC", "--env", "Pendulum-v1",
                 "--seed", "0", "--stop-iters", "2",
                 "--set", "num_steps_sampled_before_learning_starts=200")


@pytest.fixture(scope="session")
def basic_run(tmp_path_factory) -> Path:
    return train(tmp_path_factory.mktemp("basic"), "basic", "--env", f"{TUTORIAL_ENV}:BasicEnv",
                 "--seed", "1", "--stop-iters", "3", "--set", "lr=0.003", *SMALL_PPO)


def evaluate(*args: str) -> tuple[subprocess.CompletedProcess, dict]:
    proc = run_launcher("evaluate", *args, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = Path(next(line for line in proc.stdout.splitlines() if line.startswith("wrote"))[6:])
    return proc, json.loads(run.read_text())


@pytest.mark.slow
def test_evaluation_during_training_and_the_best_checkpoint(ppo_run):
    rows = progress_rows(ppo_run)
    assert all(float(r["evaluation_return_mean"]) > 0 for r in rows), rows
    best = json.loads((ppo_run / "checkpoints" / "best" / "best.json").read_text())
    assert best["metric"] == "evaluation return"
    assert best["score"] == max(float(r["evaluation_return_mean"]) for r in rows)
    png = ppo_run / "reward.png"
    assert png.stat().st_size > 1000


@pytest.mark.slow
def test_evaluate_plays_the_best_checkpoint_greedily(ppo_run):
    proc, result = evaluate(str(ppo_run), "--episodes", "5", "--seed", "7")
    assert result["checkpoint"].endswith("checkpoints/best")
    assert len(result["returns"]) == 5 and result["seed"] == 7 and not result["explore"]
    assert result["returns"] == [float(n) for n in result["lengths"]]  # CartPole: +1 a step
    assert "mean return" in proc.stdout and "±" in proc.stdout
    # The same seed plays the same episodes; greedy CartPole beats its exploring training.
    _, again = evaluate(str(ppo_run), "--episodes", "5", "--seed", "7")
    assert again["returns"] == result["returns"]
    assert result["mean_return"] >= 0.8 * result["training_return"], result


@pytest.mark.slow
def test_evaluate_a_named_checkpoint_with_video(ppo_run, tmp_path):
    checkpoint = sorted((ppo_run / "checkpoints").glob("checkpoint_*"))[-1]
    _, result = evaluate(str(checkpoint), "-n", "2", "--seed", "1", "--video", str(tmp_path / "v"))
    assert result["checkpoint"] == str(checkpoint) and result["iteration"] == 4
    from tests.test_video import decoded_frames

    for episode, length in enumerate(result["lengths"]):
        mp4 = tmp_path / "v" / f"episode-{episode:03d}.mp4"
        assert decoded_frames(mp4) == length + 1  # the reset frame and one per step
        assert (tmp_path / "v" / f"episode-{episode:03d}.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "v" / "episode-000.gif").read_bytes()[:3] == b"GIF"


@pytest.mark.slow
def test_evaluate_sac_on_pendulum_with_env_config(sac_run):
    _, result = evaluate(str(sac_run), "-n", "2", "--seed", "0", "--env-config", "max_episode_steps=50")
    assert result["lengths"] == [50, 50] and result["env_config"] == {"max_episode_steps": 50}
    assert all(-1000 < r <= 0 for r in result["returns"])


@pytest.mark.slow
def test_evaluate_the_tutorial_env(basic_run, capsys):
    _, result = evaluate(str(basic_run), "-n", "10", "--seed", "0")
    assert result["lengths"] == [1] * 10 and set(result["returns"]) <= {1.0, -1.0}
    proc = run_launcher("evaluate", str(basic_run), "--video", str(basic_run / "v"))
    # (old gym prints its own banner when the tutorial's env imports it)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: --video: environment")
    assert "cannot render rgb_array frames" in proc.stderr


@pytest.mark.slow
@pytest.mark.docker
def test_a_local_run_is_evaluated_inside_the_image(client, tmp_path):  # noqa: F811
    """`launcher local` trains in containers; `docker run IMAGE launcher evaluate` reads it."""
    out = tmp_path / "out"
    proc = subprocess.run([*LAUNCHER, "local", "--image", IMAGE, "--output", str(out), "--name", "run",
                           "--nodes", "1", "--cpus-per-node", "1", "--stop-iters", "2", *QUICK],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = out / "run"
    # As `launcher local` runs it: the run dir at its own path, the entry point switching
    # to the owner of the results (LAUNCHER_USER).
    proc = subprocess.run(["docker", "run", "--rm", "-v", f"{run}:{run}", "-e",
                           f"LAUNCHER_USER={os.getuid()}:{os.getgid()}", IMAGE, "launcher",
                           "evaluate", str(run), "-n", "2", "--seed", "0"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((run / "eval.json").read_text())
    assert len(result["returns"]) == 2 and result["checkpoint"].startswith(str(run))


def test_the_checkpoint_layout_is_rllibs():
    from ray.rllib.core import COMPONENT_ENV_RUNNER

    from launcher.results import restore

    assert restore.ENV_RUNNER_PART == COMPONENT_ENV_RUNNER
    assert restore.module_dir(Path("c")) == Path("c/learner_group/learner/rl_module/default_policy")
