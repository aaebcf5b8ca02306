"""DQN and SAC trained from a flat replay buffer, with their updates batched per step.

RLlib's DQN and SAC (which shares DQN's training step) spend most of a step outside the
gradient: every update draws episodes from an episode replay buffer, runs the learner
connector over them and reduces the learner's metrics, about 10 ms on 2 cores for a
32-transition DQN update whose gradient takes 2. `FlatDQN` and `FlatSAC` keep RLlib's
algorithm, learner, losses and env runners and change only how a training step feeds the
learner:

- the sampled episode chunks go into a `FlatReplayBuffer` (flat_replay.py), cut into
  n-step transitions once;
- the step's k updates draw one batch of k x train_batch_size transitions and make one
  learner call with k minibatches (`minibatch_size`), so the per-call costs are paid once
  per step instead of once per update; the gradient steps are the same k.

The target network is updated once per learner call, so SAC's per-update Polyak rate
`tau` is compounded to k updates (`compounded_tau`). `eligible` says when the fast path
applies (single-agent torch on the new API stack, flat observations, no recurrent model,
uniform replay); otherwise RLlib's own training step runs, unchanged.
"""

from __future__ import annotations

from ray.rllib.algorithms.dqn.dqn import DQN, calculate_rr_weights
from ray.rllib.algorithms.sac.sac import SAC
from ray.rllib.core import ALL_MODULES, DEFAULT_MODULE_ID
from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_AGENT_STEPS_SAMPLED_LIFETIME,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    REPLAY_BUFFER_ADD_DATA_TIMER,
    REPLAY_BUFFER_SAMPLE_TIMER,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TD_ERROR_KEY,
    TIMERS,
)

from launcher.training.flat_replay import FlatReplayBuffer

UNIFORM_BUFFERS = ("EpisodeReplayBuffer",)


def eligible(config, obs_space, multi_agent: bool) -> bool:
    """Whether the flat replay path can stand in for RLlib's episode buffers here."""
    buffer_type = (config.replay_buffer_config or {}).get("type")
    buffer_name = buffer_type if isinstance(buffer_type, str) else getattr(buffer_type, "__name__", "")
    return (
        not multi_agent
        and config.framework_str == "torch"
        and config.enable_env_runner_and_connector_v2
        and isinstance(config.n_step, int)
        and not (config.model_config or {}).get("use_lstm")
        and type(obs_space).__name__ == "Box"
        and buffer_name in UNIFORM_BUFFERS
    )


def compounded_tau(tau: float, updates: int) -> float:
    """The Polyak rate that, applied once, moves a target as far as `tau` applied `updates` times."""
    return 1.0 - (1.0 - tau) ** max(updates, 1)


def updates_per_step(config) -> int:
    """The gradient steps one training step makes (RLlib's round-robin weights)."""
    return int(calculate_rr_weights(config)[1])


def _sample(algo) -> None:
    store_rounds = calculate_rr_weights(algo.config)[0]
    for _ in range(store_rounds):
        with algo.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes, runner_results = synchronous_parallel_sample(
                worker_set=algo.env_runner_group, concat=True,
                sample_timeout_s=algo.config.sample_timeout_s,
                _uses_new_env_runners=True, _return_metrics=True)
        algo.metrics.aggregate(runner_results, key=ENV_RUNNER_RESULTS)
        with algo.metrics.log_time((TIMERS, REPLAY_BUFFER_ADD_DATA_TIMER)):
            algo.local_replay_buffer.add(episodes)


def _learn(algo) -> None:
    config = algo.config
    size = config.total_train_batch_size
    rounds = updates_per_step(config)
    with algo.metrics.log_time((TIMERS, REPLAY_BUFFER_SAMPLE_TIMER)):
        columns = algo.local_replay_buffer.sample(size * rounds)
    batch = MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(columns)}, env_steps=size * rounds)
    timesteps = {key: algo.metrics.peek((ENV_RUNNER_RESULTS, key), default=0)
                 for key in (NUM_ENV_STEPS_SAMPLED_LIFETIME, NUM_AGENT_STEPS_SAMPLED_LIFETIME)}
    with algo.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
        results = algo.learner_group.update(batch=batch, timesteps=timesteps, minibatch_size=size,
                                            num_epochs=1, shuffle_batch_per_epoch=False)
    for result in results:  # per-transition TD errors: only prioritized replay reads them
        for module_results in result.values():
            if isinstance(module_results, dict):
                module_results.pop(TD_ERROR_KEY, None)
    algo.metrics.aggregate(results, key=LEARNER_RESULTS)
    with algo.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
        algo.env_runner_group.sync_weights(
            from_worker_or_learner_group=algo.learner_group,
            policies=set(results[0].keys()) - {ALL_MODULES}, inference_only=True)


class _FlatReplay:
    """The training step and buffer shared by FlatDQN and FlatSAC."""

    def setup(self, config) -> None:
        super().setup(config)
        self.local_replay_buffer = FlatReplayBuffer(
            capacity=config.replay_buffer_config.get("capacity", 100_000), n_step=config.n_step,
            gamma=config.gamma, seed=config.seed)

    def _training_step_new_api_stack(self) -> None:
        _sample(self)
        sampled = self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        if sampled >= self.config.num_steps_sampled_before_learning_starts and len(self.local_replay_buffer):
            _learn(self)


class FlatDQN(_FlatReplay, DQN):
    """RLlib's DQN, fed from a flat replay buffer with batched updates."""


class FlatSAC(_FlatReplay, SAC):
    """RLlib's SAC, fed from a flat replay buffer with batched updates."""


FLAT_CLASSES = {"DQN": FlatDQN, "SAC": FlatSAC}
