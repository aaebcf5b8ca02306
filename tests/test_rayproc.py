"""launcher/cluster/rayproc.py: the `ray start` command, and stopping this node's Ray
processes and nothing else. No Ray: a fake `ray` leaves a daemon behind as the real one
does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from launcher.cluster import rayproc
from launcher.cluster.jobdir import prepare_job
from launcher.cluster.rayproc import NodeRay, RayStartFailed
from launcher.training.settings import TrainSettings

SLEEPER = "import time; time.sleep(60)"


@pytest.fixture
def job(tmp_path):
    return prepare_job(TrainSettings(output=str(tmp_path), name="job"), rollout_nodes=1)


@pytest.fixture
def fake_ray(tmp_path, monkeypatch):
    """A `ray` that starts a daemon (its command line names the temp dir) and returns,
    or fails with FAIL=1."""
    script = tmp_path / "ray"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$FAIL" = 1 ]; then echo "Address already in use" >&2; exit 1; fi\n'
        f'"{sys.executable}" -c "{SLEEPER}" "--temp-dir=$TEMP_DIR" </dev/null >/dev/null 2>&1 &\n'
        "echo started\n")
    script.chmod(0o755)
    monkeypatch.setattr(rayproc, "ray_executable", lambda: str(script))
    return script


def test_ray_start_args_are_a_list(tmp_path, job):
    args = rayproc.ray_start_args("head", "10.0.0.1", 2, 0, {"rollout_node": 1}, tmp_path,
                                  head_ports={"gcs": 20000, "client_server": 20001})
    assert args[:2] == ["ray", "start"] and "--head" in args
    assert "--no-monitor" in args  # a fixed set of nodes: no autoscaler process
    value = dict(zip(args, args[1:], strict=False))
    assert value["--port"] == "20000"
    assert value["--node-ip-address"] == "10.0.0.1"
    assert value["--num-cpus"] == "2" and value["--num-gpus"] == "0"
    assert json.loads(value["--resources"]) == {"rollout_node": 1}
    assert value["--temp-dir"] == str(tmp_path)
    worker = rayproc.ray_start_args("rollout", "10.0.0.2", 3, 0, {"rollout_node": 3}, tmp_path,
                                    head_address="10.0.0.1:20000")
    assert "--head" not in worker
    assert dict(zip(worker, worker[1:], strict=False))["--address"] == "10.0.0.1:20000"
    token = job.token_path.read_text()
    assert all(token not in a for a in args + worker)


def test_ray_env_uses_the_token_file_never_the_token(job):
    env = rayproc.ray_env(job)
    assert env["RAY_AUTH_MODE"] == "token"
    assert env["RAY_AUTH_TOKEN_PATH"] == str(job.token_path)
    assert "RAY_AUTH_TOKEN" not in env
    assert "TF_USE_LEGACY_KERAS" not in env


def test_ray_env_retries_local_connects_fast_unless_the_user_chose(job, monkeypatch):
    monkeypatch.delenv("RAY_raylet_client_connect_timeout_milliseconds", raising=False)
    env = rayproc.ray_env(job)
    assert env["RAY_raylet_client_connect_timeout_milliseconds"] == "100"
    # the same patience as Ray's default (10 attempts, 1 s apart)
    assert int(env["RAY_raylet_client_num_connect_attempts"]) * 100 == 10 * 1000
    monkeypatch.setenv("RAY_raylet_client_connect_timeout_milliseconds", "500")
    assert rayproc.ray_env(job)["RAY_raylet_client_connect_timeout_milliseconds"] == "500"


def test_a_failed_start_says_why(tmp_path, fake_ray):
    ray = NodeRay(tmp_path)
    with pytest.raises(RayStartFailed, match="exit 1.*\n.*Address already in use"):
        ray.start(["ray", "start"], {"FAIL": "1"})


def started(ray: NodeRay, temp_dir) -> list[int]:
    ray.start(["ray", "start", "--temp-dir", str(temp_dir)], {"TEMP_DIR": str(temp_dir)})
    deadline = time.monotonic() + 5
    while not ray.pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    return ray.pids()


def test_stop_kills_only_this_nodes_ray(tmp_path, fake_ray):
    """Issue 11: the clean-up killed every process whose command line named the temp
    dir, such as a user's `tail -F` on a Ray log. Only the processes of the sessions the
    node's `ray start` opened are its own."""
    temp = tmp_path / "ray_h_x"
    temp.mkdir()
    log = temp / "raylet.out"
    log.write_text("")
    tail = subprocess.Popen(["tail", "-F", str(log)], stdout=subprocess.DEVNULL)
    other = subprocess.Popen([sys.executable, "-c", SLEEPER, f"--temp-dir={temp}"])
    ray = NodeRay(temp)
    try:
        daemons = started(ray, temp)
        assert len(daemons) == 1 and tail.pid not in daemons and other.pid not in daemons
        assert ray.stop(grace_s=2) == 1
        assert not rayproc.running(daemons[0])
        assert tail.poll() is None and other.poll() is None
    finally:
        for proc in (tail, other):
            proc.kill()
            proc.wait()


def test_stop_never_raises(tmp_path, monkeypatch):
    """Issue 11: as an ordinary user the clean-up died with PermissionError, which turned
    the head's exit 75 into 1. A process that is not ours to signal is skipped."""
    child = subprocess.Popen([sys.executable, "-c", SLEEPER])
    ray = NodeRay(tmp_path)
    monkeypatch.setattr(NodeRay, "pids", lambda self: [child.pid])

    def refuse(error):
        def kill(pid, sig):
            raise error
        return kill

    try:
        for error in (PermissionError(1, "Operation not permitted"),
                      ProcessLookupError(3, "No such process")):
            with monkeypatch.context() as patch:
                patch.setattr(rayproc.os, "kill", refuse(error))
                assert ray.stop(grace_s=0.2) == 1
    finally:
        child.kill()
        child.wait()


def test_only_this_users_processes_of_its_sessions_count():
    """As root the clean-up signalled another uid's processes; now a process must be this
    user's and in one of the node's Ray sessions (or below one)."""
    me, other = os.getuid(), os.getuid() + 1
    table = {
        101: (1, 100, me),  # a Ray daemon of the node's session
        102: (101, 102, me),  # a worker that opened a session of its own: still below one
        103: (1, 100, other),  # another user's process in that session
        104: (103, 104, me),  # below another user's process
        105: (1, 105, me),  # this user's, another session
        os.getpid(): (1, 100, me),  # the node itself
    }
    assert rayproc.own_session_pids({100}, table) == [101, 102]
    assert rayproc.own_session_pids(set(), table) == []


def test_process_table_reads_this_process():
    ppid, sid, uid = rayproc.process_table()[os.getpid()]
    assert (ppid, sid, uid) == (os.getppid(), os.getsid(0), os.getuid())
