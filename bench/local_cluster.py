"""`launcher local` figures: command start -> all nodes joined (goal <= 8 s) for a head
and 2 rollout containers, and the whole smoke run (CartPole-v1 to a mean return of 475
across 2 rollout containers, goal <= 60 s).

    make bench-local            # 3 runs; or: .venv/bin/python bench/local_cluster.py [--runs N]

Times are taken here, when each line of `launcher local` arrives, so they include
container creation and every `ray start`. Needs the Docker engine and `make image`.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time

GOAL_JOIN_S, GOAL_SMOKE_S = 8.0, 60.0


def one_run(image: str, output: str) -> dict:
    prefix = f"lt-local-bench-{secrets.token_hex(3)}"
    cmd = [sys.executable, "-m", "launcher", "local", "--nodes", "2", "--cpus-per-node", "1",
           "--image", image, "--prefix", prefix, "--output", output, "--name", prefix,
           "--env", "CartPole-v1", "--stop-reward", "475", "--stop-iters", "60", "--seed", "0"]
    started = time.monotonic()
    figures: dict = {}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        now = time.monotonic() - started
        if "Ray head up" in line:  # the head's `ray start` returned
            figures.setdefault("head_up_s", now)
        elif "all nodes joined" in line:
            figures.setdefault("joined_s", now)
        elif line.startswith("iter ") and "first_iter_s" not in figures:
            figures["first_iter_s"] = now
        elif line.startswith("done:"):
            match = re.search(r"(\d+) iterations", line)
            figures["iterations"] = int(match.group(1)) if match else None
            figures["result"] = line.strip()
    figures["exit"] = proc.wait()
    figures["total_s"] = time.monotonic() - started
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--image", default=os.environ.get("LAUNCHER_TEST_IMAGE", "launcher:cpu"))
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-local-") as output:
        for i in range(args.runs):
            figures = one_run(args.image, output)
            runs.append(figures)
            print(f"run {i + 1}: " + ", ".join(
                f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()),
                flush=True)
    ok = [r for r in runs if r["exit"] == 0]
    if not ok:
        print("no run finished; see the lines above")
        return 1
    join = statistics.median(r["joined_s"] for r in ok)
    total = statistics.median(r["total_s"] for r in ok)
    load = os.getloadavg()[0]
    print(f"\nlauncher local, head + 2 rollout containers (1 CPU each), {os.cpu_count()} cores, "
          f"load average {load:.1f}, median of {len(ok)} run(s):")
    print(f"  command start -> all nodes joined : {join:6.1f} s   (goal <= {GOAL_JOIN_S:.0f} s)")
    print(f"  command start -> first iteration  : "
          f"{statistics.median(r['first_iter_s'] for r in ok):6.1f} s")
    print(f"  smoke run, CartPole-v1 to 475     : {total:6.1f} s   (goal <= {GOAL_SMOKE_S:.0f} s)"
          f"   {ok[0].get('result', '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
