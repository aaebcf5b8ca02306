"""launcher/cluster/rendezvous.py: the files through which a job's nodes meet."""

from __future__ import annotations

import json
import socket

import pytest

from launcher.cluster import rendezvous
from launcher.cluster.jobdir import prepare_job
from launcher.cluster.rendezvous import HeadGone, Joined
from launcher.training.settings import TrainSettings


@pytest.fixture
def job(tmp_path):
    return prepare_job(TrainSettings(output=str(tmp_path), name="job"), rollout_nodes=2,
                       cpus_per_node=3, ready_timeout_s=5)


def test_missing_nodes_are_named(job):
    joined = [Joined("head", "h", "10.0.0.1"), Joined("rollout", "r1", "10.0.0.2")]
    registered = [{"role": "rollout", "host": "r2", "ip": "10.0.0.3", "state": "joining"},
                  {"role": "rollout", "host": "r1", "ip": "10.0.0.2", "state": "joined"}]
    text = rendezvous.missing_message(job, joined, registered, 5)
    assert "within 5 s" in text
    assert "rollout: 1 of 2 joined" in text and "r2 (10.0.0.3: joining)" in text
    assert "r1" not in text.split("rollout:")[1]
    text = rendezvous.missing_message(job, joined[:1], [], 5)
    assert "rollout: 0 of 2 joined; 2 never started" in text


def test_roles_from_resources():
    assert rendezvous.role_of({"node:__internal_head__": 1, "CPU": 2}) == "head"
    assert rendezvous.role_of({"learner_node": 1, "GPU": 1}) == "learner"
    assert rendezvous.role_of({"rollout_node": 3}) == "rollout"
    assert rendezvous.role_of({"CPU": 1}) == "other"


def test_head_and_done_markers(job):
    assert rendezvous.read_head(job) is None and rendezvous.read_done(job) is None
    rendezvous.publish_head(job, {"address": "10.0.0.1:20000", "session": "s1"})
    rendezvous.write_done(job, 75, "stopped by SIGUSR1")
    done = rendezvous.read_done(job)
    assert (done["status"], done["reason"], done["session"]) == (75, "stopped by SIGUSR1", "s1")
    rendezvous.clear_markers(job)
    assert rendezvous.read_head(job) is None and rendezvous.read_done(job) is None


def test_half_written_or_foreign_json_reads_as_absent(tmp_path):
    for text in ("", '{"address": ', "[1, 2]", "null"):
        (tmp_path / "x.json").write_text(text)
        assert rendezvous.read_json(tmp_path / "x.json") is None
    assert rendezvous.read_json(tmp_path / "missing.json") is None


def test_registrations_of_this_session_and_the_waiting(job):
    rendezvous.register(job, "rollout", "a", ip=None, state="waiting for the head", session=None)
    rendezvous.register(job, "rollout", "b", ip="10.0.0.2", state="joined", session="s1")
    rendezvous.register(job, "rollout", "c", ip="10.0.0.3", state="joined", session="old")
    states = sorted(r["state"] for r in rendezvous.registrations(job, "s1"))
    assert states == ["joined", "waiting for the head"]
    stored = json.loads(next(job.state_dir.joinpath("nodes").glob("rollout-*-b.json")).read_text())
    assert stored["host"] == socket.gethostname() and stored["ip"] == "10.0.0.2"


def test_a_head_that_stops_answering_is_gone_after_a_while():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        assert rendezvous.tcp_open(address)
        assert rendezvous.head_unreachable_since(address, 5.0, 100.0) is None
    assert not rendezvous.tcp_open(address)
    assert rendezvous.head_unreachable_since(address, None, 100.0) == 100.0
    assert rendezvous.head_unreachable_since(address, 100.0, 105.0) == 100.0
    with pytest.raises(HeadGone, match="gone"):
        rendezvous.head_unreachable_since(address, 100.0, 100.0 + rendezvous.HEAD_GONE_AFTER_S + 1)
