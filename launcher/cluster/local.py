"""`launcher local`: a cluster job's topology as Docker containers on one machine.

A private Docker network, a head container, N rollout containers and, with --gpus G > 0,
a learner container (a GPU device request when the host has NVIDIA GPUs, else a CPU
learner placed by the same `learner_node` resource as on Slurm). Every container runs
the trainer image's `launcher node --run-dir DIR --role ROLE`, exactly as a Slurm job's
nodes do, on a run directory bind-mounted at the same path as on the host and written
as the invoking user. The head's progress lines stream to the terminal; containers and
network are removed at the end, also on Ctrl-C, SIGTERM and failure.

Everything is checked (settings, image, engine, limits) before a container starts.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.cluster.jobdir import CLUSTER_FILE, JobDir, load_job, prepare_job
from launcher.errors import UserError, first_line
from launcher.training.settings import TrainSettings

DEFAULT_IMAGE = "launcher:cpu"
DEFAULT_SHM = "1g"
LABEL = "launcher.local"
STOP_GRACE_S = 90  # Ctrl-C: how long the head may take to checkpoint before it is killed
IMAGE_PACKAGE = "/opt/venv/lib/python3.11/site-packages/launcher"  # where the image installs it
SIZE_RE = re.compile(r"^[0-9]+(\.[0-9]+)?[bkmgBKMG]?$")


@dataclass
class LocalOptions:
    nodes: int = 2
    gpus: float = 0
    cpus_per_node: int | None = None
    memory: str | None = None
    shm_size: str = DEFAULT_SHM
    image: str = DEFAULT_IMAGE
    keep: bool = False
    prefix: str | None = None  # container/network names: PREFIX-head, PREFIX-rollout-1, ...
    ready_timeout_s: float = 120.0
    extra_env: dict[str, str] = field(default_factory=dict)


def check_size(value: str | None, flag: str) -> None:
    if value is not None and not SIZE_RE.match(value):
        raise UserError(f"{flag} expects a size such as 512m or 2g, got {value!r}")


def check_options(opts: LocalOptions) -> None:
    if opts.nodes < 0:
        raise UserError(f"--nodes must be 0 or more, got {opts.nodes}")
    if opts.gpus < 0 or opts.gpus != int(opts.gpus):
        raise UserError(f"--gpus must be a whole number, 0 or more, got {opts.gpus}")
    if opts.cpus_per_node is not None and opts.cpus_per_node < 1:
        raise UserError(f"--cpus-per-node must be at least 1, got {opts.cpus_per_node}")
    check_size(opts.memory, "--memory")
    check_size(opts.shm_size, "--shm-size")
    if opts.prefix is not None and not re.match(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,40}$", opts.prefix):
        raise UserError(f"--prefix must be letters, digits, '-', '_' or '.', got {opts.prefix!r}")


def default_cpus_per_node(nodes: int, learner: bool) -> int:
    """Share this machine's CPUs between the containers, at least one each."""
    from launcher.training.loop import usable_cpus

    return max(1, usable_cpus() // (nodes + 1 + int(learner)))


# --- Docker ------------------------------------------------------------------------------
def docker_client():
    try:
        import docker
    except ImportError:  # pragma: no cover - a dependency
        raise UserError("the docker Python package is missing: pip install docker") from None
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:
        raise UserError(f"cannot reach the Docker engine ({first_line(exc)}); start it, or set "
                        "DOCKER_HOST; `launcher doctor` checks this") from None
    return client


TORCH_LABEL = "launcher.torch"  # set by Dockerfile (cpu) and Dockerfile.gpu (cuda)


def check_image(client, image: str) -> dict[str, str]:
    """The image's labels; a clear error when it is missing."""
    import docker

    try:
        found = client.images.get(image)
    except docker.errors.ImageNotFound:
        raise UserError(f"image {image} not found: build it with `make image` "
                        "(or pass --image)") from None
    return dict(found.labels or {})


def check_gpu_image(image: str, labels: dict[str, str], gpus_found: int) -> None:
    """GPUs handed to a container whose torch cannot use them would fail only once the
    learner starts; say so before anything starts. Images without the label pass."""
    if labels.get(TORCH_LABEL) == "cpu":
        raise UserError(f"this host has {gpus_found} NVIDIA GPU(s) for the learner, but {image} "
                        "has CPU-only torch: build the CUDA image (`make image-gpu`) and pass "
                        "--image launcher:gpu")


def host_gpus() -> int:
    """NVIDIA GPUs Docker could hand to a container (nvidia-smi lists them)."""
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


# --- the cluster -------------------------------------------------------------------------
@dataclass
class Member:
    role: str
    name: str
    container: Any = None


class LocalCluster:
    """Containers and network of one `launcher local` run; `close()` removes them all."""

    def __init__(self, client, job: JobDir, opts: LocalOptions, gpu_devices: bool, say):
        self.client = client
        self.job = job
        self.opts = opts
        self.gpu_devices = gpu_devices
        self.say = say
        self.prefix = opts.prefix or f"launcher-local-{job.cluster.short_id}"
        self.network = None
        self.members: list[Member] = []
        self.lines: queue.Queue[tuple[str, str]] = queue.Queue()

    # --- start -------------------------------------------------------------------------
    def start(self) -> None:
        self.network = self.client.networks.create(
            self.prefix, driver="bridge", labels={LABEL: self.job.cluster.job_id})
        roles = [("head", "head")]
        roles += [("rollout", f"rollout-{i + 1}") for i in range(self.job.cluster.expected("rollout"))]
        if self.job.cluster.has_learner:
            roles.append(("learner", "learner"))
        for role, suffix in roles:
            member = Member(role, f"{self.prefix}-{suffix}")
            self.members.append(member)
            member.container = self._run(member)
            threading.Thread(target=self._follow, args=(member,), daemon=True).start()

    def _run(self, member: Member):
        import docker

        spec = self.job.cluster.roles[member.role]
        cpus = spec.cpus or 1
        limit = self.opts.cpus_per_node or cpus
        command = ["launcher", "node", "--run-dir", str(self.job.path), "--role", member.role,
                   "--num-cpus", str(cpus), "--num-gpus", str(int(spec.gpus) if self.gpu_devices else 0)]
        kwargs: dict[str, Any] = {}
        if member.role == "learner" and self.gpu_devices and spec.gpus:
            kwargs["device_requests"] = [docker.types.DeviceRequest(
                count=int(spec.gpus), capabilities=[["gpu"]])]
        if self.opts.memory:
            kwargs["mem_limit"] = self.opts.memory
        volumes = {str(self.job.path): {"bind": str(self.job.path), "mode": "rw"}}
        source = os.environ.get("LAUNCHER_DEV_SOURCE")
        if source:  # development aid: run this checkout's launcher/ in the image, no rebuild
            volumes[str(Path(source).resolve())] = {"bind": IMAGE_PACKAGE, "mode": "ro"}
        return self.client.containers.run(
            self.opts.image, command, name=member.name, hostname=member.name,
            network=self.network.name, detach=True, init=False,
            # The image's entry point switches to this user: results belong to the caller.
            environment={"LAUNCHER_USER": f"{os.getuid()}:{os.getgid()}", "PYTHONUNBUFFERED": "1",
                         **self.opts.extra_env},
            volumes=volumes,
            nano_cpus=int(limit * 1e9), shm_size=self.opts.shm_size,
            labels={LABEL: self.job.cluster.job_id, f"{LABEL}.role": member.role},
            **kwargs,
        )

    def _follow(self, member: Member) -> None:
        """Queue a container's output lines (its `launcher node` log)."""
        try:
            buffer = b""
            for chunk in member.container.logs(stream=True, follow=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    self.lines.put((member.role, line.decode(errors="replace")))
            if buffer:
                self.lines.put((member.role, buffer.decode(errors="replace")))
        except Exception:
            pass  # the container went away: close() or a kill

    # --- watch -------------------------------------------------------------------------
    def head(self) -> Member:
        return self.members[0]

    def status(self, member: Member) -> tuple[str, int | None, bool]:
        """(state, exit code, OOM-killed) of a member's container; 'gone' if removed."""
        import docker

        try:
            member.container.reload()
        except docker.errors.NotFound:
            return "gone", None, False
        state = member.container.attrs.get("State", {})
        return state.get("Status", "?"), state.get("ExitCode"), bool(state.get("OOMKilled"))

    def signal_head(self, sig: str) -> None:
        try:
            self.head().container.kill(signal=sig)
        except Exception:
            pass

    # --- stop --------------------------------------------------------------------------
    def close(self) -> None:
        if self.opts.keep:
            names = ", ".join(m.name for m in self.members)
            self.say(f"--keep: left containers {names} and network {self.prefix}; remove them "
                     f"with: docker rm -f {' '.join(m.name for m in self.members)} && "
                     f"docker network rm {self.prefix}")
            return
        remove_labelled(self.client, self.job.cluster.job_id)


def remove_labelled(client, job_id: str) -> None:
    """Remove every container and network of a run (by label): idempotent."""
    import docker

    for container in client.containers.list(all=True, filters={"label": f"{LABEL}={job_id}"}):
        try:
            container.remove(force=True)
        except docker.errors.APIError:
            pass
    for network in client.networks.list(filters={"label": f"{LABEL}={job_id}"}):
        try:
            network.remove()
        except docker.errors.APIError:
            pass


# --- the command -------------------------------------------------------------------------
def check_resume(resume: Path) -> Path:
    """The run dir to resume, resolved; a clear error when it cannot be resumed."""
    from launcher.training.loop import checkpoints

    resume = Path(resume).expanduser().resolve()
    if not (resume / CLUSTER_FILE).is_file():
        raise UserError(f"{resume} was not started by `launcher local` / a cluster job "
                        f"(no {CLUSTER_FILE}); resume it with `launcher train --resume`")
    if not checkpoints(resume):
        raise UserError(f"no checkpoint in {resume} to resume from")
    return resume


def prepare(settings: TrainSettings | None, opts: LocalOptions, resume: Path | None,
            resume_overrides: dict | None, learner_on_cpu: bool) -> JobDir:
    """A fresh job dir, or the one being resumed (checked by check_resume; its topology
    from cluster.yaml)."""
    if resume is not None:
        from launcher.training.loop import resume_settings

        job = load_job(resume)
        if resume_overrides:
            settings = resume_settings(resume, resume_overrides)
            settings.write_spec(resume)
            job = load_job(resume)
        # Start from a clean rendezvous: the previous head/nodes are gone.
        import shutil

        for name in ("head.json", "done.json"):
            (job.state_dir / name).unlink(missing_ok=True)
        shutil.rmtree(job.state_dir / "nodes", ignore_errors=True)
        return job
    assert settings is not None
    has_learner = opts.gpus > 0
    cpus = opts.cpus_per_node or default_cpus_per_node(opts.nodes, has_learner)
    head_cpus = 1 if (opts.nodes or has_learner) else max(cpus, 2)
    return prepare_job(
        settings, rollout_nodes=opts.nodes, learner_gpus=0 if learner_on_cpu else opts.gpus,
        learner=has_learner, cpus_per_node=cpus, head_cpus=head_cpus, learner_cpus=1,
        ready_timeout_s=opts.ready_timeout_s,
    )


def run_local(settings: TrainSettings | None, opts: LocalOptions, *, resume: Path | None = None,
              resume_overrides: dict | None = None, say=print) -> int:
    """Run a job as containers; return the head's exit status."""
    import logging

    check_options(opts)
    if resume is not None:  # before the engine: a wrong directory needs no Docker to say so
        resume = check_resume(resume)
    # RLlib announces at import time, once per framework probe, that it skips TensorFlow.
    logging.getLogger("ray.rllib.utils.framework").setLevel(logging.ERROR)
    client = docker_client()
    labels = check_image(client, opts.image)
    gpus_found = host_gpus() if opts.gpus else 0
    learner_on_cpu = bool(opts.gpus) and gpus_found < opts.gpus
    if opts.gpus and not learner_on_cpu:
        check_gpu_image(opts.image, labels, gpus_found)
    job = prepare(settings, opts, resume, resume_overrides, learner_on_cpu)
    if opts.gpus and learner_on_cpu and resume is None:
        say(f"note: this host has {gpus_found} NVIDIA GPU(s); the learner container runs on CPU, "
            "placed by the learner_node resource as on Slurm")
    gpu_devices = not learner_on_cpu and job.cluster.roles.get("learner") is not None \
        and bool(job.cluster.roles["learner"].gpus)
    cluster = LocalCluster(client, job, opts, gpu_devices, say)
    roles = job.cluster.roles
    say(f"local cluster {cluster.prefix}: head + {job.cluster.expected('rollout')} rollout"
        + (f" + learner ({roles['learner'].gpus:g} GPU)" if job.cluster.has_learner else "")
        + f" container(s) from {opts.image}; results in {job.path}")

    interrupted = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: interrupted.set())
    started = time.monotonic()
    try:
        cluster.start()
        return watch(cluster, job, say, interrupted, started)
    except KeyboardInterrupt:
        say("stopped at once; removing the containers")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        cluster.close()


def watch(cluster: LocalCluster, job: JobDir, say, interrupted: threading.Event,
          started: float) -> int:
    """Print the nodes' lines until the head exits; return its status, with a clear
    message when it died instead of finishing."""
    from launcher.cluster.node import DONE_FILE, read_json

    head = cluster.head()
    stopping_since: float | None = None
    last_check = 0.0
    while True:
        try:
            drain(cluster, say, 0.2)
            now = time.monotonic()
            if interrupted.is_set() and stopping_since is None:
                raise KeyboardInterrupt
            if stopping_since is not None and now - stopping_since > STOP_GRACE_S:
                say(f"the head did not stop within {STOP_GRACE_S} s; removing the containers")
                return 130
            if now - last_check < 1.0:
                continue
            last_check = now
            state, code, oom = cluster.status(head)
            if state in ("running", "created", "restarting"):
                continue
            drain(cluster, say, 0.5)
            done = read_json(job.state_dir / DONE_FILE)
            if state == "exited" and done is not None and code == done.get("status"):
                return finished(code, job, say, time.monotonic() - started)
            why = "ran out of memory (raise --memory)" if oom else (
                "was killed" if code in (137, 143) else f"exited with status {code}"
                if state == "exited" else "disappeared")
            say(f"error: the head container {head.name} {why} before training finished; "
                f"continue from the last checkpoint with: launcher local --resume {job.path}")
            return code if code not in (None, 0) else 1
        except KeyboardInterrupt:
            if stopping_since is not None:
                raise
            stopping_since = time.monotonic()
            interrupted.clear()
            say("stopping: the head saves a checkpoint first (Ctrl-C again to stop at once)")
            cluster.signal_head("SIGTERM")


def drain(cluster: LocalCluster, say, wait_s: float) -> None:
    """Print queued lines: the head's as they are, the others' with their role."""
    try:
        role, line = cluster.lines.get(timeout=wait_s)
    except queue.Empty:
        return
    while True:
        if not noise(line):
            say(line if role == "head" else f"  {role}| {line}")
        try:
            role, line = cluster.lines.get_nowait()
        except queue.Empty:
            return


def noise(line: str) -> bool:
    """Ray's known harmless startup chatter."""
    return ("has constructor arguments in the object store and max_restarts" in line
            or line.startswith(("WARNING: All log messages before absl", "I0000 ")))


def finished(code: int, job: JobDir, say, wall_s: float) -> int:
    from launcher.training.loop import EXIT_INTERRUPTED

    if code == EXIT_INTERRUPTED:
        say(f"stopped after a checkpoint; continue with: launcher local --resume {job.path}")
    elif code == 0:
        say(f"local cluster run finished in {wall_s:.1f} s; results in {job.path}")
    else:
        say(f"error: training failed (head exit {code}); see the lines above and {job.path}")
    return code

