"""launcher/cluster/local.py and its checks (docker_engine.py, gpus.py) without
containers: bad input, a missing engine or image fail with one line before anything is
written or started. The containers themselves: tests/test_local_docker.py."""

from __future__ import annotations

import pytest

from launcher.cluster import docker_engine, gpus, local, local_containers
from launcher.errors import MissingTool, UserError
from tests.conftest import run_launcher

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


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
    assert local_containers.noise("I0000 00:00:1795598207.593266 7336 port.cc:153] oneDNN")
    assert not local_containers.noise("iter    1  env steps     2,006  mean return     21.5")


@pytest.mark.parametrize("args, message", [
    (["--nodes", "-1"], "--nodes must be 0 or more"),
    (["--env", "NoSuchEnv-v0", "--docker-free"], "No such option"),
    (["--memory", "lots"], "--memory expects a size"),
])
def test_cli_fails_before_containers(args, message, tmp_path):
    proc = run_launcher("local", "--output", str(tmp_path), *args, env=NO_ENGINE)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert not any(tmp_path.iterdir())


def test_cli_resume_needs_a_cluster_run_dir_and_a_checkpoint(tmp_path):
    """Checked before the Docker engine is asked for anything (none answers here)."""
    proc = run_launcher("local", "--resume", str(tmp_path), env=NO_ENGINE)
    assert proc.returncode == 2
    assert "no cluster.yaml" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    (tmp_path / "cluster.yaml").write_text("{}\n")
    (tmp_path / "spec.yaml").write_text("{}\n")
    proc = run_launcher("local", "--resume", str(tmp_path), env=NO_ENGINE)
    assert proc.returncode == 2
    assert "no checkpoint in" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_cli_without_an_engine_says_so_in_one_line_and_writes_nothing(tmp_path):
    """No Docker engine: one line that says how to fix it (not docker-py's exception
    text), exit 4 (the machine lacks something), checked before the run dir is written."""
    runs = tmp_path / "runs"
    proc = run_launcher("local", "--output", str(runs), "--name", "x", "--env", "CartPole-v1",
                        env=NO_ENGINE)
    assert proc.returncode == 4, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "unix:///nonexistent/docker.sock" in lines[0] and "DOCKER_HOST" in lines[0]
    assert "launcher doctor" in lines[0]
    for raw in ("Traceback", "Connection aborted", "FileNotFoundError", "Errno"):
        assert raw not in proc.stderr
    assert not runs.exists()


@pytest.mark.parametrize("host, says", [
    ("unix:///nonexistent/docker.sock", "no such socket"),
    ("tcp://127.0.0.1:1", "connection refused"),
    ("bogus://x", "not a Docker engine address"),
])
def test_docker_client_raises_one_line(monkeypatch, host, says):
    monkeypatch.setenv("DOCKER_HOST", host)
    with pytest.raises(MissingTool) as err:
        docker_engine.docker_client(timeout=5)
    message = str(err.value)
    assert err.value.exit_code == 4 and len(message.splitlines()) == 1
    assert host in message and says in message and "DOCKER_HOST" in err.value.fix
    assert message.startswith(err.value.what) and "Errno" not in message


class FakeImages:
    """client.images of docker-py, holding one image."""

    def __init__(self, name: str, labels: dict):
        self.name, self.labels = name, labels

    def get(self, name: str):
        import docker

        if name != self.name:
            raise docker.errors.ImageNotFound(f"No such image: {name}")
        return type("Image", (), {"short_id": "sha256:abc", "attrs": {"Size": 2 * 1024**3},
                                  "labels": self.labels})()


def fake_client(name: str, labels: dict):
    return type("Client", (), {"images": FakeImages(name, labels)})()


def test_missing_image_says_make_image():
    with pytest.raises(UserError) as err:
        docker_engine.check_image(fake_client("launcher:cpu", {}), "launcher:other")
    assert str(err.value) == "image launcher:other not found: build it with `make image` (or pass --image)"
    facts = docker_engine.check_image(fake_client("launcher:cpu", {"a": "b"}), "launcher:cpu")
    assert facts.labels == {"a": "b"} and facts.torch is None and facts.size_bytes == 2 * 1024**3


def test_gpu_host_with_a_cpu_torch_image_is_refused():
    cpu_label = {docker_engine.TORCH_LABEL: "cpu"}
    with pytest.raises(UserError) as err:
        docker_engine.check_image(fake_client("launcher:cpu", cpu_label), "launcher:cpu", gpus=2)
    message = str(err.value)
    assert "2 NVIDIA GPU(s)" in message and "launcher:cpu" in message
    assert "make image-gpu" in message and "--image launcher:gpu" in message
    assert docker_engine.check_image(fake_client("launcher:cpu", cpu_label), "launcher:cpu").torch == "cpu"
    cuda = fake_client("launcher:gpu", {docker_engine.TORCH_LABEL: "cuda"})
    assert docker_engine.check_image(cuda, "launcher:gpu", gpus=2).torch == "cuda"
    docker_engine.check_image(fake_client("someone/else:latest", {}), "someone/else:latest", gpus=2)


def fake_nvidia_smi(bin_dir, script: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\n{script}\n")
    smi.chmod(0o755)


def test_host_gpus_as_nvidia_smi_lists_them(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert gpus.nvidia_gpus() is None
    fake_nvidia_smi(tmp_path / "bin", "echo 'GPU 0: NVIDIA H100 (UUID: GPU-a)'\n"
                    "echo 'GPU 1: NVIDIA H100 (UUID: GPU-b)'\necho 'MIG 1g.10gb Device 0'")
    assert gpus.nvidia_gpus() == 2
    fake_nvidia_smi(tmp_path / "bin", "echo 'NVIDIA-SMI has failed' >&2; exit 9")
    assert gpus.nvidia_gpus() == 0


def test_both_dockerfiles_say_which_torch_they_carry():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    assert f'{docker_engine.TORCH_LABEL}="cpu"' in (root / "Dockerfile").read_text()
    assert f'{docker_engine.TORCH_LABEL}="cuda"' in (root / "Dockerfile.gpu").read_text()
