"""The CPU image for real: built from scratch when absent (local Debian base, as in CI where no
registry answers), then run: a short training with results owned by the host directory's
owner, the user switching of the entry point, and the Apptainer definitions' %test commands.

Marked slow + docker. A fresh machine needs debootstrap and root for `make base-image`
(`.ci/run` installs it); a machine that already has the images only rebuilds what changed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPO, progress_rows, require
from tests.slurm_cluster import docker_cli, image_id
from tests.test_images_static import def_sections

pytestmark = [pytest.mark.slow, pytest.mark.docker]

DOCKER = docker_cli()
IMAGE = "launcher:cpu"
BASE = "launcher-base:bookworm"
HOST_UID, HOST_GID = 4242, 4343  # a "host user" who is not root and has no entry in the image


def docker(*args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} -> {result.returncode}\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


def make(target: str, log: Path, timeout: float) -> None:
    env = {**os.environ, "DOCKER": DOCKER}
    with log.open("w") as fh:
        result = subprocess.run(["make", "--no-print-directory", target], cwd=REPO, env=env,
                                stdout=fh, stderr=subprocess.STDOUT, timeout=timeout)
    if result.returncode != 0:
        tail = "".join(log.read_text().splitlines(True)[-60:])
        pytest.fail(f"make {target} failed ({result.returncode}); last lines of {log}:\n{tail}")


@pytest.fixture(scope="session")
def cpu_image(tmp_path_factory) -> str:
    """launcher:cpu as `make image` builds it now (a no-op or seconds when nothing changed)."""
    require(shutil.which(DOCKER) is not None, f"no docker client ({DOCKER})")
    require(docker("info", check=False, timeout=60).returncode == 0, "no Docker engine answers")
    logs = tmp_path_factory.mktemp("image-build")
    if image_id(BASE) is None and image_id("python:3.11-slim") is None:
        require(shutil.which("debootstrap") is not None and os.geteuid() == 0,
                "make base-image needs debootstrap and root (apt-get install debootstrap)")
        make("base-image", logs / "base-image.log", timeout=900)
    make("image", logs / "image.log", timeout=3000)
    assert image_id(IMAGE)
    return IMAGE


def run(image: str, *args: str, opts: tuple[str, ...] = (), timeout: float = 300,
        check: bool = True) -> subprocess.CompletedProcess:
    name = f"lt-img-{uuid.uuid4().hex[:8]}"
    return docker("run", "--rm", "--name", name, *opts, image, *args, timeout=timeout, check=check)


def test_image_metadata(cpu_image):
    info = json.loads(docker("image", "inspect", cpu_image).stdout)[0]
    config = info["Config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["PYTHONNOUSERSITE"] == "1"
    assert env["RAY_TMPDIR"] == "/tmp"
    assert config["Entrypoint"][:2] == ["tini", "--"]
    labels = config["Labels"]
    version = subprocess.run(["sed", "-n", 's/^version *= *"\\(.*\\)"/\\1/p', "pyproject.toml"], cwd=REPO,
                             capture_output=True, text=True).stdout.split()[0]
    assert labels["org.opencontainers.image.version"] == version
    for key in ("revision", "created"):
        assert labels[f"org.opencontainers.image.{key}"] not in ("", "unknown"), key
    assert labels["org.opencontainers.image.source"]  # the git remote; "unknown" without one
    # the CA bundle given to the build as a secret is nowhere in the image
    assert run(cpu_image, "sh", "-c", "ls /run/secrets 2>/dev/null | wc -l").stdout.strip() == "0"


def test_launcher_code_sits_in_small_top_layers(cpu_image):
    """A change to the launcher's own code must rebuild only small layers: every layer from
    `COPY launcher` up is small, and the big ones (dependencies, torch) lie below it."""
    out = docker("history", "--no-trunc", "--human=false", "--format", "{{.Size}}\t{{.CreatedBy}}",
                 cpu_image).stdout
    history = []  # newest layer first
    for line in out.splitlines():
        size, _, created_by = line.partition("\t")
        history.append({"bytes": int(size), "by": created_by})
    top = next(i for i, layer in enumerate(history) if "COPY launcher " in layer["by"])
    assert all(layer["bytes"] < 5e6 for layer in history[:top + 1]), history[:top + 1]
    assert sum(layer["bytes"] for layer in history[top + 1:]) > 1e9


def test_launcher_on_path_for_any_user_and_home_writable(cpu_image):
    # default: the unprivileged `launcher` user
    assert run(cpu_image, "id", "-u").stdout.strip() == "1000"
    # `docker run --user` with a uid the image does not know: launcher runs, HOME is writable
    out = run(cpu_image, "sh", "-c", 'launcher --version && touch "$HOME/x" && echo "$HOME"',
              opts=("--user", f"{HOST_UID}:{HOST_GID}")).stdout
    assert "launcher " in out and f"/tmp/home-{HOST_UID}" in out
    # root on request (Slurm node images set LAUNCHER_USER=root)
    assert run(cpu_image, "id", "-u", opts=("-e", "LAUNCHER_USER=root")).stdout.strip() == "0"
    assert run(cpu_image, "launcher", "--version", opts=("-e", "LAUNCHER_USER=root")).returncode == 0


def test_short_training_in_image_leaves_results_owned_by_host_user(cpu_image, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    os.chown(results, HOST_UID, HOST_GID)
    proc = run(cpu_image, "launcher", "train", "--env", "CartPole-v1", "--output", "/results",
               "--stop-iters", "2",
               opts=("--shm-size=2g", "-v", f"{results}:/results"), timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = [p for p in results.iterdir() if p.is_dir()]
    assert len(runs) == 1, (runs, proc.stdout)
    assert len(progress_rows(runs[0])) == 2
    not_owned = [str(p) for p in results.rglob("*")
                 if (p.lstat().st_uid, p.lstat().st_gid) != (HOST_UID, HOST_GID)]
    assert not not_owned, f"not owned by {HOST_UID}:{HOST_GID}: {not_owned[:10]}"


def test_root_owned_results_mount_keeps_root(cpu_image, tmp_path):
    """A root-owned mount (the host user is root, or Docker created the directory) stays root:
    the unprivileged default user could not write there."""
    results = tmp_path / "results"
    results.mkdir()
    out = run(cpu_image, "sh", "-c", "id -u && touch /results/ok", opts=("-v", f"{results}:/results"))
    assert out.stdout.strip() == "0"
    assert (results / "ok").stat().st_uid == 0


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_apptainer_test_section_passes_in_docker_image(cpu_image, variant):
    """The definition's own steps in the Docker image it bootstraps from, in Apptainer's
    order: %post as root (the build), then %environment and %test as the invoking
    (non-root, unknown) user. The real `apptainer build` runs in tests/test_apptainer_e2e.py."""
    header, sections = def_sections((REPO / "apptainer" / f"{variant}.def").read_text())
    image = header["From"]
    if image != cpu_image and not image_id(image):
        pytest.skip(f"{image} is not built here (make image-gpu: several GB, not done in CI)")
    built, tag = f"lt-img-post-{uuid.uuid4().hex[:8]}", f"lt-img-post:{uuid.uuid4().hex[:8]}"
    try:
        docker("run", "--name", built, "--user", "0", "--entrypoint", "", image,
               "sh", "-c", "set -e\n" + sections["post"] + "\n")
        docker("commit", built, tag)
        script = "set -e\n" + sections["environment"] + "\n" + sections["test"] + "\n"
        proc = run(tag, "sh", "-c", script, opts=("--user", f"{HOST_UID}:{HOST_GID}", "--entrypoint", ""),
                   check=False)
    finally:
        docker("rm", "-f", built, check=False)
        docker("rmi", "-f", tag, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "launcher " in proc.stdout and "torch" in proc.stdout


def test_gpu_image_torch_step_resolves_against_the_pins(tmp_path):
    """Dockerfile.gpu is not built here (several GB): check at least that its pip step,
    CUDA torch from PyPI constrained by the pinned lists, resolves (metadata only)."""
    match = re.search(r"^ARG TORCH_VERSION=(\S+)$", (REPO / "Dockerfile.gpu").read_text(), re.M)
    assert match
    report = tmp_path / "report.json"
    cert = os.environ.get("PIP_CERT")
    # --isolated: no find-links / extra indexes / constraints from this machine's pip config,
    # which could offer the CPU wheel; PyPI only, as in the image build.
    cmd = [sys.executable, "-m", "pip", "--isolated", "install", "--dry-run", "--ignore-installed",
           "--quiet", "-c", str(REPO / "images" / "requirements.txt"), f"torch=={match.group(1)}",
           "--report", str(report), *(["--cert", cert] if cert else [])]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    resolver_said_no = any(s in result.stderr for s in ("ResolutionImpossible", "Could not find a version"))
    require(result.returncode == 0 or resolver_said_no, f"PyPI not reachable: {result.stderr[-500:]}")
    assert result.returncode == 0, result.stderr
    names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert "torch" in names and any(n.startswith("nvidia-") for n in names), sorted(names)


def test_apptainer_like_run_trains_read_only_as_the_calling_user(cpu_image, tmp_path):
    """What Apptainer does with the image, in Docker: a read-only root file system, the
    caller's uid (unknown to the image), no entry point, the definition's %environment and
    %runscript, the host's home and a scratch /tmp bound in, results in a bound directory."""
    _, sections = def_sections((REPO / "apptainer" / "cpu.def").read_text())
    home, scratch, results = tmp_path / "home", tmp_path / "scratch", tmp_path / "results"
    for path in (home, scratch, results):
        path.mkdir()
        os.chown(path, HOST_UID, HOST_GID)
    script = sections["environment"] + "\n" + sections["runscript"] + "\n"
    proc = run(cpu_image, "sh", "-c", script, "runscript",
               "train", "--env", "CartPole-v1", "--output", "/results", "--stop-iters", "1",
               opts=("--read-only", "--user", f"{HOST_UID}:{HOST_GID}", "--entrypoint", "",
                     "--shm-size=2g", "-e", "HOME=/home/user", "-v", f"{home}:/home/user",
                     "-v", f"{scratch}:/tmp", "-v", f"{results}:/results", "-w", "/home/user"),
               timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert list(results.glob("*/progress.csv")), proc.stdout
    assert {p.lstat().st_uid for p in results.rglob("*")} == {HOST_UID}
