"""This node's Ray processes: the `ray start` argument list, starting them, and stopping
them, and nothing else on the machine.

`ray start` runs as an argument list (no shell ever sees it) in a session of its own:
every daemon it leaves behind (GCS, raylet, agents) and every worker those start carry
that session id. Stopping Ray therefore needs no guess from command lines: the node
signals the processes of the sessions it started, and their descendants, that belong to
its own user, never itself and never anything else (another user's process, a `tail -F`
on a Ray log). It never raises: a process that is gone or not ours to signal is skipped.

The environment of `ray start` and of the head's driver points Ray at the job's token
file (RAY_AUTH_MODE=token, RAY_AUTH_TOKEN_PATH), never at the token itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from launcher.cluster.ports import KERNEL_CHOSEN
from launcher.contract import HEAD

TAIL_LINES = 15  # of `ray start`'s output, in the error when it fails


class RayStartFailed(Exception):
    pass


# --- the command -------------------------------------------------------------------------
def ray_start_args(role: str, ip: str, cpus: int, gpus: float, resources: dict[str, float],
                   temp_dir: Path, *, head_ports: dict[str, int] | None = None,
                   head_address: str | None = None) -> list[str]:
    """The `ray start` argument list for this node. The head listens on `head_ports`
    (ports.choose_head_ports); every other port is the kernel's choice."""
    chosen = str(KERNEL_CHOSEN)
    args = ["ray", "start", "--node-ip-address", ip,
            "--num-cpus", str(cpus), "--num-gpus", str(int(gpus)),
            "--resources", json.dumps(resources, sort_keys=True),
            "--temp-dir", str(temp_dir),
            "--node-manager-port", chosen, "--object-manager-port", chosen,
            "--dashboard-agent-listen-port", chosen, "--dashboard-agent-grpc-port", chosen,
            "--runtime-env-agent-port", chosen, "--metrics-export-port", chosen,
            "--min-worker-port", chosen, "--max-worker-port", chosen,
            # The driver does not print the workers' output (log_to_driver=False): no log monitor.
            "--include-log-monitor", "false",
            "--disable-usage-stats", "--log-style", "record", "--log-color", "false"]
    if role != HEAD:
        return [*args, "--address", head_address or ""]
    ports = head_ports or {}
    args += ["--head", "--port", str(ports["gcs"]), "--dashboard-port", chosen,
             "--include-dashboard", "false",
             # No autoscaler for a fixed set of nodes (KubeRay starts heads this way too):
             # one Python process less competing with the head's start.
             "--no-monitor"]
    if ray_client_available():  # its server listens on 10001 unless told otherwise
        args += ["--ray-client-server-port", str(ports["client_server"])]
    return args


def ray_client_available() -> bool:
    """ray[client] installed (the minimal Ray of the image has no client server)."""
    try:
        from ray._private.utils import get_ray_client_dependency_error as check
    except ImportError:
        return False
    return check() is None


def ray_env(job) -> dict[str, str]:
    """Environment for `ray start` and the driver (job: a JobDir): token auth, quiet, fast
    local connects (training.ray_session.RAY_FAST_CONNECT), TF's legacy Keras."""
    from launcher.contract import RunPaths
    from launcher.training.ray_session import fast_connect_env

    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(RunPaths(job.path).token),
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "1", **fast_connect_env()}
    if job.settings.framework == "tf2":
        env["TF_USE_LEGACY_KERAS"] = "1"
    return env


def ray_executable() -> str:
    """`ray` next to this interpreter (a venv not on PATH), else the one on PATH."""
    beside = Path(sys.executable).with_name("ray")
    return str(beside) if beside.exists() else "ray"


# --- the processes -----------------------------------------------------------------------
class NodeRay:
    """The Ray processes this node started (in `temp_dir`), found by their sessions."""

    def __init__(self, temp_dir: Path):
        self.temp_dir = temp_dir
        self.sessions: set[int] = set()

    def start(self, args: list[str], env: dict[str, str]) -> None:
        """Run `ray start` (args[0] is replaced by the `ray` beside this interpreter)."""
        proc = subprocess.Popen([ray_executable(), *args[1:]], env={**os.environ, **env},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        self.sessions.add(proc.pid)  # a session leader's pid is its session id
        output, _ = proc.communicate()
        if proc.returncode != 0:
            tail = "\n".join(output.strip().splitlines()[-TAIL_LINES:])
            raise RayStartFailed(f"ray start failed (exit {proc.returncode}):\n{tail}")

    def pids(self) -> list[int]:
        return own_session_pids(self.sessions)

    def stop(self, log=None, grace_s: float = 1.0) -> int:
        """SIGTERM, then SIGKILL after grace_s, to this node's Ray processes only."""
        pids = self.pids()
        for pid in pids:
            send(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        alive = pids
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [pid for pid in alive if running(pid)]
        for pid in alive:
            send(pid, signal.SIGKILL)
        if log and pids:
            log(f"stopped Ray ({len(pids)} processes, {len(alive)} killed)")
        return len(pids)


def send(pid: int, sig: int) -> None:
    """A signal that may find the process gone, or not ours to signal: never raises."""
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def process_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (parent pid, session id, owner uid), from /proc."""
    table = {}
    try:
        entries = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return table
    for entry in entries:
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
            uid = os.stat(f"/proc/{entry}").st_uid
        except OSError:  # gone meanwhile
            continue
        table[int(entry)] = (int(fields[1]), int(fields[3]), uid)
    return table


def own_session_pids(sessions: set[int], table: dict | None = None) -> list[int]:
    """This user's processes in `sessions` and their descendants, this process excluded."""
    table = process_table() if table is None else table
    me, uid = os.getpid(), os.getuid()
    mine = {pid for pid, (_, sid, owner) in table.items() if owner == uid and sid in sessions}
    changed = True
    while changed:
        changed = False
        for pid, (ppid, _, owner) in table.items():
            if ppid in mine and pid not in mine and owner == uid:
                mine.add(pid)
                changed = True
    mine.discard(me)
    return sorted(mine)


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"
