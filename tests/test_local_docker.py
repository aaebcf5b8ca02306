"""`launcher local` and `launcher node` on the real Docker engine, with the built image.

Slow: each test starts a Ray cluster of containers and trains CartPole. Containers and
networks are named lt-local-<random>-... and removed by the fixtures whatever happens.
Thresholds are modest so each test stays around a minute on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import LAUNCHER, progress_rows, require
from tests.test_images import cpu_image  # noqa: F401  (fixture: make image)

pytestmark = [pytest.mark.slow, pytest.mark.docker]
IMAGE = "launcher:cpu"
# Fast CartPole settings: rollout containers of one CPU each; PPO's classic preset.
QUICK = ["--env", "CartPole-v1", "--seed", "0"]


@pytest.fixture(scope="module")
def client(request):
    """docker-py client; `cpu_image` (tests/test_images.py) runs `make image` first, a
    seconds-long no-op when the image is current, so the tests run this checkout's code."""
    request.getfixturevalue("cpu_image")
    try:
        import docker

        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:  # engine missing
        require(False, f"no Docker engine: {exc}")
    try:
        client.images.get(IMAGE)
    except Exception:
        require(False, f"image {IMAGE} missing: make image")
    return client


@pytest.fixture
def prefix(client):
    name = f"lt-local-{secrets.token_hex(3)}"
    yield name
    for container in client.containers.list(all=True, filters={"name": name}):
        container.remove(force=True)
    for network in client.networks.list(names=[name]):
        network.remove()


def launcher_local(prefix: str, output: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*LAUNCHER, "local", "--prefix", prefix, "--output", str(output), "--image", IMAGE, *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


class Lines:
    """Collects a process's output lines in a thread; wait_for() polls them."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if text in line:
                    return line
            if self.proc.poll() is not None and not any(text in line for line in self.lines):
                break
            time.sleep(0.2)
        raise AssertionError(f"{text!r} not seen; output:\n" + "\n".join(self.lines[-60:]))

    def finish(self, timeout: float) -> int:
        code = self.proc.wait(timeout=timeout)
        time.sleep(0.2)
        return code

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def no_containers_left(client, prefix: str) -> bool:
    return not client.containers.list(all=True, filters={"name": prefix}) and \
        not client.networks.list(names=[prefix])


def test_two_rollout_containers_train_cartpole(client, prefix, tmp_path):
    proc = Lines(launcher_local(prefix, tmp_path, "--nodes", "2", "--cpus-per-node", "1",
                                "--name", "smoke", "--stop-reward", "150", "--stop-iters", "25",
                                *QUICK))
    code = proc.finish(timeout=240)
    assert code == 0, proc.text
    run = tmp_path / "smoke"
    rows = progress_rows(run)
    assert max(float(r["episode_return_mean"] or 0) for r in rows) >= 150
    assert "all nodes joined" in proc.text and "local cluster run finished" in proc.text
    # The env runners ran on the rollout containers, not on the head.
    placement = json.loads((run / ".cluster" / "placement.json").read_text())
    runners = [a for a in placement if a["kind"] == "env_runner"]
    assert len(runners) == 2
    assert {a["role"] for a in runners} == {"rollout"}
    assert {a["host"] for a in runners} == {f"{prefix}-rollout-1", f"{prefix}-rollout-2"}
    # Results belong to the invoking user; the token stayed private; nothing left running.
    assert (run / "progress.csv").stat().st_uid == os.getuid()
    assert (run / ".cluster" / "token").stat().st_mode & 0o777 == 0o600
    token = (run / ".cluster" / "token").read_text()
    assert token not in proc.text
    assert no_containers_left(client, prefix)


def test_learner_container_holds_the_learner(client, prefix, tmp_path):
    """--gpus 1 on a host without NVIDIA GPUs: a CPU learner, placed on the learner
    container by the learner_node resource, as on Slurm."""
    proc = Lines(launcher_local(prefix, tmp_path, "--nodes", "1", "--gpus", "1",
                                "--cpus-per-node", "1", "--name", "learner", "--stop-iters", "2",
                                *QUICK))
    assert proc.finish(timeout=240) == 0, proc.text
    placement = json.loads((tmp_path / "learner" / ".cluster" / "placement.json").read_text())
    where = {(a["kind"], a["role"], a["host"]) for a in placement}
    assert ("learner", "learner", f"{prefix}-learner") in where, placement
    assert ("env_runner", "rollout", f"{prefix}-rollout-1") in where, placement
    assert {a["role"] for a in placement} == {"learner", "rollout"}
    assert no_containers_left(client, prefix)


def test_rollout_container_killed_training_reaches_target(client, prefix, tmp_path):
    proc = Lines(launcher_local(prefix, tmp_path, "--nodes", "2", "--cpus-per-node", "1",
                                "--name", "kill", "--stop-reward", "150", "--stop-iters", "40",
                                *QUICK))
    proc.wait_for("iter    2 ", timeout=180)
    client.containers.get(f"{prefix}-rollout-1").kill()
    code = proc.finish(timeout=300)
    assert code == 0, proc.text
    rows = progress_rows(tmp_path / "kill")
    assert max(float(r["episode_return_mean"] or 0) for r in rows) >= 150
    assert len(rows) > 2  # iterations ran after the kill
    assert no_containers_left(client, prefix)


def test_head_killed_then_resume_loses_no_iteration(client, prefix, tmp_path):
    proc = Lines(launcher_local(prefix, tmp_path, "--nodes", "1", "--cpus-per-node", "1",
                                "--name", "resume", "--stop-iters", "6",  # default: every iteration
                                *QUICK))
    proc.wait_for("iter    3 ", timeout=180)
    run = tmp_path / "resume"
    # wait for the checkpoint of iteration 3 (written right after its progress line)
    deadline = time.monotonic() + 30
    while not (run / "checkpoints" / "checkpoint_000003").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    client.containers.get(f"{prefix}-head").kill()
    code = proc.finish(timeout=60)
    assert code != 0
    assert f"launcher local --resume {run}" in proc.text
    assert "was killed" in proc.text
    assert no_containers_left(client, prefix)
    done_before = sorted(int(p.name[11:]) for p in (run / "checkpoints").glob("checkpoint_*"))
    last = done_before[-1]
    completed = max(int(r["training_iteration"]) for r in progress_rows(run))
    # With the cluster default (a checkpoint every iteration) the last completed iteration
    # is the last checkpoint: resuming redoes nothing.
    assert last >= 3 and last == completed

    again = Lines(subprocess.Popen(
        [*LAUNCHER, "local", "--prefix", prefix, "--image", IMAGE, "--resume", str(run)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    assert again.finish(timeout=240) == 0, again.text
    assert f"resumed at iteration {last}" in again.text
    iterations = [int(r["training_iteration"]) for r in progress_rows(run)]
    assert iterations == list(range(1, 7))  # every iteration once: none lost, none doubled
    assert no_containers_left(client, prefix)


def test_single_docker_run_head_without_workers(client, prefix, tmp_path):
    """The README's one-liner: one container, `launcher node --role head`, no workers."""
    from launcher.cluster.jobdir import prepare_job
    from launcher.training.settings import TrainSettings

    settings = TrainSettings.from_dict({"output": str(tmp_path), "name": "single", "seed": 0,
                                        "stop": {"reward": 100, "iters": 20}})
    job = prepare_job(settings, rollout_nodes=0, cpus_per_node=2)
    docker_cli = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
    cmd = [docker_cli, "run", "--rm", "--name", f"{prefix}-single", "--shm-size=1g",
           "-e", f"LAUNCHER_USER={os.getuid()}:{os.getgid()}",
           "-v", f"{job.path}:{job.path}", IMAGE,
           "launcher", "node", "--run-dir", str(job.path), "--role", "head", "--num-cpus", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "waiting for 0 rollout and 0 learner node(s)" in proc.stdout
    done = json.loads((job.state_dir / "done.json").read_text())
    assert done["status"] == 0
    rows = progress_rows(job.path)
    assert max(float(r["episode_return_mean"] or 0) for r in rows) >= 100
    placement = json.loads((job.state_dir / "placement.json").read_text())
    assert {a["role"] for a in placement if a["kind"] == "env_runner"} == {"head"}


def test_bad_env_fails_before_any_container(client, prefix, tmp_path):
    proc = subprocess.run([*LAUNCHER, "local", "--prefix", prefix, "--output", str(tmp_path),
                           "--env", "NoSuchEnv-v0"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert no_containers_left(client, prefix)


def test_fake_nvidia_smi_gpu_host_with_the_cpu_image_is_refused(client, prefix, tmp_path):
    """No GPU here: an `nvidia-smi` on PATH that lists one GPU stands in for a GPU host.
    The CPU image's torch could not use the GPU Docker would hand the learner container:
    one line, exit 2, nothing started."""
    assert client.images.get(IMAGE).labels.get("launcher.torch") == "cpu"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 (UUID: GPU-fake)'\n")
    smi.chmod(0o755)
    proc = subprocess.run([*LAUNCHER, "local", "--prefix", prefix, "--image", IMAGE, "--gpus", "1",
                           "--output", str(tmp_path / "runs"), *QUICK],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "CPU-only torch" in proc.stderr and "launcher:gpu" in proc.stderr
    assert not (tmp_path / "runs").exists()
    assert no_containers_left(client, prefix)


def test_ctrl_c_checkpoints_and_removes_everything(client, prefix, tmp_path):
    import signal

    proc = Lines(launcher_local(prefix, tmp_path, "--nodes", "1", "--cpus-per-node", "1",
                                "--name", "ctrlc", "--stop-iters", "50", *QUICK))
    proc.wait_for("iter    2 ", timeout=180)
    proc.proc.send_signal(signal.SIGINT)
    assert proc.finish(timeout=120) == 75, proc.text
    assert "the head saves a checkpoint first" in proc.text
    assert f"launcher local --resume {tmp_path / 'ctrlc'}" in proc.text
    assert list((tmp_path / "ctrlc" / "checkpoints").glob("checkpoint_*"))
    assert no_containers_left(client, prefix)


def test_head_names_the_nodes_that_never_joined(client, prefix, tmp_path):
    from launcher.cluster.jobdir import prepare_job
    from launcher.training.settings import TrainSettings

    job = prepare_job(TrainSettings(output=str(tmp_path), name="alone"), rollout_nodes=1,
                      cpus_per_node=1, ready_timeout_s=3)
    docker_cli = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
    proc = subprocess.run(
        [docker_cli, "run", "--rm", "--name", f"{prefix}-alone", "--shm-size=512m",
         "-e", f"LAUNCHER_USER={os.getuid()}:{os.getgid()}", "-v", f"{job.path}:{job.path}", IMAGE,
         "launcher", "node", "--run-dir", str(job.path), "--role", "head"],
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert re.search(r"not every node joined the Ray cluster within \d+ s: rollout: 0 of 1 "
                     r"joined; 1 never started", proc.stdout), proc.stdout
    assert json.loads((job.state_dir / "done.json").read_text())["status"] == 2


def sweep_record_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "sweep.json").read_text())


def some_trial_reached(run_dir: Path, iterations: int) -> bool:
    return (run_dir / "sweep.json").is_file() and any(
        len(trial_iterations(run_dir, t)) >= iterations for t in sweep_record_of(run_dir)["trials"])


def trial_iterations(run_dir: Path, trial: dict) -> list[int]:
    trial_dir = run_dir / trial["name"]
    if not (trial_dir / "progress.csv").is_file():
        return []
    return [int(r["training_iteration"]) for r in progress_rows(trial_dir)]


def test_sweep_on_containers_stopped_by_ctrl_c_and_resumed(client, prefix, tmp_path):
    """A 2 x 2 sweep (2 learning rates x 2 seeds) as one `launcher local` job: Ctrl-C in
    the middle checkpoints the running trials (exit 75); --resume finishes the sweep
    without running a completed iteration twice."""
    import signal

    run_dir = tmp_path / "sweep"
    proc = Lines(launcher_local(prefix, tmp_path, "--nodes", "1", "--cpus-per-node", "2",
                                "--name", "sweep", "--env", "CartPole-v1", "--stop-iters", "6",
                                "--grid", "lr=0.001,0.0003", "--seeds", "2"))
    proc.wait_for("sweep: 4 trials", timeout=60)
    deadline = time.monotonic() + 300
    while not some_trial_reached(run_dir, 2):
        assert proc.proc.poll() is None and time.monotonic() < deadline, proc.text[-4000:]
        time.sleep(0.5)
    proc.proc.send_signal(signal.SIGINT)
    assert proc.finish(timeout=180) == 75, proc.text[-4000:]
    assert no_containers_left(client, prefix)
    states = {t["state"] for t in sweep_record_of(run_dir)["trials"]}
    assert "done" not in states or len(states) > 1, states  # stopped in the middle
    assert states <= {"done", "interrupted", "pending"}, states

    assert f"launcher local --resume {run_dir}" in proc.text
    resumed = Lines(subprocess.Popen(
        [*LAUNCHER, "local", "--prefix", prefix, "--image", IMAGE, "--resume", str(run_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    assert resumed.finish(timeout=900) == 0, resumed.text[-4000:]
    record = sweep_record_of(run_dir)
    assert [t["state"] for t in record["trials"]] == ["done"] * 4, record["trials"]
    for trial in record["trials"]:  # no gap, no repeat: each completed iteration ran once
        assert trial_iterations(run_dir, trial) == list(range(1, 7)), trial["name"]
    assert any(t["resumed_from"] for t in record["trials"])
    assert (run_dir / "reward.png").stat().st_size > 1000
    assert no_containers_left(client, prefix)
