"""Slurm: job start -> every Ray node joined, for a head + 3 rollout nodes + 1 learner.

`make bench-slurm` (after `make image`). Runs in the Slurm container cluster of
tests/slurm_cluster.py (started here if it is not running, stopped afterwards unless
it was already up or --keep): `launcher submit --nodes 3 --gpus 1 --stop-iters 1`, a
heterogeneous job of 5 nodes, as a user would on the login node.

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

Goal: <= 10 s. Options: --runs N (default 2), --keep (leave the cluster up).
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
GOAL_S = 10.0


def tutorial_sleeps(rollout_nodes: int = ROLLOUT_NODES) -> int:
    return TUTORIAL_HEAD_SLEEP_S + TUTORIAL_WORKER_SLEEP_S * rollout_nodes


def parse_start(log: str) -> float:
    match = re.search(r"launcher: job \d+ \(restart 0\) on \S+ at (\S+);", log)
    if not match:
        raise RuntimeError("job start line not found in the log")
    stamp = match.group(1).rstrip("Z")
    return dt.datetime.fromisoformat(stamp).replace(tzinfo=dt.timezone.utc).timestamp()


def one_run(cluster: Cluster) -> dict[str, float]:
    name = f"bench-join-{uuid.uuid4().hex[:6]}"
    out = cluster.shared / "bench"
    proc = cluster.launcher("submit", "--nodes", str(ROLLOUT_NODES), "--gpus", "1",
                            "--stop-iters", "1", "--output", str(out), "--name", name)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="leave the Slurm cluster running")
    args = parser.parse_args()
    if not docker_works():
        print("no Docker engine answers: tests/infra/start-dockerd.sh", file=sys.stderr)
        return 1
    if image_id("launcher:cpu") is None:
        print("launcher:cpu missing: run `make image` first", file=sys.stderr)
        return 1
    cluster = Cluster()
    was_up = cluster.is_up()
    if not was_up:
        took = cluster.up()
        print(f"Slurm test cluster up in {took:.1f} s")
    try:
        results = []
        for i in range(args.runs):
            r = one_run(cluster)
            results.append(r)
            print(f"run {i + 1}: job {int(r['job'])}: head Ray up {r['head_s']:5.1f} s, head sees "
                  f"all 5 nodes <= {r['seen_s']:5.1f} s, last `ray start` returned "
                  f"{r['joined_s']:5.1f} s after job start"
                  f"{'' if r['completed'] else '  (job did not complete!)'}")
    finally:
        if not (was_up or args.keep):
            cluster.down()
    best = min(r["seen_s"] for r in results)
    median = statistics.median(r["seen_s"] for r in results)
    print()
    print(f"{'':44}{'launcher':>12}{'tutorial':>12}")
    print(f"{'job start -> head sees all nodes (median)':44}{median:>11.1f}s{'-':>12}")
    print(f"{'job start -> head sees all nodes (best)':44}{best:>11.1f}s{'-':>12}")
    print(f"{'fixed sleeps before the learner starts':44}{0:>11d}s{tutorial_sleeps():>11d}s")
    print(f"{'checks that every node joined':44}{'yes':>12}{'no':>12}")
    print(f"goal <= {GOAL_S:.0f} s: {'met' if median <= GOAL_S else 'NOT met'} (median {median:.1f} s; "
          "2-core machine shared by 5 containers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
