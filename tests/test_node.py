"""launcher/node.py without Ray running: sizing, ports, temp dirs, argument lists,
readiness messages, scoped process discovery."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time

import pytest

from launcher.cluster import node
from launcher.cluster.jobdir import prepare_job
from launcher.errors import UserError
from launcher.training.settings import TrainSettings


@pytest.fixture
def job(tmp_path):
    return prepare_job(TrainSettings(output=str(tmp_path), name="job"), rollout_nodes=2,
                       cpus_per_node=3, ready_timeout_s=5)


@pytest.fixture
def gpu_job(tmp_path):
    return prepare_job(TrainSettings(output=str(tmp_path), name="gjob"), rollout_nodes=1,
                       learner_gpus=2)


def test_role_resources(job, gpu_job):
    assert node.node_resources(job, "rollout", None, None, env={}) == (3, 0, {"rollout_node": 3})
    # no learner node: the head runs env runners on all its CPUs but one
    assert node.node_resources(job, "head", 4, None, env={}) == (4, 0, {"rollout_node": 3})
    assert node.node_resources(job, "head", 1, None, env={}) == (1, 0, {})
    # with a learner node the head only trains
    assert node.node_resources(gpu_job, "head", 4, None, env={})[2] == {}
    cpus, gpus, res = node.node_resources(gpu_job, "learner", 2, None,
                                          env={"CUDA_VISIBLE_DEVICES": "0,1"})
    assert (cpus, gpus, res) == (2, 2, {"learner_node": 1})


def test_sizing_order_args_then_slurm_then_cluster_yaml(job):
    env = {"SLURM_CPUS_ON_NODE": "7"}
    assert node.node_resources(job, "rollout", 5, None, env=env)[0] == 5
    assert node.node_resources(job, "rollout", None, None, env=env)[0] == 7
    assert node.node_resources(job, "rollout", None, None, env={})[0] == 3


def test_learner_without_its_gpus_is_refused(gpu_job):
    with pytest.raises(UserError, match="should have 2 GPU"):
        node.node_resources(gpu_job, "learner", 2, None, env={})
    with pytest.raises(UserError, match="should have 2 GPU"):
        node.node_resources(gpu_job, "learner", 2, None, env={"CUDA_VISIBLE_DEVICES": ""})


def test_cuda_visible_devices_count():
    assert node.visible_cuda_devices({}) is None
    assert node.visible_cuda_devices({"CUDA_VISIBLE_DEVICES": ""}) == 0
    assert node.visible_cuda_devices({"CUDA_VISIBLE_DEVICES": "2,3"}) == 2
    assert node.visible_cuda_devices({"CUDA_VISIBLE_DEVICES": "-1"}) == 0


def test_temp_dir_is_short_and_per_job_and_node(job, gpu_job):
    one = node.temp_dir_for(job, "rollout", env={"SLURM_NODEID": "1"})
    assert one != node.temp_dir_for(job, "rollout", env={"SLURM_NODEID": "0"})
    assert one != node.temp_dir_for(gpu_job, "rollout", env={"SLURM_NODEID": "1"})
    assert node.temp_dir_for(job, "head", env={}) != node.temp_dir_for(job, "rollout", env={})
    # Ray's longest socket path: TEMP/session_<date>_<time>_<usec>_<pid>/sockets/plasma_store
    longest = f"{one}/session_2026-11-25_09-15-28_123456_4194304/sockets/plasma_store"
    assert len(longest.encode()) < 107


def test_ray_start_args_are_a_list_with_the_jobs_ports(job):
    temp = node.temp_dir_for(job, "head", env={})
    args = node.ray_start_args(job, "head", "10.0.0.1", 2, 0, {"rollout_node": 1}, temp)
    assert args[:2] == ["ray", "start"] and "--head" in args
    assert "--no-monitor" in args  # a fixed set of nodes: no autoscaler process
    value = dict(zip(args, args[1:], strict=False))
    assert value["--port"] == str(job.cluster.port_base)
    assert value["--node-ip-address"] == "10.0.0.1"
    assert value["--num-cpus"] == "2" and value["--num-gpus"] == "0"
    assert json.loads(value["--resources"]) == {"rollout_node": 1}
    assert value["--temp-dir"] == str(temp)
    low, high = job.cluster.worker_ports
    assert value["--min-worker-port"] == str(low) and value["--max-worker-port"] == str(high)
    worker = node.ray_start_args(job, "rollout", "10.0.0.2", 3, 0, {"rollout_node": 3}, temp,
                                 head_address="10.0.0.1:20000")
    assert "--head" not in worker
    assert dict(zip(worker, worker[1:], strict=False))["--address"] == "10.0.0.1:20000"
    token = job.token_path.read_text()
    assert all(token not in a for a in args + worker)


def test_ray_env_uses_the_token_file_never_the_token(job):
    env = node.ray_env(job)
    assert env["RAY_AUTH_MODE"] == "token"
    assert env["RAY_AUTH_TOKEN_PATH"] == str(job.token_path)
    assert "RAY_AUTH_TOKEN" not in env
    assert "TF_USE_LEGACY_KERAS" not in env


def test_busy_port_is_named(job):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert node.busy_ports("127.0.0.1", {"gcs": port}) == [f"{port} (gcs)"]


def test_missing_nodes_are_named(job):
    joined = [node.Joined("head", "h", "10.0.0.1"), node.Joined("rollout", "r1", "10.0.0.2")]
    registered = [{"role": "rollout", "host": "r2", "ip": "10.0.0.3", "state": "joining"},
                  {"role": "rollout", "host": "r1", "ip": "10.0.0.2", "state": "joined"}]
    text = node.missing_message(job, joined, registered, 5)
    assert "within 5 s" in text
    assert "rollout: 1 of 2 joined" in text and "r2 (10.0.0.3: joining)" in text
    assert "r1" not in text.split("rollout:")[1]
    text = node.missing_message(job, joined[:1], [], 5)
    assert "rollout: 0 of 2 joined; 2 never started" in text


def test_unknown_role_and_unexpected_role(job):
    with pytest.raises(UserError, match="unknown role"):
        node.run_node(job.path, "worker")
    with pytest.raises(UserError, match="expects no learner"):
        node.run_node(job.path, "learner")
    with pytest.raises(UserError, match="not a prepared cluster job"):
        node.run_node(job.path.parent, "head")


def test_worker_gives_up_when_no_head_appears(job, capsys):
    """Polling, not sleeping: a worker with no head fails at the readiness timeout."""
    job.cluster.ready_timeout_s = 0.5
    stopper = node.Stopper()
    log = node.NodeLog("rollout")
    started = time.monotonic()
    with pytest.raises(node.HeadGone, match="no head answered within"):
        node.run_worker(job, "rollout", "127.0.0.1", 1, 0, {}, job.path / "t", log, stopper)
    assert time.monotonic() - started < 3
    registered = list((job.state_dir / "nodes").glob("rollout-*.json"))
    assert registered and json.loads(registered[0].read_text())["state"] == "waiting for the head"


def test_worker_leaves_when_the_head_failed_before_it_joined(job):
    stopper = node.Stopper()
    time.sleep(0.01)
    (job.state_dir / "done.json").write_text(json.dumps(
        {"status": 2, "reason": "bad env", "session": None, "time": time.time() + 1}))
    with pytest.raises(node.HeadGone, match="bad env"):
        node.run_worker(job, "rollout", "127.0.0.1", 1, 0, {}, job.path / "t", node.NodeLog("r"),
                        stopper)


def test_stop_ray_touches_only_processes_of_its_temp_dir(tmp_path):
    mine, other = tmp_path / "ray_mine", tmp_path / "ray_other"
    code = "import time; time.sleep(60)"
    ours = subprocess.Popen([sys.executable, "-c", code, f"--temp-dir={mine}"])
    theirs = subprocess.Popen([sys.executable, "-c", code, f"--temp-dir={other}"])
    try:
        assert node.ray_pids(mine) == [ours.pid]
        assert node.stop_ray(mine, grace_s=2) == 1
        assert ours.wait(timeout=5) is not None
        assert theirs.poll() is None
    finally:
        ours.kill()
        theirs.kill()
        theirs.wait()


def test_actor_kinds():
    assert node.actor_kind("SingleAgentEnvRunner") == "env_runner"
    assert node.actor_kind("create_executable_class.<locals>._WrappedExecutable") == "learner"
    assert node.actor_kind("PPOTorchLearner") == "learner"
    assert node.actor_kind("SomethingElse") == "other"


def test_worker_retries_a_failed_join_then_leaves_at_done(job, monkeypatch):
    """A failed `ray start` is retried; the worker then waits for the head's done marker
    of that session."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        (job.state_dir / "head.json").write_text(json.dumps(
            {"address": address, "session": "s1", "ray_up": True}))
        calls = []

        def fake_start(args, env, log):
            calls.append(args)
            if len(calls) == 1:
                raise node.RayStartFailed("ray start failed (exit 1):\nGCS not ready")
            (job.state_dir / "done.json").write_text(json.dumps(
                {"status": 0, "reason": "finished", "session": "s1", "time": time.time()}))

        monkeypatch.setattr(node, "start_ray", fake_start)
        status = node.run_worker(job, "rollout", "127.0.0.1", 1, 0, {"rollout_node": 1},
                                 job.path / "t", node.NodeLog("rollout"), node.Stopper())
    assert status == 0 and len(calls) == 2
    assert "--address" in calls[0] and address in calls[0]


def test_worker_joins_only_once_the_heads_ray_is_up(job, monkeypatch):
    """head.json names the address before the head's `ray start` returned; a worker whose
    `ray start` ran then would find no head node in the GCS and sleep 2 s per retry inside
    Ray. It waits for ray_up, even though the GCS port already answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        head = {"address": address, "session": "s1", "ray_up": False}
        (job.state_dir / "head.json").write_text(json.dumps(head))
        calls = []

        def fake_start(args, env, log):
            calls.append(time.monotonic())
            (job.state_dir / "done.json").write_text(json.dumps(
                {"status": 0, "reason": "finished", "session": "s1", "time": time.time()}))

        monkeypatch.setattr(node, "start_ray", fake_start)
        result = []
        worker = threading.Thread(target=lambda: result.append(node.run_worker(
            job, "rollout", "127.0.0.1", 1, 0, {"rollout_node": 1}, job.path / "t",
            node.NodeLog("rollout"), node.Stopper())))
        worker.start()
        time.sleep(1.0)
        assert calls == []  # the port answers, but the head's Ray is not up yet
        up = time.monotonic()
        (job.state_dir / "head.json").write_text(json.dumps({**head, "ray_up": True}))
        worker.join(timeout=10)
    assert result == [0] and len(calls) == 1 and calls[0] >= up


def test_ray_env_retries_local_connects_fast_unless_the_user_chose(job, monkeypatch):
    monkeypatch.delenv("RAY_raylet_client_connect_timeout_milliseconds", raising=False)
    env = node.ray_env(job)
    assert env["RAY_raylet_client_connect_timeout_milliseconds"] == "100"
    # the same patience as Ray's default (10 attempts, 1 s apart)
    assert int(env["RAY_raylet_client_num_connect_attempts"]) * 100 == 10 * 1000
    monkeypatch.setenv("RAY_raylet_client_connect_timeout_milliseconds", "500")
    assert node.ray_env(job)["RAY_raylet_client_connect_timeout_milliseconds"] == "500"
