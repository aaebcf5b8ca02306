"""A user's own env code on a cluster: it travels with the job (launcher/cluster/code_snapshot.py).

Slow: each test trains two iterations on a real cluster. `launcher local` (Docker) with an env
file given by a path relative to the directory the command runs in, and with a package of two
modules importable only from there; `launcher submit --runtime none` on the Slurm test cluster
(tests/slurm_cluster.py) with a relative env file that is deleted once the job is submitted, so
only the snapshot in the run directory can make it train. The env runners run on rollout
nodes: other machines than the one the command ran on.

    LT_SLURM_KEEP=1 pytest -m slow tests/test_code_e2e.py   # reuse a running Slurm cluster
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from tests.conftest import LAUNCHER, REPO, progress_rows
from tests.slurm_cluster import read_log, wait_ended
from tests.test_images import cpu_image  # noqa: F401  (fixture: make image)
from tests.test_local_docker import IMAGE, client, prefix  # noqa: F401  (fixtures)
from tests.test_slurm_e2e import cluster, runs  # noqa: F401  (fixture)

pytestmark = [pytest.mark.slow]

ENV_FILE = '''
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from cart_limits import MAX_STEPS  # a module next to this file: the directory travels too


class SlowCartPole(CartPoleEnv):
    """CartPole whose episodes end after MAX_STEPS steps."""

    def __init__(self, config=None):
        super().__init__()
        self.steps = 0

    def reset(self, *, seed=None, options=None):
        self.steps = 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        self.steps += 1
        return obs, reward, terminated, truncated or self.steps >= MAX_STEPS, info
'''


def write_env_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "slow_env.py").write_text(ENV_FILE)
    (path / "cart_limits.py").write_text("MAX_STEPS = 100\n")
    return path


def env_runner_roles(run_dir: Path) -> set[str]:
    placement = json.loads((run_dir / ".cluster" / "placement.json").read_text())
    return {a["role"] for a in placement if a["kind"] == "env_runner"}


def check_trained_from_snapshot(run_dir: Path, env: str) -> None:
    """Two iterations, env runners on a rollout node, and spec.yaml naming the snapshot."""
    assert len(progress_rows(run_dir)) == 2
    assert "rollout" in env_runner_roles(run_dir)
    spec = yaml.safe_load((run_dir / "spec.yaml").read_text())
    assert spec["code"] == str(run_dir / "code"), spec
    assert spec["env"] == env.format(code=run_dir / "code"), spec


def launcher_local(name: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*LAUNCHER, "local", "--prefix", name, "--image", IMAGE, "--nodes", "1",
         "--cpus-per-node", "1", "--stop-iters", "2", "--seed", "0", *args],
        cwd=cwd, capture_output=True, text=True, timeout=400)


@pytest.mark.docker
def test_local_trains_an_env_file_given_by_a_relative_path(client, prefix, tmp_path):  # noqa: F811
    here = write_env_dir(tmp_path / "work")
    proc = launcher_local(prefix, here, "--env", "slow_env.py:SlowCartPole",
                          "--output", str(tmp_path / "out"), "--name", "file")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    check_trained_from_snapshot(tmp_path / "out" / "file", "{code}/slow_env.py:SlowCartPole")


@pytest.mark.docker
def test_local_trains_a_package_of_two_modules(client, prefix, tmp_path):  # noqa: F811
    src = tmp_path / "src"
    shutil.copytree(REPO / "examples" / "gridpkg", src / "gridpkg")
    proc = launcher_local(prefix, src, "--env", "gridpkg.env:GridEnv", "--env-config", "size=4",
                          "--output", str(tmp_path / "out"), "--name", "package")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    run_dir = tmp_path / "out" / "package"
    check_trained_from_snapshot(run_dir, "gridpkg.env:GridEnv")
    assert (run_dir / "code" / "gridpkg" / "world.py").is_file()


@pytest.mark.slurm
def test_submit_trains_a_relative_env_file_deleted_after_submission(cluster):  # noqa: F811
    here = write_env_dir(cluster.shared / f"envs-{uuid.uuid4().hex[:8]}")
    name = f"t{uuid.uuid4().hex[:8]}"
    proc = cluster.launcher("submit", "--runtime", "none", "--nodes", "1", "--gpus", "0",
                            "--env", "slow_env.py:SlowCartPole", "--stop-iters", "2",
                            "--output", str(runs(cluster)), "--name", name, workdir=str(here))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job = re.search(r"submitted Slurm job (\d+)", proc.stdout).group(1)
    shutil.rmtree(here)  # from now on only the run directory's snapshot holds the env
    info = wait_ended(cluster, job, 400)
    log = read_log(cluster, job)
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", log[-4000:]
    check_trained_from_snapshot(runs(cluster) / name, "{code}/slow_env.py:SlowCartPole")
