"""Multi-agent envs train through the real CLI and real RLlib (short runs), and their
per-policy results come back in progress.csv, `launcher results`, the reward plot and
TensorBoard's scalars.

Marked slow: each test starts Ray and trains a few small iterations (about a minute each
on 2 cores).
"""

from __future__ import annotations

import json

import pytest
import yaml

from launcher.training.runlog import AGENT_RETURN_PREFIX, POLICY_RETURN_PREFIX
from tests.conftest import REPO, only_run_dir, progress_rows, run_launcher

pytestmark = pytest.mark.slow

# Small iterations: the point is that it trains and reports, not how well.
SMALL = ["--set", "train_batch_size_per_learner=200", "--set", "minibatch_size=100",
         "--set", "num_epochs=2", "--set", "num_envs_per_env_runner=2", "--num-cpus", "2"]


def _train(tmp_path, *args: str, cwd=None):
    out = tmp_path / "runs"
    done = run_launcher("train", *args, *SMALL, "-o", str(out), cwd=cwd, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return only_run_dir(out), done


def _policy_columns(row: dict) -> set[str]:
    return {k[len(POLICY_RETURN_PREFIX):] for k in row if k.startswith(POLICY_RETURN_PREFIX)}


def test_pettingzoo_parallel_env_per_agent_policies_results_and_plot(tmp_path):
    from launcher.results.plots import figure

    run, done = _train(tmp_path, "--env", "mpe2.simple_spread_v3", "--policies", "per-agent",
                       "--stop-iters", "2")
    assert "note: multi-agent env: 3 agents, PettingZoo parallel" in done.stderr
    assert "policies: agent_0 (1 agent), agent_1 (1 agent), agent_2 (1 agent)" in done.stderr
    rows = progress_rows(run)
    assert len(rows) == 2
    assert _policy_columns(rows[-1]) == {"agent_0", "agent_1", "agent_2"}
    assert f"{AGENT_RETURN_PREFIX}agent_1" in rows[-1]
    # The sum over agents is the run's return: each agent here has a policy of its own.
    per_policy = sum(float(rows[-1][f"{POLICY_RETURN_PREFIX}{a}"]) for a in ("agent_0", "agent_1", "agent_2"))
    assert float(rows[-1]["episode_return_mean"]) == pytest.approx(per_policy, rel=1e-6)
    table = run_launcher("results", str(run))
    assert table.returncode == 0 and f"{run.name} · policy agent_2" in table.stdout
    _, ax = figure([run])
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == [f"{run.name} (sum over agents)"] + [
        f"{run.name} · policy agent_{i}" for i in range(3)]
    assert (run / "reward.png").stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars = EventAccumulator(str(run)).Reload().Tags()["scalars"]
    assert f"ray/tune/{POLICY_RETURN_PREFIX}agent_2" in scalars
    assert f"ray/tune/{AGENT_RETURN_PREFIX}agent_2" in scalars
    evaluated = run_launcher("evaluate", str(run), "--episodes", "2", "--seed", "0")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "policy agent_2: mean return" in evaluated.stdout
    assert set(json.loads((run / "eval.json").read_text())["policy_returns"]) == {
        "agent_0", "agent_1", "agent_2"}
    filmed = run_launcher("evaluate", str(run), "--video", str(tmp_path / "video"))
    assert filmed.returncode == 2 and "--video supports single-agent runs only" in filmed.stderr
    exported = run_launcher("export", str(run), "-o", str(tmp_path / "policy.onnx"))
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert "verified on 256 observations per policy" in exported.stdout
    _run_exported_policies(tmp_path, run)


def _run_exported_policies(tmp_path, run) -> None:
    """Each policy's file runs on onnxruntime alone and acts in simple spread's 5 actions;
    no partial file is left behind."""
    import numpy as np
    import onnxruntime

    obs = np.random.default_rng(0).normal(size=(8, 18)).astype(np.float32)
    actions = {}
    for agent in ("agent_0", "agent_1", "agent_2"):
        session = onnxruntime.InferenceSession(str(tmp_path / f"policy.{agent}.onnx"),
                                               providers=["CPUExecutionProvider"])
        actions[agent] = session.run(None, {"obs": obs})[0]
        assert actions[agent].shape == (8,) and set(actions[agent]) <= set(range(5))
    assert not list(tmp_path.glob(".*.partial"))


def test_pettingzoo_aec_env_trains_with_one_shared_policy(tmp_path):
    run, done = _train(tmp_path, "--env", "mpe2.simple_spread_v3:env", "--stop-iters", "1")
    assert "PettingZoo AEC" in done.stderr and "policies: shared (3 agents)" in done.stderr
    rows = progress_rows(run)
    assert _policy_columns(rows[-1]) == {"shared"}
    assert float(rows[-1]["episode_return_mean"]) < 0  # simple spread pays distances: negative


def test_rllib_multiagentenv_two_types_groups_from_a_relative_file(tmp_path):
    """Two agent types with separate policies (groups in the experiment file), only one of
    them learning, and a stop criterion on that policy's return."""
    experiment = tmp_path / "two.yaml"
    experiment.write_text(yaml.safe_dump({
        "env": "tests/multiagent_envs/two_types.py:TwoTypes",
        "policies": {"scouts": ["scout_*"], "guards": ["guard_*"]},
        "train_policies": ["scouts"],
        "stop": {"iters": 3, "reward": 0, "policy": "scouts"},
    }))
    run, done = _train(tmp_path, "-f", str(experiment), cwd=REPO)
    assert "RLlib MultiAgentEnv" in done.stderr
    assert "mean return of scouts" in done.stdout  # a scout's return is never below 0
    rows = progress_rows(run)
    assert len(rows) == 1 and _policy_columns(rows[0]) == {"scouts", "guards"}
    assert "learners/scouts/policy_loss" in rows[0]
    assert "learners/guards/policy_loss" not in rows[0]  # guards do not learn


def test_old_dict_api_env_in_a_test_file_trains(tmp_path):
    run, done = _train(tmp_path, "--env", "tests/multiagent_envs/old_dict_api.py:OldDictEnv",
                       "--env-config", "agents=3", "--stop-iters", "2", cwd=REPO)
    assert "3 agents, RLlib dict API" in done.stderr
    rows = progress_rows(run)
    assert len(rows) == 2 and _policy_columns(rows[-1]) == {"shared"}
    # Each agent earns 0 or 1 per step for 10 steps: the sum over 3 agents is within [0, 30].
    assert 0 <= float(rows[-1]["episode_return_mean"]) <= 30
    assert {f"{AGENT_RETURN_PREFIX}worker_{i}" for i in range(3)} <= set(rows[-1])


def test_a_sweep_of_a_multiagent_env_reports_each_trial(tmp_path):
    out = tmp_path / "runs"
    done = run_launcher("train", "--env", "mpe2.simple_spread_v3", "--policies", "per-agent",
                        "--seeds", "2", "--stop-iters", "1", *SMALL, "-o", str(out), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (sweep_dir,) = out.iterdir()
    record = json.loads((sweep_dir / "sweep.json").read_text())
    assert [t["state"] for t in record["trials"]] == ["done", "done"]
    for trial in record["trials"]:
        rows = progress_rows(sweep_dir / trial["name"])
        assert _policy_columns(rows[-1]) == {"agent_0", "agent_1", "agent_2"}
    shown = run_launcher("results", str(sweep_dir), "--json")
    assert json.loads(shown.stdout)["configurations"][0]["done"] == 2
