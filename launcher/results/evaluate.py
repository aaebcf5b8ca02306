"""`launcher evaluate`: play a trained policy for N episodes, greedily, and say how it did.

The checkpoint is restored with the connectors it was trained with, in this process and
without a Ray cluster (restore.py), so this runs the same on a laptop, on a login node
and inside the image (`docker run` / `apptainer exec`). The mean ± standard deviation
of the episode return and length is printed and written to RUN_DIR/eval.json, next to
the training return of the same iteration for comparison; `--video DIR` also films the
episodes (video.py).

A seed makes an evaluation repeatable: without `--seed` one is chosen and recorded.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from launcher.contract import BEST_CHECKPOINT
from launcher.contract import EVAL_FILE as EVAL_JSON
from launcher.errors import UserError, first_line
from launcher.files import write_atomic
from launcher.results import restore
from launcher.results.tables import read_run
from launcher.training.checkpoints import best_info, iteration_of
from launcher.training.options import parse_assignments

DEFAULT_EPISODES = 10


@dataclass
class Evaluation:
    """One evaluation: what was played, and how it scored."""

    run_dir: str
    checkpoint: str
    iteration: int | None
    episodes: int
    seed: int
    explore: bool
    env_config: dict
    returns: list[float]
    lengths: list[int]
    training_return: float | None = None  # progress.csv's mean return at that iteration
    restore_to_first_episode_s: float | None = None
    wall_s: float = 0.0
    videos: list[str] = field(default_factory=list)
    # A multi-agent run: each policy's return per episode (its agents' returns summed).
    policy_returns: dict[str, list[float]] = field(default_factory=dict)

    @property
    def mean_return(self) -> float:
        return statistics.fmean(self.returns)

    @property
    def std_return(self) -> float:
        return statistics.pstdev(self.returns)

    @property
    def mean_length(self) -> float:
        return statistics.fmean(self.lengths)

    def to_dict(self) -> dict:
        return {**asdict(self), "mean_return": self.mean_return, "std_return": self.std_return,
                "mean_length": self.mean_length, "std_length": statistics.pstdev(self.lengths)}

    def summary(self) -> str:
        mode = "exploring" if self.explore else "greedy"
        line = (f"mean return {self.mean_return:.2f} ± {self.std_return:.2f}, mean length "
                f"{self.mean_length:.1f} over {self.episodes} episodes ({mode}, seed {self.seed})")
        if self.training_return is not None:
            line += f"; training return at that iteration: {self.training_return:.2f}"
        for policy, returns in sorted(self.policy_returns.items()):
            line += f"\n  policy {policy}: mean return {statistics.fmean(returns):.2f} ± " \
                    f"{statistics.pstdev(returns):.2f}"
        return line


def policy_returns(episodes) -> dict[str, list[float]]:
    """Per policy, its agents' summed return in each multi-agent episode ({} otherwise)."""
    out: dict[str, list[float]] = {}
    for episode in episodes:
        if not hasattr(episode, "agent_episodes"):
            return {}
        totals: dict[str, float] = {}
        for agent, agent_episode in episode.agent_episodes.items():
            policy = str(episode.module_for(agent))
            totals[policy] = totals.get(policy, 0.0) + float(agent_episode.get_return())
        for policy, total in totals.items():
            out.setdefault(policy, []).append(total)
    return out


def checkpoint_iteration(source: restore.Source) -> int | None:
    if source.checkpoint.name == BEST_CHECKPOINT:
        return (best_info(source.run_dir) or {}).get("iteration")
    return iteration_of(source.checkpoint)


def training_return(run_dir: Path, iteration: int | None) -> float | None:
    try:
        curve = read_run(run_dir)
    except UserError:
        return None
    found = [r for i, r in zip(curve.iterations, curve.returns, strict=True) if i == iteration]
    return found[-1] if found else None


def play(source: restore.Source, settings, tape: restore.Tape, episodes: int, explore: bool,
         render: bool) -> tuple[list, float]:
    """Restore and play; return the episodes and when the restore began."""
    started = time.monotonic()
    try:
        runner = restore.restore_runner(source, settings, tape, explore=explore, render=render)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"{source.checkpoint} does not load: {first_line(exc)}") from None
    try:
        return runner.sample(num_episodes=episodes, explore=explore), started
    finally:
        runner.stop()


def evaluate(target: str | Path, episodes: int = DEFAULT_EPISODES, seed: int | None = None,
             explore: bool = False, env_config: list[str] | None = None,
             video_dir: str | Path | None = None) -> Evaluation:
    """Evaluate RUN_DIR (its best checkpoint, else its newest) or a checkpoint; write eval.json."""
    if episodes < 1:
        raise UserError(f"--episodes must be at least 1, got {episodes}")
    overrides = parse_assignments(env_config, "--env-config")
    source = restore.locate(target, "evaluate")
    seed = random.SystemRandom().randrange(2**31) if seed is None else seed
    settings = restore.eval_settings(source, overrides, seed)
    film = None
    if video_dir is not None and not restore.module_dir(source.checkpoint).is_dir():
        raise UserError(f"{source.run_dir} is a multi-agent run: --video supports single-agent "
                        "runs only so far")
    if video_dir is not None:
        from launcher.results import video

        video.check_encoder()
        fps = video.check_renders(restore.env_maker(settings, restore.Tape(), render=True),
                                  settings.env)
        film = video.EpisodeFilm(video_dir, settings.env, fps)
        film.prepare()
    tape = restore.Tape(on_frames=film)
    played, started = play(source, settings, tape, episodes, explore, render=film is not None)
    iteration = checkpoint_iteration(source)
    result = Evaluation(
        run_dir=str(source.run_dir), checkpoint=str(source.checkpoint), iteration=iteration,
        episodes=len(played), seed=seed, explore=explore, env_config=overrides,
        returns=[float(e.get_return()) for e in played], lengths=[len(e) for e in played],
        training_return=training_return(source.run_dir, iteration),
        restore_to_first_episode_s=tape.episode_ends[0] - started if tape.episode_ends else None,
        wall_s=time.monotonic() - started, videos=[str(p) for p in film.written] if film else [],
        policy_returns=policy_returns(played))
    write_atomic(source.run_dir / EVAL_JSON, json.dumps(result.to_dict(), indent=2) + "\n")
    return result
