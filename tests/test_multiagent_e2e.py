"""Multi-agent runs on a cluster: `launcher local` (Docker) trains PettingZoo's simple spread
from mpe2 (installed in the image: the `multiagent` extra) with a policy per agent, and
`launcher submit --runtime none` on the Slurm test cluster trains an RLlib MultiAgentEnv of
two agent types, from a relative env file deleted once the job is submitted (only the
run directory's code snapshot can make it train), with policy groups from an experiment file.

Slow; each test trains two small iterations on a real cluster, env runners on a rollout node.

    LT_SLURM_KEEP=1 pytest -m slow tests/test_multiagent_e2e.py   # reuse a running Slurm cluster
"""

from __future__ import annotations

import re
import shutil
import uuid

import pytest
import yaml

from launcher.training.runlog import POLICY_RETURN_PREFIX
from tests.conftest import REPO, progress_rows
from tests.slurm_cluster import read_log, wait_ended
from tests.test_code_e2e import env_runner_roles, launcher_local
from tests.test_images import cpu_image  # noqa: F401  (fixture: make image)
from tests.test_local_docker import client, prefix  # noqa: F401  (fixtures)
from tests.test_slurm_e2e import cluster, runs  # noqa: F401  (fixture)

pytestmark = [pytest.mark.slow]

SMALL = ["--set", "train_batch_size_per_learner=200", "--set", "minibatch_size=100",
         "--set", "num_epochs=2", "--set", "num_envs_per_env_runner=2"]


def policy_columns(run_dir) -> set[str]:
    row = progress_rows(run_dir)[-1]
    return {k[len(POLICY_RETURN_PREFIX):] for k in row if k.startswith(POLICY_RETURN_PREFIX)}


@pytest.mark.docker
def test_local_trains_pettingzoo_simple_spread_with_a_policy_per_agent(client, prefix, tmp_path):  # noqa: F811
    experiment = tmp_path / "spread.yaml"
    experiment.write_text(yaml.safe_dump({"env": "mpe2.simple_spread_v3", "policies": "per-agent"}))
    proc = launcher_local(prefix, tmp_path, "-f", str(experiment), *SMALL,
                          "--output", str(tmp_path / "out"), "--name", "spread")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "multi-agent env: 3 agents, PettingZoo parallel" in proc.stderr
    run_dir = tmp_path / "out" / "spread"
    assert len(progress_rows(run_dir)) == 2
    assert "rollout" in env_runner_roles(run_dir)
    assert policy_columns(run_dir) == {"agent_0", "agent_1", "agent_2"}
    assert (run_dir / "reward.png").is_file()


@pytest.mark.slurm
def test_submit_trains_two_agent_types_from_a_relative_file_deleted_after_submission(cluster):  # noqa: F811
    here = cluster.shared / f"envs-{uuid.uuid4().hex[:8]}"
    here.mkdir(parents=True)
    shutil.copy(REPO / "tests" / "multiagent_envs" / "two_types.py", here / "two_types.py")
    (here / "two.yaml").write_text(yaml.safe_dump({
        "env": "two_types.py:TwoTypes", "policies": {"scouts": ["scout_*"], "guards": ["guard_*"]}}))
    name = f"t{uuid.uuid4().hex[:8]}"
    proc = cluster.launcher("submit", "--runtime", "none", "--nodes", "2", "--gpus", "0",
                            "-f", "two.yaml", *SMALL, "--stop-iters", "2",
                            "--output", str(runs(cluster)), "--name", name, workdir=str(here))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job = re.search(r"submitted Slurm job (\d+)", proc.stdout).group(1)
    shutil.rmtree(here)  # from now on only the run directory's snapshot holds the env
    info = wait_ended(cluster, job, 400)
    log = read_log(cluster, job)
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", log[-4000:]
    run_dir = runs(cluster) / name
    assert len(progress_rows(run_dir)) == 2 and "rollout" in env_runner_roles(run_dir)
    assert policy_columns(run_dir) == {"scouts", "guards"}
    spec = yaml.safe_load((run_dir / "spec.yaml").read_text())
    assert spec["env"] == f"{run_dir / 'code'}/two_types.py:TwoTypes"
    assert spec["policies"] == {"scouts": ["scout_*"], "guards": ["guard_*"]}
