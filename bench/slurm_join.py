"""Slurm: job start -> every Ray node joined, for a head + 3 rollout nodes + 1 learner.

`make bench-slurm` (after `make image`). `launcher submit --nodes 3 --gpus 1 --stop-iters 1`,
a heterogeneous job of 5 nodes, as a user would on the login node, with each runtime:

  none       the Slurm 22.05 cluster of tests/slurm_cluster.py: `launcher` from the nodes'
             own environment
  apptainer  the Slurm 24.11 cluster of tests/apptainer_cluster.py: every node runs
             `apptainer exec launcher-cpu.sif`, once with the SIF mounted (squashfuse and
             /dev/fuse: the fast path) and once unpacked into a temporary sandbox on every
             node start (APPTAINER_UNSQUASH=1: what a node without FUSE does)

Each cluster is started here if it is not running and stopped afterwards unless it was
already up or --keep.

Measured, per run, from the files the job leaves in its run dir (host and containers
share one clock):
  start   the job script's first line (`date` with milliseconds), i.e. Slurm started it
  head    head.json last written: the head's `ray start` returned (the workers wait for it)
  seen    the head's "all nodes joined" line (it polls Ray's node list every 0.2 s);
          its stamp has whole seconds, so the end of that second is used: an upper bound
  joined  the last node's registration in state "joined": its `ray start --address`
          returned (a little after the head already sees it): also an upper bound

Next to it, the tutorial's figure, from its scripts (shared/reference): the GPU job
starts the head, `sleep 10`, then each of the 3 rollout nodes followed by `sleep 5`,
then the learner's `ray start` and, immediately, the trainer: 10 + 3 x 5 = 25 s of
fixed sleeps before the learner is even launched, and nothing checks that any node
joined (a slow node races the trainer).

Goals: <= 10 s with runtime none, <= 15 s with Apptainer. Options: --runs N (default 2),
--runtime none|apptainer|both (default both), --keep (leave the clusters up).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import statistics
import sys
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.slurm_cluster import Cluster, docker_works, image_id, wait_ended  # noqa: E402

TUTORIAL_HEAD_SLEEP_S = 10  # `sleep 10` after starting the head
TUTORIAL_WORKER_SLEEP_S = 5  # `sleep 5` after each rollout node
ROLLOUT_NODES = 3
GOALS_S = {"none": 10.0, "apptainer": 15.0}


def tutorial_sleeps(rollout_nodes: int = ROLLOUT_NODES) -> int:
    return TUTORIAL_HEAD_SLEEP_S + TUTORIAL_WORKER_SLEEP_S * rollout_nodes


def parse_start(log: str) -> float:
    match = re.search(r"launcher: job \d+ \(restart 0\) on \S+ at (\S+);", log)
    if not match:
        raise RuntimeError("job start line not found in the log")
    stamp = match.group(1).rstrip("Z")
    return dt.datetime.fromisoformat(stamp).replace(tzinfo=dt.timezone.utc).timestamp()


def one_run(cluster, env: dict[str, str] | None = None) -> dict[str, float]:
    name = f"bench-join-{uuid.uuid4().hex[:6]}"
    out = cluster.shared / "bench"
    extra = {"env": env} if env else {}
    proc = cluster.launcher("submit", "--nodes", str(ROLLOUT_NODES), "--gpus", "1",
                            "--stop-iters", "1", "--output", str(out), "--name", name, **extra)
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout + proc.stderr)
    job = re.search(r"submitted Slurm job (\d+)", proc.stdout).group(1)
    run_dir = out / name
    ended = wait_ended(cluster, job, timeout_s=600)
    log = next(run_dir.glob("job-*.log")).read_text()
    start = parse_start(log)
    head = (run_dir / ".cluster" / "head.json").stat().st_mtime
    joined = [p.stat().st_mtime for p in (run_dir / ".cluster" / "nodes").glob("*.json")
              if json.loads(p.read_text()).get("state") == "joined"]
    if len(joined) != ROLLOUT_NODES + 1:
        raise RuntimeError(f"{len(joined)} of {ROLLOUT_NODES + 1} worker nodes joined; see {run_dir}")
    ok = ended.get("JobState") == "COMPLETED"
    seen_line = re.search(r"^(\d\d):(\d\d):(\d\d) \[node head@\S+\] all nodes joined", log, re.M)
    day = dt.datetime.fromtimestamp(start, dt.timezone.utc).replace(hour=0, minute=0, second=0,
                                                                      microsecond=0)
    h, m, sec = (int(x) for x in seen_line.groups())
    seen = (day + dt.timedelta(hours=h, minutes=m, seconds=sec + 1)).timestamp()
    return {"job": float(job), "head_s": head - start, "seen_s": seen - start,
            "joined_s": max(joined) - start, "completed": float(ok)}


def unpack_site(cluster) -> str:
    """The Apptainer cluster's site profile plus APPTAINER_UNSQUASH=1 (the job script
    exports site variables, so every `apptainer exec` unpacks the SIF first)."""
    import yaml

    from tests.apptainer_cluster import REPO as _REPO
    from tests.apptainer_cluster import SITE, SRC

    site = yaml.safe_load((_REPO / SITE.removeprefix(SRC + "/")).read_text())
    site["env"] = {**site.get("env", {}), "APPTAINER_UNSQUASH": "1"}
    path = cluster.shared / "bench-site-unpack.yaml"
    path.write_text(yaml.safe_dump(site))
    path.chmod(0o644)
    return str(path)


def measure(label: str, cluster, runs: int, env: dict[str, str] | None = None) -> list[dict]:
    results = []
    for i in range(runs):
        r = one_run(cluster, env)
        results.append(r)
        print(f"{label}, run {i + 1}: job {int(r['job'])}: head Ray up {r['head_s']:5.1f} s, head sees "
              f"all 5 nodes <= {r['seen_s']:5.1f} s, last `ray start` returned "
              f"{r['joined_s']:5.1f} s after job start"
              f"{'' if r['completed'] else '  (job did not complete!)'}")
    return results


def with_cluster(cluster, keep: bool, work):
    was_up = cluster.is_up()
    if not was_up:
        took = cluster.up()
        print(f"{type(cluster).__name__} up in {took:.1f} s")
    try:
        return work()
    finally:
        if not (was_up or keep):
            cluster.down()


def bench_none(args) -> dict[str, list[dict]]:
    cluster = Cluster()
    return {"none": with_cluster(cluster, args.keep, lambda: measure("none", cluster, args.runs))}


def bench_apptainer(args) -> dict[str, list[dict]]:
    from tests.apptainer_cluster import ApptainerCluster

    cluster = ApptainerCluster(fuse=True)

    def work():
        cluster.ensure_sif()
        mounted = measure("apptainer, SIF mounted", cluster, args.runs)
        unpacked = measure("apptainer, SIF unpacked", cluster, args.runs,
                           env={"LAUNCHER_SITE": unpack_site(cluster)})
        return {"apptainer (SIF mounted)": mounted, "apptainer (SIF unpacked)": unpacked}
    return with_cluster(cluster, args.keep, work)


def report(table: dict[str, list[dict]]) -> None:
    print()
    print(f"{'job start -> head sees all 5 nodes':40}{'median':>9}{'best':>9}{'goal':>8}   tutorial")
    for label, results in table.items():
        seen = [r["seen_s"] for r in results]
        goal = GOALS_S["none" if label == "none" else "apptainer"]
        median = statistics.median(seen)
        verdict = "met" if median <= goal else "NOT met"
        print(f"{'runtime ' + label:40}{median:>8.1f}s{min(seen):>8.1f}s{goal:>7.0f}s   "
              f"{tutorial_sleeps()} s of sleeps, unchecked   ({verdict})")
    print("upper bounds (1 s log resolution); 2-core machine shared by every container")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--runtime", choices=("none", "apptainer", "both"), default="both")
    parser.add_argument("--keep", action="store_true", help="leave the Slurm clusters running")
    args = parser.parse_args()
    if not docker_works():
        print("no Docker engine answers: tests/infra/start-dockerd.sh", file=sys.stderr)
        return 1
    if image_id("launcher:cpu") is None:
        print("launcher:cpu missing: run `make image` first", file=sys.stderr)
        return 1
    table: dict[str, list[dict]] = {}
    if args.runtime in ("none", "both"):
        table.update(bench_none(args))
    if args.runtime in ("apptainer", "both"):
        table.update(bench_apptainer(args))
    report(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
