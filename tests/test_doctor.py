"""launcher/cluster/doctor.py: each check, and the rule for the exit status. The engine,
image and GPU checks are `launcher local`'s (tests/test_local.py), shown as Results."""

from __future__ import annotations

import os

from launcher.cluster import doctor
from launcher.cluster.doctor import Result
from tests.conftest import run_launcher
from tests.test_local import fake_client, fake_nvidia_smi


def results(**failing):
    """One passing check per mode, except the modes named as failing."""
    return [Result(f"{mode} check", not failing.get(mode), "x", "fix it", (mode,))
            for mode in doctor.MODES]


def test_exit_status_counts_only_the_asked_for_modes():
    assert doctor.exit_status(results(), []) == 0
    assert doctor.exit_status(results(apptainer=True, gpu=True), []) == 0  # train is fine
    assert doctor.exit_status(results(train=True), []) == 1
    assert doctor.exit_status(results(slurm=True), ["local"]) == 0
    assert doctor.exit_status(results(slurm=True), ["local", "slurm"]) == 1
    assert doctor.ready_modes(results(gpu=True))["gpu"] == ["gpu check"]


def test_a_missing_program_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    result = doctor.check_program("apptainer", "apptainer", "install it", ("singularity",))
    assert not result.ok and result.needed_for == ("apptainer",)
    assert "-> install it" in doctor.format_result(result)
    fake = tmp_path / "singularity"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert doctor.check_program("apptainer", "apptainer", "install it", ("singularity",)).ok


def test_shared_memory(tmp_path):
    assert doctor.check_shm(str(tmp_path / "missing")).ok is False
    result = doctor.check_shm(str(tmp_path))
    assert result.name == "shared memory" and "GiB" in result.detail


def test_no_docker_engine_is_reported_not_raised(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result, client = doctor.check_docker()
    assert not result.ok and client is None and "DOCKER_HOST" in result.fix
    assert result.detail == "no Docker engine at unix:///nonexistent/docker.sock (no such socket)"
    assert not doctor.check_image(None, "launcher:cpu").ok


def test_image_check_is_local_s_as_a_result():
    missing = doctor.check_image(fake_client("launcher:cpu", {}), "launcher:gpu")
    assert (missing.ok, missing.detail) == (False, "image launcher:gpu not found")
    assert "make image" in missing.fix and missing.needed_for == ("local",)
    found = doctor.check_image(fake_client("launcher:cpu", {"launcher.torch": "cpu"}), "launcher:cpu")
    assert found.ok and found.detail == "present (sha256:abc, 2.0 GB, torch cpu)"


def test_gpu_check_counts_what_nvidia_smi_lists(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert "nvidia-smi: not on PATH" in doctor.check_gpus().detail
    fake_nvidia_smi(tmp_path / "bin", "echo 'GPU 0: NVIDIA H100 (UUID: GPU-a)'")
    result = doctor.check_gpus()
    assert result.ok and "nvidia-smi: 1" in result.detail


def test_cli_refuses_an_unknown_mode():
    proc = run_launcher("doctor", "--for", "bogus")
    assert proc.returncode == 2
    line, = proc.stderr.strip().splitlines()
    assert line.startswith("error: unknown mode 'bogus' for --for; valid: train, local, slurm, "
                           "apptainer, gpu"), line


def test_cli_without_docker_fails_only_for_local():
    env = {"DOCKER_HOST": "unix:///nonexistent/docker.sock", "PATH": os.environ["PATH"]}
    proc = run_launcher("doctor", env=env)
    assert "MISS docker engine" in proc.stdout and "not ready for local" in proc.stdout
    assert proc.returncode == 0
    assert run_launcher("doctor", "--for", "local", env=env).returncode == 1
