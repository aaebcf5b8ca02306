"""Experiment files in the style of RLlib's `rllib/tuned_examples/` (Ray 1.x and 2.x) for
PPO, APPO, IMPALA, DQN and SAC: every key those files use is translated (legacy_keys.py,
legacy_nested.py, env_ids.py, connectors.py) and each file trains with --framework torch.

The files below are written for these tests in that style; they are not Ray's files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from launcher.training.experiment import load_experiment
from launcher.training.settings import TrainSettings
from tests.conftest import only_run_dir, progress_rows, run_launcher

PPO_PENDULUM_1X = """
# Pendulum with PPO as Ray 1.x wrote it (tf, old env id, workers, horizon, a filter).
pendulum-ppo:
    env: Pendulum-v0
    run: PPO
    stop:
        episode_reward_mean: -300
        timesteps_total: 400000
    config:
        framework: tf
        train_batch_size: 800
        vf_clip_param: 10.0
        num_workers: 0
        num_envs_per_worker: 4
        lambda: 0.1
        gamma: 0.95
        lr: 0.0003
        sgd_minibatch_size: 200
        num_sgd_iter: 3
        model:
            fcnet_hiddens: [64, 64]
        observation_filter: MeanStdFilter
        batch_mode: truncate_episodes
        horizon: 100
        soft_horizon: false
        no_done_at_end: true
"""

PPO_CARTPOLE_2X = """
cartpole-ppo:
    env: CartPole-v1
    run: PPO
    stop:
        sampler_results/episode_reward_mean: 150
        timesteps_total: 100000
        time_total_s: 600
    config:
        framework: torch
        _enable_new_api_stack: true
        gamma: 0.99
        lr: 0.0003
        num_env_runners: 1
        num_envs_per_env_runner:
            grid_search: [4, 8]
        observation_filter: MeanStdFilter
        train_batch_size: 1000
        sgd_minibatch_size: 250
        num_sgd_iter: 4
        vf_loss_coeff: 0.01
        kl_coeff: 0.3
        clip_param: 0.2
        grad_clip: 40.0
        entropy_coeff: 0.0
        clip_rewards: false
        rollout_fragment_length: auto
        model:
            fcnet_hiddens: [32]
            fcnet_activation: linear
            vf_share_layers: true
        enable_connectors: true
        exploration_config: {}
        seed:
            grid_search: [0, 1]
"""

APPO_CARTPOLE = """
cartpole-appo:
    env: CartPole-v0
    run: APPO
    stop:
        episode_reward_mean: 150
        timesteps_total: 200000
    config:
        framework: tf
        num_envs_per_worker: 4
        num_workers: 1
        num_gpus: 0
        observation_filter: MeanStdFilter
        num_sgd_iter: 1
        vf_loss_coeff: 0.01
        vtrace: true
        use_kl_loss: false
        rollout_fragment_length: 50
        train_batch_size: 500
        broadcast_interval: 1
        max_sample_requests_in_flight_per_worker: 1
        num_multi_gpu_tower_stacks: 1
        minibatch_buffer_size: 1
        min_iter_time_s: 2
        model:
            fcnet_hiddens: [32]
            vf_share_layers: true
        enable_connectors: true
"""

IMPALA_CARTPOLE = """
cartpole-impala:
    env: CartPole-v0
    run: IMPALA
    stop:
        episode_reward_mean: 150
        timesteps_total: 500000
    config:
        framework: tf
        num_gpus: 0
        num_workers: 1
        rollout_fragment_length: 50
        train_batch_size: 500
        vtrace_drop_last_ts: false
        num_data_loader_buffers: 1
        broadcast_interval: 1
        min_time_s_per_reporting: 2
        _disable_execution_plan_api:
            grid_search: [true, false]
        seed:
            grid_search: [512, 42, 144]
"""

DQN_CARTPOLE_1X = """
cartpole-dqn:
    env: CartPole-v0
    run: DQN
    stop:
        episode_reward_mean: 150
        timesteps_total: 50000
    config:
        framework: tf
        n_step: 3
        gamma: 0.95
        lr: 0.0005
        hiddens: [64]
        double_q: true
        dueling: true
        num_atoms: 1
        noisy: false
        learning_starts: 300
        buffer_size: 20000
        prioritized_replay: true
        prioritized_replay_alpha: 0.6
        prioritized_replay_beta: 0.4
        final_prioritized_replay_beta: 1.0
        prioritized_replay_beta_annealing_timesteps: 20000
        prioritized_replay_eps: 1.0e-6
        exploration_config:
            epsilon_timesteps: 5000
            final_epsilon: 0.02
        target_network_update_freq: 500
        rollout_fragment_length: 4
        train_batch_size: 32
        timesteps_per_iteration: 600
        adam_epsilon: 1.0e-8
        num_workers: 0
        metrics_smoothing_episodes: 10
"""

DQN_CARTPOLE_2X = """
cartpole-dqn:
    env: CartPole-v1
    run: DQN
    stop:
        env_runners/episode_return_mean: 150
        num_env_steps_sampled_lifetime: 50000
    config:
        framework: torch
        replay_buffer_config:
            type: MultiAgentPrioritizedReplayBuffer
            capacity: 20000
            prioritized_replay_alpha: 0.6
            prioritized_replay_beta: 0.4
            prioritized_replay_eps: 1.0e-6
            min_size_for_sampling: 300
        exploration_config:
            type: EpsilonGreedy
            initial_epsilon: 1.0
            final_epsilon: 0.05
            epsilon_timesteps: 5000
        min_sample_timesteps_per_iteration: 600
        target_network_update_freq: 500
        train_batch_size: 32
        n_step: 3
        num_env_runners: 0
"""

SAC_PENDULUM_1X = """
# Pendulum with SAC as Ray 1.x wrote it (softlearning-style hyperparameters).
pendulum-sac:
    env: Pendulum-v0
    run: SAC
    stop:
        episode_reward_mean: -250
        timesteps_total: 30000
    config:
        seed: 42
        framework: tf
        horizon: 100
        soft_horizon: false
        Q_model:
            fcnet_activation: relu
            fcnet_hiddens: [64, 64]
        policy_model:
            fcnet_activation: relu
            fcnet_hiddens: [64, 64]
        tau: 0.005
        target_entropy: auto
        no_done_at_end: true
        n_step: 1
        rollout_fragment_length: 1
        prioritized_replay: false
        train_batch_size: 64
        target_network_update_freq: 1
        timesteps_per_iteration: 300
        learning_starts: 200
        optimization:
            actor_learning_rate: 0.0003
            critic_learning_rate: 0.0003
            entropy_learning_rate: 0.0003
        num_workers: 0
        num_gpus: 0
        metrics_smoothing_episodes: 5
"""

SAC_PENDULUM_2X = """
pendulum-sac:
    env: Pendulum-v1
    run: SAC
    stop:
        episode_reward_mean: -250
        timesteps_total: 30000
    config:
        framework: tf
        horizon: 100
        soft_horizon: false
        no_done_at_end: true
        q_model_config:
            fcnet_activation: relu
            fcnet_hiddens: [64, 64]
        policy_model_config:
            fcnet_activation: relu
            fcnet_hiddens: [64, 64]
        tau: 0.005
        target_entropy: auto
        twin_q: true
        n_step: 3
        rollout_fragment_length: 1
        train_batch_size: 64
        target_network_update_freq: 1
        min_sample_timesteps_per_iteration: 300
        replay_buffer_config:
            type: MultiAgentPrioritizedReplayBuffer
            capacity: 10000
            prioritized_replay_alpha: 0.6
            prioritized_replay_beta: 0.4
            prioritized_replay_eps: 1.0e-6
            min_size_for_sampling: 200
        optimization:
            actor_learning_rate: 0.0003
            critic_learning_rate: 0.0003
            entropy_learning_rate: 0.0003
        num_workers: 0
        clip_actions: false
        normalize_actions: true
        evaluation_interval: 1
        evaluation_num_episodes: 1
        evaluation_config:
            explore: false
        metrics_smoothing_episodes: 5
"""

EXAMPLES = {
    "ppo-pendulum-1x": PPO_PENDULUM_1X, "ppo-cartpole-2x": PPO_CARTPOLE_2X,
    "appo-cartpole": APPO_CARTPOLE, "impala-cartpole": IMPALA_CARTPOLE,
    "dqn-cartpole-1x": DQN_CARTPOLE_1X, "dqn-cartpole-2x": DQN_CARTPOLE_2X,
    "sac-pendulum-1x": SAC_PENDULUM_1X, "sac-pendulum-2x": SAC_PENDULUM_2X,
}
# The files' grid_search values: sweeps of seeds x values (a dropped key's grid vanishes).
SWEEP_TRIALS = {"ppo-cartpole-2x": 4, "impala-cartpole": 3}
FILTER_TIMER = "env_runners/env_to_module_connector/timers/connectors/mean_std_filter"


def _file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(EXAMPLES[name])
    return path


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_passes_the_checks_before_ray(tmp_path, name):
    """Translated, sized and validated by RLlib's own AlgorithmConfig.validate(); a file
    with `grid_search` values is a sweep, each of its configurations validated."""
    from launcher.training.sweep import search_space
    from launcher.training.sweep_record import check_trials, expand

    notices: list[str] = []
    data = load_experiment(_file(tmp_path, name), say=notices.append, framework="torch")
    data.update(framework="torch", output=str(tmp_path))
    base, space = search_space(data)
    trials = expand(base, space)
    check_trials(trials)
    assert len(trials) == SWEEP_TRIALS.get(name, 1)
    assert all(TrainSettings.from_dict(t.settings).framework == "torch" for t in trials)
    assert notices, "a tutorial-era file gets its notices"


def _train(tmp_path: Path, name: str, *extra: str, iters: int = 2):
    out = tmp_path / "out"
    proc = run_launcher("train", "-f", str(_file(tmp_path, name)), "--framework", "torch",
                        "--stop-iters", str(iters), "-o", str(out), *extra, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Traceback" not in proc.stderr
    run_dir = only_run_dir(out)
    rows = progress_rows(run_dir)
    assert len(rows) == iters
    config = json.loads((run_dir / "config.json").read_text())
    spec = yaml.safe_load((run_dir / "spec.yaml").read_text())
    return proc.stderr, rows, config, spec


def _noted(stderr: str, *lines: str) -> None:
    for line in lines:
        assert f"note: {line}" in stderr, (line, stderr[-3000:])


@pytest.mark.slow
def test_ppo_pendulum_from_ray_1x(tmp_path):
    notes, rows, config, spec = _train(tmp_path, "ppo-pendulum-1x")
    _noted(notes, "env Pendulum-v0 → Pendulum-v1 (Gymnasium renamed it)",
           "observation_filter: MeanStdFilter → an env-to-module connector",
           "horizon → max_episode_steps", "soft_horizon: False → (dropped",
           "no_done_at_end → (dropped", "lambda → lambda_")
    assert spec["env"] == "Pendulum-v1"
    assert spec["max_episode_steps"] == 100 and spec["observation_filter"] == "MeanStdFilter"
    assert FILTER_TIMER in rows[-1], "the MeanStdFilter connector did not run"
    assert float(rows[-1]["env_runners/episode_len_max"]) == 100  # Pendulum's own limit is 200
    assert config["lambda"] == 0.1 and config["num_epochs"] == 3  # to_dict() writes lambda_ as lambda


@pytest.mark.slow
def test_ppo_cartpole_from_ray_2x(tmp_path):
    # The file's grids (seeds, envs per runner) make a sweep; the flags pick one trial.
    notes, rows, config, spec = _train(tmp_path, "ppo-cartpole-2x", "--seed", "0",
                                       "--set", "num_envs_per_env_runner=4")
    assert spec["seed"] == 0 and config["num_envs_per_env_runner"] == 4
    assert FILTER_TIMER in rows[-1]
    assert config["_model_config"]["vf_share_layers"] is True


@pytest.mark.slow
def test_appo_cartpole(tmp_path):
    notes, rows, config, _spec = _train(tmp_path, "appo-cartpole")
    _noted(notes, "max_sample_requests_in_flight_per_worker → max_requests_in_flight_per_env_runner")
    assert config["vtrace"] is True and config["num_epochs"] == 1
    assert FILTER_TIMER in rows[-1]


@pytest.mark.slow
def test_impala_cartpole(tmp_path):
    notes, rows, config, spec = _train(tmp_path, "impala-cartpole", "--seed", "512")
    _noted(notes, "vtrace_drop_last_ts → (dropped: IMPALA's v-trace no longer drops the last timestep)")
    assert spec["seed"] == 512 and spec["env"] == "CartPole-v0"


@pytest.mark.slow
def test_dqn_cartpole_from_ray_1x(tmp_path):
    notes, rows, config, _spec = _train(tmp_path, "dqn-cartpole-1x")
    _noted(notes, "exploration_config (EpsilonGreedy) → epsilon: [[0, 1.0], [5000, 0.02]]")
    assert config["epsilon"] == [[0, 1.0], [5000, 0.02]]
    assert config["replay_buffer_config"]["type"] == "PrioritizedEpisodeReplayBuffer"
    assert config["min_sample_timesteps_per_iteration"] == 600
    assert int(rows[0]["num_env_steps_sampled_lifetime"]) >= 600  # the sampling minimum held


@pytest.mark.slow
def test_dqn_cartpole_from_ray_2x(tmp_path):
    notes, rows, config, _spec = _train(tmp_path, "dqn-cartpole-2x")
    _noted(notes, "replay_buffer_config.type: MultiAgentPrioritizedReplayBuffer → "
                  "PrioritizedEpisodeReplayBuffer")
    assert config["replay_buffer_config"]["alpha"] == 0.6
    assert config["num_steps_sampled_before_learning_starts"] == 300
    assert config["epsilon"] == [[0, 1.0], [5000, 0.05]]


@pytest.mark.slow
def test_sac_pendulum_from_ray_1x(tmp_path):
    notes, rows, config, spec = _train(tmp_path, "sac-pendulum-1x")
    _noted(notes, "Q_model.fcnet_hiddens → model_config.fcnet_hiddens",
           "optimization.actor_learning_rate → actor_lr",
           "timesteps_per_iteration → min_sample_timesteps_per_iteration")
    assert config["actor_lr"] == 3e-4 and config["alpha_lr"] == 3e-4
    assert config["_model_config"]["fcnet_hiddens"] == [64, 64]
    assert float(rows[-1]["env_runners/episode_len_max"]) == 100
    assert spec["seed"] == 42


@pytest.mark.slow
def test_sac_pendulum_from_ray_2x(tmp_path):
    notes, rows, config, _spec = _train(tmp_path, "sac-pendulum-2x", iters=1)
    _noted(notes, "rollout_fragment_length: 1 → 3 (RLlib samples at least n_step=3 steps per fragment now)",
           "replay_buffer_config.min_size_for_sampling → num_steps_sampled_before_learning_starts")
    assert config["critic_lr"] == 3e-4 and config["twin_q"] is True
    assert config["evaluation_duration"] == 1 and config["evaluation_duration_unit"] == "episodes"
    assert float(rows[-1]["env_runners/episode_len_max"]) == 100
