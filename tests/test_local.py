"""launcher/local.py without containers: bad input fails with one line before anything
starts. The containers themselves: tests/test_local_docker.py."""

from __future__ import annotations

import pytest

from launcher.cluster import local
from launcher.errors import UserError
from tests.conftest import run_launcher


@pytest.mark.parametrize("kw, message", [
    ({"nodes": -1}, "--nodes"),
    ({"gpus": -1}, "--gpus"),
    ({"gpus": 0.5}, "--gpus"),
    ({"cpus_per_node": 0}, "--cpus-per-node"),
    ({"memory": "lots"}, "--memory"),
    ({"shm_size": "1 g"}, "--shm-size"),
    ({"prefix": "a b"}, "--prefix"),
    ({"prefix": "x;rm -rf /"}, "--prefix"),
])
def test_bad_options(kw, message):
    with pytest.raises(UserError, match=message):
        local.check_options(local.LocalOptions(**kw))


def test_sizes():
    for ok in ("512m", "2g", "1G", "1048576", "1.5g"):
        local.check_size(ok, "--memory")


def test_noise_filter():
    assert local.noise("I0000 00:00:1795598207.593266 7336 port.cc:153] oneDNN")
    assert not local.noise("iter    1  env steps     2,006  mean return     21.5")


@pytest.mark.parametrize("args, message", [
    (["--nodes", "-1"], "--nodes must be 0 or more"),
    (["--env", "NoSuchEnv-v0", "--docker-free"], "No such option"),
    (["--memory", "lots"], "--memory expects a size"),
])
def test_cli_fails_before_containers(args, message, tmp_path):
    proc = run_launcher("local", "--output", str(tmp_path), *args,
                        env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert proc.returncode == 2
    assert message in proc.stderr
    assert not any(tmp_path.iterdir())


def test_cli_resume_needs_a_cluster_run_dir_and_a_checkpoint(tmp_path):
    """Checked before the Docker engine is asked for anything (none answers here)."""
    no_engine = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    proc = run_launcher("local", "--resume", str(tmp_path), env=no_engine)
    assert proc.returncode == 2
    assert "no cluster.yaml" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    (tmp_path / "cluster.yaml").write_text("{}\n")
    proc = run_launcher("local", "--resume", str(tmp_path), env=no_engine)
    assert proc.returncode == 2
    assert "no checkpoint in" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_gpu_host_with_a_cpu_torch_image_is_refused():
    with pytest.raises(UserError) as err:
        local.check_gpu_image("launcher:cpu", {local.TORCH_LABEL: "cpu"}, 2)
    message = str(err.value)
    assert "2 NVIDIA GPU(s)" in message and "launcher:cpu" in message
    assert "make image-gpu" in message and "--image launcher:gpu" in message
    local.check_gpu_image("launcher:gpu", {local.TORCH_LABEL: "cuda"}, 2)
    local.check_gpu_image("someone/else:latest", {}, 2)  # no label: trusted


def test_both_dockerfiles_say_which_torch_they_carry():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    assert f'{local.TORCH_LABEL}="cpu"' in (root / "Dockerfile").read_text()
    assert f'{local.TORCH_LABEL}="cuda"' in (root / "Dockerfile.gpu").read_text()
