"""How a job's nodes find each other: small JSON files in RUN_DIR/.cluster/ on shared
storage, and Ray's own node list.

    head.json   the head's address (IP:GCS port) and session id, written before its
                `ray start` and again with "ray_up": true once Ray runs there
    nodes/      one registration per worker node: role, host, IP and how far it got
                ("waiting for the head", "joining", "joined"), for the error that names
                the nodes that never joined
    done.json   the head's exit status and reason, with its session id: what tells the
                workers to leave

Every file is written atomically (aside, then renamed), so a reader sees all or
nothing; a file that cannot be read or parsed reads as absent. A joined worker also
probes the head's GCS port: refused for HEAD_GONE_AFTER_S with no done.json, the head
is gone (HeadGone).
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from launcher.cluster.jobdir import JobDir
from launcher.contract import (
    HEAD,
    LEARNER,
    LEARNER_RESOURCE,
    ROLLOUT,
    ROLLOUT_RESOURCE,
    WORKER_ROLES,
    RunPaths,
)
from launcher.files import write_atomic

RAY_HEAD_MARKER = "node:__internal_head__"  # the resource only the head node carries
HEAD_GONE_AFTER_S = 10.0  # the head's GCS port refusing connections this long: head gone


class HeadGone(Exception):
    """The head vanished, never appeared, or ended before this worker joined."""


def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def tcp_open(address: str, timeout: float = 1.0) -> bool:
    """Something accepts connections at HOST:PORT."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def head_unreachable_since(address: str, since: float | None, now: float) -> float | None:
    """When the head's GCS port stopped answering (None: it answers); HeadGone after
    HEAD_GONE_AFTER_S."""
    if tcp_open(address):
        return None
    if since is None:
        return now
    if now - since > HEAD_GONE_AFTER_S:
        raise HeadGone(f"the head at {address} is gone (unreachable for "
                       f"{HEAD_GONE_AFTER_S:.0f} s) and left no done marker")
    return since


# --- the head's files --------------------------------------------------------------------
def clear_markers(job: JobDir) -> None:
    """Forget a previous run's head.json and done.json (a requeued job starts again)."""
    paths = RunPaths(job.path)
    for stale in (paths.head, paths.done):
        stale.unlink(missing_ok=True)


def publish_head(job: JobDir, head: dict) -> None:
    write_atomic(RunPaths(job.path).head, json.dumps(head))


def read_head(job: JobDir) -> dict | None:
    return read_json(RunPaths(job.path).head)


def write_done(job: JobDir, status: int, reason: str) -> None:
    paths = RunPaths(job.path)
    head = read_json(paths.head) or {}
    paths.state.mkdir(exist_ok=True)
    write_atomic(paths.done, json.dumps({
        "status": status, "reason": reason, "session": head.get("session"), "time": time.time()}))


def read_done(job: JobDir) -> dict | None:
    return read_json(RunPaths(job.path).done)


# --- worker registrations ----------------------------------------------------------------
def register(job: JobDir, role: str, name: str, **fields) -> None:
    """This worker's registration (name: unique per node, e.g. its temp dir's)."""
    folder = RunPaths(job.path).nodes
    folder.mkdir(exist_ok=True)
    host = socket.gethostname()
    write_atomic(folder / f"{role}-{host}-{name}.json",
                 json.dumps({"role": role, "host": host, **fields}))


def registrations(job: JobDir, session: str) -> list[dict]:
    """Registrations of this head session's workers (and of those still waiting for it)."""
    folder = RunPaths(job.path).nodes
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        data = read_json(path)
        if data and data.get("session") in (session, None):
            out.append(data)
    return out


# --- who joined --------------------------------------------------------------------------
@dataclass
class Joined:
    role: str
    host: str
    ip: str


def role_of(resources: dict) -> str:
    if any(key.startswith(RAY_HEAD_MARKER) for key in resources):
        return HEAD
    if LEARNER_RESOURCE in resources:
        return LEARNER
    if ROLLOUT_RESOURCE in resources:
        return ROLLOUT
    return "other"


def joined_nodes() -> list[Joined]:
    """Alive Ray nodes with the role their resources say (needs a Ray connection)."""
    import ray

    return [Joined(role_of(node.get("Resources", {})), node.get("NodeManagerHostname", "?"),
                   node.get("NodeManagerAddress", "?"))
            for node in ray.nodes() if node.get("Alive")]


def missing_message(job: JobDir, joined: list[Joined], registered: list[dict], waited_s: float) -> str:
    """Which roles are short, which registered nodes never joined."""
    parts = []
    joined_ips = {node.ip for node in joined}
    for role in WORKER_ROLES:
        want = job.cluster.expected(role)
        have = [n for n in joined if n.role == role]
        if len(have) >= want:
            continue
        waiting = [r for r in registered if r.get("role") == role and r.get("ip") not in joined_ips]
        detail = ", ".join(f"{r.get('host')} ({r.get('ip') or 'no address yet'}: {r.get('state')})"
                           for r in waiting)
        silent = want - len(have) - len(waiting)
        text = f"{role}: {len(have)} of {want} joined"
        if detail:
            text += f"; started but not joined: {detail}"
        if silent > 0:
            text += f"; {silent} never started (no registration in {RunPaths(job.path).nodes})"
        parts.append(text)
    return (f"not every node joined the Ray cluster within {waited_s:.0f} s: " + "; ".join(parts)
            + ". See the node logs; raise ready_timeout_s in cluster.yaml if nodes start slowly")
