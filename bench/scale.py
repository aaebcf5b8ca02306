"""Env steps/s against rollout nodes, for a simulator-like env whose step sleeps 1, 5 or
20 ms and for a CPU-bound one (5 ms of computing a step); each figure next to linear
scaling from one node and the simulator limit (env runners x envs in flight / step time).

  local  `launcher local` with 1, 2, 4 and 8 rollout containers (1 CPU each)
  slurm  `launcher submit --nodes 1 and 3` on the Slurm 22.05 test cluster
         (bench/scale_slurm.py; 2 CPUs a node, so a head and N rollout nodes run 2N + 1
         env runners)

Prints a table and writes scale.png (throughput against nodes, a series per part and env).

    make bench-scale                                   # IMAGE=launcher:cpu by default
    .venv/bin/python bench/scale.py --where local --image launcher:i17 --nodes 1,2 --envs sleep5
    .venv/bin/python bench/scale.py --where slurm --slurm-nodes 1,3 --seconds 30 --keep

Each run trains PPO for a fixed time with a batch of about 3 s of the simulator limit (at
most MAX_BATCH env steps), and
the figure is the median env steps/s of its iterations after the first (progress.csv's
env_steps_per_s); env runners and envs in flight come from the run's config.json. Needs
the Docker engine and an image of this tree; a part that cannot run says why in a line.
"""

from __future__ import annotations

import argparse
import csv
import json
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
MAX_BATCH = 12_000  # the limit of a fast env (1 ms, 8 nodes: 64,000 steps/s) is far past 2 cores
WHERE = ("local", "slurm")


def computing(env: str) -> bool:
    """Whether the env's step computes (one env at a time per CPU) rather than waits."""
    return ENVS[env][0] == "BusyCartPole"


def in_flight(env: str, envs_per_runner: int | None) -> int:
    """Envs stepping at once per runner: as asked, else the launcher's choice (vectorize.py)."""
    if envs_per_runner:
        return envs_per_runner
    from launcher.training.vectorize import ENVS_IN_FLIGHT

    return 1 if computing(env) else ENVS_IN_FLIGHT


def run_args(env: str, runners: int, envs_per_runner: int | None) -> list[str]:
    """The training flags of one run, its batch sized to SECONDS_PER_BATCH of the limit."""
    cls, step_ms = ENVS[env]
    limit = runners * in_flight(env, envs_per_runner) * 1000.0 / step_ms
    batch = min(max(int(limit * SECONDS_PER_BATCH), 64), MAX_BATCH)
    keys = ["--set", f"train_batch_size_per_learner={batch}", "--set", f"minibatch_size={min(batch, 256)}",
            "--set", "num_epochs=1"]
    if envs_per_runner:
        keys += ["--set", f"num_envs_per_env_runner={envs_per_runner}"]
    return ["--env", f"{ENV_FILE}:{cls}", "--env-config", f"step_ms={step_ms}", "--algo", "PPO",
            "--seed", "0", "--checkpoint-every", "0", *keys]


def measured(run_dir: Path, env: str) -> dict | None:
    """Median env steps/s after the first iteration, and the limit of the run's env runners."""
    with (run_dir / "progress.csv").open(newline="") as fh:
        # After the first iteration; not the one --stop-time cut (its samples were dropped).
        rows = [r for r in csv.DictReader(fh) if r.get("iteration_cut") != "True"]
    rates = [float(r["env_steps_per_s"]) for r in rows][1:]
    if not rates:
        print(f"  {env}: one iteration or none in {run_dir}: raise --seconds")
        return None
    config = json.loads((run_dir / "config.json").read_text())
    runners = max(int(config.get("num_env_runners") or 0), 1)  # 0: the driver's own env runner
    envs = int(config.get("num_envs_per_env_runner") or 1)
    # A computing env steps one at a time per CPU, however many are in flight.
    stepping = 1 if computing(env) else envs
    return {"rate": statistics.median(rates), "runners": runners, "envs": envs,
            "limit": runners * stepping * 1000.0 / ENVS[env][1]}


def local_run(image: str, nodes: int, env: str, envs_per_runner: int | None, seconds: float) -> dict | None:
    prefix = f"lt-scale-{secrets.token_hex(3)}"
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as output:
        cmd = [sys.executable, "-m", "launcher", "local", "--nodes", str(nodes), "--cpus-per-node", "1",
               "--image", image, "--prefix", prefix, "--output", output, "--name", "scale",
               "--stop-time", str(seconds), *run_args(env, nodes, envs_per_runner)]
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        run_dir = Path(output) / "scale"
        if proc.returncode != 0 or not (run_dir / "progress.csv").exists():
            print(f"  {env} x{nodes}: exit {proc.returncode}: {proc.stdout[-400:]} {proc.stderr[-400:]}")
            return None
        return measured(run_dir, env)


def local_part(args, report) -> None:
    import scale_slurm  # bench/ is on the path when run as a script

    why = scale_slurm.unavailable(args.image)
    if why:
        print(f"local: skipped: {why}")
        return
    for env in args.envs.split(","):
        for nodes in args.node_counts:
            report("local", env, nodes, local_run(args.image, nodes, env, args.envs_per_runner, args.seconds))


def slurm_part(args, report) -> None:
    import scale_slurm

    why = scale_slurm.unavailable()
    if why:
        print(f"slurm: skipped: {why}")
        return

    def work(cluster):
        for env in args.slurm_envs.split(","):
            for nodes in args.slurm_node_counts:
                flags = run_args(env, scale_slurm.expected_runners(nodes), args.envs_per_runner)
                run_dir = scale_slurm.one_run(cluster, nodes, flags, args.seconds)
                report("slurm", env, nodes, measured(run_dir, env) if run_dir else None)
    scale_slurm.with_cluster(args.keep, work)


def plot(table: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (where, env), rows in table.items():
        nodes = sorted(rows)
        style = "-" if where == "local" else "--"
        line, = ax.plot(nodes, [rows[n]["rate"] for n in nodes], marker="o", ls=style,
                        label=f"{where} {env} measured")
        ax.plot(nodes, [rows[n]["limit"] for n in nodes], ls=":", color=line.get_color(),
                label=f"{where} {env} simulator limit")
    ax.set_xlabel("rollout nodes (local: 1 CPU each; Slurm: 2 CPUs each, plus the head's)")
    ax.set_ylabel("env steps/s")
    ax.set_xscale("log", base=2)
    ticks = sorted({n for rows in table.values() for n in rows})
    ax.set_xticks(ticks, [str(n) for n in ticks])
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.set_title("throughput against rollout nodes")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def reporter(table: dict):
    """report(where, env, nodes, result): keep the row and print it with linear and limit."""
    def report(where: str, env: str, nodes: int, result: dict | None) -> None:
        if result is None:
            return
        rows = table.setdefault((where, env), {})
        rate, limit = result["rate"], result["limit"]
        linear = (rows[min(rows)]["rate"] / min(rows) if rows else rate / nodes) * nodes
        rows[nodes] = result
        print(f"{where:<7}{env:<9}{nodes:>6}{rate:>10.0f}{linear:>9.0f}{100 * rate / linear:>6.0f}%"
              f"{limit:>9.0f}{100 * rate / limit:>8.0f}%   {result['runners']} x {result['envs']}"
              f"   load {os.getloadavg()[0]:.1f}", flush=True)
    return report


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--where", default=",".join(WHERE), help="local, slurm or both (default)")
    parser.add_argument("--image", default=os.environ.get("LAUNCHER_TEST_IMAGE", "launcher:cpu"),
                        help="image of `launcher local` (the Slurm cluster runs lt-slurm-node)")
    parser.add_argument("--nodes", default="1,2,4,8", help="rollout containers (local)")
    parser.add_argument("--envs", default=",".join(ENVS), help="envs (local)")
    parser.add_argument("--slurm-nodes", default="1,3", help="rollout nodes (slurm)")
    parser.add_argument("--slurm-envs", default="sleep5", help="envs (slurm)")
    parser.add_argument("--envs-per-runner", type=int, default=None,
                        help="num_envs_per_env_runner (default: the launcher's choice)")
    parser.add_argument("--seconds", type=float, default=30.0, help="training time per run")
    parser.add_argument("--keep", action="store_true", help="leave the Slurm test cluster running")
    parser.add_argument("--png", default="scale.png")
    args = parser.parse_args()
    args.where = args.where.split(",")
    names = [*args.envs.split(","), *args.slurm_envs.split(",")]
    for bad, what in ((set(args.where) - set(WHERE), "--where"), (set(names) - set(ENVS), "env")):
        if bad:
            parser.error(f"unknown {what} {', '.join(sorted(bad))}; choose from "
                         f"{', '.join(WHERE if what == '--where' else ENVS)}")
    for option, value in (("--nodes", args.nodes), ("--slurm-nodes", args.slurm_nodes)):
        if not all(n.isdigit() and int(n) > 0 for n in value.split(",")):
            parser.error(f"{option} {value}: give whole numbers from 1, comma-separated")
    args.node_counts = [int(n) for n in args.nodes.split(",")]
    args.slurm_node_counts = [int(n) for n in args.slurm_nodes.split(",")]
    return args


def main() -> int:
    args = parse()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"{'where':<7}{'env':<9}{'nodes':>6}{'steps/s':>10}{'linear':>9}{'% lin':>7}{'limit':>9}"
          f"{'% limit':>9}   runners x envs in flight")
    table: dict = {}
    report = reporter(table)
    if "local" in args.where:
        local_part(args, report)
    if "slurm" in args.where:
        slurm_part(args, report)
    if table:
        plot(table, Path(args.png))
        print(f"plot: {args.png}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0 if table else 1


if __name__ == "__main__":
    sys.exit(main())
