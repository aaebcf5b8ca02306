"""Evaluation during training (--eval-every / --eval-episodes) and the best checkpoint:
the settings, the RLlib config, progress.csv's evaluation column, checkpoints/best.

Fast: no training (RLlib's config objects are built, nothing runs). The real trainings
with evaluation are in tests/test_evaluate.py.
"""

from __future__ import annotations

import json

import pytest

from launcher.errors import UserError
from launcher.training import checkpoints, envs
from launcher.training.options import merge_training_options
from launcher.training.rllib_config import build_config
from launcher.training.runlog import EVAL_RETURN_COLUMN, RunLog
from launcher.training.settings import TrainSettings


def test_flags_reach_the_settings_and_are_checked():
    data = merge_training_options(eval_every=5, eval_episodes=3)
    settings = TrainSettings.from_dict(data).validate()
    assert (settings.eval_every, settings.eval_episodes) == (5, 3)
    assert TrainSettings().eval_every == 0  # no evaluation unless asked
    with pytest.raises(UserError, match="--eval-every must be 0 or more"):
        TrainSettings(eval_every=-1).validate()
    with pytest.raises(UserError, match="--eval-episodes must be at least 1"):
        TrainSettings(eval_episodes=0).validate()


def test_the_rllib_config_evaluates_greedily_on_its_own_runner():
    settings = TrainSettings(eval_every=2, eval_episodes=4).validate()
    config = build_config(settings, envs.probe(settings.env), 0)
    assert config.evaluation_interval == 2 and config.evaluation_duration == 4
    assert config.evaluation_duration_unit == "episodes"
    assert config.evaluation_num_env_runners == 0
    assert config.get_evaluation_config_object().explore is False
    config.validate()
    plain = build_config(TrainSettings().validate(), envs.probe("CartPole-v1"), 0)
    assert not plain.evaluation_interval


def result(iteration: int, steps: int, ret: float, evaluation: float | None, interval: int = 2):
    out = {"training_iteration": iteration, "num_env_steps_sampled_lifetime": steps,
           "env_runners": {"episode_return_mean": ret}, "config": {"evaluation_interval": interval}}
    if evaluation is not None:
        out["evaluation"] = {"env_runners": {"episode_return_mean": evaluation}}
    return out


def test_progress_csv_names_the_evaluation_return_only_when_it_evaluated(tmp_path):
    log = RunLog(tmp_path, tensorboard=False)
    log.append(result(1, 100, 10.0, None))
    log.append(result(2, 200, 20.0, 50.0))
    log.append(result(3, 300, 30.0, 50.0))  # RLlib carries the last evaluation along
    log.close()
    rows = RunLog(tmp_path, tensorboard=False).rows
    assert [r[EVAL_RETURN_COLUMN] for r in rows] == ["", "50.0", ""]
    from launcher.results.tables import read_run

    assert read_run(tmp_path).eval_returns == [None, 50.0, None]


class SavingAlgo:
    """Stands in for an RLlib Algorithm: its save_checkpoint writes one file naming the
    iteration (the best-checkpoint logic is file handling; real saves: test_evaluate.py)."""

    iteration = 0

    def save_checkpoint(self, path):
        from pathlib import Path

        (Path(path) / "state").write_text(str(self.iteration))


def test_best_checkpoint_follows_the_evaluation_return(tmp_path):
    best = checkpoints.BestCheckpoint(tmp_path, by_evaluation=True)
    algo = SavingAlgo()
    for iteration, train_ret, eval_ret in [(1, 5.0, None), (2, 9.0, 30.0), (3, 50.0, 20.0),
                                           (4, 60.0, 40.0), (5, 70.0, 40.0)]:
        algo.iteration = iteration
        best.offer(algo, {"training_iteration": iteration, "episode_return_mean": train_ret,
                          EVAL_RETURN_COLUMN: eval_ret})
    path = checkpoints.best_checkpoint(tmp_path)
    assert (path / "state").read_text() == "5"  # of equal scores, the newer
    assert checkpoints.best_info(tmp_path) == {"iteration": 5, "score": 40.0,
                                               "metric": checkpoints.EVALUATION}
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]
    # A resumed run knows the score to beat.
    assert checkpoints.BestCheckpoint(tmp_path, by_evaluation=True).score == 40.0
    assert checkpoints.checkpoint_for_use(tmp_path) == path


def test_without_evaluation_the_training_return_decides(tmp_path):
    best = checkpoints.BestCheckpoint(tmp_path, by_evaluation=False)
    algo = SavingAlgo()
    for iteration, ret in [(1, 5.0), (2, None), (3, 4.0), (4, 7.0)]:
        algo.iteration = iteration
        best.offer(algo, {"training_iteration": iteration, "episode_return_mean": ret})
    assert json.loads((tmp_path / "checkpoints" / "best" / "best.json").read_text())["iteration"] == 4


def test_a_run_that_never_evaluated_keeps_its_final_checkpoint_as_best(tmp_path):
    algo = SavingAlgo()
    algo.iteration = 3
    final = checkpoints.save_checkpoint(algo, tmp_path, 3)
    best = checkpoints.BestCheckpoint(tmp_path, by_evaluation=True)
    best.finish(final, {"training_iteration": 3, "episode_return_mean": 12.0})
    assert checkpoints.best_info(tmp_path) == {"iteration": 3, "score": 12.0,
                                               "metric": checkpoints.TRAINING}
    assert (checkpoints.best_checkpoint(tmp_path) / "state").read_text() == "3"
    # best is not one of the numbered checkpoints: never pruned, never resumed from by name.
    assert checkpoints.checkpoints(tmp_path) == [final]


def test_without_best_the_newest_checkpoint_is_used(tmp_path):
    algo = SavingAlgo()
    for iteration in (1, 2):
        algo.iteration = iteration
        checkpoints.save_checkpoint(algo, tmp_path, iteration)
    assert checkpoints.checkpoint_for_use(tmp_path).name == "checkpoint_000002"
    assert checkpoints.checkpoint_for_use(tmp_path / "none") is None
