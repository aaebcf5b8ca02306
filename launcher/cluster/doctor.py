"""`launcher doctor`: what this machine offers for each way of running, and what to do
about each missing piece.

Each check says which modes need it:

    train      `launcher train` here: Ray importable, enough shared memory (/dev/shm)
    local      `launcher local`: Docker engine reachable, the image present, the image's Ray
               equal to this launcher's
    slurm      `launcher submit`: sbatch on PATH
    apptainer  Slurm jobs with --runtime apptainer: apptainer (or singularity) on PATH
    gpu        a GPU learner: NVIDIA GPUs visible (nvidia-smi, torch)

Exit status: 1 when a check needed by an asked-for mode (`--for`, repeatable) failed,
else 0. Without --for, every check runs and only `train`'s needs decide. Checks no
asked-for mode needs are still shown, as information.

The engine, image and GPU checks are the ones `launcher local` runs before it starts
(launcher/cluster/docker_engine.py, launcher/cluster/gpus.py); here their one-line
errors become rows of the table.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass

from launcher.cluster import docker_engine
from launcher.cluster.gpus import nvidia_gpus
from launcher.errors import first_line

MODES = ("train", "local", "slurm", "apptainer", "gpu")
MIN_SHM_BYTES = 512 * 1024**2


@dataclass
class Result:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    needed_for: tuple[str, ...] = ()


def launcher_ray_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("ray")
    except metadata.PackageNotFoundError:
        return None


def check_ray() -> Result:
    version = launcher_ray_version()
    if version is None:
        return Result("ray", False, "not installed with the launcher",
                      "reinstall: pip install -e . (or `make venv`)", ("train",))
    return Result("ray", True, f"ray {version}", needed_for=("train",))


def check_shm(path: str = "/dev/shm") -> Result:
    try:
        stat = os.statvfs(path)
    except OSError:
        return Result("shared memory", False, f"{path} missing",
                      "Ray falls back to /tmp for its object store (slow); mount a tmpfs on /dev/shm",
                      ("train",))
    size = stat.f_blocks * stat.f_frsize
    gib = size / 1024**3
    if size < MIN_SHM_BYTES:
        return Result("shared memory", False, f"{path} is {gib:.2f} GiB",
                      "in a container: docker run --shm-size=2g (Ray's object store lives there)",
                      ("train",))
    return Result("shared memory", True, f"{path} is {gib:.1f} GiB", needed_for=("train",))


def check_docker() -> tuple[Result, object | None]:
    try:
        client = docker_engine.docker_client(timeout=30)
        version = client.version().get("Version", "?")
    except docker_engine.EngineUnreachable as exc:
        return Result("docker engine", False, exc.what, exc.fix, ("local",)), None
    return Result("docker engine", True, f"reachable (engine {version})", needed_for=("local",)), client


def check_image(client, image: str) -> Result:
    name = f"image {image}"
    if client is None:
        return Result(name, False, "cannot tell: no Docker engine", "start the Docker engine first",
                      ("local",))
    try:
        found = docker_engine.check_image(client, image)
    except docker_engine.ImageUnusable as exc:
        return Result(name, False, exc.what, exc.fix, ("local",))
    torch = f", torch {found.torch}" if found.torch else ""
    return Result(name, True, f"present ({found.short_id}, {found.size_bytes / 1024**3:.1f} GB{torch})",
                  needed_for=("local",))


def image_ray_version(client, image: str) -> str | None:
    output = client.containers.run(
        image, ["python", "-c", "from importlib.metadata import version; print(version('ray'))"],
        remove=True, environment={"LAUNCHER_USER": "root"}, network_disabled=True)
    return output.decode().strip().splitlines()[-1] if output else None


def check_image_ray(client, image: str, image_ok: bool) -> Result:
    name = "Ray in the image"
    if not image_ok:
        return Result(name, False, "cannot tell: no image", "build the image first", ("local",))
    mine = launcher_ray_version()
    try:
        theirs = image_ray_version(client, image)
    except Exception as exc:
        return Result(name, False, f"cannot run the image ({first_line(exc)})",
                      "rebuild it: make image", ("local",))
    if theirs != mine:
        return Result(name, False, f"image has ray {theirs}, this launcher ray {mine}",
                      "rebuild the image from this checkout: make image", ("local",))
    return Result(name, True, f"ray {theirs}, same as this launcher", needed_for=("local",))


def check_program(name: str, mode: str, fix: str, alternatives: tuple[str, ...] = ()) -> Result:
    for program in (name, *alternatives):
        path = shutil.which(program)
        if path:
            return Result(name, True, f"{path}", needed_for=(mode,))
    return Result(name, False, "not on PATH", fix, (mode,))


def check_gpus() -> Result:
    smi = nvidia_gpus()
    found = ["nvidia-smi: not on PATH" if smi is None else f"nvidia-smi: {smi}"]
    try:
        import torch

        cuda = torch.cuda.device_count()
        found.append(f"torch: {cuda} ({'CUDA ' + torch.version.cuda if torch.version.cuda else 'CPU build'})")
    except ImportError:
        cuda = 0
        found.append("torch: not installed")
    ok = max(smi or 0, cuda) > 0
    return Result("GPUs", ok, "; ".join(found),
                  "" if ok else "run on a GPU node (Slurm: --gpus N places the learner there); "
                  "`launcher local --gpus N` falls back to a CPU learner", ("gpu",))


def run_checks(image: str, say: Callable[[str], None] | None = None) -> list[Result]:
    results: list[Result] = []

    def add(result: Result) -> Result:
        results.append(result)
        if say:
            say(format_result(result))
        return result

    add(check_ray())
    add(check_shm())
    docker_result, client = check_docker()
    add(docker_result)
    image_result = add(check_image(client, image))
    add(check_image_ray(client, image, image_result.ok))
    add(check_program("sbatch", "slurm", "install the Slurm client, or run on the cluster's login node "
                      "(`module load slurm` on some sites)"))
    add(check_program("apptainer", "apptainer", "install Apptainer (sites: `module load apptainer`), "
                      "or submit with --runtime none", ("singularity",)))
    add(check_gpus())
    return results


def format_result(result: Result) -> str:
    mark = "ok  " if result.ok else "MISS"
    needs = f" [{', '.join(result.needed_for)}]" if result.needed_for else ""
    line = f"{mark} {result.name}: {result.detail}{needs}"
    if not result.ok and result.fix:
        line += f"\n     -> {result.fix}"
    return line


def ready_modes(results: list[Result]) -> dict[str, list[str]]:
    """mode -> names of its failed checks (empty: ready)."""
    return {mode: [r.name for r in results if mode in r.needed_for and not r.ok] for mode in MODES}


def exit_status(results: list[Result], modes: list[str]) -> int:
    missing = ready_modes(results)
    return 1 if any(missing[mode] for mode in (modes or ["train"])) else 0
