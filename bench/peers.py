"""`launcher train` defaults against Stable-Baselines3 with rl-baselines3-zoo's tuned
hyperparameters: command start to the solve threshold, same seeds, interleaved, the
median over seeds; then DQN's and SAC's env steps/s next to SB3's at the same
update-to-data ratio.

    make bench-peers                       # 5 seeds, every task
    .venv/bin/python bench/peers.py --quick            # 1 seed
    .venv/bin/python bench/peers.py --seeds 3 --tasks CartPole-v1,Pendulum-v1

Both sides run as a fresh process, timed here from the spawn to the line that reports
the threshold, so imports and start-up count on both sides. Ours is also split into
phases (imports, settings and env probe, Ray start, algorithm build, first iteration,
training) from the launcher's own `start-up:` line. Needs `pip install 'launcher[bench]'`
(stable-baselines3). A figure is a measurement on a machine: say its load with it.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# task -> (solve threshold, our algorithm, SB3 algorithm, budget in seconds)
TASKS = {
    "CartPole-v1": (475.0, "PPO", "PPO", 240),
    "Acrobot-v1": (-100.0, "PPO", "PPO", 300),
    "Pendulum-v1": (-200.0, "SAC", "SAC", 600),
}
# rl-baselines3-zoo's tuned hyperparameters (DLR-RM/rl-baselines3-zoo, hyperparams/ppo.yml
# and hyperparams/sac.yml; "lin_X" there is a linear schedule from X to 0 over n_timesteps).
ZOO = {
    ("PPO", "CartPole-v1"): dict(n_envs=8, n_timesteps=100_000, normalize=False, kwargs=dict(
        n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
        learning_rate="lin_0.001", clip_range="lin_0.2")),
    ("PPO", "Acrobot-v1"): dict(n_envs=16, n_timesteps=1_000_000, normalize=True, kwargs=dict(
        n_steps=256, gae_lambda=0.94, gamma=0.99, n_epochs=4, ent_coef=0.0)),
    ("SAC", "Pendulum-v1"): dict(n_envs=1, n_timesteps=20_000, normalize=False, kwargs=dict(
        learning_rate=1e-3)),
}
WINDOW = 20  # episodes in the mean return, as the launcher's presets smooth it
ITER_LINE = re.compile(r"^iter\s+\d+\s+env steps\s+([\d,]+)\s+mean return\s+(\S+)")
STARTUP_LINE = re.compile(r"^start-up: (.*)$")


def _lines(cmd: list[str], env: dict | None = None):
    """(seconds since spawn, line) for each line the command prints."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=REPO, env={**os.environ, **(env or {})})
    try:
        for line in proc.stdout:
            yield time.monotonic() - started, line.rstrip()
    finally:
        proc.kill()
        proc.wait()


def ours(task: str, seed: int, output: str) -> dict:
    threshold, algo, _, budget = TASKS[task]
    cmd = [sys.executable, "-m", "launcher", "train", "--algo", algo, "--env", task,
           "--stop-reward", str(threshold), "--stop-time", str(budget), "--seed", str(seed),
           "--checkpoint-every", "0", "-o", output]
    out: dict = {"solved_s": None}
    for now, line in _lines(cmd):
        match = ITER_LINE.match(line)
        if match:
            out.setdefault("first_iteration_s", now)
            ret = match.group(2)
            if ret != "-" and float(ret) >= threshold and out["solved_s"] is None:
                out["solved_s"], out["steps"] = now, int(match.group(1).replace(",", ""))
        startup = STARTUP_LINE.match(line)
        if startup:
            out["startup"] = {name.rsplit(" ", 2)[0]: float(name.rsplit(" ", 2)[1])
                              for name in startup.group(1).split(", ")}
    if "first_iteration_s" in out and "startup" in out:
        out["imports_s"] = out["first_iteration_s"] - sum(out["startup"].values())
    return out


def theirs(task: str, seed: int) -> dict:
    threshold, _, algo, budget = TASKS[task]
    cmd = [sys.executable, __file__, "--sb3-child", task, str(seed), str(budget)]
    out: dict = {"solved_s": None}
    for now, line in _lines(cmd, env={"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}):
        if line.startswith("solved "):
            out["solved_s"], out["steps"] = now, int(line.split()[1])
        elif line.startswith("first update"):
            out.setdefault("first_iteration_s", now)
    return out


def _schedule(value):
    if isinstance(value, str) and value.startswith("lin_"):
        start = float(value[4:])
        return lambda progress_remaining: progress_remaining * start
    return value


def sb3_child(task: str, seed: int, budget: float) -> None:
    """One SB3 run, in its own process: prints 'solved STEPS' at the threshold."""
    import stable_baselines3 as sb3
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    threshold, _, algo, _ = TASKS[task]
    zoo = ZOO[(algo, task)]
    env = make_vec_env(task, n_envs=zoo["n_envs"], seed=seed)
    if zoo["normalize"]:
        env = VecNormalize(env, gamma=zoo["kwargs"].get("gamma", 0.99))
    kwargs = {k: _schedule(v) for k, v in zoo["kwargs"].items()}
    model = getattr(sb3, algo)("MlpPolicy", env, seed=seed, device="cpu", **kwargs)
    deadline = time.monotonic() + budget

    class Solved(BaseCallback):
        def _on_step(self) -> bool:
            episodes = [info["r"] for info in list(self.model.ep_info_buffer)[-WINDOW:]]
            if len(episodes) >= min(WINDOW, 5) and statistics.mean(episodes) >= threshold:
                print(f"solved {self.num_timesteps}", flush=True)
                return False
            return time.monotonic() < deadline

    model.learn(total_timesteps=zoo["n_timesteps"] * 10, callback=Solved())


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _fmt(value, unit=" s"):
    return "  -  " if value is None else f"{value:.1f}{unit}"


def solve_table(tasks: list[str], seeds: list[int]) -> None:
    print(f"{'task':<13}{'seed':>5}  {'ours':>9}  {'SB3 zoo':>9}  ours' phases (s)")
    for task in tasks:
        mine, peer = [], []
        for seed in seeds:  # interleaved: a slow minute on the machine hits both sides
            with tempfile.TemporaryDirectory() as output:
                a = ours(task, seed, output)
            b = theirs(task, seed)
            mine.append(a["solved_s"])
            peer.append(b["solved_s"])
            phases = dict(a.get("startup", {}))
            phases = {"imports": a.get("imports_s"), **phases,
                      "training": (a["solved_s"] - a["first_iteration_s"]) if a["solved_s"] else None}
            shown = ", ".join(f"{k} {_fmt(v, '')}" for k, v in phases.items())
            print(f"{task:<13}{seed:>5}  {_fmt(a['solved_s']):>9}  {_fmt(b['solved_s']):>9}  {shown}",
                  flush=True)
        m, p = _median(mine), _median(peer)
        ratio = f"{m / p:.2f}" if m and p else "-"
        print(f"{task:<13}{'med':>5}  {_fmt(m):>9}  {_fmt(p):>9}  ratio ours/SB3 {ratio} (goal <= 1.0); "
              f"solved {sum(v is not None for v in mine)}/{len(seeds)} vs "
              f"{sum(v is not None for v in peer)}/{len(seeds)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per task (default 5)")
    parser.add_argument("--quick", action="store_true", help="one seed")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task ids")
    parser.add_argument("--skip-solve", action="store_true", help="only the env steps/s table")
    parser.add_argument("--skip-speed", action="store_true", help="only the start -> solved table")
    parser.add_argument("--sb3-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sb3_child:
        task, seed, budget = args.sb3_child
        sb3_child(task, int(seed), float(budget))
        return
    from peers_speed import speed_table  # bench/ is on the path when run as a script

    tasks = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        sys.exit(f"error: unknown task {unknown[0]!r}; valid: {', '.join(TASKS)}")
    seeds = list(range(1 if args.quick else args.seeds))
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    if not args.skip_solve:
        solve_table(tasks, seeds)
    if not args.skip_speed:
        speed_table(seeds[:1] if args.quick else seeds[:3])
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
