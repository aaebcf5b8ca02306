"""The Apptainer test cluster: a site's shape, in containers on one Docker network.

    lt-app-ctl            slurmctld, and the login node: Python 3.13, Slurm's commands,
                          Apptainer; no torch, no Ray (the launcher is one zipapp file)
    lt-app-c1 .. c4       slurmd + Apptainer, 4 CPUs each (advertised); no Python at all
    lt-app-g1             the same, and one GRES "GPU" (File=/dev/null), Weight=100

Debian trixie with its Slurm 24.11 and munge, Apptainer 1.4.5 from sid (pinned); images
from tests/infra/apptainer/ over a debootstrapped base (no registry). Jobs are submitted by
alice (uid 1000) and run `launcher node` inside launcher-cpu.sif, which is built in the
cluster by images/sif.sh from `docker save launcher:cpu` (docker-archive) and kept in the
shared directory (/tmp/lt-app-shared, same path on the host and every node) until the
image or the definition changes. This checkout is mounted read-only at /opt/launcher-src
and the site profile binds it into the SIF first on PYTHONPATH: jobs run the code under
test. Containers get the three security options Apptainer's user namespaces need (never
--privileged) and, for the fast path, /dev/fuse (squashfuse mounts the SIF).

Command line (also used by `make apptainer-up` and `make bench-slurm`):
    python tests/apptainer_cluster.py up|down|status|build|rebuild|sif
Env: DOCKER (client), LT_APP_BASE (trainer image for the SIF, default launcher:cpu),
LT_APP_FUSE=0 (no /dev/fuse: Apptainer unpacks the SIF on every node start),
LT_APP_SIF_COMPRESSION (mksquashfs -comp of the test SIF, default lz4: faster to build),
LT_APP_KEEP=1 (the pytest fixture leaves the cluster running for the next run).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.slurm_cluster import docker, docker_cli, image_id  # noqa: E402

CONTEXT = REPO / "tests" / "infra" / "apptainer"
PREFIX = "lt-app-"
BASE_IMAGE = "lt-apptainer-base:trixie"
NODE_IMAGE = "lt-apptainer-node:latest"
LOGIN_IMAGE = "lt-apptainer-login:latest"
NETWORK = "lt-app-net"
CONTROLLER = "lt-app-ctl"
CPU_NODES = [f"lt-app-c{i}" for i in range(1, 5)]
GPU_NODE = "lt-app-g1"
NODES = [*CPU_NODES, GPU_NODE]
SRC = "/opt/launcher-src"
LABEL = "lt-app.context"
SHARED = Path("/tmp/lt-app-shared")  # fixed: the site profile names the SIF in it
SIF = SHARED / "launcher-cpu.sif"
SITE = f"{SRC}/tests/infra/apptainer/site.yaml"
USER, UID = "alice", 1000
HOME = f"/home/{USER}"
LOGIN_LAUNCHER = f"{HOME}/.local/bin/launcher"
USER_PATH = f"{HOME}/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What Apptainer needs from Docker to run unprivileged (user namespaces, its mounts).
SECURITY = ["--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
            "--security-opt", "systempaths=unconfined"]


def digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part + b"\0")
    return h.hexdigest()[:16]


class ApptainerCluster:
    def __init__(self, base: str | None = None, fuse: bool | None = None):
        self.shared = SHARED
        self.base = base or os.environ.get("LT_APP_BASE", "launcher:cpu")
        self.fuse = os.environ.get("LT_APP_FUSE", "1") != "0" if fuse is None else fuse
        self.timings: dict[str, float] = {}
        # lz4 builds in a third of gzip's time here (1.2 vs 3-5 min); squashfuse reads both.
        self.compression = os.environ.get("LT_APP_SIF_COMPRESSION", "lz4")

    # --- images ---------------------------------------------------------------------------
    def build_image(self, tag: str, dockerfile: str, base: str, force: bool = False) -> None:
        """Build `tag` unless one from the same context and base exists (label)."""
        files = sorted(p for p in CONTEXT.iterdir() if p.is_file())
        wanted = digest(*(p.name.encode() + p.read_bytes() for p in files),
                        (image_id(base) or "").encode(), dockerfile.encode())
        have = docker("image", "inspect", "-f", f'{{{{index .Config.Labels "{LABEL}"}}}}', tag,
                      check=False)
        if not force and have.returncode == 0 and have.stdout.strip() == wanted:
            return
        print(f"building {tag} from {base}", file=sys.stderr)
        docker("build", "-q", "-t", tag, "-f", str(CONTEXT / dockerfile), "--build-arg", f"BASE={base}",
               "--label", f"{LABEL}={wanted}", str(CONTEXT), timeout=1200)

    def build(self, force: bool = False) -> None:
        started = time.monotonic()
        if force or image_id(BASE_IMAGE) is None:
            print(f"debootstrapping {BASE_IMAGE}", file=sys.stderr)
            subprocess.run([str(CONTEXT / "trixie-base.sh"), BASE_IMAGE], check=True, timeout=1200,
                           env={**os.environ, "DOCKER": docker_cli()})
        self.build_image(NODE_IMAGE, "Dockerfile", BASE_IMAGE, force)
        self.build_image(LOGIN_IMAGE, "Dockerfile.login", NODE_IMAGE, force)
        self.timings["images_s"] = time.monotonic() - started

    # --- containers -----------------------------------------------------------------------
    def containers(self) -> list[str]:
        proc = docker("ps", "-a", "--filter", f"name=^{PREFIX}", "--format", "{{.Names}}", check=False)
        return [n for n in proc.stdout.split() if n.startswith(PREFIX)]

    def is_up(self) -> bool:
        running = docker("ps", "--filter", f"name=^{PREFIX}", "--format", "{{.Names}}", check=False)
        return (set(running.stdout.split()) >= {CONTROLLER, *NODES} and self.ready(quick=True)
                and self.fuse_on() == self.fuse)

    def fuse_on(self) -> bool:
        return self.exec("test", "-c", "/dev/fuse", node=CPU_NODES[0], check=False).returncode == 0

    def up(self, timeout_s: float = 180) -> float:
        """Start (or restart) the cluster with a current SIF and login launcher; return the
        seconds from the first container to every node idle."""
        self.build()
        self.down()
        self.shared.mkdir(parents=True, exist_ok=True)
        os.chmod(self.shared, 0o1777)
        docker("network", "create", "--label", "lt-app=1", NETWORK)
        started = time.monotonic()
        for name in [CONTROLLER, *NODES]:
            role, image = ("controller", LOGIN_IMAGE) if name == CONTROLLER else ("node", NODE_IMAGE)
            fuse = ["--device", "/dev/fuse"] if self.fuse else []
            docker("run", "-d", "--name", name, "--hostname", name, "--network", NETWORK,
                   "--label", "lt-app=1", "--shm-size", "1g", "--init", *SECURITY, *fuse,
                   "-v", f"{self.shared}:{self.shared}", "-v", f"{REPO}:{SRC}:ro",
                   "-e", f"LAUNCHER_SITE={SITE}", image, role)
        self.wait_ready(timeout_s)
        self.timings["up_s"] = time.monotonic() - started
        self.ensure_sif()
        self.install_login_launcher()
        return self.timings["up_s"]

    def install_login_launcher(self) -> None:
        """The login node's launcher, installed by alice with the README's one command
        (install-login.sh from the SIF; pydantic-core for Python 3.13 from a local wheel
        directory, as from a site's index); then the zipapp of this checkout, built by the
        host's test environment, replaces the SIF's copy: jobs run the code under test."""
        started = time.monotonic()
        staging = self.shared / ".login"
        subprocess.run([sys.executable, "-m", "launcher.cluster.slurm.loginpkg", str(staging)],
                       check=True, capture_output=True, cwd=REPO, timeout=120)
        self.download_native_wheels(staging / "launcher.pyz")
        pip = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(self.shared / ".wheels")}
        proc = self.as_user("sh", "-c", f"apptainer exec {SIF} cat /opt/launcher/install-login.sh "
                            f"| sh -s {SIF}", env=pip, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"install-login.sh failed:\n{proc.stdout}\n{proc.stderr}")
        self.install_output = proc.stdout + proc.stderr
        self.as_user("install", "-m", "755", str(staging / "launcher.pyz"), LOGIN_LAUNCHER, check=True)
        self.timings["login_install_s"] = time.monotonic() - started

    def download_native_wheels(self, zipapp: Path) -> None:
        """pip download (on the host, which reaches the package index) of the compiled
        packages the zipapp asks for, built for the login node's Python 3.13."""
        import re
        import zipfile

        main = zipfile.ZipFile(zipapp).read("__main__.py").decode()
        pins = sorted(set(re.findall(r"'([A-Za-z0-9_.-]+==[^']+)'", main)))
        wheels = self.shared / ".wheels"
        wheels.mkdir(exist_ok=True)
        if pins:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:",
                            "--python-version", "3.13", "--implementation", "cp",
                            "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
                            "--no-deps", "-d", str(wheels), *pins], check=True, timeout=300)
        os.chmod(wheels, 0o755)
        for wheel in wheels.iterdir():
            os.chmod(wheel, 0o644)

    def down(self) -> None:
        names = self.containers()
        if names:
            docker("rm", "-f", *names, timeout=180)
        docker("network", "rm", NETWORK, check=False)

    def ready(self, quick: bool = False) -> bool:
        proc = self.exec("sinfo", "-h", "-N", "-o", "%N %t", check=False, timeout=20)
        if proc.returncode != 0:
            return False
        states = dict(line.split() for line in proc.stdout.splitlines() if line.strip())
        return all(states.get(node) in ("idle", "mix", "alloc") if quick else states.get(node) == "idle"
                   for node in NODES)

    def wait_ready(self, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.ready():
                return
            time.sleep(0.5)
        proc = self.exec("sinfo", "-N", "-l", check=False)
        log = self.exec("tail", "-n", "30", "/var/log/slurm/slurmctld.log", check=False)
        raise RuntimeError(f"Apptainer test cluster not ready after {timeout_s:.0f} s:\n"
                           f"{proc.stdout}{proc.stderr}\n{log.stdout}")

    # --- the SIF --------------------------------------------------------------------------
    def sif_key(self) -> str:
        return digest((image_id(self.base) or "").encode(), self.compression.encode(),
                      (REPO / "apptainer" / "cpu.def").read_bytes(),
                      (REPO / "images" / "sif.sh").read_bytes())

    def ensure_sif(self, force: bool = False) -> bool:
        """launcher-cpu.sif, unless the one there is current. Returns whether it was built."""
        key_file = SIF.with_name(SIF.name + ".key")
        key = self.sif_key()
        if not force and SIF.is_file() and key_file.is_file() and key_file.read_text() == key:
            return False
        if image_id(self.base) is None:
            raise RuntimeError(f"trainer image {self.base} missing: run `make image` first")
        self.build_sif("cpu", self.base, SIF)
        key_file.write_text(key)
        return True

    def build_sif(self, variant: str, image: str, out: Path) -> None:
        """Build a SIF with the cluster's Apptainer: images/sif.sh VARIANT ARCHIVE, from
        `docker save IMAGE` (Bootstrap: docker-archive), as on a machine without Docker."""
        archive = self.shared / f".launcher-{variant}.tar"
        started = time.monotonic()
        try:
            docker("save", image, "-o", str(archive), timeout=900)
            os.chmod(archive, 0o644)
            self.timings[f"docker_save_{variant}_s"] = time.monotonic() - started
            proc = self.exec(f"{SRC}/images/sif.sh", variant, str(archive), timeout=2400,
                             env={"SIF": str(out), "APPTAINER_TMPDIR": "/var/tmp",
                                  "SIF_COMPRESSION": self.compression}, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"images/sif.sh failed ({proc.returncode}):\n"
                                   f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        finally:
            archive.unlink(missing_ok=True)
        os.chmod(out, 0o644)
        self.timings[f"sif_build_{variant}_s"] = time.monotonic() - started

    # --- running things -------------------------------------------------------------------
    def exec(self, *args: str, node: str = CONTROLLER, check: bool = True, timeout: float = 300,
             env: dict[str, str] | None = None, workdir: str | None = None, user: str | None = None
             ) -> subprocess.CompletedProcess:
        extra: list[str] = []
        for key, value in (env or {}).items():
            extra += ["-e", f"{key}={value}"]
        if workdir:
            extra += ["-w", workdir]
        if user:
            extra += ["-u", user]
        proc = subprocess.run([docker_cli(), "exec", *extra, node, *args], capture_output=True,
                              text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} on {node} failed ({proc.returncode}):\n"
                               f"{proc.stdout}\n{proc.stderr}")
        return proc

    def as_user(self, *args: str, node: str = CONTROLLER, check: bool = False, timeout: float = 300,
                env: dict[str, str] | None = None, workdir: str | None = None
                ) -> subprocess.CompletedProcess:
        """A command as alice (uid 1000), with her home."""
        return self.exec(*args, node=node, check=check, timeout=timeout, user=f"{UID}:{UID}",
                         env={"HOME": HOME, "USER": USER, "PATH": USER_PATH, **(env or {})},
                         workdir=workdir or str(self.shared))

    def launcher(self, *args: str, check: bool = False, timeout: float = 300,
                 workdir: str | None = None, env: dict[str, str] | None = None
                 ) -> subprocess.CompletedProcess:
        """`launcher ARGS` on the login node, as alice."""
        return self.as_user("launcher", *args, check=check, timeout=timeout, workdir=workdir, env=env)

    def processes(self, node: str) -> list[str]:
        """Live processes (not zombies) of a node, as 'COMMAND LINE'."""
        proc = self.exec("ps", "-eo", "stat=,args=", node=node, check=False)
        out = []
        for line in proc.stdout.splitlines():
            stat, _, args = line.strip().partition(" ")
            if not stat.startswith("Z"):
                out.append(args.strip())
        return out

    def ray_processes(self, node: str) -> list[str]:
        """Ray's processes and Apptainer's (apptainer, its starter, squashfuse) on a node."""
        keys = ("raylet", "gcs_server", "ray::", "default_worker.py", "dashboard/agent.py",
                "log_monitor.py", "apptainer exec", "squashfuse", "Apptainer runtime", "starter")
        return [p for p in self.processes(node) if any(k in p for k in keys)]

    def leftovers(self, node: str) -> list[str]:
        """What a finished job may not leave on a node: Ray or Apptainer processes, FUSE
        mounts of a SIF, unpacked images or launcher scratch dirs in /tmp."""
        found = self.ray_processes(node)
        mounts = self.exec("cat", "/proc/mounts", node=node, check=False).stdout
        found += [f"mount: {line}" for line in mounts.splitlines() if "fuse" in line or "squash" in line]
        tmp = self.exec("bash", "-c", "ls -d /tmp/rootfs-* /tmp/launcher-* /var/tmp/rootfs-* "
                        "/tmp/build-temp-* 2>/dev/null", node=node, check=False).stdout
        found += [f"left in tmp: {path}" for path in tmp.split()]
        return found


def main(argv: list[str]) -> int:
    cluster = ApptainerCluster()
    command = argv[0] if argv else "status"
    if command in ("build", "rebuild"):
        cluster.build(force=command == "rebuild")
        print(f"images: {cluster.timings}")
    elif command == "up":
        took = cluster.up()
        print(f"Apptainer test cluster up ({took:.1f} s); shared dir {cluster.shared}; "
              f"{cluster.timings}")
    elif command == "sif":
        cluster.ensure_sif(force=True)
        print(f"{SIF}: {cluster.timings}")
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
