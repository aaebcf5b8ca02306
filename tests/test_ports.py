"""launcher/cluster/ports.py: ports chosen on the node when it starts."""

from __future__ import annotations

import random
import socket

import pytest

from launcher.cluster import ports
from launcher.cluster.jobdir import new_job_id
from launcher.cluster.rayproc import ray_start_args


def test_port_base_is_derived_from_the_job_id_and_stays_in_range():
    bases = {ports.port_base_for(new_job_id()) for _ in range(200)}
    assert len(bases) > 100  # spread over the range
    for base in bases:
        assert base >= ports.PORT_LOW and base + ports.PORT_BLOCK <= ports.PORT_HIGH
        assert (base - ports.PORT_LOW) % ports.PORT_BLOCK == 0
    assert ports.port_base_for("00000000aa") == ports.port_base_for("00000000bb")
    assert max(ports.PORT_OFFSETS.values()) < ports.PORT_BLOCK
    assert ports.PORT_HIGH <= 32768  # below the kernel's ephemeral range


def test_busy_port_is_named():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert ports.busy_ports("127.0.0.1", {"gcs": port}) == [f"{port} (gcs)"]


def test_candidates_start_with_the_preferred_block_and_cover_all():
    preferred = ports.port_base_for("abcdef012345")
    bases = list(ports.candidate_bases(preferred, random.Random(1)))
    assert bases[0] == preferred
    assert sorted(bases) == [ports.PORT_LOW + i * ports.PORT_BLOCK
                             for i in range(ports.block_count())]


def test_head_takes_its_preferred_block_when_free():
    preferred = free_block("127.0.0.1")
    chosen = ports.choose_head_ports("127.0.0.1", preferred)
    assert chosen == ports.block_ports(preferred) and ports.block_base(chosen) == preferred


@pytest.mark.parametrize("held", ports.HEAD_PORTS)
def test_a_port_held_by_another_socket_sends_the_head_to_another_block(held):
    """Issue 11: a port of the job's block already taken on the node (another job, a
    leftover) failed the job, and its requeue hit the same port again. The head now
    picks another block, whose ports are free."""
    preferred = free_block("127.0.0.1")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports.block_ports(preferred)[held]))
        sock.listen()
        chosen = ports.choose_head_ports("127.0.0.1", preferred)
        assert ports.block_base(chosen) != preferred
        assert ports.busy_ports("127.0.0.1", chosen) == []
        again = ports.choose_head_ports("127.0.0.1", preferred, avoid=[ports.block_base(chosen)])
        assert ports.block_base(again) not in (preferred, ports.block_base(chosen))


def test_every_port_but_the_heads_is_the_kernels_choice(tmp_path):
    """Issue 11: worker port ranges of two jobs on one node collided 1 time in 49. Ray
    binds port 0 for them now (and for every other per-node port): never shared."""
    head = ray_start_args("head", "10.0.0.1", 2, 0, {}, tmp_path,
                          head_ports={"gcs": 20040, "client_server": 20041})
    worker = ray_start_args("rollout", "10.0.0.2", 2, 0, {}, tmp_path,
                            head_address="10.0.0.1:20040")
    for args in (head, worker):
        value = dict(zip(args, args[1:], strict=False))
        for flag in ("--min-worker-port", "--max-worker-port", "--node-manager-port",
                     "--object-manager-port", "--dashboard-agent-listen-port",
                     "--dashboard-agent-grpc-port", "--runtime-env-agent-port",
                     "--metrics-export-port"):
            assert value[flag] == "0", flag
    value = dict(zip(head, head[1:], strict=False))
    assert value["--port"] == "20040" and value["--dashboard-port"] == "0"


def free_block(ip: str) -> int:
    """A block whose head ports are free here now."""
    for base in ports.candidate_bases(ports.PORT_LOW, random.Random()):
        if not ports.busy_ports(ip, ports.block_ports(base)):
            return base
    raise AssertionError("no free block")
