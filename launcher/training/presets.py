"""Tuned starting hyperparameters, per algorithm and environment family.

Plain values, read in one place (CleanRL style). Keys are RLlib AlgorithmConfig
attributes; anything here is overridden by an experiment file and by `--set`.
"num_env_runners" here is a preference; the launcher lowers it to fit the CPUs
that exist.

Families: "classic" = Gymnasium classic control (CartPole, Acrobot, MountainCar,
Pendulum): cheap to step, so sampling in the driver process beats shipping
batches from remote env runners; "default" = anything else.
"""

from __future__ import annotations

PRESETS: dict[tuple[str, str], dict] = {
    # Measured on a 2-core machine (see `make bench`): CartPole-v1 to a mean return of
    # 475 in ~12 iterations / 24k env steps, ~7 s of training, over seeds 0-2.
    # RLlib's own defaults (lr 5e-5, batch 4000, 2 env runners) need 3-10x longer.
    # RLlib clips each value error's square at vf_clip_param (10): with returns in the
    # hundreds the value function then gets no gradient from most steps. Unclipped
    # (Stable-Baselines3's default), Acrobot-v1 reaches -100 in 32 and 46 s of training
    # (seeds 0, 1) instead of not at all in 100 s; CartPole-v1 is as fast or faster.
    ("PPO", "classic"): {
        "num_env_runners": 0,
        "num_envs_per_env_runner": 8,
        "lr": 1e-3,
        "train_batch_size_per_learner": 2000,
        "minibatch_size": 500,
        "num_epochs": 10,
        "gamma": 0.99,
        "vf_clip_param": 1e9,
        "metrics_num_episodes_for_smoothing": 20,
    },
    ("PPO", "default"): {
        "num_envs_per_env_runner": 4,
        "lr": 3e-4,
        "train_batch_size_per_learner": 4000,
        "minibatch_size": 256,
        "num_epochs": 10,
        "vf_clip_param": 1e9,
    },
    # Multi-agent envs (family "multiagent"), tuned on the particle envs' cooperative
    # simple spread (mpe2.simple_spread_v3: 3 agents, 25-step episodes, one shared policy):
    # sampling in the driver (the envs are cheap to step), 8 envs at a time, batches of
    # 100 episodes. Measured on 2 cores: see README, "Many agents".
    ("PPO", "multiagent"): {
        "num_env_runners": 0,
        "num_envs_per_env_runner": 8,
        "lr": 1e-3,
        "train_batch_size_per_learner": 2500,
        "minibatch_size": 2500,
        "num_epochs": 10,
        "gamma": 0.95,
        "metrics_num_episodes_for_smoothing": 100,
    },
    # DQN on CartPole: RLlib's tuned example (cartpole_dqn.py) with its double-Q, dueling
    # and n-step 3 settings, at Stable-Baselines3's update-to-data ratio (one update of 32
    # per 4 env steps: training_intensity 8 = replayed / sampled transitions), 8 envs
    # stepped together and uniform replay, which trains through offpolicy.py's flat buffer
    # with batched updates: 4-5x the env steps/s of RLlib's own path (see README, figures).
    ("DQN", "classic"): {
        "num_env_runners": 0,
        "num_envs_per_env_runner": 8,
        "rollout_fragment_length": 4,
        "training_intensity": 8.0,
        "lr": 5e-4,
        "train_batch_size_per_learner": 32,
        "n_step": 3,
        "double_q": True,
        "dueling": True,
        "target_network_update_freq": 500,
        "replay_buffer_config": {"type": "EpisodeReplayBuffer", "capacity": 50000},
        "epsilon": [[0, 1.0], [10000, 0.02]],
        "metrics_num_episodes_for_smoothing": 20,
    },
    ("DQN", "default"): {},
    # APPO / IMPALA on CartPole: RLlib's tuned examples (cartpole_appo.py, cartpole_impala.py).
    ("APPO", "classic"): {
        "num_envs_per_env_runner": 8,
        "vf_loss_coeff": 0.05,
        "entropy_coeff": 0.0,
        "metrics_num_episodes_for_smoothing": 20,
    },
    ("APPO", "default"): {},
    ("IMPALA", "classic"): {
        "num_envs_per_env_runner": 8,
        "lr": 5e-4,
        "vf_loss_coeff": 0.05,
        "entropy_coeff": 0.0,
        "metrics_num_episodes_for_smoothing": 20,
    },
    ("IMPALA", "default"): {},
    # SAC on Pendulum: RLlib's tuned example (pendulum_sac.py), with uniform replay.
    ("SAC", "classic"): {
        "num_env_runners": 0,
        "actor_lr": 2e-4,
        "critic_lr": 8e-4,
        "alpha_lr": 9e-4,
        "lr": None,
        "initial_alpha": 1.001,
        "train_batch_size_per_learner": 256,
        "target_network_update_freq": 1,
        # One update of 256 per env step (Stable-Baselines3's ratio), made 8 at a time
        # after 8 env steps (offpolicy.py batches them).
        "rollout_fragment_length": 8,
        "training_intensity": 256.0,
        # RLlib's default SAC networks for a Box action fuse two 256x256 encoders through
        # three 768-wide layers: 76 ms an update on 2 cores against Stable-Baselines3's 11.
        # One 256-unit layer per stream, fused by one: 20 ms, and Pendulum still learns.
        "model_config": {"fcnet_hiddens": [256], "fcnet_activation": "relu", "fusionnet_hiddens": []},
        # Uniform replay, as Stable-Baselines3 and the SAC paper: RLlib's prioritized buffer
        # cost ~35 ms of every update here (its sample builds episodes per draw); measured
        # side by side (2 cores, load ~10): 6.8 env steps/s prioritized, 11.1 uniform.
        "replay_buffer_config": {"type": "EpisodeReplayBuffer", "capacity": 100000},
        "num_steps_sampled_before_learning_starts": 256,
        "metrics_num_episodes_for_smoothing": 20,
    },
    ("SAC", "default"): {},
}


def preset(algo: str, family: str) -> dict:
    """The starting hyperparameters for `algo` on an env of `family` (a copy)."""
    return dict(PRESETS.get((algo, family)) or PRESETS.get((algo, "default")) or {})
