"""A run measures its own speed: env steps/s, learner updates/s and seconds per phase in
progress.csv and TensorBoard, a closing line on where the time went; and `--stop-time`
ends a run whose iterations would be long soon after its limit.

Slow: each test trains for real (embedded Ray, RLlib, a few iterations)."""

from __future__ import annotations

import pytest

from launcher.training.throughput import COLUMNS, PhaseClock
from tests.conftest import REPO, only_run_dir, progress_rows, run_launcher

SLOW_ENV = str(REPO / "bench" / "slow_envs.py") + ":SleepyCartPole"


def test_phase_clock_times_the_wrapped_methods_once_when_nested():
    class Runner:
        def sample(self):
            return self.inner()

        def inner(self):
            return sum(range(100_000))

    runner, clock = Runner(), PhaseClock()
    clock.wrap(runner, "sample", "sampling")
    clock.wrap(runner, "inner", "sampling")
    assert runner.sample() == sum(range(100_000))
    seconds, updates = clock.take()
    assert 0 < seconds["sampling"] < 5 and seconds["learning"] == 0 and updates is None
    assert clock.take()[0]["sampling"] == 0  # taken: the next iteration starts from zero


@pytest.mark.slow
@pytest.mark.parametrize("algo, env, keys", [
    ("PPO", "CartPole-v1", ["--set", "train_batch_size_per_learner=500", "--set", "minibatch_size=100"]),
    ("DQN", "CartPole-v1", ["--set", "min_sample_timesteps_per_iteration=400"]),
])
def test_progress_csv_and_tensorboard_carry_the_runs_throughput(tmp_path, algo, env, keys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    proc = run_launcher("train", "--algo", algo, "--env", env, "--stop-iters", "3", "--seed", "0",
                        *keys, "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = only_run_dir(tmp_path)
    rows = progress_rows(run_dir)
    assert len(rows) == 3 and all(column in rows[0] for column in COLUMNS)
    previous = 0
    for row in rows:
        steps, wall = int(row["num_env_steps_sampled_lifetime"]), float(row["time_this_iter_s"])
        rate = float(row["env_steps_per_s"])
        # The rate is this iteration's new steps over its wall time (the loop's own clock).
        assert rate == pytest.approx((steps - previous) / wall, rel=0.25), row
        previous = steps
        phases = [float(row[c]) for c in ("sampling_s", "replay_s", "learning_s", "other_s")]
        assert min(phases) >= 0 and sum(phases) == pytest.approx(wall, rel=0.25, abs=0.05)
        assert float(row["sampling_s"]) > 0
    # Past DQN's warm-up the learner updates; PPO updates every iteration.
    assert float(rows[-1]["learner_updates_per_s"]) > 0 and float(rows[-1]["learning_s"]) > 0
    if algo == "DQN":
        assert float(rows[-1]["replay_s"]) > 0
    events = EventAccumulator(str(run_dir))
    events.Reload()
    assert {"ray/tune/env_steps_per_s", "ray/tune/learner_updates_per_s"} <= set(events.Tags()["scalars"])
    line = next(line for line in proc.stdout.splitlines() if line.startswith("time: sampling"))
    assert "learning" in line and "env steps/s" in line


@pytest.mark.slow
def test_stop_time_ends_a_run_of_long_iterations_soon_after_its_limit(tmp_path):
    # DQN's default iteration is 1000 env steps; one env at 20 ms a step: over 20 s.
    proc = run_launcher("train", "--algo", "DQN", "--env", SLOW_ENV, "--env-config", "step_ms=20",
                        "--set", "num_envs_per_env_runner=1", "--stop-time", "5", "--seed", "0",
                        "-o", str(tmp_path), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = progress_rows(only_run_dir(tmp_path))
    assert "reached the time limit of 5 s" in proc.stdout
    assert float(rows[-1]["time_total_s"]) <= 5 + 5, rows[-1]
    assert int(rows[-1]["num_env_steps_sampled_lifetime"]) < 1000  # not one default iteration


# PPO samples its whole batch, then learns: one env at 20 ms a step, 1000 steps a batch,
# is an iteration of over 20 s. The deadline (training/deadline.py) cuts it 2 s past the limit.
LONG_PPO_ITERATIONS = ["--algo", "PPO", "--env", SLOW_ENV, "--env-config", "step_ms=20",
                       "--set", "num_envs_per_env_runner=1", "--set", "train_batch_size_per_learner=1000",
                       "--set", "minibatch_size=100", "--stop-time", "6", "--seed", "0"]


@pytest.mark.slow
@pytest.mark.parametrize("runners", [0, 1])
def test_stop_time_cuts_a_ppo_iteration_that_runs_past_the_limit(tmp_path, runners):
    proc = run_launcher("train", *LONG_PPO_ITERATIONS, "--set", f"num_env_runners={runners}",
                        "-o", str(tmp_path / "runs"), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = only_run_dir(tmp_path / "runs")
    done = next(line for line in proc.stdout.splitlines() if line.startswith("done:"))
    assert "reached the time limit of 6 s (iteration 1 cut at" in done and "1 iterations" in done
    rows = progress_rows(run_dir)
    assert len(rows) == 1 and rows[0]["iteration_cut"] == "True"
    assert 6 <= float(rows[0]["time_total_s"]) <= 6 + 5, rows[0]
    checkpoint = run_dir / "checkpoints" / "checkpoint_000001"
    assert (checkpoint / "rllib_checkpoint.json").is_file() and (checkpoint / "learner_group").is_dir()
    if runners:
        return
    # The checkpoint of the cut run restores: a greedy episode on it.
    proc = run_launcher("evaluate", str(checkpoint), "--episodes", "1", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "over 1 episodes" in proc.stdout
    # The run is complete: resuming it with the same limit trains nothing.
    proc = run_launcher("train", "--resume", str(run_dir), timeout=60)
    assert proc.returncode == 0 and "is complete (reached the time limit of 6 s)" in proc.stdout, (
        proc.stdout + proc.stderr)
