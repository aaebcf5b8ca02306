"""Env steps/s against rollout nodes: `launcher local` with 1, 2, 4 and 8 rollout
containers (1 CPU each) for a simulator-like env whose step sleeps 1, 5 or 20 ms and for
a CPU-bound one (5 ms of computing a step); each figure next to linear scaling from one
node and the simulator limit (nodes x envs in flight / step time). Prints a table and
writes scale.png (throughput against nodes).

    make bench-scale                                   # IMAGE=launcher:cpu by default
    .venv/bin/python bench/scale.py --image launcher:i17 --nodes 1,2 --envs sleep5

Each run trains PPO for a fixed time with a batch of about 3 s of the simulator limit, and
the figure is the median env steps/s of its iterations after the first (progress.csv's
env_steps_per_s). Needs the Docker engine and an image of this tree.
"""

from __future__ import annotations

import argparse
import csv
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENV_FILE = "bench/slow_envs.py"
# name -> (env class, step ms)
ENVS = {"sleep1": ("SleepyCartPole", 1), "sleep5": ("SleepyCartPole", 5),
        "sleep20": ("SleepyCartPole", 20), "cpu5": ("BusyCartPole", 5)}
SECONDS_PER_BATCH = 3.0


def in_flight(env: str, envs_per_runner: int | None) -> int:
    """Envs stepping at once per runner: as asked, else the launcher's choice (vectorize.py)."""
    if envs_per_runner:
        return envs_per_runner
    from launcher.training.vectorize import ENVS_IN_FLIGHT

    return ENVS_IN_FLIGHT if ENVS[env][0] == "SleepyCartPole" else 1


def one_run(image: str, nodes: int, env: str, envs_per_runner: int | None, seconds: float) -> float | None:
    cls, step_ms = ENVS[env]
    limit = nodes * in_flight(env, envs_per_runner) * 1000.0 / step_ms
    batch = max(int(limit * SECONDS_PER_BATCH), 64)
    prefix = f"lt-scale-{secrets.token_hex(3)}"
    keys = ["--set", f"train_batch_size_per_learner={batch}", "--set", f"minibatch_size={min(batch, 256)}",
            "--set", "num_epochs=1"]
    if envs_per_runner:
        keys += ["--set", f"num_envs_per_env_runner={envs_per_runner}"]
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as output:
        cmd = [sys.executable, "-m", "launcher", "local", "--nodes", str(nodes), "--cpus-per-node", "1",
               "--image", image, "--prefix", prefix, "--output", output, "--name", "scale",
               "--env", f"{ENV_FILE}:{cls}", "--env-config", f"step_ms={step_ms}", "--algo", "PPO",
               "--stop-time", str(seconds), "--seed", "0", "--checkpoint-every", "0", *keys]
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        progress = Path(output) / "scale" / "progress.csv"
        if proc.returncode != 0 or not progress.exists():
            print(f"  {env} x{nodes}: exit {proc.returncode}: {proc.stdout[-400:]} {proc.stderr[-400:]}")
            return None
        with progress.open(newline="") as fh:
            rates = [float(r["env_steps_per_s"]) for r in csv.DictReader(fh)][1:]
    return statistics.median(rates) if rates else None


def plot(table: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for env, rows in table.items():
        nodes = sorted(rows)
        measured = [rows[n]["rate"] for n in nodes]
        line, = ax.plot(nodes, measured, marker="o", label=f"{env} measured")
        ax.plot(nodes, [rows[n]["limit"] for n in nodes], ls=":", color=line.get_color(),
                label=f"{env} simulator limit")
    ax.set_xlabel("rollout nodes (1 CPU each)")
    ax.set_ylabel("env steps/s")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.set_title("launcher local: throughput against rollout nodes")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=os.environ.get("LAUNCHER_TEST_IMAGE", "launcher:cpu"))
    parser.add_argument("--nodes", default="1,2,4,8")
    parser.add_argument("--envs", default=",".join(ENVS))
    parser.add_argument("--envs-per-runner", type=int, default=None,
                        help="num_envs_per_env_runner (default: the launcher's choice)")
    parser.add_argument("--seconds", type=float, default=30.0, help="training time per run")
    parser.add_argument("--png", default="scale.png")
    args = parser.parse_args()
    node_counts = [int(n) for n in args.nodes.split(",")]
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; image {args.image}")
    print(f"{'env':<9}{'nodes':>6}{'steps/s':>10}{'linear':>9}{'% lin':>7}{'limit':>9}{'% limit':>9}")
    table: dict = {}
    for env in args.envs.split(","):
        step_ms = ENVS[env][1]
        for nodes in node_counts:
            rate = one_run(args.image, nodes, env, args.envs_per_runner, args.seconds)
            if rate is None:
                continue
            rows = table.setdefault(env, {})
            base = rows[min(rows)]["rate"] / min(rows) if rows else rate / nodes
            limit = nodes * in_flight(env, args.envs_per_runner) * 1000.0 / step_ms
            rows[nodes] = {"rate": rate, "limit": limit}
            print(f"{env:<9}{nodes:>6}{rate:>10.0f}{base * nodes:>9.0f}{100 * rate / (base * nodes):>6.0f}%"
                  f"{limit:>9.0f}{100 * rate / limit:>8.0f}%", flush=True)
    if table:
        plot(table, Path(args.png))
        print(f"plot: {args.png}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0 if table else 1


if __name__ == "__main__":
    sys.exit(main())
