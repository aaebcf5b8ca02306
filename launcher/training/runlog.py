"""What a run leaves on disk while it trains: progress.csv, result.json, TensorBoard.

A multi-agent run's rows also hold the mean return per policy and per agent, as RLlib
reports them (POLICY_RETURN_PREFIX, AGENT_RETURN_PREFIX); `episode_return_mean` is then
the sum over agents.

progress.csv keeps a few readable columns first (iteration, env steps, mean
return, the greedy evaluation's mean return when the run evaluates, time) followed by
every scalar RLlib reports, flattened with '/'. When
RLlib reports a new metric part-way through, the file is rewritten with the wider
header, so a column never silently goes missing. On resume, rows after the
restored checkpoint are dropped: they will be produced again.

TensorBoard's scalars have the env steps as their x-axis (as progress.csv and the reward
plot), so runs with different batch sizes line up.
"""

from __future__ import annotations

import csv
import json
import math
from collections import deque
from numbers import Number
from pathlib import Path
from typing import Any

from launcher.contract import PROGRESS_CSV, RESULT_JSON
from launcher.training import throughput

# The greedy evaluation's mean return (--eval-every), blank in iterations that did not evaluate.
EVAL_RETURN_COLUMN = "evaluation_return_mean"
LEADING_COLUMNS = [
    "training_iteration",
    "num_env_steps_sampled_lifetime",
    "episode_return_mean",
    EVAL_RETURN_COLUMN,
    "time_total_s",
    "time_this_iter_s",
    "timestamp",
    *throughput.COLUMNS,  # env steps/s, learner updates/s, seconds per phase
]

# Where the mean episode return lives: new API stack first, then the old stack (tf2).
RETURN_KEYS = (
    "env_runners/episode_return_mean",
    "env_runners/episode_reward_mean",
    "episode_return_mean",
    "episode_reward_mean",
)
EVAL_RETURN_KEYS = tuple(f"evaluation/{key}" for key in RETURN_KEYS)
# A multi-agent run's returns, per policy (RLlib's "module") and per agent; the
# summed return over agents is RETURN_KEYS' env_runners/episode_return_mean.
POLICY_RETURN_PREFIX = "env_runners/module_episode_returns_mean/"
AGENT_RETURN_PREFIX = "env_runners/agent_episode_returns_mean/"
SMOOTHED_GROUPS = ("module_episode_returns_mean", "agent_episode_returns_mean")
STEP_KEYS = (
    "num_env_steps_sampled_lifetime",
    "env_runners/num_env_steps_sampled_lifetime",
    "timesteps_total",
    "num_env_steps_sampled",
)


def flatten(result: dict, prefix: str = "") -> dict[str, Any]:
    """Nested result dict -> {'a/b/c': scalar}; keeps numbers, bools and strings."""
    flat: dict[str, Any] = {}
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "/"))
        elif isinstance(value, (bool | str, Number)):
            flat[name] = value
        elif hasattr(value, "item") and getattr(value, "size", 2) == 1:  # numpy scalar
            flat[name] = value.item()
    return flat


def number(value) -> float | None:
    """A finite-or-infinite float from a result value or a CSV cell; None for NaN, blanks,
    bools and text."""
    if isinstance(value, bool):
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(result) else result


def first_of(row: dict, keys) -> float | None:
    """The first of `keys` that holds a number (metric names differ between RLlib stacks
    and between the launcher's progress.csv and the tutorial's)."""
    for key in keys:
        value = number(row.get(key))
        if value is not None:
            return value
    return None


class ReturnWindow:
    """The mean returns over the last `size` episodes, across iterations.

    RLlib 2.60 (new API stack) reduces `episode_return_mean` over the episodes that ended
    in one iteration: its windowed mean is emptied at every reduce. With short iterations
    (DQN's and SAC's time slices, a slow env) the "mean" is then one episode, and
    `--stop-reward` would stop on a single lucky one. `smooth` replaces it, in the result,
    by the mean over the last `size` episodes (metrics_num_episodes_for_smoothing), from
    each iteration's mean and episode count; likewise a multi-agent run's means per policy
    and per agent (SMOOTHED_GROUPS), so they still add up to the total. An iteration that
    ended no episode reports the window's means so far."""

    def __init__(self, size: int):
        self.size = max(int(size), 1)
        self.parts: dict[tuple[str, ...], deque[tuple[float, int]]] = {}  # oldest first

    def smooth(self, result: dict) -> None:
        runners = result.get("env_runners")
        if not isinstance(runners, dict):
            return
        count = number(runners.get("num_episodes"))
        means = {("episode_return_mean",): runners.get("episode_return_mean")}
        for group in SMOOTHED_GROUPS:
            if isinstance(runners.get(group), dict):
                means.update({(group, name): value for name, value in runners[group].items()})
        for path, value in means.items():
            if (mean := number(value)) is not None and count:
                self._add(path, mean, min(int(count), self.size))
        for path in self.parts:
            target = runners if len(path) == 1 else runners.setdefault(path[0], {})
            target[path[-1]] = self.mean(path)

    def _add(self, path: tuple[str, ...], mean: float, count: int) -> None:
        parts = self.parts.setdefault(path, deque())
        parts.append((mean, count))
        while sum(n for _, n in parts) - parts[0][1] >= self.size:
            parts.popleft()

    def mean(self, path: tuple[str, ...] = ("episode_return_mean",)) -> float:
        total, weight = 0.0, 0
        for mean, count in reversed(self.parts[path]):  # newest first; the oldest fills the rest
            used = min(count, self.size - weight)
            total, weight = total + mean * used, weight + used
        return total / weight


def summarise(result: dict) -> dict[str, Any]:
    """The handful of figures a person reads from one RLlib result."""
    flat = flatten({k: v for k, v in result.items() if k != "config"})
    return {
        "training_iteration": int(flat.get("training_iteration", 0)),
        "num_env_steps_sampled_lifetime": int(first_of(flat, STEP_KEYS) or 0),
        "episode_return_mean": first_of(flat, RETURN_KEYS),
        EVAL_RETURN_COLUMN: first_of(flat, EVAL_RETURN_KEYS) if evaluated(result) else None,
        "time_total_s": float(flat.get("time_total_s", 0.0)),
        "time_this_iter_s": float(flat.get("time_this_iter_s", 0.0)),
        "timestamp": flat.get("timestamp"),
        "flat": flat,
    }


def returns_by(row: dict, prefix: str) -> dict[str, float]:
    """{name: mean return} from a progress row's columns under `prefix` (numbers only)."""
    out = {}
    for key, value in row.items():
        if key.startswith(prefix) and (found := number(value)) is not None:
            out[key[len(prefix):]] = found
    return out


def policy_returns(row: dict) -> dict[str, float]:
    """A multi-agent row's mean return per policy ({} for a single-agent run)."""
    return returns_by(row, POLICY_RETURN_PREFIX)


def evaluated(result: dict) -> bool:
    """Whether this iteration ran an evaluation (RLlib may carry the last one's figures
    along in iterations that did not)."""
    evaluation = result.get("evaluation")
    if not isinstance(evaluation, dict) or not evaluation:
        return False
    interval = (result.get("config") or {}).get("evaluation_interval")
    iteration = result.get("training_iteration")
    if isinstance(interval, int) and interval > 0 and isinstance(iteration, int):
        return iteration % interval == 0
    return True


def iteration_of(row: dict | None) -> int | None:
    """A row's iteration, or None when the row is damaged (a torn last line)."""
    value = number((row or {}).get("training_iteration"))
    return None if value is None or not math.isfinite(value) else int(value)


def _json_line(line: str) -> dict | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class RunLog:
    """Appends one row per iteration to progress.csv, result.json and TensorBoard."""

    def __init__(self, run_dir: Path, tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.csv_path = self.run_dir / PROGRESS_CSV
        self.json_path = self.run_dir / RESULT_JSON
        self.rows: list[dict[str, Any]] = []
        self.columns: list[str] = []
        if self.csv_path.exists():
            with self.csv_path.open(newline="") as fh:
                reader = csv.DictReader(fh)
                self.columns = list(reader.fieldnames or [])
                # A row cut short by a crash mid-write has no readable iteration: dropped.
                self.rows = [row for row in reader if iteration_of(row) is not None]
        self._tb = None
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter

                self._tb = SummaryWriter(logdir=str(self.run_dir), flush_secs=5)
            except ImportError:  # pragma: no cover - tensorboardX is a dependency
                self._tb = None

    def last_env_steps(self) -> int:
        """The env steps sampled by the newest row (0 before the first)."""
        return int(float(self.rows[-1]["num_env_steps_sampled_lifetime"] or 0)) if self.rows else 0

    def truncate_after(self, iteration: int) -> None:
        """Drop rows newer than `iteration` (resume from a checkpoint taken there)."""
        self.rows = [r for r in self.rows if iteration_of(r) <= iteration]
        self._rewrite_csv()
        if self.json_path.exists():
            kept = [line for line in self.json_path.read_text(errors="replace").splitlines()
                    if (found := iteration_of(_json_line(line))) is not None and found <= iteration]
            self.json_path.write_text("".join(line + "\n" for line in kept))

    def append(self, result: dict, measured: dict[str, float] | None = None) -> dict[str, Any]:
        """One iteration's row; `measured`: the loop's own figures (throughput.COLUMNS)."""
        summary = summarise(result)
        summary.update(measured or {})
        row = {k: summary.get(k) for k in LEADING_COLUMNS}
        row.update({k: v for k, v in summary["flat"].items() if k not in row})
        new_columns = [k for k in row if k not in self.columns]
        self.rows.append(row)
        if new_columns or not self.csv_path.exists():
            self.columns += new_columns
            self._rewrite_csv()
        else:
            with self.csv_path.open("a", newline="") as fh:
                csv.DictWriter(fh, self.columns, extrasaction="ignore").writerow(row)
        with self.json_path.open("a") as fh:
            fh.write(json.dumps(_jsonable(result), default=str) + "\n")
        if self._tb is not None:
            step = summary["num_env_steps_sampled_lifetime"]
            for key, value in row.items():
                if isinstance(value, Number) and not isinstance(value, bool) and math.isfinite(value):
                    self._tb.add_scalar(f"ray/tune/{key}", value, global_step=step)
        return summary

    def _rewrite_csv(self) -> None:
        tmp = self.csv_path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, self.columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(self.rows)
        tmp.replace(self.csv_path)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def _jsonable(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "config"}
