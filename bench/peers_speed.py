"""Off-policy env steps/s, the launcher's DQN (CartPole-v1) and SAC (Pendulum-v1) with
their presets, next to Stable-Baselines3's at the same update-to-data ratio (gradient
steps per env step) and batch size, both counted once learning has started.

Used by bench/peers.py; alone: .venv/bin/python bench/peers_speed.py [SECONDS]
"""

from __future__ import annotations

import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# algorithm -> (env, our train batch, SB3 learning_starts matching our warm-up)
OFF_POLICY = {"DQN": ("CartPole-v1", 32, 1000), "SAC": ("Pendulum-v1", 256, 256)}
RUN_S = 40


def ours(algo: str, seed: int, seconds: float) -> tuple[float, float]:
    """(env steps/s, updates per env step) once the learner updates, from progress.csv."""
    env = OFF_POLICY[algo][0]
    with tempfile.TemporaryDirectory() as output:
        subprocess.run([sys.executable, "-m", "launcher", "train", "--algo", algo, "--env", env,
                        "--stop-time", str(seconds), "--seed", str(seed), "--checkpoint-every", "0",
                        "-o", output, "--name", "speed"], cwd=REPO, capture_output=True, check=True)
        with open(Path(output) / "speed" / "progress.csv", newline="") as fh:
            # Past the iteration where learning starts (its first env steps had no updates).
            rows = [r for r in csv.DictReader(fh) if float(r["learner_updates_per_s"] or 0) > 0][1:]
    wall = sum(float(r["time_this_iter_s"]) for r in rows)
    steps = sum(float(r["env_steps_per_s"]) * float(r["time_this_iter_s"]) for r in rows)
    updates = sum(float(r["learner_updates_per_s"]) * float(r["time_this_iter_s"]) for r in rows)
    return (steps / wall, updates / steps) if wall and steps else (0.0, 0.0)


def sb3_child(algo: str, seed: int, utd: float, seconds: float) -> None:
    """Prints 'rate STEPS_PER_S' for SB3's algo at `utd` gradient steps per env step."""
    import stable_baselines3 as sb3
    from stable_baselines3.common.callbacks import BaseCallback

    env, batch, starts = OFF_POLICY[algo]
    train_freq, gradient_steps = (max(round(1 / utd), 1), 1) if utd < 1 else (1, max(round(utd), 1))
    model = getattr(sb3, algo)("MlpPolicy", env, seed=seed, device="cpu", batch_size=batch,
                               learning_starts=starts, train_freq=train_freq,
                               gradient_steps=gradient_steps)

    class Clock(BaseCallback):
        began: tuple[float, int] | None = None

        def _on_step(self) -> bool:
            if self.began is None and self.num_timesteps >= starts:
                self.began = (time.monotonic(), self.num_timesteps)
            if self.began and time.monotonic() - self.began[0] >= seconds:
                rate = (self.num_timesteps - self.began[1]) / (time.monotonic() - self.began[0])
                print(f"rate {rate:.1f} train_freq {train_freq} gradient_steps {gradient_steps}",
                      flush=True)
                return False
            return True

    model.learn(total_timesteps=10_000_000, callback=Clock())


def theirs(algo: str, seed: int, utd: float, seconds: float) -> tuple[float, str]:
    proc = subprocess.run([sys.executable, __file__, "--child", algo, str(seed), str(utd), str(seconds)],
                          cwd=REPO, capture_output=True, text=True, check=True,
                          env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    line = next(line for line in proc.stdout.splitlines() if line.startswith("rate "))
    parts = line.split()
    return float(parts[1]), " ".join(parts[2:])


def speed_table(seeds: list[int], seconds: float = RUN_S) -> None:
    print(f"\n{'algorithm':<18}{'ours steps/s':>13}{'SB3 steps/s':>13}{'ratio':>7}  update-to-data")
    for algo, (env, _, _) in OFF_POLICY.items():
        mine, peer, utds, how = [], [], [], ""
        for seed in seeds:
            rate, utd = ours(algo, seed, seconds)
            mine.append(rate)
            utds.append(utd)
            sb3_rate, how = theirs(algo, seed, utd, seconds / 2)
            peer.append(sb3_rate)
        m, p = statistics.median(mine), statistics.median(peer)
        print(f"{algo + ' ' + env:<18}{m:>13.0f}{p:>13.0f}{m / p:>7.2f}  "
              f"{statistics.median(utds):.3f} (SB3: {how}; goal ratio >= 0.5)", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sb3_child(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
    else:
        speed_table([0], float(sys.argv[1]) if len(sys.argv) > 1 else RUN_S)
