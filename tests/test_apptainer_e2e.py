"""End to end with Apptainer on Slurm 24.11: the cluster of tests/apptainer_cluster.py.

Built like a site: Debian trixie nodes with Slurm 24.11, compute nodes with Apptainer 1.4.5
and no Python at all, a login node with Python 3.13 and neither torch nor Ray. Every job
runs with `--runtime apptainer` in launcher-cpu.sif, which the cluster's own Apptainer built
from `docker save launcher:cpu`. Every command runs as alice (uid 1000) on the login node,
as a user would; run dirs live in the shared directory, where the tests read them.

The site profile (tests/infra/apptainer/site.yaml) gives 2 CPUs per node, the SIF, and
`learner_on_cpu` (the GPU is a GRES entry backed by /dev/null). Stop criteria are tiny: 2
cores are shared by everything.

    LAUNCHER_REQUIRE_E2E=1 pytest tests/test_apptainer_e2e.py   # CI: fail, not skip
    LT_APP_KEEP=1 ...   leave the cluster running afterwards (faster reruns)
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path

import pytest

from launcher.contract import RunPaths
from tests.apptainer_cluster import (
    CPU_NODES,
    GPU_NODE,
    NODES,
    SIF,
    UID,
    ApptainerCluster,
)
from tests.conftest import progress_rows, require
from tests.slurm_cluster import docker_works, image_id, job_state, read_log, wait_ended, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.slurm]


@pytest.fixture(scope="module")
def cluster():
    require(docker_works(), "no Docker engine answers (tests/infra/start-dockerd.sh)")
    base = os.environ.get("LT_APP_BASE", "launcher:cpu")
    require(image_id(base) is not None, f"trainer image {base} missing: run `make image` first")
    c = ApptainerCluster()
    if os.environ.get("LT_APP_KEEP") == "1" and c.is_up():
        if c.ensure_sif():
            c.install_login_launcher()
    else:
        c.up()
    yield c
    if os.environ.get("LT_APP_KEEP") != "1":
        c.down()


def runs(cluster: ApptainerCluster) -> Path:
    path = cluster.shared / "runs"
    if not path.is_dir():
        cluster.as_user("mkdir", "-p", str(path), check=True)
    return path


def submit(cluster: ApptainerCluster, *args: str) -> tuple[str, Path]:
    name = f"a{uuid.uuid4().hex[:8]}"
    proc = cluster.launcher("submit", "--output", str(runs(cluster)), "--name", name, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    match = re.search(r"submitted Slurm job (\d+)", proc.stdout)
    assert match, proc.stdout
    return match.group(1), runs(cluster) / name


def queued(cluster: ApptainerCluster) -> str:
    return cluster.exec("squeue", "-h", "-o", "%i").stdout


def progress(run_dir: Path) -> list[dict[str, str]]:
    return progress_rows(run_dir) if (run_dir / "progress.csv").is_file() else []


def leftovers(cluster: ApptainerCluster, nodes=NODES) -> dict[str, list[str]]:
    return {n: found for n in nodes if (found := cluster.leftovers(n))}


def nothing_left(cluster: ApptainerCluster, timeout_s: float = 60) -> None:
    try:
        wait_for(lambda: not leftovers(cluster), timeout_s, "nodes to be clean")
    except AssertionError:
        raise AssertionError(f"left on nodes: {leftovers(cluster)}") from None


def placement(run_dir: Path) -> list[dict]:
    return json.loads(RunPaths(run_dir).placement.read_text())


# --- the site: what is (not) installed where, the SIF, the login node's launcher ---------------
def test_login_node_has_no_training_stack_and_compute_nodes_no_python(cluster):
    version = cluster.as_user("python3", "--version")
    assert version.stdout.startswith("Python 3.13"), version.stdout + version.stderr
    for module in ("ray", "torch", "gymnasium"):
        proc = cluster.as_user("python3", "-c", f"import {module}")
        assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr, module
    for node in NODES:
        assert cluster.exec("sh", "-c", "command -v python3 python", node=node, check=False).returncode != 0
        assert "apptainer version 1.4.5" in cluster.exec("apptainer", "--version", node=node).stdout
    assert re.match(r"slurm(-wlm)? 24\.11\.", cluster.exec("sinfo", "--version").stdout)


def test_the_readme_command_installs_the_launcher_on_the_login_node(cluster):
    """install-login.sh from the SIF: the zipapp, and pydantic-core for Python 3.13 (from a
    local wheel directory, as from a site's package index)."""
    target = "/home/alice/doc-bin"
    proc = cluster.as_user(
        "sh", "-c", f"apptainer exec {SIF} cat /opt/launcher/install-login.sh | sh -s {SIF}",
        env={"LAUNCHER_BIN": target, "PIP_NO_INDEX": "1",
             "PIP_FIND_LINKS": str(cluster.shared / ".wheels")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^launcher \d+\.\d+", proc.stdout, re.M), proc.stdout
    listed = cluster.as_user(f"{target}/launcher", "list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    cluster.as_user("rm", "-rf", target)


def test_the_sif_was_built_by_apptainer_and_passes_its_test(cluster):
    proc = cluster.as_user("apptainer", "test", str(SIF), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"ray 2\.\d+\.\d+ torch \S+ gymnasium", proc.stdout), proc.stdout
    labels = json.loads(cluster.as_user("apptainer", "inspect", "--json", "--labels", str(SIF)).stdout)
    labels = labels["data"]["attributes"]["labels"]
    assert labels["launcher.torch"] == "cpu" and labels["launcher.variant"] == "cpu", labels
    assert labels["org.label-schema.usage.singularity.deffile.bootstrap"] == "docker-archive"


def test_the_gpu_definition_builds_where_its_image_exists(cluster):
    if image_id("launcher:gpu") is None:
        pytest.skip("launcher:gpu does not exist here (`make image-gpu` downloads several GB of CUDA "
                    "wheels); the GPU definition is checked by its golden file only")
    sif = cluster.shared / "launcher-gpu.sif"
    cluster.build_sif("gpu", "launcher:gpu", sif)
    proc = cluster.as_user("apptainer", "test", str(sif), timeout=600)
    assert proc.returncode == 0 and "cuda" in proc.stdout, proc.stdout + proc.stderr


# --- 1: a heterogeneous job trains in the SIF across the nodes ----------------------------------
def test_hetjob_in_the_sif_trains_cartpole_with_the_learner_on_the_gpu_node(cluster):
    job, run_dir = submit(cluster, "--nodes", "2", "--gpus", "1", "--env", "CartPole-v1",
                          "--stop-reward", "150", "--stop-iters", "40")
    info = wait_ended(cluster, job, 420)
    log = read_log(cluster, job)
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", log[-3000:]
    rows = progress(run_dir)
    best = max(float(r["episode_return_mean"]) for r in rows if r["episode_return_mean"])
    assert best >= 150, f"best mean return {best} after {len(rows)} iterations"
    # Placement (the head's record): env runners on the two rollout nodes, the learner on
    # the GPU node, neither on the head.
    actors = placement(run_dir)
    learners = {a["host"] for a in actors if a["kind"] == "learner"}
    runners = {a["host"] for a in actors if a["kind"] == "env_runner"}
    assert learners == {GPU_NODE}, actors
    assert len(runners) == 2 and runners <= set(CPU_NODES), actors
    head = re.search(r"\[node head@([\w-]+)\]", log).group(1)
    assert head not in runners | learners
    # Every node ran the launcher inside the SIF (the nodes have no Python), as alice.
    assert "apptainer exec --cleanenv" in (run_dir / "job.sh").read_text()
    for path in [run_dir, *run_dir.iterdir(), *(run_dir / "checkpoints").rglob("*")]:
        assert path.stat().st_uid == UID, path
    nothing_left(cluster)


# --- checks before submission, inside the image ---------------------------------------------------
def test_wrong_env_id_is_refused_on_the_login_node_by_the_image(cluster):
    """The login node has no Gymnasium: the suggestion comes from the check in the SIF."""
    before = queued(cluster)
    proc = cluster.launcher("submit", "--nodes", "2", "--gpus", "1", "--env", "CartPol-v1",
                            "--output", str(runs(cluster)), "--name", "never")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "CartPole-v1" in lines[0], proc.stderr
    assert queued(cluster) == before
    assert not (runs(cluster) / "never").exists()


def test_cpu_torch_image_on_a_gpu_learner_is_refused_from_its_labels(cluster):
    before = queued(cluster)
    proc = cluster.launcher("submit", "--nodes", "1", "--gpus", "1", "--learner-on-gpu",
                            "--output", str(runs(cluster)), "--name", "never-gpu")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "launcher.torch=cpu" in proc.stderr and "--learner-image" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert queued(cluster) == before and not (runs(cluster) / "never-gpu").exists()


# --- a running job refuses token-less clients; cancel leaves nothing behind -------------------
@pytest.fixture(scope="module")
def long_job(cluster):
    job, run_dir = submit(cluster, "--nodes", "1", "--gpus", "1", "--stop-iters", "500")
    wait_for(lambda: "training PPO" in read_log(cluster, job), 240, "training to start", poll_s=2)
    yield job, run_dir
    cluster.exec("scancel", job, check=False)


RAY_CLIENT = """
import sys, ray
try:
    ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
    print("CONNECTED", ray.cluster_resources().get("CPU"))
except Exception as exc:
    print("REFUSED", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
"""


def test_ray_client_without_the_job_token_is_refused(cluster, long_job):
    job, run_dir = long_job
    head = json.loads(RunPaths(run_dir).head.read_text())
    token_path = RunPaths(run_dir).token
    assert oct(token_path.stat().st_mode & 0o777) == "0o600"
    # A driver on the head's node, in the same SIF, sees the node's Ray sockets where the
    # job's container does (the head's dir in the job's scratch dir, on /tmp).
    scratch = f"/tmp/launcher-{job}/head"

    def client(**env: str):
        args = [f"--env={k}={v}" for k, v in env.items()]
        return cluster.as_user("apptainer", "exec", "--cleanenv", "--bind", f"{scratch}:/tmp",
                               "--bind", str(run_dir), *args, str(SIF), "python", "-c", RAY_CLIENT,
                               head["address"], node=head["host"], timeout=180)

    wrong = client(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="0" * 64)
    assert "REFUSED" in wrong.stdout, wrong.stdout + wrong.stderr
    plain = client()
    assert "REFUSED" in plain.stdout, plain.stdout + plain.stderr
    right = client(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_path))
    assert "CONNECTED" in right.stdout, right.stdout + right.stderr
    assert token_path.read_text().strip() not in read_log(cluster, job)


def test_cancel_leaves_no_ray_apptainer_or_mount_on_any_node(cluster, long_job):
    """`launcher cancel` asks the job script first: the head checkpoints while the SIF is
    still mounted, the other nodes leave, every node clears its scratch."""
    job, run_dir = long_job
    listed = cluster.launcher("list")
    assert job in listed.stdout and "RUNNING" in listed.stdout, listed.stdout + listed.stderr
    busy = leftovers(cluster)
    assert any("squashfuse" in " ".join(found) or "fuse" in " ".join(found) for found in busy.values()) \
        or not cluster.fuse, busy  # the SIF is mounted, not unpacked
    assert any(any("raylet" in p for p in found) for found in busy.values()), busy
    proc = cluster.launcher("cancel", job, timeout=200)
    assert proc.returncode == 0 and "CANCELLED" in proc.stdout, proc.stdout + proc.stderr
    assert job_state(cluster, job)["JobState"] == "CANCELLED"
    log = read_log(cluster, job)
    assert re.search(r"checkpoint \S*checkpoint_\d+; exit 75", log), log[-3000:]
    assert "stopped on request" in log and "Bus error" not in log, log[-3000:]
    nothing_left(cluster)


# --- a time limit: checkpoint, requeue, resume inside the SIF -----------------------------------
def test_time_limit_requeues_and_resumes_in_the_sif_without_losing_iterations(cluster):
    job, run_dir = submit(cluster, "--nodes", "0", "--gpus", "0", "--time", "3",
                          "--checkpoint-before", "100", "--stop-time", "75")
    info = wait_ended(cluster, job, 600)
    log = read_log(cluster, job)
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", log[-4000:]
    assert int(info.get("Restarts", "0")) >= 1, info
    assert "USR1 received" in log and "requeueing job" in log and "(restart 1)" in log, log[-4000:]
    interrupted = [int(m) for m in re.findall(r"checkpoint \S*checkpoint_(\d+); exit 75", log)]
    assert interrupted, log[-4000:]
    rows = progress(run_dir)
    iterations = [int(r["training_iteration"]) for r in rows]
    assert iterations == list(range(1, len(iterations) + 1)), iterations  # no gap, no repeat
    assert iterations[-1] > interrupted[0]
    steps = [int(r["num_env_steps_sampled_lifetime"]) for r in rows]
    assert steps == sorted(steps) and len(set(steps)) == len(steps), steps
    nothing_left(cluster)


# --- two jobs at once on the same nodes ----------------------------------------------------------
def test_two_jobs_share_nodes_and_both_finish(cluster):
    cluster.exec("scontrol", "create", "PartitionName=pair", "Nodes=lt-app-c[1-2]",
                 "MaxTime=INFINITE", "State=UP", check=False)
    try:
        jobs = [submit(cluster, "--nodes", "1", "--gpus", "0", "--partition", "pair",
                       "--stop-iters", "3") for _ in range(2)]

        def both_running():
            states = [job_state(cluster, j) for j, _ in jobs]
            return states if all(s.get("JobState") == "RUNNING" for s in states) else None

        states = wait_for(both_running, 120, "both jobs to run at once")
        assert states[0]["NodeList"] == states[1]["NodeList"] == "lt-app-c[1-2]", states
        for job, run_dir in jobs:
            info = wait_ended(cluster, job, 400)
            assert info["JobState"] == "COMPLETED", read_log(cluster, job)[-3000:]
            assert len(progress(run_dir)) == 3
        heads = {json.loads(RunPaths(r).head.read_text())["address"] for _, r in jobs}
        assert len(heads) == 2
    finally:
        cluster.exec("scontrol", "delete", "PartitionName=pair", check=False)
    nothing_left(cluster)
