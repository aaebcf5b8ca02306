"""Wall time from command start to CartPole-v1 solved (mean return >= 475).

Runs, side by side in one invocation and over several seeds:
  * `launcher train --env CartPole-v1` with its defaults;
  * the tutorial's configuration (bench/tutorial_trainer.py: RLlib PPO, RLlib's
    default hyperparameters, one env runner, through Tune).
Both are timed the same way: a subprocess is started, its per-iteration lines are
read as they are printed, and the clock stops at the first line whose mean return
is >= 475 (and at the first iteration line for the startup figure). Both use a
20-episode window for the mean return. Prints medians and ratios.

Usage: python bench/solve_time.py [--seeds 0 1 2] [--skip-tutorial] [--timeout 600]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET = 475.0
LAUNCHER_LINE = re.compile(r"iter\s+(\d+)\s+env steps\s+([\d,]+)\s+mean return\s+([-\d.]+)")
TUTORIAL_LINE = re.compile(r"ITER (\d+) (\S+) (\S+)")


def timed_run(cmd: list[str], pattern: re.Pattern, timeout: float) -> dict:
    """Start `cmd`; return seconds to its first iteration and to mean return >= TARGET."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = solved = None
    iters = 0
    tail: list[str] = []
    try:
        for line in proc.stdout:
            tail = (tail + [line])[-20:]
            match = pattern.search(line)
            if not match:
                continue
            now = time.monotonic() - start
            iters = int(match.group(1))
            first = first if first is not None else now
            try:
                ret = float(match.group(3))
            except ValueError:
                continue
            if ret >= TARGET:
                solved = now
                break
            if now > timeout:
                break
    finally:
        proc.wait(timeout=60) if solved else proc.kill()
        proc.wait()
    if first is None:
        sys.stderr.write("".join(tail))
    return {"first_iter_s": first, "solve_s": solved, "iters": iters}


def fmt(value: float | None) -> str:
    return "   -  " if value is None else f"{value:6.1f}"


def median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--skip-tutorial", action="store_true")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    python = sys.executable
    rows = {"launcher defaults": [], "tutorial config": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            cmd = [python, "-m", "launcher", "train", "--env", "CartPole-v1", "--seed", str(seed),
                   "--stop-reward", str(TARGET), "--stop-iters", "300", "-o", tmp]
            rows["launcher defaults"].append(timed_run(cmd, LAUNCHER_LINE, args.timeout))
            print(f"launcher defaults seed {seed}: {rows['launcher defaults'][-1]}", flush=True)
            if args.skip_tutorial:
                continue
            cmd = [python, str(HERE / "tutorial_trainer.py"), "--seed", str(seed),
                   "--storage", tmp]
            rows["tutorial config"].append(timed_run(cmd, TUTORIAL_LINE, args.timeout))
            print(f"tutorial config  seed {seed}: {rows['tutorial config'][-1]}", flush=True)
    print(f"\nCartPole-v1 to mean return {TARGET:g}, seeds {args.seeds}, wall seconds from command start")
    print(f"{'configuration':20} {'first iter (median)':>20} {'solved (median)':>16}  per seed")
    medians = {}
    for name, runs in rows.items():
        if not runs:
            continue
        medians[name] = (median(r["first_iter_s"] for r in runs), median(r["solve_s"] for r in runs))
        per_seed = " ".join(fmt(r["solve_s"]) for r in runs)
        print(f"{name:20} {fmt(medians[name][0]):>20} {fmt(medians[name][1]):>16}  {per_seed}")
    if len(medians) == 2 and all(m[1] for m in medians.values()):
        ratio = medians["tutorial config"][1] / medians["launcher defaults"][1]
        print(f"ratio tutorial / launcher (time to solve): {ratio:.1f}x")


if __name__ == "__main__":
    main()
