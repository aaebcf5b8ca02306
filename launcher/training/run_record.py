"""The run record: how a run was made, in one file of its run directory (run.json).

    seed          the seed it trained with (chosen and printed when none was given)
    command       the command line that started it
    versions      launcher, Ray, torch, Gymnasium, Python (TensorFlow for tf2 runs)
    image         the container image's name and digest, when it ran in one: the
                  runtime passes them as LAUNCHER_IMAGE / LAUNCHER_IMAGE_DIGEST
    hosts         the machines of the Ray cluster it trained on
    env_source    for a `file.py:Class` env: the file, and the git commit of its directory
                  (and whether the working tree had changes) when that is a git repository
    started       when (UTC, ISO 8601)

A cluster job's record is begun where the job is prepared (`begin_record`: the user's
command line, the seed, the env's source before its code is copied into the run dir);
the head completes it (`complete_record`) with what only it knows. A resume appends
one entry to `resumed` instead of rewriting how the run was made.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from launcher.contract import RunPaths
from launcher.files import write_atomic

IMAGE_VARIABLE = "LAUNCHER_IMAGE"
IMAGE_DIGEST_VARIABLE = "LAUNCHER_IMAGE_DIGEST"
PACKAGES = {"launcher": "launcher", "ray": "ray", "torch": "torch", "gymnasium": "gymnasium"}
GIT_TIMEOUT_S = 10


def record_path(run_dir: str | Path) -> Path:
    return RunPaths(run_dir).run_record


def read_record(run_dir: str | Path) -> dict[str, Any]:
    """The run's record; {} when it has none (runs made before records) or it is unreadable."""
    try:
        data = json.loads(record_path(run_dir).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def choose_seed(settings, say=print) -> int:
    """The settings' seed; one chosen at random (and said) when none was given."""
    if settings.seed is None:
        settings.seed = random.SystemRandom().randrange(2**31)
        say(f"seed {settings.seed} (chosen; --seed {settings.seed} repeats it)")
    return settings.seed


def versions(framework: str = "torch") -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    packages = dict(PACKAGES, **({"tensorflow": "tensorflow-cpu"} if framework == "tf2" else {}))
    for name, dist in packages.items():
        try:
            found[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[name] = None
    found["python"] = sys.version.split()[0]
    return found


def image(environ=None) -> dict[str, str] | None:
    """The container image this process runs in, as the runtime passed it; None outside one."""
    environ = os.environ if environ is None else environ
    name, digest = environ.get(IMAGE_VARIABLE), environ.get(IMAGE_DIGEST_VARIABLE)
    if not name and not digest:
        return None
    return {"name": name or "", "digest": digest or ""}


def _git(directory: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def env_source(env: str) -> dict[str, Any] | None:
    """For `path/file.py:Class`: the file, and its directory's git commit when it is a repo."""
    target = env.rpartition(":")[0]
    if not (target.endswith(".py") or "/" in target):
        return None
    path = Path(target).expanduser().resolve()
    source: dict[str, Any] = {"file": str(path)}
    commit = _git(path.parent, "rev-parse", "HEAD") if path.parent.is_dir() else None
    if commit:
        status = _git(path.parent, "status", "--porcelain", "--untracked-files=no", "--", ".")
        source.update(git_commit=commit, git_dirty=bool(status))
    return source


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def begin_record(run_dir: str | Path, settings, argv: list[str] | None = None) -> dict[str, Any]:
    """What the machine that starts a run knows: command line, seed, env source, when."""
    argv = sys.argv if argv is None else argv
    record = {
        "seed": settings.seed,
        "command": shlex.join(["launcher", *argv[1:]]),
        "env": settings.env,
        "env_source": env_source(settings.env),
        "started": now(),
    }
    write_atomic(record_path(run_dir), json.dumps(record, indent=2) + "\n")
    return record


def cluster_hosts() -> list[str]:
    """The host names of the live nodes of the Ray cluster this process is connected to."""
    try:
        import ray

        return sorted({n.get("NodeManagerHostname") or n.get("NodeManagerAddress", "")
                       for n in ray.nodes() if n.get("Alive")} - {""})
    except Exception:  # not connected, or an older Ray: this machine only
        return [socket.gethostname()]


def complete_record(run_dir: str | Path, settings, resumed: bool) -> dict[str, Any]:
    """What the trainer knows: versions, image, hosts; a first start fills in the record
    (begun by `begin_record` for a cluster job), a resume appends to `resumed`."""
    record = read_record(run_dir)
    here = {"versions": versions(settings.framework), "image": image(), "hosts": cluster_hosts(),
            "host": socket.gethostname()}
    if resumed and record:
        record.setdefault("resumed", []).append(
            {"at": now(), "command": shlex.join(["launcher", *sys.argv[1:]]), **here})
    else:
        if "command" not in record:
            record = {**begin_record(run_dir, settings), **record}
        record.update(here, seed=settings.seed)
    write_atomic(record_path(run_dir), json.dumps(record, indent=2) + "\n")
    return record
