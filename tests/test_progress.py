"""What `launcher train` shows: the target, one row per iteration and a live bar on a
terminal (read from a real pseudo-terminal, tmux), plain lines elsewhere; and no Ray or
Gym start-up noise (training/stderr_filter.py, ray_session.py)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from rich.console import Console

from launcher.training.progress import Reporter, Tracker, target_line
from launcher.training.settings import Stop
from tests.conftest import LAUNCHER, REPO, free_port, only_run_dir, require

ROW = re.compile(r"^iter +\d+  env steps +[\d,]+  mean return +(-|-?[\d.]+) +[\d,]+ steps/s +[\d.]+ s$")


def _settings(**stop) -> types.SimpleNamespace:
    return types.SimpleNamespace(algo="PPO", env="CartPole-v1", framework="torch", stop=Stop(**stop))


def _row(iteration: int, steps: int, ret: float | None, train_s: float) -> dict:
    return {"training_iteration": iteration, "num_env_steps_sampled_lifetime": steps,
            "episode_return_mean": ret, "time_total_s": train_s}


def _summary(run_dir: str, interrupted: bool = False) -> types.SimpleNamespace:
    return types.SimpleNamespace(stopped_because="reached 2 iterations", iterations=2, env_steps=4000,
                                 best_return=30.0, last_return=30.0, wall_s=5.0, run_dir=run_dir,
                                 checkpoint=f"{run_dir}/checkpoints/checkpoint_000002",
                                 interrupted=interrupted)


# --- the target and the criteria's progress --------------------------------------------------
@pytest.mark.parametrize("stop, line", [
    ({"iters": 100, "reward": 475.0}, "target: 100 iterations or mean return 475, whichever comes first"),
    ({"iters": 1}, "target: 1 iteration"),
    ({"timesteps": 50000, "time_s": 600.0},
     "target: 50,000 env steps or 600 s of training, whichever comes first"),
    ({}, "target: none (stop with Ctrl-C)"),
])
def test_the_target_line(stop, line):
    assert target_line(Stop(**stop)) == line


def test_the_bar_follows_the_criterion_nearest_completion():
    tracker = Tracker(Stop(iters=100, reward=100.0), started=0.0, resumed=False)
    first = tracker.legs(_row(1, 1000, 10.0, 1.0), now=1.0)
    assert [round(leg.fraction, 2) for leg in first] == [0.01, 0.0]
    later = tracker.legs(_row(10, 10000, 91.0, 10.0), now=10.0)
    nearest = max(later, key=lambda leg: leg.fraction)
    assert nearest.label == "mean return 91.0/100" and round(nearest.fraction, 2) == 0.9
    # 9 iterations in 9 s: 90 to go; the return rose 81 in 9 s: 1 s to go.
    assert round(later[0].eta_s) == 90 and round(later[1].eta_s) == 1


def test_time_and_env_step_criteria_and_their_estimates():
    tracker = Tracker(Stop(timesteps=10000, time_s=60.0), started=0.0, resumed=False)
    legs = tracker.legs(_row(1, 2000, None, 15.0), now=20.0)
    assert legs[0].label == "env steps 2,000/10,000" and legs[0].fraction == 0.2
    assert legs[0].eta_s == pytest.approx(80.0)  # 2000 steps in the first 20 s
    assert legs[1].label == "time 15/60 s" and legs[1].eta_s == 45.0
    resumed = Tracker(Stop(iters=10), started=0.0, resumed=True)
    assert resumed.legs(_row(6, 0, None, 0.0), now=5.0)[0].eta_s is None  # no rate yet


def test_a_return_that_falls_has_no_estimate():
    tracker = Tracker(Stop(reward=-100.0), started=0.0, resumed=False)
    tracker.legs(_row(1, 10, -1500.0, 1.0), now=1.0)
    leg = tracker.legs(_row(2, 20, -1600.0, 2.0), now=2.0)[0]
    assert leg.fraction == 0.0 and leg.eta_s is None


# --- plain lines: logs, pipes, cluster heads --------------------------------------------------
def test_plain_output_is_one_line_per_iteration_in_todays_format():
    out = io.StringIO()
    reporter = Reporter(Console(file=out, width=300), live=False, resume_command="launcher train --resume")
    reporter.start(_settings(iters=2), "/runs/r1", 0)
    reporter.update(_row(1, 2000, 20.5, 1.0), 3.0)
    reporter.update(_row(2, 4000, None, 2.0), 4.0)
    reporter.finish(_summary("/runs/r1", interrupted=True))
    lines = out.getvalue().splitlines()
    assert lines[0] == "training PPO on CartPole-v1 (torch) -> /runs/r1"
    assert lines[1] == "target: 2 iterations"
    assert all(ROW.match(line) for line in lines[2:4]), lines
    assert lines[2].startswith("iter    1  env steps     2,000  mean return     20.5")
    assert lines[4].startswith("done: reached 2 iterations; 2 iterations, 4,000 env steps")
    assert lines[-1] == "stopped after a checkpoint; continue with: launcher train --resume /runs/r1"
    assert "\x1b" not in out.getvalue()


def test_a_reporter_without_a_resume_command_prints_none():
    out = io.StringIO()
    reporter = Reporter(Console(file=out, width=300), live=False)
    reporter.start(_settings(iters=2), "/runs/r1", 0)
    reporter.finish(_summary("/runs/r1", interrupted=True))
    assert "continue with" not in out.getvalue()


def test_the_live_display_on_a_terminal_console():
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True, color_system=None)
    reporter = Reporter(console)
    assert reporter.live
    reporter.start(_settings(iters=4), "/runs/r1", 0)
    time.sleep(0.6)
    reporter.update(_row(1, 2000, 20.0, 0.5), 1.0)
    time.sleep(0.6)
    reporter.finish(_summary("/runs/r1"))
    text = out.getvalue()
    assert "iterations 1/4" in text and "━" in text and "25%" in text and "ETA " in text
    assert text.count("iter    1  env steps") == 1  # the row is printed once, above the bar


def test_the_live_display_stops_at_exit_when_training_crashes(tmp_path):
    """The bar hides the cursor: a run that dies before finish() must still show it again."""
    code = ("import types\nfrom rich.console import Console\n"
            "from launcher.training.progress import Reporter\n"
            "from launcher.training.settings import Stop\n"
            "r = Reporter(Console(force_terminal=True))\n"
            "s = types.SimpleNamespace(algo='PPO', env='E', framework='torch', stop=Stop(iters=3))\n"
            "r.start(s, 'd', 0)\n"
            "raise SystemExit(3)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, timeout=60)
    assert proc.returncode == 3
    assert proc.stdout.rstrip().endswith(b"\x1b[?25h"), proc.stdout[-200:]  # cursor shown again


# --- Ray's C++ chatter on stderr ---------------------------------------------------------------
FILTERED = r"""
import os, sys
from launcher.training import stderr_filter
assert stderr_filter.install()
w = lambda text: os.write(2, text.encode())
w("[2026-01-01 10:00:00,000 E 1 1] core_worker.cc:2465: Actor with class name: 'SingleAgentEnvRunner' "
  "and ID: 'ab' has constructor arguments in the object store and max_restarts > 0. If ...\n")
w("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
w("I0000 00:00:1796057490.346631   28389 port.cc:153] oneDNN custom operations are on.\n")
for _ in range(3):
    w("[2026-01-01 10:00:05,000 W 1 1] rpc_client.h:153: Failed to connect to GCS at address "
      "1.2.3.4:1 within 5 seconds.\n")
    w("[2026-01-01 10:00:35,000 W 1 1] gcs_client.cc:210: Failed to get cluster ID from GCS server: "
      "TimedOut\n")
w("[2026-01-01 10:00:40,000 E 1 1] raylet_client.cc:1: something Ray really wants you to see\n")
print("a Python error line", file=sys.stderr)
w("a prompt without newline")
if sys.argv[1] == "crash":
    os._exit(9)
"""


@pytest.mark.parametrize("ending", ["exit", "crash"])
def test_the_stderr_filter_drops_known_noise_and_keeps_the_rest(ending):
    proc = subprocess.run([sys.executable, "-c", FILTERED, ending], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == (9 if ending == "crash" else 0), proc.stderr
    deadline = time.monotonic() + 5  # after a crash the filter process flushes on its own
    while time.monotonic() < deadline and not proc.stderr.endswith("newline"):
        time.sleep(0.1)
    assert proc.stderr.splitlines() == [
        "note: the Ray cluster does not answer yet; Ray keeps retrying (its retry lines are hidden)",
        "[2026-01-01 10:00:40,000 E 1 1] raylet_client.cc:1: something Ray really wants you to see",
        "a Python error line",
        "a prompt without newline",
    ]


def test_raw_stderr_on_request():
    code = "import os\nfrom launcher.training import stderr_filter\nprint(stderr_filter.install())\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "LAUNCHER_RAW_STDERR": "1"})
    assert proc.stdout.strip() == "False"


# --- the real command under a pseudo-terminal ----------------------------------------------------
def _screen(session: str) -> list[str]:
    out = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True)
    return [line.rstrip() for line in out.stdout.splitlines() if line.strip()]


@pytest.mark.slow
def test_train_in_a_terminal_shows_rows_a_bar_and_a_ticking_clock(tmp_path):
    require(shutil.which("tmux") is not None, "tmux is not installed (apt-get install tmux)")
    session = f"launcher-test-{free_port()}"
    command = " ".join([*LAUNCHER, "train", "--stop-iters", "3", "--seed", "0",
                        "-o", str(tmp_path / "out"), "--set", "num_epochs=4"])
    done = tmp_path / "exit_status"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "250", "-y", "40",
                    "-c", str(REPO), f"{command}; echo $? > {done}; sleep 600"], check=True)
    clocks, bars = set(), []
    try:
        deadline = time.monotonic() + 300
        while not done.exists() and time.monotonic() < deadline:
            for line in _screen(session):
                if "ETA " in line:
                    bars.append(line)
                    clocks.add(re.findall(r"(\d+:\d\d:\d\d) ETA", line)[0])
            time.sleep(0.25)
        final = _screen(session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    assert done.exists() and done.read_text().strip() == "0", final
    run_dir = only_run_dir(tmp_path / "out")
    assert f"training PPO on CartPole-v1 (torch) -> {run_dir}" in final
    assert "target: 3 iterations" in final
    rows = [line for line in final if line.startswith("iter ")]
    assert [int(row.split()[1]) for row in rows] == [1, 2, 3] and all(ROW.match(r) for r in rows), final
    bar = next(line for line in final if "ETA " in line)
    assert bar.startswith("iterations 3/3 ") and "━" in bar and "100%" in bar, final
    assert len(clocks) >= 2, f"the elapsed time did not tick: {sorted(clocks)}"
    assert any("━" in b and "%" in b for b in bars)
    done_line = next(i for i, line in enumerate(final) if line.startswith("done:"))
    assert final.index(rows[-1]) < final.index(bar) < done_line


# --- start-up noise -----------------------------------------------------------------------------
@pytest.mark.slow
def test_train_prints_no_start_up_noise(tmp_path):
    """An old-gym env (imports gym: its 'unmaintained' banner) with an env runner actor
    (Ray's core_worker.cc object-store warning): stderr stays empty."""
    proc = subprocess.run([*LAUNCHER, "train", "--env", "examples/custom_env.py:BasicEnv",
                           "--stop-iters", "1", "--num-env-runners", "1", "--set",
                           "train_batch_size_per_learner=256", "--set", "minibatch_size=64",
                           "-o", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == "", proc.stderr
    assert "iter    1" in proc.stdout


@pytest.mark.slow
def test_a_head_that_does_not_answer_as_ray_is_one_note_and_one_error(tmp_path):
    """Something accepts TCP at the address but is no Ray head: Ray retries for a while;
    the user sees one note instead of its retry lines, then the error; no run dir is left."""
    import socket

    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(64)
    port = sink.getsockname()[1]
    try:
        started = time.monotonic()
        proc = subprocess.run([*LAUNCHER, "train", "--address", f"127.0.0.1:{port}",
                               "-o", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=600)
        took = time.monotonic() - started
    finally:
        sink.close()
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, proc.stderr
    assert lines[0].startswith("note: the Ray cluster does not answer yet"), lines
    assert len(lines) == 2, lines
    assert lines[1].startswith(f"error: cannot connect to the Ray cluster at 127.0.0.1:{port}")
    assert took < 240, took
    assert not any(Path(tmp_path).iterdir())
