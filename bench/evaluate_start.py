"""Seconds from `launcher evaluate` start to its first finished episode.

Trains a short PPO CartPole-v1 run once (2 iterations), then runs
`launcher evaluate RUN_DIR --episodes 1` a few times as a user would (a fresh process
each time) and prints the median of: the whole command (process start to exit: imports,
the restore, one greedy episode, eval.json), and the restore-to-first-episode time that
evaluate records in eval.json (`restore_to_first_episode_s`).

Usage: python bench/evaluate_start.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAUNCHER = [sys.executable, "-m", "launcher"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        subprocess.run([*LAUNCHER, "train", "--env", "CartPole-v1", "--stop-iters", "2", "--seed", "0",
                        "-o", tmp, "--name", "run"], check=True, capture_output=True)
        command, restore = [], []
        for _ in range(args.repeats):
            start = time.monotonic()
            subprocess.run([*LAUNCHER, "evaluate", str(run), "--episodes", "1", "--seed", "0"],
                           check=True, capture_output=True)
            command.append(time.monotonic() - start)
            restore.append(json.loads((run / "eval.json").read_text())["restore_to_first_episode_s"])
    print(f"evaluate, start to first episode (median of {args.repeats}): "
          f"{statistics.median(command):.1f} s for the command, "
          f"{statistics.median(restore):.1f} s of it from restore to the episode's end")


if __name__ == "__main__":
    main()
