"""launcher/cluster/node.py without Ray running: the head's and the workers' steps, with
`ray start` replaced."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from launcher.cluster import node, ports
from launcher.cluster.jobdir import prepare_job
from launcher.cluster.rayproc import NodeRay, RayStartFailed
from launcher.cluster.rendezvous import HeadGone
from launcher.contract import EXIT_INTERRUPTED
from launcher.errors import UserError
from launcher.training.settings import TrainSettings
from launcher.training.signals import StopRequests


@pytest.fixture
def job(tmp_path):
    return prepare_job(TrainSettings(output=str(tmp_path), name="job"), rollout_nodes=2,
                       cpus_per_node=3, ready_timeout_s=5)


def make_node(job, role="rollout", ip="127.0.0.1", stops=None) -> node.Node:
    return node.Node(job, role, ip, 1, 0, {"rollout_node": 1}, NodeRay(job.path / "t"),
                     node.NodeLog(role), stops or StopRequests())


def write(path, data) -> None:
    path.write_text(json.dumps(data))


def test_unknown_role_and_unexpected_role(job):
    with pytest.raises(UserError, match="unknown role"):
        node.run_node(job.path, "worker")
    with pytest.raises(UserError, match="expects no learner"):
        node.run_node(job.path, "learner")
    with pytest.raises(UserError, match="not a prepared cluster job"):
        node.run_node(job.path.parent, "head")


def test_worker_gives_up_when_no_head_appears(job):
    """Polling, not sleeping: a worker with no head fails at the readiness timeout."""
    job.cluster.ready_timeout_s = 0.5
    started = time.monotonic()
    with pytest.raises(HeadGone, match="no head answered within"):
        node.run_worker(make_node(job))
    assert time.monotonic() - started < 3
    registered = list((job.state_dir / "nodes").glob("rollout-*.json"))
    assert registered and json.loads(registered[0].read_text())["state"] == "waiting for the head"


def test_worker_leaves_when_the_head_failed_before_it_joined(job):
    write(job.state_dir / "done.json",
          {"status": 2, "reason": "bad env", "session": None, "time": time.time() + 1})
    with pytest.raises(HeadGone, match="bad env"):
        node.run_worker(make_node(job))


def test_worker_waiting_for_the_head_stops_on_sigterm(job):
    job.cluster.ready_timeout_s = 30
    with StopRequests() as stops:
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
        timer.start()
        status = node.run_worker(make_node(job, stops=stops))
    assert status == 128 + signal.SIGTERM


def test_worker_retries_a_failed_join_then_leaves_at_done(job, monkeypatch):
    """A failed `ray start` is retried; the worker then waits for the head's done marker
    of that session."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        write(job.state_dir / "head.json", {"address": address, "session": "s1", "ray_up": True})
        calls = []

        def fake_start(self, args, env):
            calls.append(args)
            if len(calls) == 1:
                raise RayStartFailed("ray start failed (exit 1):\nGCS not ready")
            write(job.state_dir / "done.json",
                  {"status": 0, "reason": "finished", "session": "s1", "time": time.time()})

        monkeypatch.setattr(NodeRay, "start", fake_start)
        status = node.run_worker(make_node(job))
    assert status == 0 and len(calls) == 2
    assert "--address" in calls[0] and address in calls[0]


def test_worker_joins_only_once_the_heads_ray_is_up(job, monkeypatch):
    """head.json names the address before the head's `ray start` returned; a worker whose
    `ray start` ran then would find no head node in the GCS and sleep 2 s per retry inside
    Ray. It waits for ray_up, even though the GCS port already answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        head = {"address": f"127.0.0.1:{sock.getsockname()[1]}", "session": "s1", "ray_up": False}
        write(job.state_dir / "head.json", head)
        calls = []

        def fake_start(self, args, env):
            calls.append(time.monotonic())
            write(job.state_dir / "done.json",
                  {"status": 0, "reason": "finished", "session": "s1", "time": time.time()})

        monkeypatch.setattr(NodeRay, "start", fake_start)
        result = []
        worker = threading.Thread(target=lambda: result.append(node.run_worker(make_node(job))))
        worker.start()
        time.sleep(1.0)
        assert calls == []  # the port answers, but the head's Ray is not up yet
        up = time.monotonic()
        write(job.state_dir / "head.json", {**head, "ray_up": True})
        worker.join(timeout=10)
    assert result == [0] and len(calls) == 1 and calls[0] >= up


def free_block() -> int:
    for base in ports.candidate_bases(ports.PORT_LOW):
        if not ports.busy_ports("127.0.0.1", ports.block_ports(base)):
            return base
    raise AssertionError("no free port block")


def test_head_starts_on_other_ports_when_its_own_are_taken(job, monkeypatch):
    """Issue 11: a port of the job's block held on the node failed the head, and the
    requeued job hit it again. The head picks free ports, retries a `ray start` that lost
    one meanwhile, and publishes where it listens."""
    monkeypatch.setattr(node, "ray_env", lambda job: {})
    job.cluster.port_base = free_block()
    calls = []

    def fake_start(self, args, env):
        calls.append(int(dict(zip(args, args[1:], strict=False))["--port"]))
        if len(calls) == 1:
            raise RayStartFailed("ray start failed (exit 1):\nFailed to bind: Address already in use")

    monkeypatch.setattr(NodeRay, "start", fake_start)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", job.cluster.port_base))  # the preferred GCS port
        sock.listen()
        address, session = node.start_head(make_node(job, role="head"))
    assert job.cluster.port_base not in calls and len(set(calls)) == 2
    head = json.loads((job.state_dir / "head.json").read_text())
    assert head["address"] == address == f"127.0.0.1:{calls[-1]}"
    assert head["ray_up"] is True and head["session"] == session


def test_head_gives_up_on_a_start_that_fails_for_another_reason(job, monkeypatch):
    monkeypatch.setattr(node, "ray_env", lambda job: {})
    job.cluster.port_base = free_block()
    calls = []

    def fake_start(self, args, env):
        calls.append(args)
        raise RayStartFailed("ray start failed (exit 1):\nbad resources")

    monkeypatch.setattr(NodeRay, "start", fake_start)
    with pytest.raises(RayStartFailed, match="bad resources"):
        node.start_head(make_node(job, role="head"))
    assert len(calls) == 1
    assert json.loads((job.state_dir / "head.json").read_text())["ray_up"] is False


def test_a_head_waiting_for_nodes_stops_and_asks_for_a_requeue_on_sigusr1(job, monkeypatch):
    monkeypatch.setattr(node, "joined_nodes", lambda: [])
    with StopRequests() as stops:
        head = make_node(job, role="head", stops=stops)
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        assert node.poll_joined(head, {"rollout": 2, "learner": 0}, "s1", time.monotonic()) is None
    assert head.stopped("while waiting for nodes") == EXIT_INTERRUPTED


def test_a_head_waiting_for_nodes_names_the_missing_ones(job, monkeypatch):
    monkeypatch.setattr(node, "joined_nodes", lambda: [])
    job.cluster.ready_timeout_s = 0.3
    with pytest.raises(UserError, match="rollout: 0 of 2 joined"):
        node.poll_joined(make_node(job, role="head"), {"rollout": 2, "learner": 0}, "s1",
                         time.monotonic())


def test_a_signal_after_the_node_has_finished_does_not_change_its_exit_status():
    """Slurm's time-limit warning can reach a head that has finished and is exiting, and
    Python's finalization resets the handlers it installed to the default action (death,
    138): once the node is done, the stop signals are ignored (SIG_IGN survives that)."""
    code = textwrap.dedent("""
        import os, signal, sys
        from launcher.training.signals import STOP_SIGNALS, StopRequests
        stops = StopRequests().install()
        stops.ignore_from_now()
        assert all(signal.getsignal(s) is signal.SIG_IGN for s in STOP_SIGNALS)
        for sig in STOP_SIGNALS:
            os.kill(os.getpid(), sig)
        sys.exit(0)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
