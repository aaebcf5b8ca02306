"""`launcher train` for real: short trainings on an embedded Ray, checked on disk.

Marked slow: each test starts Ray and trains (seconds to a minute on 2 cores).
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import (
    GYMNASIUM_ENV,
    LAUNCHER,
    REPO,
    free_port,
    only_run_dir,
    progress_rows,
    require,
    run_launcher,
)

pytestmark = pytest.mark.slow
TUTORIAL_ENV = REPO / "examples" / "custom_env.py"
# Small batches so the tests' trainings stay short; the presets are for real runs.
SMALL_PPO = ["--set", "train_batch_size_per_learner=256", "--set", "minibatch_size=64",
             "--set", "num_envs_per_env_runner=1", "--num-env-runners", "0"]


def test_cartpole_ppo_learns_and_leaves_readable_results(tmp_path):
    proc = run_launcher("train", "--env", "CartPole-v1", "--stop-reward", "150", "--stop-iters", "25",
                        "--seed", "0", "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = only_run_dir(tmp_path)
    rows = progress_rows(run_dir)
    assert float(rows[-1]["episode_return_mean"]) >= 150, rows[-1]
    assert [int(r["training_iteration"]) for r in rows] == list(range(1, len(rows) + 1))
    assert "env_runners/episode_return_mean" in rows[0]
    results = [json.loads(line) for line in (run_dir / "result.json").read_text().splitlines()]
    assert len(results) == len(rows)
    assert list(run_dir.glob("events.out.tfevents.*")), "no TensorBoard event file"
    assert json.loads((run_dir / "config.json").read_text())["env"] == "CartPole-v1"
    assert (run_dir / "spec.yaml").is_file() and (run_dir / "reward.png").stat().st_size > 1000
    assert (run_dir / "checkpoints" / f"checkpoint_{len(rows):06d}").is_dir()
    # The live display printed one line per iteration and a summary naming the run dir.
    assert proc.stdout.count("mean return") >= len(rows)
    assert f"results:    {run_dir}" in proc.stdout

    table = run_launcher("results", str(run_dir))
    assert table.returncode == 0 and run_dir.name[:20] in table.stdout
    png = tmp_path / "cmp.png"
    assert run_launcher("plot", str(run_dir), str(run_dir), "-o", str(png)).returncode == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_tutorial_basic_env_written_for_old_gym_trains(tmp_path):
    """The tutorial's BasicEnv, unchanged: gym.Env, reset() -> obs, step() -> 4 values."""
    assert "import gym\n" in TUTORIAL_ENV.read_text()
    proc = run_launcher("train", "--env", f"{TUTORIAL_ENV}:BasicEnv", "--stop-reward", "0.5",
                        "--stop-iters", "25", "--seed", "1", "-o", str(tmp_path), *SMALL_PPO,
                        "--set", "lr=0.003")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = progress_rows(only_run_dir(tmp_path))
    # Random play earns -0.6 on average; only learning to pick action 2 gets above 0.5.
    assert float(rows[-1]["episode_return_mean"]) >= 0.5


def test_custom_gymnasium_env_from_file_with_env_config(tmp_path):
    env_file = tmp_path / "guess.py"
    env_file.write_text(GYMNASIUM_ENV)
    proc = run_launcher("train", "--env", f"{env_file}:GuessEnv", "--env-config", "target=3",
                        "--stop-reward", "3.5", "--stop-iters", "25", "-o", str(tmp_path / "out"),
                        *SMALL_PPO, "--set", "lr=0.003")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = progress_rows(only_run_dir(tmp_path / "out"))
    assert float(rows[-1]["episode_return_mean"]) >= 3.5  # random play: 1.25 of 5


def test_dqn_trains_on_cartpole(tmp_path):
    proc = run_launcher("train", "--algo", "DQN", "--env", "CartPole-v1", "--stop-iters", "400",
                        "--stop-reward", "40", "-o", str(tmp_path), "--seed", "0")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = progress_rows(only_run_dir(tmp_path))
    assert float(rows[-1]["episode_return_mean"]) >= 40  # random play: ~22


def _interrupt_after(args: list[str], iterations: int, sig: int) -> subprocess.CompletedProcess:
    """Start training, send `sig` once `iterations` iteration lines were printed."""
    proc = subprocess.Popen([*LAUNCHER, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    seen, out = 0, []
    for line in proc.stdout:
        out.append(line)
        if line.lstrip().startswith("iter "):
            seen += 1
            if seen == iterations:
                proc.send_signal(sig)
    proc.wait(timeout=120)
    return subprocess.CompletedProcess(args, proc.returncode, "".join(out), "")


def test_sigterm_checkpoints_and_resume_loses_no_iteration(tmp_path):
    base = ["train", "--env", "CartPole-v1", "--stop-iters", "50", "--checkpoint-every", "100",
            "-o", str(tmp_path), "--name", "run", *SMALL_PPO]
    stopped = _interrupt_after(base, 3, signal.SIGTERM)
    assert stopped.returncode == 75, stopped.stdout
    run_dir = tmp_path / "run"
    done = len(progress_rows(run_dir))
    assert done >= 3 and (run_dir / "checkpoints" / f"checkpoint_{done:06d}").is_dir()

    resumed = run_launcher("train", "--resume", str(run_dir), "--stop-iters", str(done + 2))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resumed at iteration {done}" in resumed.stdout
    iterations = [int(r["training_iteration"]) for r in progress_rows(run_dir)]
    assert iterations == list(range(1, done + 3))


def test_killed_run_resumes_from_last_periodic_checkpoint(tmp_path):
    base = ["train", "--env", "CartPole-v1", "--stop-iters", "50", "--checkpoint-every", "2",
            "-o", str(tmp_path), "--name", "run", *SMALL_PPO]
    killed = _interrupt_after(base, 5, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    run_dir = tmp_path / "run"
    rows_before = progress_rows(run_dir)
    saved = sorted(int(p.name[11:]) for p in (run_dir / "checkpoints").glob("checkpoint_*"))
    assert saved and saved[-1] >= 4
    resumed = run_launcher("train", "--resume", str(run_dir), "--stop-iters", "7")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    rows = progress_rows(run_dir)
    assert [int(r["training_iteration"]) for r in rows] == list(range(1, 8))
    # Iterations up to the checkpoint are the original rows, untouched.
    for before, after in zip(rows_before[: saved[-1]], rows[: saved[-1]], strict=True):
        assert before["timestamp"] == after["timestamp"]


def test_resume_refuses_to_change_the_experiment(tmp_path):
    proc = run_launcher("train", "--resume", str(tmp_path), "--env", "Acrobot-v1")
    assert proc.returncode == 2 and "cannot change: env" in proc.stderr


@pytest.mark.tf
def test_tf2_old_api_stack_trains(tmp_path):
    require(importlib.util.find_spec("tensorflow") is not None,
            "TensorFlow is not installed (pip install 'launcher[tf]')")
    proc = run_launcher("train", "--framework", "tf2", "--env", "CartPole-v0", "--stop-iters", "2",
                        "-o", str(tmp_path), "--num-env-runners", "0",
                        "--set", "train_batch_size=1000")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = progress_rows(only_run_dir(tmp_path))
    assert len(rows) == 2 and float(rows[-1]["episode_return_mean"]) > 0
    assert "(tf2)" in proc.stdout


def test_address_joins_a_running_ray_cluster(tmp_path):
    """`--address` trains on an existing cluster (here: `ray start --head` on loopback)."""
    ray_bin = str(Path(sys.executable).parent / "ray")
    port = free_port()
    # Ray's socket paths must stay under 107 bytes: pytest's tmp_path is too deep.
    ray_tmp = tempfile.mkdtemp(prefix="lt-ray-", dir="/tmp")
    token = Path(ray_tmp) / "token"
    token.write_text(secrets.token_hex(32))
    auth = {"RAY_TMPDIR": ray_tmp, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    env = {**os.environ, **auth}
    log = (tmp_path / "head.log").open("w")
    # --block keeps Ray's processes children of this one: terminating it stops exactly
    # this cluster (`ray stop` would stop every Ray on the machine).
    head = subprocess.Popen([ray_bin, "start", "--head", "--block", "--port", str(port),
                             "--num-cpus", "2", "--node-ip-address", "127.0.0.1",
                             "--include-dashboard", "false"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert head.poll() is None and time.monotonic() < deadline, (tmp_path / "head.log").read_text()
            time.sleep(0.2)
        proc = run_launcher("train", "--address", f"127.0.0.1:{port}", "--stop-iters", "2",
                            "-o", str(tmp_path / "out"), *SMALL_PPO, env=auth)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert len(progress_rows(only_run_dir(tmp_path / "out"))) == 2
    finally:
        head.terminate()
        head.wait(timeout=90)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_sigusr1_while_the_algorithm_builds_is_not_lost(tmp_path):
    """Slurm's time-limit warning can come before the first iteration: the run still
    checkpoints after its first iteration and exits 75 (requeue)."""
    env_file = tmp_path / "slow_env.py"
    # The env signals its own process while RLlib builds the algorithm (first construction
    # inside Ray's build, after the launcher's probe), so the timing is exact.
    env_file.write_text(GYMNASIUM_ENV + '''

import os, signal
BUILT = []


class SignalOnBuild(GuessEnv):
    def __init__(self, config=None):
        super().__init__(config)
        BUILT.append(1)
        if len(BUILT) == 2:  # 1: the launcher's probe; 2: RLlib's build
            os.kill(os.getpid(), signal.SIGUSR1)
''')
    proc = run_launcher("train", "--env", f"{env_file}:SignalOnBuild", "--stop-iters", "20",
                        "-o", str(tmp_path), "--name", "run", *SMALL_PPO)
    assert proc.returncode == 75, proc.stdout + proc.stderr
    assert "stopped by SIGUSR1" in proc.stdout
    assert len(progress_rows(tmp_path / "run")) == 1
    assert (tmp_path / "run" / "checkpoints" / "checkpoint_000001").is_dir()
