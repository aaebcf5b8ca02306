"""`make image EXTRA_REQUIREMENTS=FILE`: the trainer image plus the packages a user's env needs.

Quick: hadolint on Dockerfile.extra, what the make targets run, build.sh's refusals. Slow
(docker): one real derived image from launcher:cpu with a small pure-Python package that the
host's pip can fetch (the build then runs offline), imported inside; and a requirement that
would change a package of the image fails the build instead of a job.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid

import pytest

from tests.conftest import REPO, require
from tests.test_images_static import tool

EXTRA_PACKAGE, EXTRA_VERSION = "tabulate", "0.10.0"  # pure Python, not in the image


def make_n(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("TAG", "EXTRA_REQUIREMENTS", "SIF_FROM")}
    result = subprocess.run(["make", "-n", "--no-print-directory", *args], cwd=REPO, env=env,
                            capture_output=True, text=True, check=True)
    return result.stdout


def test_dockerfile_extra_passes_hadolint():
    result = subprocess.run([tool("hadolint"), "--no-color", str(REPO / "Dockerfile.extra")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_extra_keeps_the_image_versions_and_installs_nothing_at_run_time():
    text = (REPO / "Dockerfile.extra").read_text()
    assert "pip list --format=freeze > /tmp/image-pins.txt" in text
    assert "-c /tmp/image-pins.txt -r /wheelhouse/requirements.txt" in text
    assert "pip check" in text
    assert "ENTRYPOINT" not in text and "CMD" not in text  # the trainer image's, unchanged


def test_make_image_builds_the_extra_image_after_the_base():
    assert make_n("image").strip() == "images/build.sh cpu"
    steps = make_n("image", "EXTRA_REQUIREMENTS=reqs.txt").strip()
    assert steps == "TAG= images/build.sh cpu && EXTRA_REQUIREMENTS='reqs.txt' images/build.sh extra cpu"
    assert make_n("image-gpu", "EXTRA_REQUIREMENTS=reqs.txt").strip().endswith("images/build.sh extra gpu")


def test_make_sif_from_another_image_goes_through_an_archive():
    assert make_n("sif").strip() == "images/sif.sh cpu"
    steps = make_n("sif", "SIF_FROM=launcher:cpu-extra")
    assert "save 'launcher:cpu-extra' -o build/sif-image.tar" in steps
    assert "SIF='launcher-cpu-extra.sif' images/sif.sh cpu build/sif-image.tar" in steps
    assert "rm -f build/sif-image.tar" in steps


def build_sh(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / "images" / "build.sh"), *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})


def test_build_extra_without_a_requirements_file_says_so(tmp_path):
    result = build_sh("extra", "cpu", EXTRA_REQUIREMENTS=str(tmp_path / "missing.txt"),
                      DOCKER="/bin/false")
    assert result.returncode == 2
    assert "EXTRA_REQUIREMENTS must name a requirements file" in result.stderr


def test_build_extra_without_the_base_image_says_make_image(tmp_path):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("tabulate\n")
    result = build_sh("extra", "gpu", EXTRA_REQUIREMENTS=str(reqs), DOCKER="/bin/false")
    assert result.returncode == 1
    assert "no local image launcher:gpu" in result.stderr and "make image-gpu" in result.stderr


# --- for real ----------------------------------------------------------------------------
@pytest.fixture
def docker_with_cpu_image():
    from tests.slurm_cluster import docker_cli, image_id

    docker = docker_cli()
    require(shutil.which(docker) is not None, f"no docker client ({docker})")
    require(subprocess.run([docker, "info"], capture_output=True, timeout=60).returncode == 0,
            "no Docker engine answers")
    require(image_id("launcher:cpu") is not None, "launcher:cpu missing: make image")
    return docker


def host_pip_has(tmp_path, requirement: str) -> bool:
    result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                             "--dest", str(tmp_path / "probe"), requirement],
                            capture_output=True, timeout=120)
    return result.returncode == 0


@pytest.mark.slow
@pytest.mark.docker
def test_derived_image_has_the_package_and_keeps_the_trainer(docker_with_cpu_image, tmp_path):
    docker = docker_with_cpu_image
    requirement = f"{EXTRA_PACKAGE}=={EXTRA_VERSION}"
    require(host_pip_has(tmp_path, requirement), f"the host's pip cannot fetch {requirement}")
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(requirement + "\n")
    tag = f"launcher:cpu-extra-test-{uuid.uuid4().hex[:6]}"
    try:
        result = build_sh("extra", "cpu", EXTRA_REQUIREMENTS=str(reqs), TAG=tag, DOCKER=docker)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "PIP_OFFLINE=1" in result.stdout  # every wheel came from the host: no network
        check = subprocess.run(
            [docker, "run", "--rm", tag, "python", "-c",
             f"import {EXTRA_PACKAGE}, torch, ray.rllib, launcher; print({EXTRA_PACKAGE}.__version__)"],
            capture_output=True, text=True, timeout=180)
        assert check.returncode == 0 and check.stdout.split()[-1] == EXTRA_VERSION, check.stderr
        labels = subprocess.run([docker, "image", "inspect", "-f",
                                 '{{index .Config.Labels "launcher.torch"}}', tag],
                                capture_output=True, text=True, check=True).stdout.strip()
        assert labels == "cpu"  # the trainer image's labels (launcher local checks them)
    finally:
        subprocess.run([docker, "rmi", "-f", tag], capture_output=True)


@pytest.mark.slow
@pytest.mark.docker
def test_a_requirement_that_changes_the_image_fails_the_build(docker_with_cpu_image, tmp_path):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("torch==2.0.0\n")
    tag = f"launcher:cpu-extra-test-{uuid.uuid4().hex[:6]}"
    try:
        result = build_sh("extra", "cpu", EXTRA_REQUIREMENTS=str(reqs), TAG=tag, PIP_OFFLINE="1",
                          DOCKER=docker_with_cpu_image)
        assert result.returncode != 0
        assert "Cannot install torch==2.0.0" in result.stdout + result.stderr
    finally:
        subprocess.run([docker_with_cpu_image, "rmi", "-f", tag], capture_output=True)
