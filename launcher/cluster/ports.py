"""The ports of a cluster job's nodes, chosen on each node when it starts.

Only one port must be known beyond the node that opens it: the head's GCS port, which
the head publishes in RUN_DIR/.cluster/head.json (its `address`) and the workers read
there. Every other port a node opens (node manager, object manager, the agents, the
metrics export, the dashboard, every Ray worker process) is left to the kernel: `ray
start` is given 0 for them, Ray binds port 0 and reports what it got. Kernel-chosen
ports are never shared, so two jobs on one node cannot collide there, worker ports
included.

The head's own ports (GCS, Ray client server) come from a block of PORT_BLOCK ports
inside [PORT_LOW, PORT_HIGH), below Linux's ephemeral range (32768+) where the kernel's
choices live. The block at cluster.yaml's `port_base` (derived from the job id) is tried
first; a block with a port already bound on this node is passed over for another, and a
`ray start` that loses a port to another process in between is retried on a new block.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Iterable, Iterator

from launcher.errors import UserError

PORT_LOW, PORT_HIGH, PORT_BLOCK = 20000, 32000, 20
# The head's ports inside its block.
PORT_OFFSETS = {"gcs": 0, "client_server": 1}
HEAD_PORTS = tuple(PORT_OFFSETS)
KERNEL_CHOSEN = 0  # `ray start --...-port 0`: Ray binds port 0, the kernel picks


def port_base_for(job_id: str) -> int:
    """The block a job's head tries first, derived from the job id (two jobs on one
    node share it with probability 1/600; the head then picks another)."""
    return PORT_LOW + (int(job_id[:8], 16) % block_count()) * PORT_BLOCK


def block_count() -> int:
    return (PORT_HIGH - PORT_LOW) // PORT_BLOCK


def block_ports(base: int, names: Iterable[str] = HEAD_PORTS) -> dict[str, int]:
    """The named ports of the block at `base`."""
    return {name: base + PORT_OFFSETS[name] for name in names}


def block_base(ports: dict[str, int]) -> int:
    """The base of the block that `ports` (from block_ports) came from."""
    name, port = next(iter(ports.items()))
    return port - PORT_OFFSETS[name]


def busy_ports(ip: str, ports: dict[str, int]) -> list[str]:
    """Ports that something on this machine already holds, as "PORT (name)"."""
    busy = []
    for name, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # SO_REUSEADDR, as Ray's servers bind: a port whose last listener is gone but
            # has connections in TIME_WAIT (a requeued job restarting on the same node
            # within a minute) is free for Ray; only a live listener counts as busy.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((ip, port))
            except OSError:
                busy.append(f"{port} ({name})")
    return busy


def candidate_bases(preferred: int, rng: random.Random | None = None) -> Iterator[int]:
    """The preferred block first, then every other block in random order (two heads that
    find their preferred block taken do not walk to the same next one)."""
    rng = rng or random.Random()
    others = [base for base in (PORT_LOW + slot * PORT_BLOCK for slot in range(block_count()))
              if base != preferred]
    rng.shuffle(others)
    yield preferred
    yield from others


def choose_head_ports(ip: str, preferred: int, avoid: Iterable[int] = (),
                      rng: random.Random | None = None) -> dict[str, int]:
    """The head's ports: the first block, preferred one first, whose ports are all free
    on this machine now; blocks in `avoid` (tried already) are skipped."""
    skip = set(avoid)
    for base in candidate_bases(preferred, rng):
        if base in skip:
            continue
        ports = block_ports(base)
        if not busy_ports(ip, ports):
            return ports
    raise UserError(f"no free ports for the Ray head on {socket.gethostname()} in "
                    f"{PORT_LOW}-{PORT_HIGH - 1}")
