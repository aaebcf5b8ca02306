"""DQN and SAC through the flat replay buffer (launcher/training/flat_replay.py,
offpolicy.py): n-step transitions cut from real RLlib episodes, uniform draws, when the
fast path applies, and (slow) real runs that train through it and restore."""

from __future__ import annotations

import numpy as np
import pytest

from launcher.training.flat_replay import FlatReplayBuffer, n_step_returns
from tests.conftest import only_run_dir, progress_rows, run_launcher


def episode(rewards, terminated: bool, first_obs: float = 0.0):
    """A real RLlib episode chunk whose observation i is [first_obs + i]."""
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode

    steps = len(rewards)
    obs = [np.array([first_obs + i], dtype=np.float32) for i in range(steps + 1)]
    return SingleAgentEpisode(observations=obs, actions=list(range(steps)), rewards=list(rewards),
                              terminated=terminated, len_lookback_buffer=0)


def test_n_step_returns_are_cut_at_the_chunks_end():
    returns, horizon = n_step_returns(np.array([1.0, 1.0, 1.0, 1.0], dtype=np.float32), 3, 0.5)
    assert horizon.tolist() == [3, 3, 2, 1]
    assert returns.tolist() == pytest.approx([1.75, 1.75, 1.5, 1.0])


def test_flat_buffer_cuts_n_step_transitions_from_real_episodes():
    buffer = FlatReplayBuffer(capacity=100, n_step=2, gamma=0.9, seed=0)
    buffer.add([episode([1.0, 2.0, 3.0], terminated=True),
                episode([5.0, 5.0], terminated=False, first_obs=10)])
    assert len(buffer) == 5
    columns = buffer._columns
    assert columns["obs"][:5, 0].tolist() == [0, 1, 2, 10, 11]
    # The next observation is n steps on, or the chunk's last one.
    assert columns["new_obs"][:5, 0].tolist() == [2, 3, 3, 12, 12]
    assert columns["rewards"][:5].tolist() == pytest.approx([1 + 0.9 * 2, 2 + 0.9 * 3, 3, 5 + 0.9 * 5, 5])
    assert columns["n_step"][:5].tolist() == [2, 2, 1, 2, 1]
    # Only transitions that end on the terminal step of a terminated episode are terminal.
    assert columns["terminateds"][:5].tolist() == [False, True, True, False, False]


def test_flat_buffer_keeps_the_newest_transitions_and_draws_uniformly():
    buffer = FlatReplayBuffer(capacity=4, n_step=1, gamma=0.99, seed=0)
    buffer.add([episode([0.0] * 6, terminated=False)])
    assert len(buffer) == 4
    assert sorted(buffer._columns["obs"][:, 0].tolist()) == [2, 3, 4, 5]
    batch = buffer.sample(400)
    assert set(batch) == {"obs", "actions", "rewards", "new_obs", "terminateds", "n_step", "weights"}
    assert batch["obs"].shape == (400, 1) and (batch["weights"] == 1).all()
    assert set(batch["obs"][:, 0].tolist()) == {2, 3, 4, 5}  # every stored one, none evicted
    assert (batch["new_obs"] - batch["obs"] == 1).all()


def test_an_empty_flat_buffer_refuses_a_draw():
    with pytest.raises(ValueError, match="empty"):
        FlatReplayBuffer(capacity=4, n_step=1, gamma=0.99).sample(1)


def test_the_flat_path_applies_only_where_it_computes_the_same_losses():
    import gymnasium as gym
    from ray.rllib.algorithms.dqn import DQNConfig

    from launcher.training.offpolicy import compounded_tau, eligible

    box = gym.spaces.Box(-1, 1, (4,))
    uniform = DQNConfig().training(replay_buffer_config={"type": "EpisodeReplayBuffer"})
    assert eligible(uniform, box, multi_agent=False)
    assert not eligible(uniform, box, multi_agent=True)
    assert not eligible(uniform, gym.spaces.Dict({"a": box}), multi_agent=False)
    assert not eligible(DQNConfig(), box, multi_agent=False)  # RLlib's prioritized replay
    recurrent = DQNConfig().training(replay_buffer_config={"type": "EpisodeReplayBuffer"})
    recurrent.rl_module(model_config={"use_lstm": True})
    assert not eligible(recurrent, box, multi_agent=False)
    assert compounded_tau(1.0, 8) == 1.0
    assert compounded_tau(0.005, 8) == pytest.approx(1 - 0.995**8)


@pytest.mark.slow
def test_dqn_trains_through_the_flat_buffer_at_the_presets_update_ratio(tmp_path):
    proc = run_launcher("train", "--algo", "DQN", "--env", "CartPole-v1", "--stop-timesteps", "6000",
                        "--seed", "0", "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = only_run_dir(tmp_path)
    checkpoint = max((run_dir / "checkpoints").iterdir())
    assert b"FlatDQN" in (checkpoint / "class_and_ctor_args.pkl").read_bytes()
    # Past the iteration where learning starts (its first env steps had no updates).
    rows = [r for r in progress_rows(run_dir) if float(r["learner_updates_per_s"] or 0) > 0][1:]
    updates = sum(float(r["learner_updates_per_s"]) * float(r["time_this_iter_s"]) for r in rows)
    steps = sum(float(r["env_steps_per_s"]) * float(r["time_this_iter_s"]) for r in rows)
    assert updates / steps == pytest.approx(0.25, rel=0.2)  # one update of 32 per 4 env steps
    assert float(rows[-1]["replay_s"]) > 0
    proc = run_launcher("evaluate", str(run_dir), "--episodes", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_prioritized_replay_keeps_rllibs_own_training_step(tmp_path):
    proc = run_launcher("train", "--algo", "DQN", "--env", "CartPole-v1", "--stop-iters", "2",
                        "--set", "replay_buffer_config={type: PrioritizedEpisodeReplayBuffer}",
                        "--set", "min_sample_timesteps_per_iteration=600", "--seed", "0", "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checkpoint = max((only_run_dir(tmp_path) / "checkpoints").iterdir())
    pickled = (checkpoint / "class_and_ctor_args.pkl").read_bytes()
    assert b"FlatDQN" not in pickled and b"DQN" in pickled
