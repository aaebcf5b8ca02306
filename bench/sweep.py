"""Wall time of 4 CartPole-v1 seeds as one sweep against the same 4 runs one after another.

Both sides train the same thing: PPO with the launcher's CartPole-v1 preset, seeds
0..N-1, a fixed number of iterations each (so both do the same work), in one
invocation of this script:
  * one after another: `launcher train --seed S --stop-iters I`, N subprocesses in turn
    (what a user without sweeps runs);
  * as one sweep: `launcher train --seeds N --stop-iters I`, its trials run
    concurrently on one embedded Ray (training/trials.py), sized to this machine.
Each side is timed from its first process start to its last process end. Prints both,
the ratio (one after another / sweep: above 1, the sweep is faster) and the machine's
load average, since other work on the machine skews either side.

Ray starts each trial's actor with OMP_NUM_THREADS=1 (its one CPU), while `launcher
train` lets torch use every core; on a small or busy machine that alone changes the
speed of a run. So the one-after-another side is also timed with OMP_NUM_THREADS=1,
and both ratios are printed.

Usage: python bench/sweep.py [--seeds 4] [--iters 10] [--timeout 1200]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAUNCHER = [sys.executable, "-m", "launcher"]


def run(cmd: list[str], timeout: float, env: dict | None = None) -> float:
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return time.monotonic() - start


def one_after_another(seeds: int, iters: int, out: Path, timeout: float, env: dict | None = None) -> float:
    return sum(run([*LAUNCHER, "train", "--env", "CartPole-v1", "--seed", str(seed), "--stop-iters",
                    str(iters), "-o", str(out), "--name", f"seed{seed}"], timeout, env)
               for seed in range(seeds))


def as_sweep(seeds: int, iters: int, out: Path, timeout: float) -> float:
    return run([*LAUNCHER, "train", "--env", "CartPole-v1", "--seeds", str(seeds), "--stop-iters",
                str(iters), "-o", str(out), "--name", "sweep"], timeout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=1200)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        out = Path(tmp)
        sweep = as_sweep(args.seeds, args.iters, out, args.timeout)
        sequential = one_after_another(args.seeds, args.iters, out / "sequential", args.timeout)
        single = one_after_another(args.seeds, args.iters, out / "sequential-1-thread", args.timeout,
                                   {"OMP_NUM_THREADS": "1"})
    print(f"{args.seeds} CartPole-v1 seeds, {args.iters} PPO iterations each")
    print(f"  {'as one sweep (concurrent trials):':<42} {sweep:7.1f} s")
    for what, seconds in ((f"one after another (launcher train x {args.seeds}):", sequential),
                          ("one after another, OMP_NUM_THREADS=1:", single)):
        print(f"  {what:<42} {seconds:7.1f} s   ratio {seconds / sweep:5.2f}")
    print(f"  load average (1 min) before / after: {load_before:.1f} / {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
