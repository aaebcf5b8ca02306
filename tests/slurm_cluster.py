"""The Slurm test cluster: containers built from the trainer image, on one Docker network.

    lt-slurm-ctl           slurmctld (and where tests run `launcher submit`, `sbatch`...)
    lt-slurm-c1 .. c4      slurmd, 4 CPUs each (advertised; the machine may have fewer)
    lt-slurm-g1            slurmd, 4 CPUs and one GRES "GPU" (File=/dev/null), Weight=100

Every container mounts the shared directory (default /tmp/lt-slurm-shared, same path
on the host and in every container: run dirs live there) and this checkout read-only
at /opt/launcher-src, first on PYTHONPATH: the cluster runs the code under test, not
whatever the image was built from. Nodes run `launcher node` with runtime none.

Command line (also used by `make bench-slurm`):
    python tests/slurm_cluster.py up|down|status|build
Env: DOCKER (client, default /usr/bin/docker when present), LT_SLURM_SHARED,
LT_SLURM_BASE (image to build from, default launcher:cpu), LT_SLURM_KEEP=1 (the pytest
fixture leaves the cluster running for the next run).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONTEXT = REPO / "tests" / "infra" / "slurm"
PREFIX = "lt-slurm-"
IMAGE = "lt-slurm-node:latest"
NETWORK = "lt-slurm-net"
CONTROLLER = "lt-slurm-ctl"
CPU_NODES = [f"lt-slurm-c{i}" for i in range(1, 5)]
GPU_NODE = "lt-slurm-g1"
NODES = [*CPU_NODES, GPU_NODE]
SRC = "/opt/launcher-src"
LABEL = "lt-slurm.context"
SITE = f"{SRC}/tests/infra/slurm/site.yaml"  # the cluster's site profile, via LAUNCHER_SITE


def docker_cli() -> str:
    if os.environ.get("DOCKER"):
        return os.environ["DOCKER"]
    return "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (shutil.which("docker") or "docker")


def docker(*args: str, check: bool = True, timeout: float = 120, capture: bool = True
           ) -> subprocess.CompletedProcess:
    proc = subprocess.run([docker_cli(), *args], capture_output=capture, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])} failed: {(proc.stderr or '').strip()}")
    return proc


def docker_works() -> bool:
    try:
        return docker("info", check=False, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def image_id(name: str) -> str | None:
    proc = docker("image", "inspect", "-f", "{{.Id}}", name, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


class Cluster:
    def __init__(self, shared: str | Path | None = None, base: str | None = None):
        self.shared = Path(shared or os.environ.get("LT_SLURM_SHARED", "/tmp/lt-slurm-shared"))
        self.base = base or os.environ.get("LT_SLURM_BASE", "launcher:cpu")

    # --- image --------------------------------------------------------------------------
    def context_hash(self) -> str:
        digest = hashlib.sha256()
        for path in sorted(CONTEXT.iterdir()):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        digest.update((image_id(self.base) or "").encode())
        return digest.hexdigest()[:16]

    def build(self, force: bool = False) -> None:
        """Build lt-slurm-node:latest unless one from the same context and base exists."""
        wanted = self.context_hash()
        have = docker("image", "inspect", "-f", f'{{{{index .Config.Labels "{LABEL}"}}}}', IMAGE,
                      check=False)
        if not force and have.returncode == 0 and have.stdout.strip() == wanted:
            return
        print(f"building {IMAGE} from {self.base}", file=sys.stderr)
        docker("build", "-t", IMAGE, "--build-arg", f"BASE={self.base}", "--label", f"{LABEL}={wanted}",
               str(CONTEXT), timeout=900)

    # --- containers ---------------------------------------------------------------------
    def containers(self) -> list[str]:
        proc = docker("ps", "-a", "--filter", f"name=^{PREFIX}", "--format", "{{.Names}}", check=False)
        return [n for n in proc.stdout.split() if n.startswith(PREFIX)]

    def is_up(self) -> bool:
        running = docker("ps", "--filter", f"name=^{PREFIX}", "--format", "{{.Names}}", check=False)
        return set(running.stdout.split()) >= {CONTROLLER, *NODES} and self.ready(quick=True)

    def up(self, timeout_s: float = 120) -> float:
        """Start (or restart) the cluster; return seconds until every node was idle."""
        self.build()
        self.down()
        self.shared.mkdir(parents=True, exist_ok=True)
        os.chmod(self.shared, 0o1777)
        docker("network", "create", "--label", "lt-slurm=1", NETWORK)
        started = time.monotonic()
        for name in [CONTROLLER, *NODES]:
            role = "controller" if name == CONTROLLER else "node"
            docker("run", "-d", "--name", name, "--hostname", name, "--network", NETWORK,
                   "--label", "lt-slurm=1", "--shm-size", "1g", "--init",
                   "-v", f"{self.shared}:{self.shared}", "-v", f"{REPO}:{SRC}:ro",
                   "-e", f"PYTHONPATH={SRC}", "-e", f"LT_SLURM_SHARED={self.shared}",
                   "-e", f"LAUNCHER_SITE={SITE}",
                   IMAGE, role)
        self.wait_ready(timeout_s)
        return time.monotonic() - started

    def down(self) -> None:
        names = self.containers()
        if names:
            docker("rm", "-f", *names, timeout=120)
        docker("network", "rm", NETWORK, check=False)

    def ready(self, quick: bool = False) -> bool:
        proc = self.exec("sinfo", "-h", "-N", "-o", "%N %t", check=False, timeout=20)
        if proc.returncode != 0:
            return False
        states = dict(line.split() for line in proc.stdout.splitlines() if line.strip())
        return all(states.get(node) in ("idle", "mix", "alloc") if quick else states.get(node) == "idle"
                   for node in NODES)

    def wait_ready(self, timeout_s: float = 120) -> None:
        """Poll sinfo until every node is idle (no fixed sleeps)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.ready():
                return
            time.sleep(0.5)
        proc = self.exec("sinfo", "-N", "-l", check=False)
        log = self.exec("tail", "-n", "30", "/var/log/slurm/slurmctld.log", check=False)
        raise RuntimeError(f"Slurm test cluster not ready after {timeout_s:.0f} s:\n"
                           f"{proc.stdout}{proc.stderr}\n{log.stdout}")

    # --- running things -------------------------------------------------------------------
    def exec(self, *args: str, node: str = CONTROLLER, check: bool = True, timeout: float = 300,
             env: dict[str, str] | None = None, workdir: str | None = None
             ) -> subprocess.CompletedProcess:
        extra: list[str] = []
        for key, value in (env or {}).items():
            extra += ["-e", f"{key}={value}"]
        if workdir:
            extra += ["-w", workdir]
        proc = subprocess.run([docker_cli(), "exec", *extra, node, *args], capture_output=True,
                              text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} on {node} failed ({proc.returncode}):\n"
                               f"{proc.stdout}\n{proc.stderr}")
        return proc

    def launcher(self, *args: str, check: bool = False, timeout: float = 300,
                 workdir: str | None = None) -> subprocess.CompletedProcess:
        """`launcher ARGS` on the controller (the login node of this cluster)."""
        return self.exec("launcher", *args, check=check, timeout=timeout,
                         workdir=workdir or str(self.shared))

    def ray_processes(self, node: str) -> list[str]:
        """Command lines of live Ray processes (raylet, gcs_server, ray::...) on a node
        (zombies, already dead and waiting to be reaped, do not count)."""
        proc = self.exec("ps", "-eo", "stat=,args=", node=node, check=False)
        out = []
        for line in proc.stdout.splitlines():
            stat, _, args = line.strip().partition(" ")
            if stat.startswith("Z"):
                continue
            if any(k in args for k in ("raylet", "gcs_server", "ray::", "default_worker.py",
                                       "dashboard/agent.py", "log_monitor.py")):
                out.append(args.strip())
        return out


# --- jobs on the cluster (the end-to-end tests and bench/slurm_join.py) ---------------
def job_state(cluster: Cluster, job: str) -> dict[str, str]:
    from launcher.cluster.slurm import parse_scontrol

    proc = cluster.exec("scontrol", "show", "job", "--oneliner", job, check=False)
    return parse_scontrol(proc.stdout.splitlines()[0]) if proc.returncode == 0 and proc.stdout else {}


def wait_for(predicate, timeout_s: float, what: str, poll_s: float = 1.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def wait_ended(cluster: Cluster, job: str, timeout_s: float) -> dict[str, str]:
    def ended():
        info = job_state(cluster, job)
        return info if info.get("JobState") in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT",
                                                  "NODE_FAIL", "OUT_OF_MEMORY") else None
    try:
        return wait_for(ended, timeout_s, f"job {job} to end", poll_s=2)
    except AssertionError:
        log = "\n".join(read_log(cluster, job).splitlines()[-40:])
        raise AssertionError(f"job {job} did not end within {timeout_s:.0f} s; log tail:\n{log}") from None


def read_log(cluster: Cluster, job: str) -> str:
    proc = cluster.launcher("logs", job)
    return proc.stdout + proc.stderr


def main(argv: list[str]) -> int:
    cluster = Cluster()
    command = argv[0] if argv else "status"
    if command == "build":
        cluster.build(force=True)
    elif command == "up":
        took = cluster.up()
        print(f"Slurm test cluster up ({took:.1f} s); shared dir {cluster.shared}")
    elif command == "down":
        cluster.down()
    elif command == "status":
        print(cluster.exec("sinfo", "-N", check=False).stdout or "not running")
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
