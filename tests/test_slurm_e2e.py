"""End to end on a real Slurm: the container cluster of tests/slurm_cluster.py.

Every command runs as a user would run it on the cluster's login node: `launcher submit`
/ `status` / `logs` / `cancel` / `list` inside the controller container (the launcher
CLI is in the image; this checkout is mounted over it). Run dirs live in the shared
directory, visible at the same path on the host, where the tests read them.

The cluster's site profile (tests/infra/slurm/site.yaml, via LAUNCHER_SITE) gives 2
CPUs per node and `learner_on_cpu` (its GPU is a GRES entry backed by /dev/null).
Stop criteria are tiny: the machine has 2 cores shared by everything.

    LAUNCHER_REQUIRE_E2E=1 pytest -m slurm tests/test_slurm_e2e.py   # CI: fail, not skip
    LT_SLURM_KEEP=1 ...   leave the cluster running afterwards (faster reruns)
"""

from __future__ import annotations

import json
import os
import re
import shlex
import time
import uuid
from pathlib import Path

import pytest

from launcher.contract import RunPaths
from tests.conftest import progress_rows, require
from tests.slurm_cluster import (
    CPU_NODES,
    GPU_NODE,
    NODES,
    Cluster,
    docker_works,
    image_id,
    job_state,
    read_log,
    wait_ended,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.slurm]


@pytest.fixture(scope="module")
def cluster():
    require(docker_works(), "no Docker engine answers (tests/infra/start-dockerd.sh)")
    base = os.environ.get("LT_SLURM_BASE", "launcher:cpu")
    require(image_id(base) is not None, f"trainer image {base} missing: run `make image` first")
    c = Cluster()
    if not (os.environ.get("LT_SLURM_KEEP") == "1" and c.is_up()):
        c.up()
    yield c
    if os.environ.get("LT_SLURM_KEEP") != "1":
        c.down()


def runs(cluster: Cluster) -> Path:
    path = cluster.shared / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def submit(cluster: Cluster, *args: str) -> tuple[str, Path]:
    name = f"t{uuid.uuid4().hex[:8]}"
    proc = cluster.launcher("submit", "--output", str(runs(cluster)), "--name", name, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    match = re.search(r"submitted Slurm job (\d+)", proc.stdout)
    assert match, proc.stdout
    return match.group(1), runs(cluster) / name


def progress(run_dir: Path) -> list[dict[str, str]]:
    return progress_rows(run_dir) if (run_dir / "progress.csv").is_file() else []


def leftover_ray(cluster: Cluster, nodes=NODES) -> dict[str, list[str]]:
    return {n: procs for n in nodes if (procs := cluster.ray_processes(n))}


def no_ray_left(cluster: Cluster, timeout_s: float = 45) -> None:
    try:
        wait_for(lambda: not leftover_ray(cluster), timeout_s, "Ray processes to stop")
    except AssertionError:
        raise AssertionError(f"Ray processes left on nodes: {leftover_ray(cluster)}") from None


def actors_on(cluster: Cluster, node: str, run_dir: Path) -> set[str]:
    """Ray actor class names that ran on `node` for this job: the head's placement record
    (the nodes' Ray temp dirs are private and removed when the job ends)."""
    proc = cluster.exec("cat", str(RunPaths(run_dir).placement), check=False)
    placement = json.loads(proc.stdout or "[]")
    return {actor["class"] for actor in placement if actor["host"] == node}


# --- 1: a heterogeneous job trains across the nodes ---------------------------------------
def test_hetjob_trains_cartpole_across_nodes(cluster):
    job, run_dir = submit(cluster, "--nodes", "2", "--gpus", "1", "--env", "CartPole-v1",
                          "--stop-reward", "150", "--stop-iters", "40")
    info = wait_ended(cluster, job, 420)
    log = read_log(cluster, job)
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", log[-3000:]
    rows = progress(run_dir)
    best = max(float(r["episode_return_mean"]) for r in rows if r["episode_return_mean"])
    assert best >= 150, f"best mean return {best} after {len(rows)} iterations"
    assert (run_dir / "checkpoints").is_dir() and (run_dir / "result.json").is_file()
    # Placement: env runners on the rollout nodes, the learner on the GPU node, neither
    # on the head; Slurm gave the learner component the GPU node.
    nodes = re.findall(r"\[node (\w+)@([\w-]+)\]", log)
    hosts = {role: {h for r, h in nodes if r == role} for role in ("head", "rollout", "learner")}
    assert hosts["learner"] == {GPU_NODE}, hosts
    assert len(hosts["rollout"]) == 2 and hosts["rollout"] <= set(CPU_NODES), hosts
    head = next(iter(hosts["head"]))
    for node in hosts["rollout"]:
        assert "SingleAgentEnvRunner" in actors_on(cluster, node, run_dir), node
    learner_actors = actors_on(cluster, GPU_NODE, run_dir)
    assert learner_actors and "SingleAgentEnvRunner" not in learner_actors, learner_actors
    assert "SingleAgentEnvRunner" not in actors_on(cluster, head, run_dir)
    # status / list show the finished job
    status = cluster.launcher("status", job)
    assert "COMPLETED" in status.stdout and str(run_dir) in status.stdout, status.stdout + status.stderr
    no_ray_left(cluster)


# --- 2: a wrong env fails fast: before submission, or on the nodes ---------------------------
def test_wrong_env_id_fails_before_submission(cluster):
    before = cluster.exec("squeue", "-h", "-o", "%i").stdout
    proc = cluster.launcher("submit", "--nodes", "2", "--gpus", "1", "--env", "CartPol-v1",
                            "--output", str(runs(cluster)))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors and "CartPole-v1" in errors[0], proc.stderr  # "did you mean"
    assert "Traceback" not in proc.stderr
    assert cluster.exec("squeue", "-h", "-o", "%i").stdout == before  # nothing submitted


def test_env_missing_on_the_nodes_fails_fast_with_the_error_in_the_log(cluster):
    envs = cluster.shared / "envs"
    envs.mkdir(exist_ok=True)
    env_file = envs / f"gone_{uuid.uuid4().hex[:6]}.py"
    env_file.write_text("from gymnasium.envs.classic_control import CartPoleEnv as Gone\n")
    name = f"t{uuid.uuid4().hex[:8]}"
    proc = cluster.launcher("submit", "--dry-run", "--nodes", "2", "--gpus", "1", "--env",
                            f"{env_file}:Gone", "--output", str(runs(cluster)), "--name", name)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    command = proc.stdout.strip().splitlines()[-1].strip()
    run_dir = runs(cluster) / name
    assert command == f"cd {shlex.quote(str(run_dir))} && sbatch --parsable job.sh"
    env_file.unlink()  # the original is not what the nodes import...
    snapshot = RunPaths(run_dir).code / env_file.name
    assert snapshot.is_file(), "the env file was not snapshotted into the run dir"
    snapshot.unlink()  # ...the run dir's snapshot is: gone by the time the job runs
    started = time.monotonic()
    job = cluster.exec("bash", "-c", command).stdout.strip()
    info = wait_ended(cluster, job, 240)
    took = time.monotonic() - started
    log = read_log(cluster, job)
    assert info["JobState"] == "FAILED" and info["ExitCode"] != "0:0", info
    assert "environment file not found" in log, log[-3000:]
    assert took < 200, f"took {took:.0f} s to fail"
    no_ray_left(cluster)


# --- 6 and 3: a running job refuses token-less clients; cancel stops it and its Ray ---------
@pytest.fixture(scope="module")
def long_job(cluster):
    job, run_dir = submit(cluster, "--nodes", "1", "--gpus", "1", "--stop-iters", "500")
    wait_for(lambda: "training PPO" in read_log(cluster, job), 240, "training to start", poll_s=2)
    yield job, run_dir
    cluster.exec("scancel", job, check=False)


RAY_CLIENT = """
import os, sys, ray
try:
    ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
    print("CONNECTED", ray.cluster_resources().get("CPU"))
except Exception as exc:
    print("REFUSED", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
"""


def test_ray_client_without_the_job_token_is_refused(cluster, long_job):
    job, run_dir = long_job
    head = json.loads((run_dir / ".cluster" / "head.json").read_text())
    token_path = run_dir / ".cluster" / "token"
    assert oct(token_path.stat().st_mode & 0o777) == "0o600"
    clean = {"RAY_AUTH_MODE": "", "RAY_AUTH_TOKEN": "", "RAY_AUTH_TOKEN_PATH": ""}
    # A Ray driver connects from a node of the cluster (it needs a local raylet): the
    # head's node, where another user's process could try the same.
    base = ["python", "-c", RAY_CLIENT, head["address"]]
    on = head["host"]
    wrong = cluster.exec(*base, node=on, check=False, timeout=120,
                         env={**clean, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64})
    assert "REFUSED" in wrong.stdout, wrong.stdout + wrong.stderr
    plain = cluster.exec(*base, node=on, check=False, timeout=120, env=clean)
    assert "REFUSED" in plain.stdout, plain.stdout + plain.stderr
    # control: the same client with the job's token gets in
    with_token = cluster.exec(*base, node=on, check=False, timeout=120,
                              env={"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_path)})
    assert "CONNECTED" in with_token.stdout, with_token.stdout + with_token.stderr
    token = token_path.read_text().strip()
    assert token not in read_log(cluster, job)  # never printed


def test_list_and_cancel_stop_the_job_and_its_ray(cluster, long_job):
    job, run_dir = long_job
    listed = cluster.launcher("list")
    assert job in listed.stdout and "RUNNING" in listed.stdout, listed.stdout + listed.stderr
    assert leftover_ray(cluster), "the running job should have Ray processes"
    proc = cluster.launcher("cancel", job, timeout=200)
    assert proc.returncode == 0 and "CANCELLED" in proc.stdout, proc.stdout + proc.stderr
    assert job_state(cluster, job)["JobState"] == "CANCELLED"
    no_ray_left(cluster)


# --- 4: a time limit: checkpoint, requeue, resume, nothing lost ---------------------------------
def test_time_limit_requeues_and_resumes_without_losing_iterations(cluster):
    job, run_dir = submit(cluster, "--nodes", "0", "--gpus", "0", "--time", "3",
                          "--checkpoint-before", "100", "--stop-time", "75")
    info = wait_ended(cluster, job, 600)
    log = read_log(cluster, job)
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", log[-4000:]
    assert int(info.get("Restarts", "0")) >= 1, info
    assert "USR1 received" in log and "requeueing job" in log, log[-4000:]
    assert "(restart 1)" in log
    interrupted = [int(m) for m in re.findall(r"checkpoint \S*checkpoint_(\d+); exit 75", log)]
    assert interrupted, log[-4000:]
    rows = progress(run_dir)
    iterations = [int(r["training_iteration"]) for r in rows]
    assert iterations == list(range(1, len(iterations) + 1)), iterations  # no gap, no repeat
    assert iterations[-1] > interrupted[0]
    steps = [int(r["num_env_steps_sampled_lifetime"]) for r in rows]
    assert steps == sorted(steps) and len(set(steps)) == len(steps), steps
    no_ray_left(cluster)


# --- 5: two jobs at once on the same nodes ------------------------------------------------
def test_two_jobs_share_nodes_and_both_finish(cluster):
    cluster.exec("scontrol", "create", "PartitionName=pair", "Nodes=lt-slurm-c[1-2]",
                 "MaxTime=INFINITE", "State=UP", check=False)
    try:
        jobs = [submit(cluster, "--nodes", "1", "--gpus", "0", "--partition", "pair",
                       "--stop-iters", "3") for _ in range(2)]

        def both_running():
            states = [job_state(cluster, j) for j, _ in jobs]
            return states if all(s.get("JobState") == "RUNNING" for s in states) else None

        states = wait_for(both_running, 120, "both jobs to run at once")
        assert states[0]["NodeList"] == states[1]["NodeList"] == "lt-slurm-c[1-2]", states
        for job, run_dir in jobs:
            info = wait_ended(cluster, job, 400)
            assert info["JobState"] == "COMPLETED", read_log(cluster, job)[-3000:]
            assert len(progress(run_dir)) == 3
        ports = {json.loads((r / ".cluster" / "head.json").read_text())["address"] for _, r in jobs}
        assert len(ports) == 2
    finally:
        cluster.exec("scontrol", "delete", "PartitionName=pair", check=False)
    no_ray_left(cluster)


# --- 6: a sweep as one job, requeued in the middle ------------------------------------------
def test_sweep_job_requeued_in_the_middle_finishes_every_trial(cluster):
    """A 2 x 2 sweep (2 learning rates x 2 seeds) as one Slurm job whose time limit
    comes in the middle: every running trial checkpoints, the job requeues, and the
    sweep goes on with finished trials kept and the others continued."""
    job, run_dir = submit(cluster, "--nodes", "1", "--gpus", "0", "--time", "3",
                          "--checkpoint-before", "100", "--stop-time", "30",
                          "--grid", "lr=0.001,0.0003", "--seeds", "2")
    info = wait_ended(cluster, job, 900)
    log = read_log(cluster, job)
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", log[-4000:]
    assert int(info.get("Restarts", "0")) >= 1, info
    assert "USR1 received" in log and "requeueing job" in log, log[-4000:]
    record = json.loads((run_dir / "sweep.json").read_text())
    assert [t["state"] for t in record["trials"]] == ["done"] * 4, record["trials"]
    assert {(t["config"]["lr"], t["seed"]) for t in record["trials"]} == {
        (0.001, 0), (0.001, 1), (0.0003, 0), (0.0003, 1)}
    assert any(t["resumed_from"] for t in record["trials"]), record["trials"]
    for trial in record["trials"]:
        iterations = [int(r["training_iteration"]) for r in progress(run_dir / trial["name"])]
        assert iterations and iterations == list(range(1, len(iterations) + 1)), (trial["name"], iterations)
    shown = cluster.launcher("results", str(run_dir), "--json")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert sorted(c["done"] for c in json.loads(shown.stdout)["configurations"]) == [2, 2]
    no_ray_left(cluster)


# --- 6: the options sites need reach Slurm: a dependency, memory, an extra #SBATCH option ---------
def test_dependency_mem_and_sbatch_options_are_honoured(cluster):
    first, first_dir = submit(cluster, "--nodes", "0", "--gpus", "0", "--stop-iters", "2")
    second, second_dir = submit(cluster, "--nodes", "0", "--gpus", "0", "--stop-iters", "1",
                                "--dependency", f"afterok:{first}", "--mem", "500M",
                                "--sbatch", "begin=now")
    waiting = job_state(cluster, second)  # the first job takes far longer than this to end
    assert f"afterok:{first}" in waiting.get("Dependency", ""), waiting
    first_info = wait_ended(cluster, first, 400)
    assert first_info["JobState"] == "COMPLETED", read_log(cluster, first)[-3000:]
    second_info = wait_ended(cluster, second, 400)
    assert second_info["JobState"] == "COMPLETED", read_log(cluster, second)[-3000:]
    assert second_info["StartTime"] >= first_info["EndTime"], (first_info, second_info)
    assert second_info.get("MinMemoryNode") == "500M", second_info
    assert len(progress(second_dir)) == 1
    no_ray_left(cluster)
