"""`launcher tensorboard`: serves a real run's event files over HTTP on localhost."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from launcher.errors import UserError
from launcher.results import tensorboard as tb
from tests.conftest import LAUNCHER, free_port, run_launcher


def fake_run(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "events.out.tfevents.1.host").write_bytes(b"")
    return path


# --- fast ------------------------------------------------------------------------------
def test_logdir_spec_names_each_run(tmp_path):
    a = fake_run(tmp_path / "x" / "PPO_CartPole-v1_1")
    b = fake_run(tmp_path / "y" / "PPO_CartPole-v1_1")  # same folder name: made unique
    spec = tb.logdir_spec([a, b])
    assert spec == f"PPO_CartPole-v1_1:{a.resolve()},PPO_CartPole-v1_1_2:{b.resolve()}"


def test_a_folder_of_runs_is_accepted(tmp_path):
    fake_run(tmp_path / "results" / "run1")
    assert tb.logdir_spec([tmp_path / "results"]) == f"results:{(tmp_path / 'results').resolve()}"


def test_refuses_dirs_without_event_files(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="has no TensorBoard event files"):
        tb.logdir_spec([tmp_path / "empty"])
    with pytest.raises(UserError, match="run directory not found"):
        tb.logdir_spec([tmp_path / "missing"])


def test_missing_tensorboard_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # makes `import tensorboard` fail
    with pytest.raises(UserError, match=r"pip install 'launcher\[tensorboard\]'"):
        tb.start([fake_run(tmp_path / "run")], port=free_port())


def test_tunnel_command():
    host = socket.getfqdn()
    assert tb.tunnel_command(6006, env={}) is None
    login = {"SSH_CONNECTION": "10.0.0.9 50000 10.0.0.1 22", "USER": "ada"}
    assert tb.tunnel_command(6006, env=login) == f"ssh -N -L 6006:localhost:6006 ada@{host}"
    cluster = {"SLURM_CLUSTER_NAME": "eagle", "USER": "ada"}
    assert tb.tunnel_command(7007, env=cluster) == f"ssh -N -L 7007:localhost:7007 ada@{host}"
    job = {"SLURM_JOB_ID": "12", "SLURM_SUBMIT_HOST": "el1", "USER": "ada"}
    assert tb.tunnel_command(6006, env=job) == f"ssh -N -L 6006:{host}:6006 ada@el1"


def test_cli_errors_are_one_line(tmp_path):
    result = run_launcher("tensorboard", str(tmp_path / "missing"), timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"error: run directory not found: {tmp_path / 'missing'}"


# --- slow: a real run, a real server ------------------------------------------------------
@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("tb_runs")
    result = run_launcher("train", "--env", "CartPole-v1", "--stop-iters", "2", "--name", "tb-run",
                          "-o", str(output), timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    return output / "tb-run"


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_serves_a_real_runs_scalars(real_run):
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("SSH_CONNECTION", None)
    env.pop("SSH_CLIENT", None)
    process = subprocess.Popen([*LAUNCHER, "tensorboard", str(real_run), "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        tags: dict = {}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[1][-3000:]
            try:
                tags = get_json(f"{base}/data/plugin/scalars/tags")
            except OSError:
                tags = {}
            if any("ray/tune/episode_return_mean" in t for t in tags.values()):
                break
            time.sleep(1)
        runs = get_json(f"{base}/data/runs")
        assert runs and all(r.startswith("tb-run") for r in runs), runs
        run = next(r for r, t in tags.items() if "ray/tune/episode_return_mean" in t)
        query = urllib.parse.urlencode({"run": run, "tag": "ray/tune/training_iteration"})
        points = get_json(f"{base}/data/plugin/scalars/scalars?{query}")
        assert [p[2] for p in points] == [1.0, 2.0]  # [wall_time, step, value] per iteration
    finally:
        process.send_signal(signal.SIGINT)
        try:
            out, _err = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _err = process.communicate()
    assert f"at http://127.0.0.1:{port}/" in out
    assert "TensorBoard stopped" in out


@pytest.mark.slow
def test_port_in_use_is_one_line(real_run):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_launcher("tensorboard", str(real_run), "--port", str(port), timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: port {port} on 127.0.0.1 is already in use: pick another with --port")


def test_scalars_have_env_steps_as_their_x_axis(tmp_path):
    """Runs with different batch sizes line up: the step of every scalar is the env steps."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from launcher.training.runlog import RunLog

    log = RunLog(tmp_path)
    for iteration, steps in [(1, 2000), (2, 4010), (3, 6000)]:
        log.append({"training_iteration": iteration, "num_env_steps_sampled_lifetime": steps,
                    "env_runners": {"episode_return_mean": 10.0 * iteration}})
    log.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    returns = events.Scalars("ray/tune/episode_return_mean")
    assert [(e.step, e.value) for e in returns] == [(2000, 10.0), (4010, 20.0), (6000, 30.0)]
    assert [e.step for e in events.Scalars("ray/tune/training_iteration")] == [2000, 4010, 6000]
