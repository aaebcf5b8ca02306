"""Sweeps for real on an embedded Ray (issue 13): a 2 x 2 sweep (2 learning rates x 2
seeds) stopped in the middle by Slurm's time-limit warning (SIGUSR1) and resumed; a
trial whose env raises on step 500 fails alone; an RLlib experiment file with
`grid_search` trains as a sweep.

The sweep runs in a process of its own (the signal must reach a real driver), through
the same functions the commands call: training.options -> training.sweep ->
training.sweep_record -> training.trials. Marked slow: each test trains (tens of seconds
on 2 cores).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import launcher
from launcher.results import sweep_stats
from launcher.training import sweep_record
from tests.conftest import progress_rows

pytestmark = pytest.mark.slow
SMALL_PPO = ["train_batch_size_per_learner=256", "minibatch_size=64", "num_envs_per_env_runner=1"]
DRIVER = textwrap.dedent("""
    import json, sys
    from launcher.training.trials import run_sweep
    options = json.loads(sys.argv[1])
    if "resume" in options:
        summary = run_sweep(options["resume"])
    else:
        from launcher.training.options import merge_training_options
        from launcher.training.sweep import search_space
        from launcher.training.sweep_record import check_trials, expand, new_sweep
        space_options = {k: options.pop(k) for k in ("seeds", "grid", "seed_list") if k in options}
        base, space = search_space(merge_training_options(**options), **space_options)
        trials = expand(base, space)
        check_trials(trials)
        summary = run_sweep(new_sweep(base, space, trials).path)
    sys.exit(summary.exit_status)
""")
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


def start_driver(tmp_path: Path, **options) -> subprocess.Popen:
    package_root = Path(launcher.__file__).resolve().parent.parent  # the launcher under test
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package_root), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(options)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


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
    output = tmp_path / "out"
    proc = start_driver(tmp_path, env="CartPole-v1", stop_iters=10, sets=SMALL_PPO, checkpoint_every=1,
                        output=str(output), seeds=2, grid=["lr=0.001,0.0003"])
    wait_for_iterations(output, 2, proc)
    proc.send_signal(signal.SIGUSR1)  # what the Slurm job script forwards before the time limit
    code, out = finish(proc)
    assert code == 75, out
    sweep_dir = only_sweep(output)
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

    code, out = finish(start_driver(tmp_path, resume=str(sweep_dir)))
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

    stats = sweep_stats.sweep_stats(sweep_dir)
    assert sorted(s.label for s in stats) == ["lr=0.0003", "lr=0.001"]
    assert all(len(s.done) == 2 and s.final.half_width is not None for s in stats)
    png = sweep_stats.plot_sweep(sweep_dir, tmp_path / "sweep.png")
    assert png.stat().st_size > 1000


def test_a_trial_whose_env_raises_fails_alone(tmp_path):
    env_file = tmp_path / "failing.py"
    env_file.write_text(FAILING_ENV)
    output = tmp_path / "out"
    code, out = finish(start_driver(
        tmp_path, env=f"{env_file}:FailingCartPole", stop_iters=4, sets=SMALL_PPO, output=str(output),
        seed_list=[3], grid=["env_config.fail_at=0,500"]))
    assert code == 1, out  # a failed trial: the sweep's status says so
    record = sweep_record.read_sweep(only_sweep(output))
    by_fail = {t.config["env_config.fail_at"]: t for t in record.trials}
    assert by_fail[0].state == sweep_record.DONE and by_fail[0].iterations == 4
    failed = by_fail[500]
    assert failed.state == sweep_record.FAILED
    assert failed.error == "RuntimeError: env failed on step 500", failed.error
    assert "env failed on step 500" in (record.trial_dir(failed) / "error.txt").read_text()
    assert f"trial {failed.name}: failed: RuntimeError: env failed on step 500" in out
