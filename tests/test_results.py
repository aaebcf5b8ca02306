"""`launcher results` / `launcher plot` on progress.csv files, without training."""

from __future__ import annotations

import csv

import pytest

from launcher.errors import UserError
from launcher.results.plots import plot
from launcher.results.tables import read_run, table_rows
from tests.conftest import assert_one_line_error, call_cli


def write_progress(run_dir, rows, columns):
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / "progress.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        writer.writerows(rows)
    return run_dir


@pytest.fixture
def launcher_run(tmp_path):
    columns = ["training_iteration", "num_env_steps_sampled_lifetime", "episode_return_mean",
               "time_total_s"]
    rows = [
        {"training_iteration": 1, "num_env_steps_sampled_lifetime": 2000, "episode_return_mean": "",
         "time_total_s": 1.5},
        {"training_iteration": 2, "num_env_steps_sampled_lifetime": 4000, "episode_return_mean": 80,
         "time_total_s": 3.0},
        {"training_iteration": 3, "num_env_steps_sampled_lifetime": 6000, "episode_return_mean": 60,
         "time_total_s": 4.5},
    ]
    return write_progress(tmp_path / "PPO_run", rows, columns)


@pytest.fixture
def tutorial_run(tmp_path):
    """A progress.csv as the tutorial's Tune trainer wrote it (old column names)."""
    columns = ["episode_reward_mean", "timesteps_total", "training_iteration", "time_total_s"]
    rows = [{"episode_reward_mean": 20 * i, "timesteps_total": 4000 * i, "training_iteration": i,
             "time_total_s": 10.0 * i} for i in range(1, 6)]
    return write_progress(tmp_path / "PPO_CartPole-v0_0_2021-04-29_09-14-573vmq2rio", rows, columns)


def test_table_reads_best_last_steps_time(launcher_run, tutorial_run):
    ours, theirs = table_rows([launcher_run, tutorial_run])
    assert ours == {"run": "PPO_run", "iterations": 3, "env_steps": 6000, "best_return": 80.0,
                    "last_return": 60.0, "time_s": 4.5}
    assert theirs["best_return"] == 100.0 and theirs["env_steps"] == 20000


def test_curve_skips_iterations_without_a_finished_episode(launcher_run):
    assert read_run(launcher_run).returns == [None, 80.0, 60.0]


def test_plot_draws_several_runs(tmp_path, launcher_run, tutorial_run):
    out = plot([launcher_run, tutorial_run], tmp_path / "cmp.png", x="iteration")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_refuses_runs_with_no_episode(tmp_path):
    empty = write_progress(tmp_path / "r", [{"training_iteration": 1, "episode_return_mean": ""}],
                           ["training_iteration", "episode_return_mean"])
    with pytest.raises(UserError, match="no episode has finished"):
        plot([empty], tmp_path / "x.png")


def test_results_command_prints_the_table(capsys, launcher_run):
    code, out, _ = call_cli(capsys, "results", str(launcher_run))
    assert code == 0 and "PPO_run" in out and "80.0" in out and "6,000" in out


def test_results_on_a_directory_without_progress(capsys, tmp_path):
    code, _, err = call_cli(capsys, "results", str(tmp_path))
    assert_one_line_error(code, err, "has no progress.csv")


def test_plot_bad_axis(capsys, launcher_run, tmp_path):
    code, _, err = call_cli(capsys, "plot", str(launcher_run), "--x", "episodes", "-o",
                            str(tmp_path / "p.png"))
    assert_one_line_error(code, err, "unknown x axis 'episodes' for --x; valid: env_steps, iteration, time")
