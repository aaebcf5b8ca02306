"""The Slurm part of `make bench-scale`: the same PPO runs as bench/scale.py's, submitted
with `launcher submit --nodes N` (no GPU) on the Slurm 22.05 test cluster of
tests/slurm_cluster.py, from the controller as a user would: from the checkout (mounted at
/opt/launcher-src on every container), the env file given by its relative path
(`--env bench/slow_envs.py:SleepyCartPole`), which `launcher submit` snapshots into the
run dir on the shared directory.

A job without a GPU is one Slurm job of 1 + N nodes with the site profile's CPUs each
(tests/infra/slurm/site.yaml: 2); the head offers all but one of its CPUs to env runners
and each rollout node all of its own, one env runner per CPU. The cluster is started here
if it is not running and stopped afterwards unless it was already up or `keep`.
"""

from __future__ import annotations

import re
import sys
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.slurm_cluster import SRC, Cluster, docker_works, image_id, wait_ended  # noqa: E402

SITE_FILE = REPO / "tests" / "infra" / "slurm" / "site.yaml"
JOB_GRACE_S = 240  # Slurm start, Ray start, algorithm build and shutdown around the training time


def unavailable(base: str = "launcher:cpu") -> str | None:
    """Why the cluster cannot run here (one line), or None."""
    if not docker_works():
        return "no Docker engine answers (tests/infra/start-dockerd.sh)"
    if image_id(base) is None:
        return f"{base} missing (make image)"
    return None


def cpus_per_node() -> int:
    import yaml

    return int(yaml.safe_load(SITE_FILE.read_text())["cpus_per_node"])


def expected_runners(nodes: int) -> int:
    """Env runners of a job with `nodes` rollout nodes and no learner (launcher/cluster/host.py)."""
    cpus = cpus_per_node()
    return nodes * cpus + cpus - 1


def one_run(cluster: Cluster, nodes: int, run_args: list[str], seconds: float) -> Path | None:
    """Submit one run and wait for it; its run dir (on the shared directory), or None
    after saying in a line why not."""
    name = f"bench-scale-{nodes}n-{uuid.uuid4().hex[:6]}"
    out = cluster.shared / "bench-scale"
    proc = cluster.launcher("submit", "--nodes", str(nodes), *run_args, "--stop-time", str(seconds),
                            "--output", str(out), "--name", name, workdir=SRC)
    job = re.search(r"submitted Slurm job (\d+)", proc.stdout)
    if proc.returncode != 0 or not job:
        print(f"  slurm x{nodes}: submit exit {proc.returncode}: {(proc.stdout + proc.stderr)[-400:]}")
        return None
    try:
        ended = wait_ended(cluster, job.group(1), timeout_s=seconds + JOB_GRACE_S)
    except AssertionError as exc:
        print(f"  slurm x{nodes}: {str(exc).splitlines()[0]}")
        return None
    if ended.get("JobState") != "COMPLETED":
        print(f"  slurm x{nodes}: job {job.group(1)} {ended.get('JobState')}; see {out / name}")
        return None
    return out / name


def with_cluster(keep: bool, work):
    """work(cluster) on a running cluster: started here if down, stopped afterwards unless
    it was up before or keep."""
    cluster = Cluster()
    was_up = cluster.is_up()
    if not was_up:
        print(f"Slurm test cluster up in {cluster.up():.1f} s", flush=True)
    try:
        return work(cluster)
    finally:
        if not (was_up or keep):
            cluster.down()
