"""The one node entry point: `launcher node --run-dir DIR --role head|rollout|learner`.

Run identically by a Slurm job (one `srun` per component), by `launcher local`'s
containers and by a single `docker run`. Everything comes from the run directory.

What a node does, one log line per step:

1. reads DIR/spec.yaml and DIR/cluster.yaml (`load_job`, which refuses files others can
   change) and points Ray at the job's token file (rayproc.ray_env);
2. sizes itself (host.node_resources) and makes a Ray temp dir of its own
   (scratch.make_scratch: fresh, mode 0700, in the job's scratch dir on this machine),
   also its TMPDIR and that of every process it starts;
3. starts Ray (rayproc: `ray start` as an argument list, in a session of its own),
   bound to the node's address, advertising its role resource (rollout: one per CPU;
   learner: one, with the GPUs; head: CPUs-1 when the job has no learner node). The head
   listens on ports it found free (ports.choose_head_ports); every other port is the
   kernel's choice;
4. head: publishes its address in head.json, and "ray_up" once its Ray runs
   (rendezvous); polls Ray's node list until every expected node joined (timeout:
   cluster.yaml ready_timeout_s; the error names what is missing); trains in this
   process (training.loop.train, actors placed by the job's roles); writes done.json
   with its exit status. Workers: register in nodes/, poll head.json until ray_up,
   join, then wait for done.json (or for the head to vanish);
5. stops its own Ray processes and removes its temp dir, whatever happened.

Signals go to one `StopRequests` (training/signals.py). A stop while a node waits ends
it (a head that got Slurm's time-limit warning, SIGUSR1, exits 75 so the job is
requeued); a worker told to stop keeps serving the head up to STOP_GRACE_S, so the head
can checkpoint; while the algorithm builds a SIGTERM / SIGINT ends the head at once;
once iterations run the trainer checkpoints and the head exits 75.

Exit status (launcher/contract.py): head = the trainer's (0 done, 75 interrupted after
a checkpoint: requeue, 2 user error such as a node that never joined, 1 crash); workers
= 0 when the head finished, 3 when the head vanished or never appeared.
"""

from __future__ import annotations

import os
import signal
import socket
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path

from launcher.cluster.head_training import train_on_head
from launcher.cluster.host import local_ip_towards, node_resources, own_ip
from launcher.cluster.jobdir import JobDir, load_job
from launcher.cluster.ports import block_base, busy_ports, choose_head_ports
from launcher.cluster.rayproc import NodeRay, RayStartFailed, ray_env, ray_start_args
from launcher.cluster.rendezvous import (
    HeadGone,
    Joined,
    clear_markers,
    head_unreachable_since,
    joined_nodes,
    missing_message,
    publish_head,
    read_done,
    read_head,
    register,
    registrations,
    tcp_open,
    write_done,
)
from launcher.cluster.scratch import make_scratch
from launcher.contract import (
    EXIT_CRASH,
    EXIT_HEAD_GONE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    HEAD,
    LEARNER,
    ROLES,
    ROLLOUT,
    WORKER_ROLES,
    RunPaths,
)
from launcher.errors import UserError, first_line
from launcher.training.signals import CLOSING, Stopped, StopRequests

POLL_S = 0.2
PROBE_EVERY_S = 1.0  # how often a joined worker checks that the head's GCS port answers
STOP_GRACE_S = 20.0  # a worker told to stop waits this long for the head to finish first
JOIN_RETRY_S = 1.0  # between a worker's failed `ray start` and the next
HEAD_START_ATTEMPTS = 3  # head `ray start`s, each on a new port block after a lost port
PORT_TAKEN = "address already in use"  # what a bind failure says in `ray start`'s output
EXIT_SIGINT = 128 + signal.SIGINT


class NodeLog:
    """One line per step, stamped and flushed (these end up in Slurm output files)."""

    def __init__(self, role: str):
        self.prefix = f"[node {role}@{socket.gethostname()}]"

    def __call__(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        print(f"{stamp} {self.prefix} {message}", flush=True)


@dataclass
class Node:
    """One node of a job while it runs: what it offers, its Ray, its log and signals."""

    job: JobDir
    role: str
    ip: str | None
    cpus: int
    gpus: float
    resources: dict[str, float]
    ray: NodeRay
    log: NodeLog
    stops: StopRequests

    def describe(self) -> str:
        return (f"{self.cpus} CPUs, {self.gpus:g} GPUs, resources {self.resources}, "
                f"temp dir {self.ray.temp_dir}")

    def start_args(self, **where) -> list[str]:
        return ray_start_args(self.role, self.ip or "", self.cpus, self.gpus, self.resources,
                              self.ray.temp_dir, **where)

    def stopped(self, when: str) -> int:
        """The exit status for a stop signal that came while the node waited."""
        if self.role == HEAD and self.stops.requeue:
            self.log(f"SIGUSR1 (time limit near) {when}; exit {EXIT_INTERRUPTED} so the job "
                     "is requeued")
            return EXIT_INTERRUPTED
        self.log(f"{self.stops.received} {when}; stopping")
        return self.stops.status


# --- entry point -------------------------------------------------------------------------
def run_node(run_dir: str | Path, role: str, num_cpus: int | None = None,
             num_gpus: float | None = None, node_ip: str | None = None) -> int:
    """Run one node of a prepared job; return the process exit status."""
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; valid: {', '.join(ROLES)}")
    log = NodeLog(role)
    job = load_job(run_dir)
    if role != HEAD and job.cluster.expected(role) == 0:
        raise UserError(f"job {job.cluster.job_id} expects no {role} node (see {job.cluster_path})")
    cpus, gpus, resources = node_resources(job, role, num_cpus, num_gpus)
    log(f"job {job.cluster.job_name} ({job.cluster.job_id}), run dir {job.path}")
    ip = node_ip or (own_ip() if role == HEAD else None)
    scratch = make_scratch(role)
    scratch.export()
    node = Node(job, role, ip, cpus, gpus, resources, NodeRay(scratch.temp_dir), log,
                StopRequests().install())
    try:
        return head_outcome(node) if role == HEAD else worker_outcome(node)
    finally:
        node.stops.phase = CLOSING  # from here on, signals are ignored: clean up first
        node.ray.stop(log)
        scratch.remove()
        node.stops.ignore_from_now()


def head_outcome(node: Node) -> int:
    """Run the head; tell the workers how it ended (done.json); return its status."""
    try:
        status = run_head(node)
        reason = "finished" if status == EXIT_OK else f"exit {status}"
    except UserError as exc:
        node.log(f"error: {exc}")
        status, reason = exc.exit_code, str(exc)
    except RayStartFailed as exc:
        node.log(str(exc))
        status, reason = EXIT_CRASH, "ray start failed"
    except Stopped as exc:
        node.log(f"{exc} before training began; stopping")
        status, reason = exc.status, f"stopped by {exc}"
    except BaseException as exc:
        traceback.print_exc()
        status, reason = EXIT_CRASH, f"{type(exc).__name__}: {exc}"
        if isinstance(exc, KeyboardInterrupt):
            status = EXIT_SIGINT
    write_done(node.job, status, reason)
    node.log(f"exit {status}")
    return status


def worker_outcome(node: Node) -> int:
    try:
        status = run_worker(node)
    except HeadGone as exc:
        node.log(f"error: {exc}")
        status = EXIT_HEAD_GONE
    except RayStartFailed as exc:
        node.log(str(exc))
        status = EXIT_CRASH
    node.log(f"exit {status}")
    return status


# --- head --------------------------------------------------------------------------------
def run_head(node: Node) -> int:
    address, session = start_head(node)
    status = wait_for_nodes(node, address, session)
    if status is not None:
        return status
    return train_on_head(node, address)


def start_head(node: Node) -> tuple[str, str]:
    """Publish the head's address, start its Ray, mark it up; return the address and
    this head's session id. A port lost between the check and `ray start` (another
    job's Ray starting at the same moment) is retried on a new block."""
    job, env = node.job, ray_env(node.job)
    clear_markers(job)
    os.environ.update(env)  # the driver in this process uses the same token
    head = {"session": uuid.uuid4().hex[:12], "host": socket.gethostname(), "ip": node.ip,
            "pid": os.getpid(), "started": time.time(), "ray_up": False}
    tried: list[int] = []
    while True:
        ports = choose_head_ports(node.ip, job.cluster.port_base, avoid=tried)
        tried.append(block_base(ports))
        head["address"] = f"{node.ip}:{ports['gcs']}"
        publish_head(job, head)
        node.log(f"starting Ray head on {head['address']} ({node.describe()}); address "
                 f"published in {RunPaths(job.path).head}")
        try:
            node.ray.start(node.start_args(head_ports=ports), env)
            break
        except RayStartFailed as exc:
            if len(tried) >= HEAD_START_ATTEMPTS or not lost_a_port(node, ports, exc):
                raise
            node.log(f"{first_line(exc)}: a port was taken meanwhile; trying other ports")
    # Workers wait for this before their `ray start`: one that runs before the head's raylet
    # registered finds no head node in the GCS and sleeps 2 s per retry inside Ray.
    publish_head(job, {**head, "ray_up": True})
    node.log("Ray head up")
    return head["address"], head["session"]


def lost_a_port(node: Node, ports: dict[str, int], exc: RayStartFailed) -> bool:
    """After a failed `ray start` (whose leftovers are stopped here): did another process
    take one of the head's ports?"""
    node.ray.stop(node.log)
    return PORT_TAKEN in str(exc).lower() or bool(busy_ports(node.ip, ports))


def wait_for_nodes(node: Node, address: str, session: str) -> int | None:
    """Connect this process to the head's Ray (the trainer keeps that connection) and wait
    until every expected node joined; an exit status when a stop signal came first."""
    import ray

    from launcher.training.rllib_config import quiet_libraries

    want = {role: node.job.cluster.expected(role) for role in WORKER_ROLES}
    node.log(f"waiting for {want[ROLLOUT]} rollout and {want[LEARNER]} learner node(s) "
             f"(timeout {node.job.cluster.ready_timeout_s:.0f} s)")
    quiet_libraries()
    ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    node.stops.install()  # again: ray.init takes SIGTERM for itself
    started = time.monotonic()
    joined = None
    try:
        joined = poll_joined(node, want, session, started)
    finally:
        if joined is None:
            ray.shutdown()
    if joined is None:
        return node.stopped("while waiting for nodes")
    node.log(f"all nodes joined in {time.monotonic() - started:.1f} s: "
             + ", ".join(f"{n.role} {n.host} ({n.ip})" for n in joined))
    return None


def poll_joined(node: Node, want: dict[str, int], session: str,
                started: float) -> list[Joined] | None:
    """Ray's nodes once every role has its count; None when a stop signal came first."""
    job = node.job
    while True:
        joined = joined_nodes()
        have = {role: sum(1 for n in joined if n.role == role) for role in want}
        if all(have[role] >= want[role] for role in want):
            return joined
        waited = time.monotonic() - started
        if waited > job.cluster.ready_timeout_s:
            raise UserError(missing_message(job, joined, registrations(job, session), waited))
        if node.stops.wait(POLL_S):
            return None


# --- workers -----------------------------------------------------------------------------
def run_worker(node: Node) -> int:
    deadline = time.monotonic() + node.job.cluster.ready_timeout_s
    head = wait_for_head(node, deadline)
    if head is None:
        return node.stopped("while waiting for the head")
    status = join_head(node, head, deadline)
    if status is not None:
        return status
    return serve_until_done(node, head["address"], head["session"])


def registered(node: Node, state: str, session: str | None) -> None:
    register(node.job, node.role, node.ray.temp_dir.name, ip=node.ip, state=state,
             session=session)


def wait_for_head(node: Node, deadline: float) -> dict | None:
    """head.json once the head's Ray is up and its GCS port answers; None when a stop
    signal came first."""
    job = node.job
    registered(node, "waiting for the head", None)
    node.log(f"waiting for the head ({RunPaths(job.path).head})")
    began = time.time()
    while True:
        head = read_head(job)
        if head and head.get("ray_up") and tcp_open(head["address"]):
            return head
        done = read_done(job)
        if done and float(done.get("time") or 0) > began:
            raise HeadGone(f"the head ended before this node joined: {done.get('reason')}")
        if time.monotonic() > deadline:
            raise HeadGone(f"no head answered within {job.cluster.ready_timeout_s:.0f} s "
                           f"(last published: {head['address'] if head else 'none'})")
        if node.stops.wait(POLL_S):
            return None


def join_head(node: Node, head: dict, deadline: float) -> int | None:
    """`ray start --address` the head's; a join that fails (the head's GCS restarting, a
    network hiccup) is retried, after clearing what it left, until the deadline. An exit
    status when a stop signal came first."""
    address, session = head["address"], head["session"]
    host, _, port = address.rpartition(":")
    node.ip = node.ip or local_ip_towards(host, int(port)) or own_ip()
    registered(node, "joining", session)
    node.log(f"joining {address} as {node.ip} ({node.describe()})")
    args, env = node.start_args(head_address=address), ray_env(node.job)
    while True:
        try:
            node.ray.start(args, env)
            break
        except RayStartFailed as exc:
            if time.monotonic() > deadline or node.stops.received:
                raise
            node.log(f"{first_line(exc)}; retrying")
            node.ray.stop(node.log)
            if node.stops.wait(JOIN_RETRY_S):
                return node.stopped("while joining")
    registered(node, "joined", session)
    node.log("joined; waiting for the head to finish")
    return None


def serve_until_done(node: Node, address: str, session: str) -> int:
    """Keep this node's Ray serving the head until its done.json of this session."""
    unreachable_since: float | None = None
    stop_deadline: float | None = None
    last_probe = 0.0
    while True:
        done = read_done(node.job)
        if done and done.get("session") == session:
            node.log(f"head finished (status {done.get('status')}: {done.get('reason')})")
            return EXIT_OK
        now = time.monotonic()
        if now - last_probe >= PROBE_EVERY_S:
            last_probe = now
            unreachable_since = head_unreachable_since(address, unreachable_since, now)
        if stop_deadline is not None and now > stop_deadline:
            node.log(f"no done marker {STOP_GRACE_S:.0f} s after {node.stops.received}; stopping")
            return node.stops.status
        if node.stops.wait(POLL_S):
            node.stops.acknowledge()
            if stop_deadline is None:
                # Slurm signals every task at once; keep serving the head while it checkpoints.
                node.log(f"{node.stops.received}: waiting up to {STOP_GRACE_S:.0f} s for the "
                         "head to finish")
                stop_deadline = time.monotonic() + STOP_GRACE_S

