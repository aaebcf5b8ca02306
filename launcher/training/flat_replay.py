"""A uniform replay buffer of n-step transitions in flat NumPy arrays, for DQN and SAC.

RLlib's episode replay buffers keep whole episodes and, on every draw, build a one-step
`SingleAgentEpisode` per sampled transition, which the learner connector then turns back
into columns: about 0.15 ms per replayed transition on a 2-core machine. At the update-to-
data ratio of Stable-Baselines3's defaults that is most of DQN's time (8 replayed
transitions per env step) and nearly all of SAC's (256 per update). Here each sampled
episode chunk is cut into n-step transitions once, when it is added, and a draw is a
NumPy fancy index: the columns the DQN and SAC losses read (obs, actions, rewards,
new_obs, terminateds, n_step, weights) come out ready for the learner.

The n-step return of a transition is cut at the end of the chunk it was sampled in
(`n_step` then holds the shorter horizon and the target bootstraps from there), as RLlib's
own buffers cut it at an episode's end. Sampling is uniform, as in Stable-Baselines3 and
RLlib's `EpisodeReplayBuffer`.
"""

from __future__ import annotations

import numpy as np

# The columns a draw returns, named as RLlib's `Columns` (and the losses' "n_step",
# "weights").
OBS, ACTIONS, REWARDS, NEXT_OBS, TERMINATEDS = "obs", "actions", "rewards", "new_obs", "terminateds"
N_STEP, WEIGHTS = "n_step", "weights"


def n_step_returns(rewards: np.ndarray, n_step: int, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """(discounted sum of the next up-to-n rewards, horizon used) for each step of a chunk."""
    steps = len(rewards)
    horizon = np.minimum(n_step, steps - np.arange(steps))
    returns = np.zeros(steps, dtype=np.float32)
    for i in range(n_step):
        shifted = np.zeros(steps, dtype=np.float32)
        shifted[: steps - i] = rewards[i:]
        returns += np.where(horizon > i, gamma**i * shifted, 0.0).astype(np.float32)
    return returns, horizon


class FlatReplayBuffer:
    """A ring of n-step transitions; `add` takes RLlib's sampled episode chunks."""

    def __init__(self, capacity: int, n_step: int, gamma: float, seed: int | None = None):
        self.capacity = int(capacity)
        self.n_step = max(int(n_step), 1)
        self.gamma = float(gamma)
        self.size = 0
        self._next = 0
        self._columns: dict[str, np.ndarray] | None = None
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, episodes) -> None:
        for episode in episodes:
            if len(episode) > 0:
                self._write(self._transitions(episode))

    def _transitions(self, episode) -> dict[str, np.ndarray]:
        observations = np.asarray(episode.get_observations())
        actions = np.asarray(episode.get_actions())
        rewards = np.asarray(episode.get_rewards(), dtype=np.float32)
        returns, horizon = n_step_returns(rewards, self.n_step, self.gamma)
        steps = len(rewards)
        ends = np.arange(steps) + horizon
        terminated = np.zeros(steps, dtype=bool)
        if episode.is_terminated:
            terminated[ends == steps] = True
        return {OBS: observations[:steps], ACTIONS: actions, REWARDS: returns,
                NEXT_OBS: observations[ends], TERMINATEDS: terminated,
                N_STEP: horizon.astype(np.float32)}

    def _write(self, rows: dict[str, np.ndarray]) -> None:
        if self._columns is None:
            self._columns = {name: np.zeros((self.capacity, *col.shape[1:]), dtype=col.dtype)
                             for name, col in rows.items()}
        count = len(rows[OBS])
        at = (self._next + np.arange(count)) % self.capacity
        for name, col in rows.items():
            self._columns[name][at] = col
        self._next = int((self._next + count) % self.capacity)
        self.size = min(self.size + count, self.capacity)

    def sample(self, num_items: int) -> dict[str, np.ndarray]:
        """`num_items` transitions drawn uniformly, with replacement, as loss columns."""
        if not self.size:
            raise ValueError("the replay buffer is empty")
        picked = self._rng.integers(0, self.size, size=int(num_items))
        batch = {name: col[picked] for name, col in self._columns.items()}
        batch[WEIGHTS] = np.ones(len(picked), dtype=np.float32)
        return batch

    def get_state(self) -> dict:
        return {"size": self.size, "next": self._next, "columns": self._columns}

    def set_state(self, state: dict) -> None:
        self.size, self._next, self._columns = state["size"], state["next"], state["columns"]
