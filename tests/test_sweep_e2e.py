"""Sweeps for real on an embedded Ray (issue 13), through the real command as a user
types it: a 2 x 2 sweep (2 learning rates x 2 seeds) stopped in the middle by Slurm's
time-limit warning (SIGUSR1) and resumed with `--resume SWEEP_DIR`; `results` and `plot`
on the sweep; a trial whose env raises on step 500 fails alone and `--retry-failed`
runs it again; an RLlib experiment file with `grid_search` trains as a sweep.

Marked slow: each test trains (tens of seconds on 2 cores).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

import launcher
from launcher.training import sweep_record
from tests.conftest import LAUNCHER, progress_rows

pytestmark = pytest.mark.slow
SMALL_PPO = ["--set", "train_batch_size_per_learner=256", "--set", "minibatch_size=64",
             "--set", "num_envs_per_env_runner=1"]
FAILING_ENV = textwrap.dedent("""
    import gymnasium as gym

    class FailingCartPole(gym.Wrapper):
        def __init__(self, config=None):
            super().__init__(gym.make("CartPole-v1"))
            self.fail_at = (config or {}).get("fail_at")
            self.steps = 0

        def step(self, action):
            self.steps += 1
            if self.fail_at and self.steps >= self.fail_at:
                raise RuntimeError(f"env failed on step {self.steps}")
            return self.env.step(action)
""")


def start_driver(cwd: Path, *args: str) -> subprocess.Popen:
    """`launcher train ARGS` in a process of its own (the signal must reach a real driver)."""
    package_root = Path(launcher.__file__).resolve().parent.parent  # the launcher under test
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package_root), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([*LAUNCHER, "train", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def launcher_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*LAUNCHER, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def finish(proc: subprocess.Popen, timeout: float = 400) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def only_sweep(output: Path) -> Path:
    found = [p for p in output.iterdir() if sweep_record.is_sweep_dir(p)]
    assert len(found) == 1, list(output.iterdir())
    return found[0]


def iterations(run_dir: Path) -> list[int]:
    return [int(r["training_iteration"]) for r in progress_rows(run_dir)]


def logged_iterations(run_dir: Path) -> list[int]:
    lines = (run_dir / "result.json").read_text().splitlines()
    return [json.loads(line)["training_iteration"] for line in lines]


def wait_for_iterations(output: Path, count: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    """Until some trial logged `count` iterations."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        if any(len(progress_rows(p.parent)) >= count for p in output.glob("*/trial-*/progress.csv")):
            return
        time.sleep(0.3)
    pytest.fail("no trial reached its iterations in time")


def test_two_by_two_sweep_stopped_by_the_time_limit_warning_and_resumed(tmp_path):
    proc = start_driver(tmp_path, "--env", "CartPole-v1", "--stop-iters", "10", *SMALL_PPO,
                        "--checkpoint-every", "1", "--output", "out", "--seeds", "2",
                        "--grid", "lr=0.001,0.0003")
    output = tmp_path / "out"
    wait_for_iterations(output, 2, proc)
    proc.send_signal(signal.SIGUSR1)  # what the Slurm job script forwards before the time limit
    code, out = finish(proc)
    assert code == 75, out
    sweep_dir = only_sweep(output)
    assert f"to continue: launcher train --resume {sweep_dir}" in out
    record = sweep_record.read_sweep(sweep_dir)
    assert len(record.trials) == 4 and "2 at a time" in out
    stopped = [t for t in record.trials if t.state == sweep_record.INTERRUPTED]
    assert stopped and {t.state for t in record.trials} <= {sweep_record.INTERRUPTED, sweep_record.PENDING}
    at_stop = {}
    for trial in stopped:  # each checkpointed the last iteration it completed
        run_dir = record.trial_dir(trial)
        at_stop[trial.name] = iterations(run_dir)[-1]
        assert trial.iterations == at_stop[trial.name] < 10
        assert (run_dir / "checkpoints" / f"checkpoint_{at_stop[trial.name]:06d}").is_dir()
        assert trial.stopped_because == "stopped by SIGUSR1"

    code, out = finish(start_driver(tmp_path, "--resume", str(sweep_dir.relative_to(tmp_path))))
    assert code == 0, out
    record = sweep_record.read_sweep(sweep_dir)
    assert [t.state for t in record.trials] == [sweep_record.DONE] * 4
    for trial in record.trials:
        run_dir = record.trial_dir(trial)
        # No iteration ran twice: result.json is appended to, one line per iteration run.
        assert iterations(run_dir) == logged_iterations(run_dir) == list(range(1, 11)), trial.name
        assert (run_dir / "spec.yaml").is_file() and (run_dir / "run.json").is_file()
        assert trial.resumed_from == ([at_stop[trial.name]] if trial.name in at_stop else [])
    assert {(t.config["lr"], t.seed) for t in record.trials} == {
        (0.001, 0), (0.001, 1), (0.0003, 0), (0.0003, 1)}

    shown = launcher_cli(tmp_path, "results", str(sweep_dir), "--json")
    assert shown.returncode == 0, shown.stderr
    configs = json.loads(shown.stdout)["configurations"]
    assert sorted(json.dumps(c["config"]) for c in configs) == ['{"lr": 0.0003}', '{"lr": 0.001}']
    for config in configs:
        final = config["final_return"]
        assert config["done"] == 2 and len(final["values"]) == 2
        assert final["ci95"][0] <= final["mean"] <= final["ci95"][1]
    table = launcher_cli(tmp_path, "results", str(sweep_dir))
    assert "lr=0.001" in table.stdout and "2/2" in table.stdout, table.stdout
    drawn = launcher_cli(tmp_path, "plot", str(sweep_dir), "-o", "sweep.png")
    assert drawn.returncode == 0, drawn.stderr
    assert (tmp_path / "sweep.png").stat().st_size > 1000
    again = launcher_cli(tmp_path, "train", "--resume", str(sweep_dir))
    assert again.returncode == 2 and "nothing to resume" in again.stderr


def test_a_trial_whose_env_raises_fails_alone_and_runs_again_when_asked(tmp_path):
    (tmp_path / "failing.py").write_text(FAILING_ENV)
    code, out = finish(start_driver(
        tmp_path, "--env", "failing.py:FailingCartPole", "--stop-iters", "4", *SMALL_PPO,
        "--output", "out", "--seed", "3", "--grid", "env_config.fail_at=0,500"))
    assert code == 1, out  # a failed trial: the sweep's status says so
    sweep_dir = only_sweep(tmp_path / "out")
    record = sweep_record.read_sweep(sweep_dir)
    by_fail = {t.config["env_config.fail_at"]: t for t in record.trials}
    assert by_fail[0].state == sweep_record.DONE and by_fail[0].iterations == 4
    failed = by_fail[500]
    assert failed.state == sweep_record.FAILED
    assert failed.error == "RuntimeError: env failed on step 500", failed.error
    assert "env failed on step 500" in (record.trial_dir(failed) / "error.txt").read_text()
    assert f"trial {failed.name}: failed: RuntimeError: env failed on step 500" in out

    refused = launcher_cli(tmp_path, "train", "--resume", str(sweep_dir))
    assert refused.returncode == 2 and "--retry-failed" in refused.stderr, refused.stderr
    code, out = finish(start_driver(tmp_path, "--resume", str(sweep_dir), "--retry-failed",
                                    "--num-env-runners", "0"))
    assert code == 1, out  # it fails again, the same way; the done trial is not run again
    record = sweep_record.read_sweep(sweep_dir)
    assert [t.state for t in record.trials] == [sweep_record.DONE, sweep_record.FAILED]
    assert f"trial {failed.name}: started" in out
    assert f"trial {by_fail[0].name}: started" not in out


def test_an_rllib_experiment_file_with_grid_search_trains_as_a_sweep(tmp_path):
    (tmp_path / "cartpole-ppo.yaml").write_text(textwrap.dedent("""
        cartpole-ppo:
            env: CartPole-v1
            run: PPO
            stop:
                training_iteration: 2
            config:
                framework: torch
                lr: {grid_search: [0.001, 0.0005]}
                seed: {grid_search: [1, 2]}
                train_batch_size: 256
                sgd_minibatch_size: 64
                num_envs_per_worker: 1
    """))
    code, out = finish(start_driver(tmp_path, "-f", "cartpole-ppo.yaml", "--output", "out"))
    assert code == 0, out
    assert "sweep: 4 trials" in out
    record = sweep_record.read_sweep(only_sweep(tmp_path / "out"))
    assert sorted((t.config["config.lr"], t.seed) for t in record.trials) == [
        (0.0005, 1), (0.0005, 2), (0.001, 1), (0.001, 2)]
    assert all(t.state == sweep_record.DONE and t.iterations == 2 for t in record.trials)
    first = record.trial_dir(record.trials[0])
    assert "train_batch_size_per_learner: 256" in (first / "spec.yaml").read_text()


SCALED_ENV = textwrap.dedent("""
    import gymnasium as gym

    class ScaledCartPole(gym.Wrapper):
        def __init__(self, config=None):
            super().__init__(gym.make("CartPole-v1"))
            self.scale = (config or {}).get("scale", 1.0)

        def step(self, action):
            obs, reward, terminated, truncated, info = self.env.step(action)
            return obs, reward * self.scale, terminated, truncated, info
""")


def test_early_stopping_ends_the_bad_configuration_at_its_first_rung(tmp_path):
    """ASHA with grace 1 and reduction 2, one trial at a time: the good configuration runs
    to its end and sets the rung; the one whose env pays nothing is stopped soon after
    iteration 1, keeps its checkpoint, and is not continued by --resume."""
    (tmp_path / "scaled.py").write_text(SCALED_ENV)
    code, out = finish(start_driver(
        tmp_path, "--env", "scaled.py:ScaledCartPole", "--stop-iters", "12", *SMALL_PPO,
        "--output", "out", "--seed", "1", "--grid", "env_config.scale=1,0", "--max-concurrent", "1",
        "--early-stop", "asha:1:2"))
    assert code == 0, out
    sweep_dir = only_sweep(tmp_path / "out")
    record = sweep_record.read_sweep(sweep_dir)
    good, bad = record.trials
    assert good.state == sweep_record.DONE and good.iterations == 12
    assert bad.state == sweep_record.STOPPED_EARLY, (bad.state, out)
    # Decided at iteration 1; the driver looks every second, and the stop takes effect at
    # the end of the trial's current iteration: short iterations run a few more.
    assert bad.iterations < 12 and bad.stopped_because.startswith("stopped early at iteration 1")
    assert list((record.trial_dir(bad) / "checkpoints").glob("checkpoint_*"))
    assert record.rungs["1"] == {good.name: pytest.approx(good_first_return(record, good)), bad.name: 0.0}
    shown = launcher_cli(tmp_path, "results", str(sweep_dir), "--json")
    by_scale = {c["config"]["env_config.scale"]: c for c in json.loads(shown.stdout)["configurations"]}
    assert by_scale[0]["stopped_early"] == 1 and by_scale[0]["done"] == 0
    again = launcher_cli(tmp_path, "train", "--resume", str(sweep_dir))
    assert again.returncode == 2 and "nothing to resume" in again.stderr


def good_first_return(record, trial) -> float:
    return float(progress_rows(record.trial_dir(trial))[0]["env_runners/episode_return_mean"])


def test_optuna_proposes_each_trials_values(tmp_path):
    code, out = finish(start_driver(
        tmp_path, "--env", "CartPole-v1", "--stop-iters", "1", *SMALL_PPO, "--output", "out",
        "--sample", "lr=loguniform(1e-4,1e-2)", "--sample", "gamma=choice(0.9,0.99)", "--trials", "3",
        "--search", "optuna", "--max-concurrent", "1"))
    assert code == 0, out
    record = sweep_record.read_sweep(only_sweep(tmp_path / "out"))
    assert [t.state for t in record.trials] == [sweep_record.DONE] * 3
    for trial in record.trials:
        assert 1e-4 <= trial.config["lr"] <= 1e-2 and trial.config["gamma"] in (0.9, 0.99)
        spec = (record.trial_dir(trial) / "spec.yaml").read_text()
        assert f"lr: {trial.config['lr']}" in spec, spec
