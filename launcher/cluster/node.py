"""The one node entry point: `launcher node --run-dir DIR --role head|rollout|learner`.

Run identically by a Slurm job (one `srun` per component), by the containers of
`launcher local`, and by a single `docker run`. Everything about the job comes from
the run directory prepared by launcher/jobdir.py; nothing else is passed in.

What a node does, one log line per step:

1. reads DIR/spec.yaml, DIR/cluster.yaml and points Ray at the job's token
   (RAY_AUTH_MODE=token, RAY_AUTH_TOKEN_PATH=DIR/.cluster/token);
2. sizes itself: --num-cpus / --num-gpus, else SLURM_CPUS_ON_NODE / CUDA_VISIBLE_DEVICES,
   else cluster.yaml's role entry, else the CPUs this process may use;
3. starts Ray (`ray start`, argument list, never a shell) on the job's ports
   (cluster.yaml port_base + offsets), in a temp dir of its own (/tmp/ray_<job id>_<role>),
   bound to the node's address, advertising its role resource:
   rollout: rollout_node=CPUs; learner: learner_node=1 (+ GPUs);
   head: rollout_node=CPUs-1 when the job has no learner node;
4. head: publishes DIR/.cluster/head.json (atomically) with its address, and again with
   "ray_up": true once its `ray start` returned; polls Ray's node list until every
   expected node joined (timeout: cluster.yaml ready_timeout_s; the error names what is
   missing), runs the trainer in this process (`train.train(settings, run_dir=DIR)`),
   writes DIR/.cluster/done.json with the exit status;
   workers: register in DIR/.cluster/nodes/, poll head.json until ray_up, join, then wait
   for done.json (or for the head to vanish);
5. stops its own Ray processes (those of its temp dir only), also on SIGTERM.

Exit status: head = the trainer's (0 done, 75 interrupted after a checkpoint: requeue,
2 user error such as a node that never joined, 1 crash); workers = 0 when the head
finished, 3 when the head vanished or never appeared.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path

from launcher.cluster.jobdir import JobDir, load_job, write_atomic
from launcher.errors import UserError, first_line
from launcher.training.progress import Reporter

HEAD_FILE = "head.json"
DONE_FILE = "done.json"
NODES_DIR = "nodes"
POLL_S = 0.2
EXIT_HEAD_GONE = 3
HEAD_GONE_AFTER_S = 10.0  # the head's GCS port refusing connections this long: head gone
STOP_GRACE_S = 20.0  # a worker told to stop waits this long for the head to finish first


# --- logging: one line per step, flushed (these end up in Slurm output files) -----------
class NodeLog:
    def __init__(self, role: str):
        self.prefix = f"[node {role}@{socket.gethostname()}]"

    def __call__(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        print(f"{stamp} {self.prefix} {message}", flush=True)


# --- sizing ------------------------------------------------------------------------------
def visible_cuda_devices(env: dict[str, str]) -> int | None:
    """GPUs named by CUDA_VISIBLE_DEVICES (Slurm's --gres sets it); None when unset."""
    value = env.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    items = [v for v in value.split(",") if v.strip() and v.strip() != "-1"]
    return len(items)


def node_resources(job: JobDir, role: str, num_cpus: int | None, num_gpus: float | None,
                   env: dict[str, str] | None = None) -> tuple[int, float, dict[str, float]]:
    """CPUs, GPUs and custom resources this node advertises to Ray."""
    from launcher.training.loop import LEARNER_RESOURCE, ROLLOUT_RESOURCE, usable_cpus

    env = os.environ if env is None else env
    spec = job.cluster.roles.get(role)
    if num_cpus is None and env.get("SLURM_CPUS_ON_NODE", "").isdigit():
        num_cpus = int(env["SLURM_CPUS_ON_NODE"])
    if num_cpus is None and spec is not None and spec.cpus:
        num_cpus = spec.cpus
    if num_cpus is None:
        num_cpus = usable_cpus()
    if num_cpus < 1:
        raise UserError(f"--num-cpus must be at least 1, got {num_cpus}")
    if num_gpus is None:
        num_gpus = visible_cuda_devices(env)
    if num_gpus is None:
        num_gpus = 0
    if num_gpus < 0:
        raise UserError(f"--num-gpus must be 0 or more, got {num_gpus}")
    resources: dict[str, float] = {}
    if role == "rollout":
        resources[ROLLOUT_RESOURCE] = num_cpus
    elif role == "learner":
        resources[LEARNER_RESOURCE] = 1
        wanted = spec.gpus if spec else 0
        if wanted and num_gpus < wanted:
            raise UserError(
                f"the learner node should have {wanted:g} GPU(s) but sees {num_gpus:g} "
                "(CUDA_VISIBLE_DEVICES); run it on a GPU node or pass --num-gpus"
            )
    elif role == "head" and not job.cluster.has_learner and num_cpus > 1:
        resources[ROLLOUT_RESOURCE] = num_cpus - 1
    return num_cpus, num_gpus, resources


# --- addresses, ports, temp dir ----------------------------------------------------------
def is_loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip == "::1"


def local_ip_towards(host: str, port: int) -> str | None:
    """The local address the kernel would use to reach host (a UDP connect sends nothing)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((host, port))
            return sock.getsockname()[0]
    except OSError:
        return None


def own_ip() -> str:
    """This node's address on the cluster network: what its hostname resolves to
    (Docker and most clusters), else the first non-loopback IPv4 of an interface."""
    try:
        ips = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    except OSError:
        ips = set()
    good = sorted(ip for ip in ips if not is_loopback(ip))
    if good:
        return good[0]
    for ip in interface_ips():
        return ip
    raise UserError("cannot tell this node's network address; pass --node-ip")


def interface_ips() -> list[str]:
    """Non-loopback IPv4 addresses of this machine's interfaces (Linux, no extra package)."""
    import fcntl
    import struct

    found = []
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return found
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for name in names:
            try:
                packed = fcntl.ioctl(sock.fileno(), 0x8915,  # SIOCGIFADDR
                                     struct.pack("256s", name[:15].encode()))
            except OSError:
                continue
            ip = socket.inet_ntoa(packed[20:24])
            if not is_loopback(ip):
                found.append(ip)
    return found


def temp_dir_for(job: JobDir, role: str, env: dict[str, str] | None = None) -> Path:
    """Short (Ray's socket paths must stay < 107 bytes) and unique per job and node."""
    env = os.environ if env is None else env
    index = env.get("SLURM_NODEID", "0")
    index = index if index.isdigit() else "0"
    return Path("/tmp") / f"ray_{job.cluster.short_id}_{role[0]}{index}"


def ports_for(job: JobDir, head: bool) -> dict[str, int]:
    names = ["node_manager", "object_manager", "dashboard_agent_listen", "dashboard_agent_grpc",
             "runtime_env_agent", "metrics_export", "dashboard"]
    if head:
        names += ["gcs", "client_server"]
    return {name: job.cluster.port(name) for name in names}


def busy_ports(ip: str, ports: dict[str, int]) -> list[str]:
    """Ports of the job's block that something on this node already holds."""
    busy = []
    for name, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # SO_REUSEADDR, as Ray's own servers bind: a port whose last listener is gone
            # but has connections in TIME_WAIT (a requeued job restarting on the same
            # node within a minute) is free for Ray; only a live listener counts as busy.
            # (Added by the Slurm work, issue 4: requeue test failed without it.)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((ip, port))
            except OSError:
                busy.append(f"{port} ({name})")
    return busy


def ray_start_args(job: JobDir, role: str, ip: str, cpus: int, gpus: float,
                   resources: dict[str, float], temp_dir: Path,
                   head_address: str | None = None) -> list[str]:
    """The `ray start` argument list for this node (no shell ever sees it)."""
    cluster = job.cluster
    low, high = cluster.worker_ports
    args = ["ray", "start", "--node-ip-address", ip,
            "--num-cpus", str(cpus), "--num-gpus", str(int(gpus)),
            "--resources", json.dumps(resources, sort_keys=True),
            "--temp-dir", str(temp_dir),
            "--node-manager-port", str(cluster.port("node_manager")),
            "--object-manager-port", str(cluster.port("object_manager")),
            "--dashboard-agent-listen-port", str(cluster.port("dashboard_agent_listen")),
            "--dashboard-agent-grpc-port", str(cluster.port("dashboard_agent_grpc")),
            "--runtime-env-agent-port", str(cluster.port("runtime_env_agent")),
            "--metrics-export-port", str(cluster.port("metrics_export")),
            "--min-worker-port", str(low), "--max-worker-port", str(high),
            # The driver does not print the workers' output (log_to_driver=False): no log monitor.
            "--include-log-monitor", "false",
            "--disable-usage-stats", "--log-style", "record", "--log-color", "false"]
    if role == "head":
        args += ["--head", "--port", str(cluster.port("gcs")),
                 "--dashboard-port", str(cluster.port("dashboard")),
                 "--include-dashboard", "false",
                 # No autoscaler for a fixed set of nodes (KubeRay starts heads this way too):
                 # one Python process less competing with the head's start.
                 "--no-monitor"]
        if ray_client_available():  # its server listens on 10001 unless told otherwise
            args += ["--ray-client-server-port", str(cluster.port("client_server"))]
    else:
        args += ["--address", head_address or ""]
    return args


def ray_client_available() -> bool:
    """ray[client] installed (the minimal Ray of the image has no client server)."""
    try:
        from ray._private.utils import get_ray_client_dependency_error as check
    except ImportError:
        return False
    return check() is None


def ray_env(job: JobDir) -> dict[str, str]:
    """Environment for `ray start` and the driver: token auth, quiet, fast local connects
    (train.RAY_FAST_CONNECT), TF's legacy Keras."""
    from launcher.training.loop import fast_connect_env

    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(job.token_path),
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "1", **fast_connect_env()}
    if job.settings.framework == "tf2":
        env["TF_USE_LEGACY_KERAS"] = "1"
    return env


def ray_executable() -> str:
    """`ray` next to this interpreter (a venv not on PATH), else the one on PATH."""
    beside = Path(sys.executable).with_name("ray")
    return str(beside) if beside.exists() else "ray"


def start_ray(args: list[str], env: dict[str, str], log: NodeLog) -> None:
    args = [ray_executable(), *args[1:]]
    proc = subprocess.run(args, env={**os.environ, **env}, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise RayStartFailed(f"ray start failed (exit {proc.returncode}):\n{tail}")


class RayStartFailed(Exception):
    pass


# --- stopping our own Ray, and only ours ---------------------------------------------------
def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        table[int(entry)] = (ppid, raw.replace(b"\0", b" ").decode(errors="replace"))
    return table


def ray_pids(temp_dir: Path) -> list[int]:
    """Ray processes started in temp_dir (their command lines name it) and their children
    (agents and workers rename themselves `ray::...`)."""
    table = _proc_table()
    marker = f"{temp_dir}/"
    roots = {pid for pid, (_, cmd) in table.items()
             if (marker in cmd or cmd.rstrip().endswith(str(temp_dir))) and pid != os.getpid()}
    found = set(roots)
    changed = True
    while changed:
        changed = False
        for pid, (ppid, _) in table.items():
            if ppid in found and pid not in found and pid != os.getpid():
                found.add(pid)
                changed = True
    return sorted(found)


def stop_ray(temp_dir: Path, log: NodeLog | None = None, grace_s: float = 1.0) -> int:
    """SIGTERM, then SIGKILL after grace_s, to this node's Ray processes only."""
    pids = ray_pids(temp_dir)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in alive if _alive(pid)]
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if log and pids:
        log(f"stopped Ray ({len(pids)} processes, {len(alive)} killed)")
    return len(pids)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


# --- the rendezvous files ----------------------------------------------------------------
def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def tcp_open(address: str, timeout: float = 1.0) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


@dataclass
class Joined:
    role: str
    host: str
    ip: str


def joined_nodes() -> list[Joined]:
    """Alive Ray nodes with the role their resources say."""
    import ray

    from launcher.training.loop import LEARNER_RESOURCE, ROLLOUT_RESOURCE

    out = []
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        res = node.get("Resources", {})
        if any(key.startswith("node:__internal_head__") for key in res):
            role = "head"
        elif LEARNER_RESOURCE in res:
            role = "learner"
        elif ROLLOUT_RESOURCE in res:
            role = "rollout"
        else:
            role = "other"
        out.append(Joined(role, node.get("NodeManagerHostname", "?"), node.get("NodeManagerAddress", "?")))
    return out


def missing_message(job: JobDir, joined: list[Joined], registered: list[dict], waited_s: float) -> str:
    """Which roles are short, which registered nodes never joined."""
    parts = []
    joined_ips = {node.ip for node in joined}
    for role in ("rollout", "learner"):
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
            text += f"; {silent} never started (no registration in {job.state_dir / NODES_DIR})"
        parts.append(text)
    return (f"not every node joined the Ray cluster within {waited_s:.0f} s: " + "; ".join(parts)
            + ". See the node logs; raise ready_timeout_s in cluster.yaml if nodes start slowly")


def registrations(job: JobDir, session: str) -> list[dict]:
    folder = job.state_dir / NODES_DIR
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        data = read_json(path)
        if data and data.get("session") in (session, None):
            out.append(data)
    return out


# --- signals -----------------------------------------------------------------------------
class Stopper:
    """Remembers a SIGTERM / SIGINT that arrives while the node waits (not while training:
    the trainer's own handlers take over then, to checkpoint first)."""

    def __init__(self):
        self.signal: str | None = None
        self.event = threading.Event()

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum, _frame) -> None:
        self.signal = signal.Signals(signum).name
        self.event.set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True when a stop signal came."""
        return self.event.wait(seconds)


# --- head --------------------------------------------------------------------------------
def run_head(job: JobDir, ip: str, cpus: int, gpus: float, resources: dict, temp_dir: Path,
             log: NodeLog, stopper: Stopper) -> int:
    from launcher.training import loop as training

    state = job.state_dir
    for stale in (state / HEAD_FILE, state / DONE_FILE):
        stale.unlink(missing_ok=True)
    session = uuid.uuid4().hex[:12]
    address = f"{ip}:{job.cluster.port('gcs')}"
    env = ray_env(job)
    os.environ.update(env)
    head = {"address": address, "session": session, "host": socket.gethostname(), "ip": ip,
            "pid": os.getpid(), "started": time.time(), "ray_up": False}
    write_atomic(state / HEAD_FILE, json.dumps(head))
    log(f"starting Ray head on {address} ({cpus} CPUs, {gpus:g} GPUs, resources {resources}, "
        f"temp dir {temp_dir}); address published in {state / HEAD_FILE}")
    start_ray(ray_start_args(job, "head", ip, cpus, gpus, resources, temp_dir), env, log)
    # Workers wait for this before their `ray start`: one that runs before the head's raylet
    # registered finds no head node in the GCS and sleeps 2 s per retry inside Ray.
    write_atomic(state / HEAD_FILE, json.dumps({**head, "ray_up": True}))
    log("Ray head up")

    want = {role: job.cluster.expected(role) for role in ("rollout", "learner")}
    log(f"waiting for {want['rollout']} rollout and {want['learner']} learner node(s) "
        f"(timeout {job.cluster.ready_timeout_s:.0f} s)")
    import ray

    training.quiet_libraries()
    # This driver connection stays for the trainer (train.start_ray reuses it).
    ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    started = time.monotonic()
    ready = False
    try:
        while True:
            joined = joined_nodes()
            have = {role: sum(1 for n in joined if n.role == role) for role in want}
            if all(have[role] >= want[role] for role in want):
                ready = True
                break
            waited = time.monotonic() - started
            if waited > job.cluster.ready_timeout_s:
                raise UserError(missing_message(job, joined, registrations(job, session), waited))
            if stopper.wait(POLL_S):
                log(f"{stopper.signal} while waiting for nodes; stopping")
                return 128 + signal.Signals[stopper.signal].value
    finally:
        if not ready:
            ray.shutdown()
    log(f"all nodes joined in {time.monotonic() - started:.1f} s: "
        + ", ".join(f"{n.role} {n.host} ({n.ip})" for n in joined))

    settings = job.settings
    settings.address = address
    log(f"training {settings.algo} on {settings.env} -> {job.path}")
    # While the algorithm builds, a stop signal ends the node (Ray is stopped on the way
    # out); once iterations run, the trainer's own handlers take over: checkpoint, exit 75.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _raise_stopped)
    reporter = PlacementReporter(job, log)
    if USR1_RECEIVED.is_set():
        log(f"SIGUSR1 (time limit near) before training began; exit {training.EXIT_INTERRUPTED} "
            "so the job is requeued")
        return training.EXIT_INTERRUPTED
    summary = training.train(settings, run_dir=job.path, reporter=reporter)
    if summary.interrupted:
        log(f"interrupted ({summary.stopped_because}); checkpoint {summary.checkpoint}; "
            f"exit {training.EXIT_INTERRUPTED} (resumable)")
        return training.EXIT_INTERRUPTED
    log(f"training finished: {summary.stopped_because}")
    return 0


PLACEMENT_FILE = "placement.json"


def actor_kind(class_name: str) -> str:
    """env_runner / learner for RLlib's actors (learners run as Ray Train workers,
    `_WrappedExecutable`), other for anything else."""
    if "EnvRunner" in class_name:
        return "env_runner"
    if "Learner" in class_name or class_name.endswith("_WrappedExecutable"):
        return "learner"
    return "other"


def actor_placement() -> list[dict]:
    """Env-runner and learner actors with the role and host of the node they live on."""
    import ray

    nodes = {n.ip: n for n in joined_nodes()}
    out = []
    for actor_id, info in sorted(ray._private.state.actors().items()):
        name = info.get("ActorClassName", "")
        kind = actor_kind(name)
        ip = (info.get("Address") or {}).get("IPAddress", "")
        where = nodes.get(ip)
        out.append({"actor": actor_id[:12], "kind": kind, "class": name, "state": info.get("State"),
                    "ip": ip, "role": where.role if where else "?",
                    "host": where.host if where else "?"})
    return out


class PlacementReporter(Reporter):
    """The usual progress lines, plus DIR/.cluster/placement.json: where the env runners
    and learners run (written each iteration, logged once), so a test or a user can see
    that the roles hold."""

    def __init__(self, job: JobDir, log: NodeLog):
        super().__init__(live=False)
        self.job = job
        self.node_log = log
        self.seen: dict[str, dict] = {}
        self.logged = False

    def update(self, row: dict, elapsed_s: float) -> None:
        super().update(row, elapsed_s)
        try:
            actors = actor_placement()
        except Exception as exc:  # debugging API; never let it stop training
            self.node_log(f"placement unknown: {type(exc).__name__}: {exc}")
            return
        for actor in actors:
            if actor["state"] == "ALIVE":
                self.seen[actor["actor"]] = actor
        write_atomic(self.job.state_dir / PLACEMENT_FILE,
                     json.dumps(sorted(self.seen.values(), key=lambda a: a["actor"]), indent=1))
        if not self.logged and self.seen:
            self.logged = True
            where: dict[str, list[str]] = {}
            for actor in self.seen.values():
                where.setdefault(actor["kind"], []).append(f"{actor['role']} {actor['host']}")
            self.node_log("placement: " + "; ".join(
                f"{cls} on {', '.join(sorted(hosts))}" for cls, hosts in sorted(where.items())))


def write_done(job: JobDir, status: int, reason: str) -> None:
    head = read_json(job.state_dir / HEAD_FILE) or {}
    job.state_dir.mkdir(exist_ok=True)
    write_atomic(job.state_dir / DONE_FILE, json.dumps({
        "status": status, "reason": reason, "session": head.get("session"), "time": time.time()}))


# --- workers -----------------------------------------------------------------------------
def register(job: JobDir, role: str, temp_dir: Path, **fields) -> None:
    folder = job.state_dir / NODES_DIR
    folder.mkdir(exist_ok=True)
    name = f"{role}-{socket.gethostname()}-{temp_dir.name}.json"
    write_atomic(folder / name, json.dumps({"role": role, "host": socket.gethostname(), **fields}))


def run_worker(job: JobDir, role: str, ip: str | None, cpus: int, gpus: float, resources: dict,
               temp_dir: Path, log: NodeLog, stopper: Stopper) -> int:
    state = job.state_dir
    register(job, role, temp_dir, ip=ip, state="waiting for the head", session=None)
    log(f"waiting for the head ({state / HEAD_FILE})")
    deadline = time.monotonic() + job.cluster.ready_timeout_s
    env = ray_env(job)
    head: dict | None = None
    began = time.time()
    while True:
        head = read_json(state / HEAD_FILE)
        if head and head.get("ray_up") and tcp_open(head["address"]):
            break
        done = read_json(state / DONE_FILE)
        if done and float(done.get("time") or 0) > began:
            raise HeadGone(f"the head ended before this node joined: {done.get('reason')}")
        if time.monotonic() > deadline:
            raise HeadGone(f"no head answered within {job.cluster.ready_timeout_s:.0f} s "
                           f"(last published: {head['address'] if head else 'none'})")
        if stopper.wait(POLL_S):
            log(f"{stopper.signal} while waiting for the head; stopping")
            return 128 + signal.Signals[stopper.signal].value
    address, session = head["address"], head["session"]
    host = address.rpartition(":")[0]
    ip = ip or local_ip_towards(host, int(address.rpartition(":")[2])) or own_ip()
    register(job, role, temp_dir, ip=ip, state="joining", session=session)
    log(f"joining {address} as {ip} ({cpus} CPUs, {gpus:g} GPUs, resources {resources}, "
        f"temp dir {temp_dir})")
    args = ray_start_args(job, role, ip, cpus, gpus, resources, temp_dir, address)
    while True:
        try:
            start_ray(args, env, log)
            break
        except RayStartFailed as exc:
            # A join that fails (the head's GCS restarting, a network hiccup) is retried,
            # after clearing what it left, until the timeout.
            if time.monotonic() > deadline or stopper.event.is_set():
                raise
            log(f"{first_line(exc)}; retrying")
            stop_ray(temp_dir, log)
            if stopper.wait(1.0):
                return 128 + signal.Signals[stopper.signal].value
    register(job, role, temp_dir, ip=ip, state="joined", session=session)
    log("joined; waiting for the head to finish")

    unreachable_since: float | None = None
    stop_deadline: float | None = None
    last_probe = 0.0
    while True:
        done = read_json(state / DONE_FILE)
        if done and done.get("session") == session:
            log(f"head finished (status {done.get('status')}: {done.get('reason')})")
            return 0
        now = time.monotonic()
        if now - last_probe >= 1.0:
            last_probe = now
            if tcp_open(address):
                unreachable_since = None
            elif unreachable_since is None:
                unreachable_since = now
            elif now - unreachable_since > HEAD_GONE_AFTER_S:
                raise HeadGone(f"the head at {address} is gone (unreachable for "
                               f"{HEAD_GONE_AFTER_S:.0f} s) and left no done marker")
        if stop_deadline is not None and now > stop_deadline:
            log(f"no done marker {STOP_GRACE_S:.0f} s after {stopper.signal}; stopping")
            return 128 + signal.Signals[stopper.signal].value
        if stopper.wait(POLL_S) and stop_deadline is None:
            # Slurm signals every task at once; keep serving the head while it checkpoints.
            log(f"{stopper.signal}: waiting up to {STOP_GRACE_S:.0f} s for the head to finish")
            stop_deadline = time.monotonic() + STOP_GRACE_S
            stopper.event.clear()


class HeadGone(Exception):
    pass


class Stopped(BaseException):
    """A stop signal before training iterations began."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.status = 128 + signum


def _raise_stopped(signum, _frame):
    raise Stopped(signum)


# Slurm's time-limit warning (SIGUSR1, forwarded to the head by slurm/job.sh.j2) can
# arrive while the head is outside the trainer's loop (Ray starting, nodes joining, the
# trainer shutting down); SIGUSR1's default action would kill the node and fail the job.
# Remember it instead; a head that got it before training began exits 75 (requeue).
# (Added by the Slurm work, issue 4.)
USR1_RECEIVED = threading.Event()


def _note_usr1(_signum, _frame):
    USR1_RECEIVED.set()


# --- entry point -------------------------------------------------------------------------
def run_node(run_dir: str | Path, role: str, num_cpus: int | None = None,
             num_gpus: float | None = None, node_ip: str | None = None) -> int:
    """Run one node of a prepared job; return the process exit status."""
    from launcher.cluster.jobdir import ROLES

    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; valid: {', '.join(ROLES)}")
    log = NodeLog(role)
    job = load_job(run_dir)
    if role != "head" and job.cluster.expected(role) == 0:
        raise UserError(f"job {job.cluster.job_id} expects no {role} node (see {job.cluster_path})")
    cpus, gpus, resources = node_resources(job, role, num_cpus, num_gpus)
    temp_dir = temp_dir_for(job, role)
    log(f"job {job.cluster.job_name} ({job.cluster.job_id}), run dir {job.path}")
    ip = node_ip or (own_ip() if role == "head" else None)
    ports = ports_for(job, role == "head")
    busy = busy_ports(ip or "0.0.0.0", ports)
    if busy:
        raise UserError(f"port(s) of this job already in use on {socket.gethostname()}: "
                        f"{', '.join(busy)}; another job or a leftover Ray from an earlier run "
                        f"(look for Ray processes using {temp_dir})")
    stopper = Stopper()
    stopper.install()
    signal.signal(signal.SIGUSR1, _note_usr1)
    status = 1
    try:
        if role == "head":
            try:
                status = run_head(job, ip, cpus, gpus, resources, temp_dir, log, stopper)
                reason = "finished" if status == 0 else f"exit {status}"
            except UserError as exc:
                log(f"error: {exc}")
                status, reason = exc.exit_code, str(exc)
            except RayStartFailed as exc:
                log(str(exc))
                status, reason = 1, "ray start failed"
            except Stopped as exc:
                log(f"{exc} before training began; stopping")
                status, reason = exc.status, f"stopped by {exc}"
            except BaseException as exc:
                traceback.print_exc()
                status, reason = 1, f"{type(exc).__name__}: {exc}"
                if isinstance(exc, KeyboardInterrupt):
                    status = 130
            write_done(job, status, reason)
            log(f"exit {status}")
            return status
        try:
            status = run_worker(job, role, node_ip, cpus, gpus, resources, temp_dir, log, stopper)
        except HeadGone as exc:
            log(f"error: {exc}")
            status = EXIT_HEAD_GONE
        except RayStartFailed as exc:
            log(str(exc))
            status = 1
        log(f"exit {status}")
        return status
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
            signal.signal(sig, signal.SIG_IGN)
        stop_ray(temp_dir, log)
