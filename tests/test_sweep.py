"""Sweeps without training: the search space's flags and file forms, expansion into
trials, the checks before anything starts, the sweep record, trial sizing and the
statistics of `launcher results SWEEP_DIR` (issue 13)."""

from __future__ import annotations

import csv
import json
import math
import random

import pytest

from launcher.errors import UserError
from launcher.results import sweep_stats
from launcher.training import sweep, sweep_record, trial_sizing, trials
from launcher.training.resources import ClusterPlacement
from launcher.training.sweep import parse_grid, parse_seed_option, search_space
from launcher.training.sweep_values import parse_distribution
from tests.conftest import assert_one_line_error, call_cli

BASE = {"algo": "PPO", "env": "CartPole-v1", "stop": {"iters": 3}}


# --- flags ------------------------------------------------------------------------------
def test_seed_option_is_one_seed_or_a_list():
    assert parse_seed_option("7") == (7, None)
    assert parse_seed_option("1,2,3") == (None, [1, 2, 3])
    assert parse_seed_option("4,") == (None, [4])
    assert parse_seed_option(None) == (None, None)
    for bad in ("a", "-1", "1,1", "1.5"):
        with pytest.raises(UserError, match="--seed"):
            parse_seed_option(bad)


def test_grid_values_are_yaml_with_exponents_as_numbers():
    grid = parse_grid(["lr=1e-3,3e-4", "fcnet_hiddens=[64,64],[256,256]", "explore=true,false"])
    assert grid == {"lr": [0.001, 0.0003], "fcnet_hiddens": [[64, 64], [256, 256]],
                    "explore": [True, False]}
    for bad, fragment in (("lr", "key=value1"), ("lr=", "key=value1"), ("lr=[1,", "cannot parse"),
                          ("lr=1,~", "separated by commas")):
        with pytest.raises(UserError, match=fragment):
            parse_grid([bad])
    with pytest.raises(UserError, match="given twice"):
        parse_grid(["lr=1", "lr=2"])


@pytest.mark.parametrize("text,fragment", [
    ("logunform(1e-5,1e-3)", "did you mean 'loguniform'"),
    ("loguniform(0,1)", "0 < low"),
    ("uniform(2,1)", "low < high"),
    ("uniform(1)", "two numbers"),
    ("randint(0.5,3)", "whole numbers"),
    ("choice()", "at least one value"),
    ("uniform(a,b)", "not a number"),
    ("0.001", "expected one of"),
])
def test_malformed_distributions_are_one_line(text, fragment):
    with pytest.raises(UserError, match=fragment) as info:
        parse_distribution(text, "--sample", "lr")
    assert "\n" not in str(info.value)


def test_distributions_draw_within_their_bounds():
    rng = random.Random(0)
    loguniform = parse_distribution("loguniform(1e-5, 1e-3)", "--sample", "lr")
    draws = [loguniform.sample(rng) for _ in range(200)]
    assert all(1e-5 <= d <= 1e-3 for d in draws)
    assert sum(d < 1e-4 for d in draws) > 60  # log-uniform: half the draws below the middle decade
    ints = [parse_distribution("randint(2, 5)", "", "k").sample(rng) for _ in range(100)]
    assert set(ints) == {2, 3, 4}
    choice = parse_distribution("choice([32],[64,64])", "", "k")
    assert {json.dumps(choice.sample(rng)) for _ in range(50)} == {"[32]", "[64, 64]"}
    assert str(loguniform) == "loguniform(1e-05, 0.001)"
    assert parse_distribution(str(loguniform), "", "lr") == loguniform


# --- the space --------------------------------------------------------------------------
def test_tune_grid_search_anywhere_in_a_file_becomes_the_grid():
    training = {**BASE, "seed": {"grid_search": [1, 2]},
                "config": {"lr": {"grid_search": [0.001, 0.0003]},
                           "model_config": {"fcnet_hiddens": {"grid_search": [[32], [64]]}}},
                "env_config": {"size": {"grid_search": [3, 5]}}}
    base, space = search_space(training)
    assert space.seeds == [1, 2]
    assert space.grid == {"config.lr": [0.001, 0.0003],
                          "config.model_config.fcnet_hiddens": [[32], [64]], "env_config.size": [3, 5]}
    assert "seed" not in base and "lr" not in base["config"]
    assert training["config"]["lr"] == {"grid_search": [0.001, 0.0003]}  # the input is not changed
    with pytest.raises(UserError, match="grid_search"):
        search_space({**BASE, "config": {"lr": {"grid_search": [], "x": 1}}})


def test_sweep_section_and_flags_over_it():
    training = {**BASE, "sweep": {"seeds": 3, "grid": {"lr": [0.1, 0.2]}, "max_concurrent": 2},
                "config": {"gamma": {"grid_search": [0.9, 0.99]}}}
    base, space = search_space(training, grid=["lr=0.5,0.6", "gamma=0.95,0.97"])
    assert "sweep" not in base
    assert space.seeds == [0, 1, 2] and space.max_concurrent == 2
    assert space.grid == {"lr": [0.5, 0.6], "gamma": [0.95, 0.97]}  # the flags' values win
    _, space = search_space({**BASE, "seed": 10}, seeds=2)
    assert space.seeds == [10, 11]
    _, space = search_space({**BASE, "sweep": {"num_samples": 3}})  # Tune's word: repeats
    assert space.seeds == [0, 1, 2]
    _, space = search_space({**BASE, "sweep": {"num_samples": 4, "sample": {"lr": "uniform(0.1, 0.2)"}}})
    assert space.trials == 4 and not space.seeds
    _, space = search_space(BASE, grid=["seed=4,5"])
    assert space.seeds == [4, 5] and not space.grid
    assert not search_space(BASE)[1].is_sweep()


@pytest.mark.parametrize("kwargs,fragment", [
    ({"grid": ["num_cpus=1,2"]}, "same for every trial"),
    ({"grid": ["output=a,b"]}, "same for every trial"),
    ({"grid": ["stop.iter=1,2"]}, "did you mean 'iters'"),
    ({"grid": ["config=1,2"]}, "needs a key under it"),
    ({"grid": ["lr=0.1,0.1"]}, "given twice"),
    ({"sample": ["lr=uniform(0.1,0.2)"]}, "give --trials"),
    ({"trials": 3}, "--seeds N"),
    ({"seeds": 0}, ">= 1"),
    ({"seeds": 2, "seed_list": [1, 2]}, "not both"),
    ({"grid": ["lr=0.1,0.2"], "sample": ["lr=uniform(0.1,0.2)"], "trials": 2}, "both in --grid and --sample"),
    ({"sample": ["seed=randint(0,9)"], "trials": 2}, "not sampled"),
])
def test_bad_spaces_are_refused_before_anything_starts(kwargs, fragment):
    with pytest.raises(UserError, match=fragment):
        search_space(BASE, **kwargs)


def test_unknown_sweep_section_key():
    with pytest.raises(UserError, match="did you mean 'seeds'"):
        search_space({**BASE, "sweep": {"sedes": 3}})


# --- trials -----------------------------------------------------------------------------
def test_expansion_is_draws_by_grid_by_seeds_seeds_outermost():
    base, space = search_space({**BASE, "config": {"num_sgd_iter": 2}}, seeds=2, grid=["lr=0.1,0.2"],
                               sample=["gamma=uniform(0.9,0.99)"], trials=3)
    space.sample_seed = 5
    found = sweep_record.expand(base, space)
    assert len(found) == 3 * 2 * 2
    assert [t.seed for t in found] == [0] * 6 + [1] * 6
    assert len({t.name for t in found}) == 12 and found[0].name.startswith("trial-000_")
    assert len({t.config_id for t in found}) == 6
    assert [t.config for t in found[:6]] == [t.config for t in found[6:]]
    assert found[0].settings["seed"] == 0 and found[0].settings["config"]["lr"] == 0.1
    again = sweep_record.expand(base, sweep.SearchSpace.from_dict(space.to_dict()))
    assert [t.config for t in again] == [t.config for t in found]  # recorded draws repeat


def test_plain_rllib_keys_are_translated_like_set():
    base, space = search_space(BASE, grid=["num_sgd_iter=2,4"], seed_list=[1])
    settings = sweep_record.expand(base, space)[1].settings
    assert settings["config"] == {"num_epochs": 4}
    with pytest.raises(UserError, match="give it with its flag"):
        search_space(BASE, grid=["framework=torch,tf2"])


def test_unknown_rllib_key_in_a_grid_names_the_trial():
    base, space = search_space(BASE, grid=["lrr=0.1,0.2"], seed_list=[1])
    with pytest.raises(UserError, match=r"trial lrr=0.1, seed 1: .*'lrr'.*did you mean 'lr'"):
        sweep_record.check_trials(sweep_record.expand(base, space))


def test_the_sweep_record_round_trips(tmp_path):
    base, space = search_space({**BASE, "output": str(tmp_path)}, seeds=2, grid=["lr=0.1,0.2"])
    record = sweep_record.new_sweep(base, space, sweep_record.expand(base, space), argv=["x", "train"])
    assert record.path.parent == tmp_path and record.path.name.startswith("sweep_PPO_CartPole-v1_")
    assert sweep_record.is_sweep_dir(record.path) and not sweep_record.is_sweep_dir(tmp_path)
    back = sweep_record.read_sweep(record.path)
    assert [t.name for t in back.trials] == [t.name for t in record.trials]
    assert back.space.seeds == [0, 1] and back.command == "launcher train"
    back.trials[0].state = sweep_record.DONE
    sweep_record.apply_resume(back, {"stop": {"iters": 9}, "num_cpus": 2})
    assert back.trials[0].settings["stop"]["iters"] == 3
    assert back.trials[1].settings["stop"]["iters"] == 9 and back.trials[1].settings["num_cpus"] == 2
    assert sweep_record.check_sweep_resumable(record.path) == record.path
    for trial in back.trials:
        trial.state = sweep_record.FAILED if trial is back.trials[0] else sweep_record.DONE
    back.save()
    with pytest.raises(UserError, match=r"3 done, 1 failed\): nothing to resume; --retry-failed"):
        sweep_record.check_sweep_resumable(record.path)
    assert sweep_record.check_sweep_resumable(record.path, retry_failed=True) == record.path
    again = sweep_record.update_for_resume(record.path, {"stop": {"iters": 5}}, retry_failed=True)
    assert again.trials[0].state == sweep_record.PENDING and again.trials[0].error is None
    assert sweep_record.read_sweep(record.path).trials[0].settings["stop"]["iters"] == 5
    assert sweep_record.read_sweep(record.path).trials[1].settings["stop"]["iters"] == 9  # done: kept
    data = json.loads(record.file.read_text())
    data["trials"][0]["state"] = "finished"
    record.file.write_text(json.dumps(data))
    with pytest.raises(UserError, match="unknown trial state 'finished'"):
        sweep_record.read_sweep(record.path)
    with pytest.raises(UserError, match="not a sweep directory"):
        sweep_record.read_sweep(tmp_path)


# --- sizing -----------------------------------------------------------------------------
def test_trials_share_an_embedded_machine():
    two = trial_sizing.size_trials({"CPU": 2}, 4)
    assert (two.concurrent, two.runners, two.actor_cpus) == (2, 0, 1)
    big = trial_sizing.size_trials({"CPU": 16}, 4, preset=1)
    assert (big.concurrent, big.runners) == (4, 1)
    assert trial_sizing.size_trials({"CPU": 16}, 4).runners == 3
    fixed = trial_sizing.size_trials({"CPU": 8}, 4, runners=3)
    assert (fixed.concurrent, fixed.runners) == (2, 3)
    assert trial_sizing.size_trials({"CPU": 16}, 4, max_concurrent=1).concurrent == 1
    assert trial_sizing.size_trials({"CPU": 6, "GPU": 1}, 3, gpus=1).trial_gpus == 0.3333
    with pytest.raises(UserError, match="needs 3 CPUs"):
        trial_sizing.size_trials({"CPU": 2}, 4, runners=2)


def test_trials_share_a_cluster_jobs_roles():
    placement = ClusterPlacement(learners=1, learner_gpus=1)
    sized = trial_sizing.size_trials({"CPU": 12, "rollout_node": 8}, 4, placement=placement, learner_cpus=4)
    assert (sized.concurrent, sized.runners, sized.actor_cpus) == (4, 2, 0)
    assert sized.placement.learner_share == 0.25 and sized.placement.learner_gpus == 0.25
    sized = trial_sizing.size_trials({"rollout_node": 8}, 4, placement=placement, learner_cpus=2)
    assert sized.concurrent == 2
    assert trial_sizing.size_trials({"rollout_node": 3}, 6, placement=ClusterPlacement()).runners == 1
    with pytest.raises(UserError, match="rollout nodes offer 3"):
        trial_sizing.size_trials({"rollout_node": 3}, 2, runners=4, placement=ClusterPlacement())


def test_a_trials_error_line_is_its_root_cause():
    try:
        try:
            raise ValueError("env failed on step 500\nmore")
        except ValueError as exc:
            raise RuntimeError from exc
    except RuntimeError as exc:
        assert trials.error_line(exc) == "ValueError: env failed on step 500"


# --- statistics -------------------------------------------------------------------------
def test_student_t_interval():
    assert sweep_stats.t_quantile(1) == pytest.approx(12.706, abs=1e-3)
    assert sweep_stats.t_quantile(4) == pytest.approx(sweep_stats.T_975[3], abs=1e-3)
    interval = sweep_stats.Interval.of([1.0, 2.0, 3.0])
    assert interval.mean == 2.0
    assert interval.half_width == pytest.approx(4.303 / math.sqrt(3), abs=1e-3)
    assert sweep_stats.Interval.of([5.0]).half_width is None
    assert sweep_stats.Interval.of([]).text() == "-"


def write_progress(run_dir, returns):
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / "progress.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["training_iteration", "num_env_steps_sampled_lifetime", "episode_return_mean",
                         "time_total_s"])
        for i, ret in enumerate(returns, 1):
            writer.writerow([i, i * 100, "" if ret is None else ret, i * 1.5])


def a_finished_sweep(tmp_path):
    """A sweep record and progress files as trials leave them: lr 0.2 ranks first."""
    base, space = search_space({**BASE, "output": str(tmp_path)}, seeds=3, grid=["lr=0.1,0.2"])
    record = sweep_record.new_sweep(base, space, sweep_record.expand(base, space))
    curves = {0.1: [[10, 50, 40], [20, 60, 50], [30, 70, None]], 0.2: [[5, 90, 100], [5, 80, 120]]}
    for trial in record.trials:
        lr, seed = trial.config["lr"], trial.seed
        if seed < len(curves[lr]):
            write_progress(record.trial_dir(trial), curves[lr][seed])
            trial.state = sweep_record.DONE
        else:
            trial.state = sweep_record.FAILED
    record.save()
    return record


def test_results_group_seeds_by_configuration_and_rank(tmp_path):
    record = a_finished_sweep(tmp_path)
    stats = sweep_stats.sweep_stats(record.path)
    assert [s.config for s in stats] == [{"lr": 0.2}, {"lr": 0.1}]
    best_config = stats[0]
    assert best_config.final.values == [100, 120] and best_config.failed == 1
    assert best_config.final.mean == 110
    assert best_config.final.half_width == pytest.approx(12.706 * math.sqrt(200) / math.sqrt(2), rel=1e-3)
    assert stats[1].final.values == [40, 50, 70] and stats[1].best.values == [50, 60, 70]
    by_best = sweep_stats.sweep_stats(record.path, by="best_return")
    assert [s.config for s in by_best] == [{"lr": 0.2}, {"lr": 0.1}]
    data = json.loads(sweep_stats.stats_json(record.path))
    assert data["configurations"][0]["config"] == {"lr": 0.2}
    assert data["configurations"][0]["final_return"]["ci95"][0] < 110
    grid, mean, half = sweep_stats.mean_curve([sweep_stats.read_run(d) for d in stats[1].done], "iteration")
    # The third seed logged no return at iteration 3: the mean covers iterations 1-2.
    assert grid[0] == 1 and grid[-1] == 2 and mean[0] == pytest.approx(20) and half is not None
    png = sweep_stats.plot_sweep(record.path, tmp_path / "sweep.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_a_cluster_sweep_uses_the_jobs_code_snapshot():
    base, space = search_space({**BASE, "env": "envs/grid.py:Grid"}, grid=["env_config.size=3,5"], seeds=1)
    found = sweep_record.expand(base, space)
    sweep_record.follow_snapshot(found, "envs/grid.py:Grid", "/run/code/grid.py:Grid", "/run/code")
    shipped = {(t.settings["env"], t.settings.get("code")) for t in found}
    assert shipped == {("/run/code/grid.py:Grid", "/run/code")}
    base, space = search_space(BASE, grid=["env=CartPole-v1,other.py:Env"], seeds=1)
    with pytest.raises(UserError, match="ships one env's code"):
        sweep_record.follow_snapshot(sweep_record.expand(base, space), "CartPole-v1", "CartPole-v1", None)


# --- the commands -----------------------------------------------------------------------
@pytest.mark.parametrize("args,fragments", [
    (["--grid", "lr"], ["--grid", "key=value1,value2"]),
    (["--grid", "lr=0.1,-1"], ["lr=-1", "greater than 0"]),
    (["--sample", "lr=normal(0,1)", "--trials", "2"], ["normal"]),
    (["--grid", "bogus_key=1,2"], ["bogus_key"]),
    (["--trials", "3"], ["--seeds N"]),
    (["--seed", "1,1"], ["given twice"]),
    (["--seed", "-3"], ["whole numbers"]),
    (["--retry-failed"], ["--resume SWEEP_DIR"]),
])
def test_bad_sweep_options_are_one_line_before_anything_is_written(capsys, tmp_path, args, fragments):
    code, _, err = call_cli(capsys, "train", "--env", "CartPole-v1", "--output", str(tmp_path / "out"),
                            *args)
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "out").exists()


def test_a_resumed_run_keeps_its_trials(capsys, tmp_path):
    code, _, err = call_cli(capsys, "train", "--resume", str(tmp_path), "--grid", "lr=0.1,0.2")
    assert_one_line_error(code, err, "--grid", "keeps its trials")


def test_results_and_plot_of_a_sweep_through_the_commands(capsys, tmp_path):
    sweep_dir = a_finished_sweep(tmp_path).path
    code, out, err = call_cli(capsys, "results", str(sweep_dir), "--json")
    assert code == 0, err
    ranked = json.loads(out)["configurations"]
    assert [c["config"] for c in ranked] == [{"lr": 0.2}, {"lr": 0.1}]
    assert ranked[0]["final_return"]["values"] == [100, 120]
    code, out, err = call_cli(capsys, "results", str(sweep_dir), "--by", "best_return")
    assert code == 0 and "ranked by mean best return" in out, err
    code, _, err = call_cli(capsys, "plot", str(sweep_dir), "-o", str(tmp_path / "s.txt"))
    assert_one_line_error(code, err, "not an image format")


# --- early stopping ---------------------------------------------------------------------
def test_early_stop_rules_from_the_flag_and_the_file():
    from launcher.training import early_stop

    assert early_stop.parse_flag("asha") == {"method": "asha", "grace_iters": 4, "reduction": 3}
    assert early_stop.parse_flag("asha:5:2") == {"method": "asha", "grace_iters": 5, "reduction": 2}
    _, space = search_space({**BASE, "sweep": {"grid": {"lr": [0.1, 0.2]},
                                               "early_stop": {"method": "asha", "grace_iters": 2}}})
    assert space.early_stop == {"method": "asha", "grace_iters": 2, "reduction": 3}
    assert sweep.SearchSpace.from_dict(space.to_dict()).early_stop == space.early_stop
    for text, fragment in (("hyperband", "one of asha"), ("asha:0", "grace_iters"),
                           ("asha:4:1", "reduction"), ("asha:x", "asha:GRACE")):
        with pytest.raises(UserError, match=fragment):
            search_space(BASE, grid=["lr=0.1,0.2"], early_stopping=text)
    with pytest.raises(UserError, match="compares configurations"):
        search_space(BASE, seeds=3, early_stopping="asha")


def test_asha_keeps_the_best_fraction_at_each_rung():
    from launcher.training.early_stop import Asha

    asha = Asha(grace=2, reduction=2)
    assert asha.levels_up_to(9) == [2, 4, 8]
    assert asha.report("a", {1: 5.0, 2: 10.0}) is None  # alone at rung 2: goes on
    assert asha.report("b", {1: 1.0}) is None  # no rung completed yet
    reason = asha.report("b", {1: 1.0, 2: 3.0})
    assert reason and "iteration 2" in reason and "1/2" in reason
    assert asha.report("c", {2: 20.0}) is None  # the best so far
    assert asha.report("d", {2: None}) is None  # no episode finished: recorded nowhere
    assert asha.rungs == {2: {"a": 10.0, "b": 3.0, "c": 20.0}}
    assert asha.report("a", {2: 10.0, 3: 11.0, 4: 2.0}) is None  # alone at rung 4
    assert "a" in asha.rungs[4] and asha.report("a", {4: 2.0}) is None  # reported once


def test_a_trial_stopped_early_has_ended_for_resume_and_results(tmp_path):
    record = a_finished_sweep(tmp_path)
    record.trials[-1].state = sweep_record.STOPPED_EARLY
    record.save()
    stats = {s.label: s for s in sweep_stats.sweep_stats(record.path)}
    assert stats["lr=0.2"].stopped_early == 1 and stats["lr=0.2"].failed == 0  # was the failed one
    with pytest.raises(UserError, match="nothing to resume"):
        sweep_record.check_sweep_resumable(record.path, retry_failed=True)


# --- Optuna -----------------------------------------------------------------------------
def test_optuna_proposes_values_and_learns_the_results_across_a_resume(tmp_path):
    from launcher.training.optuna_search import OptunaSearch

    sample = ["lr=loguniform(1e-5,1e-3)", "num_epochs=randint(1,4)",
              "model_config.fcnet_hiddens=choice([32],[64, 64])"]
    base, space = search_space({**BASE, "output": str(tmp_path)}, sample=sample, trials=3, search="optuna")
    record = sweep_record.new_sweep(base, space, sweep_record.expand(base, space))
    assert [t.config for t in record.trials] == [{}, {}, {}]  # proposed as they start
    search = OptunaSearch(record)
    first = record.trials[0]
    search.propose(first)
    assert 1e-5 <= first.config["lr"] <= 1e-3 and first.config["num_epochs"] in (1, 2, 3)
    assert first.config["model_config.fcnet_hiddens"] in ([32], [64, 64])
    assert first.name.startswith("trial-000_lr=") and first.settings["config"]["lr"] == first.config["lr"]
    first.state, first.last_return = sweep_record.DONE, 50.0
    search.tell(first)
    second = record.trials[1]
    search.propose(second)
    second.state = sweep_record.FAILED
    search.tell(second)
    record.save()
    again = OptunaSearch(sweep_record.read_sweep(record.path))  # a resumed sweep's study
    states = [t.state.name for t in again.study.trials]
    assert states == ["COMPLETE", "FAIL"] and again.study.best_value == 50.0


def test_optuna_needs_a_sample_and_nothing_beside_it():
    for kwargs in ({"seeds": 2}, {"grid": ["lr=0.1,0.2"]}, {"sample": ["lr=uniform(0.1,0.2)"], "trials": 2,
                                                          "seeds": 2}):
        with pytest.raises(UserError, match="one configuration per trial"):
            search_space(BASE, search="optuna", **kwargs)
    with pytest.raises(UserError, match="one of random, optuna"):
        search_space(BASE, sample=["lr=uniform(0.1,0.2)"], trials=2, search="hyperopt")
