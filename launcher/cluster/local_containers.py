"""The containers of one `launcher local` run: started on a private network, their
output followed, the head watched until it exits, and everything removed at the end.

launcher/cluster/local.py checks the options, the machine and the settings and prepares
the run directory; this module only runs what it was given. Each container runs the
trainer image's `launcher node --run-dir DIR --role ROLE`, as a Slurm job's nodes do;
the run directory is bind-mounted at the same path as on the host.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from launcher.cluster.jobdir import JobDir
from launcher.cluster.rendezvous import read_json
from launcher.contract import EXIT_INTERRUPTED, HEAD, LEARNER, ROLLOUT, RunPaths
from launcher.training.run_record import IMAGE_DIGEST_VARIABLE, IMAGE_VARIABLE

if TYPE_CHECKING:
    from launcher.cluster.local import LocalOptions

LABEL = "launcher.local"
STOP_GRACE_S = 90  # Ctrl-C: how long the head may take to checkpoint before it is killed
EXIT_STOPPED_AT_ONCE = 130  # a second Ctrl-C, or a head that did not stop in time
IMAGE_PACKAGE = "/opt/venv/lib/python3.11/site-packages/launcher"  # where the image installs it
RUNNING_STATES = ("running", "created", "restarting")


# --- the containers --------------------------------------------------------------------
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
        roles = [(HEAD, HEAD)]
        roles += [(ROLLOUT, f"{ROLLOUT}-{i + 1}") for i in range(self.job.cluster.expected(ROLLOUT))]
        if self.job.cluster.has_learner:
            roles.append((LEARNER, LEARNER))
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
        if member.role == LEARNER and self.gpu_devices and spec.gpus:
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
                         # for the run record (training/run_record.py)
                         IMAGE_VARIABLE: self.opts.image,
                         IMAGE_DIGEST_VARIABLE: self.client.images.get(self.opts.image).id,
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


def run_cluster(cluster: LocalCluster, say) -> int:
    """Start the containers, watch them until the head exits and remove them: also on
    Ctrl-C, SIGTERM and failure."""
    interrupted = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: interrupted.set())
    started = time.monotonic()
    try:
        cluster.start()
        return HeadWatch(cluster, say, interrupted, started).run()
    except KeyboardInterrupt:
        say("stopped at once; removing the containers")
        return EXIT_STOPPED_AT_ONCE
    finally:
        signal.signal(signal.SIGTERM, previous)
        cluster.close()


# --- watching the head -------------------------------------------------------------------
class HeadWatch:
    """Prints the nodes' lines until the head exits and returns its status, with a clear
    message when it died instead of finishing. The first Ctrl-C (or SIGTERM) asks the
    head to checkpoint and stop; a second one, or a head that takes longer than
    STOP_GRACE_S, stops everything at once."""

    def __init__(self, cluster: LocalCluster, say, interrupted: threading.Event, started: float):
        self.cluster = cluster
        self.job = cluster.job
        self.say = say
        self.interrupted = interrupted
        self.started = started
        self.stopping_since: float | None = None
        self.last_check = 0.0

    def run(self) -> int:
        while True:
            try:
                status = self.step()
            except KeyboardInterrupt:
                if self.stopping_since is not None:
                    raise
                self.ask_head_to_stop()
                continue
            if status is not None:
                return status

    def step(self) -> int | None:
        """Print what arrived; the exit status once the head has ended, else None."""
        drain(self.cluster, self.say, 0.2)
        if self.interrupted.is_set() and self.stopping_since is None:
            raise KeyboardInterrupt
        if self.stop_overdue():
            self.say(f"the head did not stop within {STOP_GRACE_S} s; removing the containers")
            return EXIT_STOPPED_AT_ONCE
        if not self.check_due():
            return None
        state, code, oom = self.cluster.status(self.cluster.head())
        if state in RUNNING_STATES:
            return None
        drain(self.cluster, self.say, 0.5)
        return self.head_ended(state, code, oom)

    def stop_overdue(self) -> bool:
        return (self.stopping_since is not None
                and time.monotonic() - self.stopping_since > STOP_GRACE_S)

    def check_due(self) -> bool:
        """The container's state is asked for once a second."""
        now = time.monotonic()
        if now - self.last_check < 1.0:
            return False
        self.last_check = now
        return True

    def ask_head_to_stop(self) -> None:
        self.stopping_since = time.monotonic()
        self.interrupted.clear()
        self.say("stopping: the head saves a checkpoint first (Ctrl-C again to stop at once)")
        self.cluster.signal_head("SIGTERM")

    def head_ended(self, state: str, code: int | None, oom: bool) -> int:
        """The head's status: as it reported it in done.json, or that it died."""
        done = read_json(RunPaths(self.job.path).done)
        if state == "exited" and done is not None and code == done.get("status"):
            return finished(code, self.job, self.say, time.monotonic() - self.started)
        self.say(f"error: the head container {self.cluster.head().name} "
                 f"{death(state, code, oom)} before training finished; continue from the "
                 f"last checkpoint with: launcher local --resume {self.job.path}")
        return code if code not in (None, 0) else 1


def death(state: str, code: int | None, oom: bool) -> str:
    """How a head container that did not finish ended."""
    if oom:
        return "ran out of memory (raise --memory)"
    if code in (137, 143):
        return "was killed"
    return f"exited with status {code}" if state == "exited" else "disappeared"


def drain(cluster: LocalCluster, say, wait_s: float) -> None:
    """Print queued lines: the head's as they are, the others' with their role."""
    try:
        role, line = cluster.lines.get(timeout=wait_s)
    except queue.Empty:
        return
    while True:
        if not noise(line):
            say(line if role == HEAD else f"  {role}| {line}")
        try:
            role, line = cluster.lines.get_nowait()
        except queue.Empty:
            return


def noise(line: str) -> bool:
    """Ray's known harmless startup chatter."""
    return ("has constructor arguments in the object store and max_restarts" in line
            or line.startswith(("WARNING: All log messages before absl", "I0000 ")))


def finished(code: int, job: JobDir, say, wall_s: float) -> int:
    if code == EXIT_INTERRUPTED:
        say(f"stopped after a checkpoint; continue with: launcher local --resume {job.path}")
    elif code == 0:
        say(f"local cluster run finished in {wall_s:.1f} s; results in {job.path}")
    else:
        say(f"error: training failed (head exit {code}); see the lines above and {job.path}")
    return code
