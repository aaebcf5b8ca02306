"""A sweep's trials, and its record: SWEEP_DIR/sweep.json.

    SWEEP_DIR/sweep.json         the base settings, the search space, every trial: its
                                 values, seed, full settings and state
    SWEEP_DIR/TRIAL/             one run directory per trial, the same as a single run's
                                 (spec.yaml, progress.csv, checkpoints/, run.json, ...)

A trial's state is pending (not started), running, done, failed (its error kept) or
interrupted (stopped by a signal after a checkpoint). Resuming a sweep keeps what is
done and continues the rest, each from its own checkpoint (training/trials.py).

The record is written atomically by the one process that runs the sweep, and read back
only when it is ours (a cluster head imports the code a trial's settings name).
"""

from __future__ import annotations

import itertools
import json
import random
import re
import shutil
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from launcher.contract import SWEEP_FILE
from launcher.errors import UserError, first_line
from launcher.files import check_trusted, write_atomic
from launcher.training.settings import TrainSettings
from launcher.training.sweep import SEARCHES, SearchSpace, apply_overrides, label

PENDING, RUNNING, DONE, FAILED, INTERRUPTED = "pending", "running", "done", "failed", "interrupted"
STOPPED_EARLY = "stopped early"  # by the sweep's early stopping (training/early_stop.py)
STATES = (PENDING, RUNNING, DONE, FAILED, INTERRUPTED, STOPPED_EARLY)
ENDED = (DONE, FAILED, STOPPED_EARLY)
NAME_LIMIT = 100


@dataclass
class Trial:
    """One trial: its values (`config`, by sweep key), seed, full settings and outcome."""

    name: str
    config: dict[str, Any]
    seed: int
    settings: dict[str, Any]
    preset_runners: int | None = None
    state: str = PENDING
    iterations: int = 0
    last_return: float | None = None
    best_return: float | None = None
    stopped_because: str = ""
    error: str | None = None
    attempts: int = 0
    resumed_from: list[int] = field(default_factory=list)

    @property
    def config_id(self) -> str:
        """The configuration this trial is a seed of (its values, without the seed)."""
        return json.dumps({label(k): v for k, v in self.config.items()}, sort_keys=True, default=str)

    def describe(self) -> str:
        values = ", ".join(f"{label(k)}={short(v)}" for k, v in self.config.items())
        return f"{values}, seed {self.seed}" if values else f"seed {self.seed}"


def short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def trial_name(index: int, config: dict[str, Any], seed: int) -> str:
    parts = [f"trial-{index:03d}", *(f"{label(k)}={short(v)}" for k, v in config.items()), f"seed={seed}"]
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", "_".join(parts))[:NAME_LIMIT].rstrip("._")


def expand(base: dict[str, Any], space: SearchSpace, say=None) -> list[Trial]:
    """Every draw x every grid combination, for each seed (seeds outermost, so that the
    first trials to finish cover every configuration)."""
    if space.sample and space.sample_seed is None:
        space.sample_seed = random.SystemRandom().randrange(2**31)
    if space.search != SEARCHES[0]:  # values proposed as trials start (training/optuna_search.py)
        return [proposed_later(base, index, say) for index in range(space.trials or 1)]
    rng = random.Random(space.sample_seed)
    draws = [{k: d.sample(rng) for k, d in space.sample.items()} for _ in range(space.trials or 1)]
    combos = [dict(zip(space.grid, values, strict=True))
              for values in itertools.product(*space.grid.values())]
    configs = [{**draw, **combo} for draw in draws for combo in combos]
    chosen = random.SystemRandom()
    trials: list[Trial] = []
    for seed in space.seeds or [None]:
        for config in configs:
            # No seeds asked for: the run's --seed, or one chosen (and recorded) per trial.
            trial_seed = seed if seed is not None else base.get("seed")
            trial_seed = chosen.randrange(2**31) if trial_seed is None else trial_seed
            settings = apply_overrides(base, config, say if not trials else None)
            settings["seed"] = trial_seed
            trials.append(Trial(trial_name(len(trials), config, trial_seed), config, trial_seed,
                                settings))
    return trials


def proposed_later(base: dict[str, Any], index: int, say=None) -> Trial:
    """A trial whose values a search proposes when it starts (`assign`); its settings
    until then are the base's, with the base's seed (or one chosen and recorded)."""
    seed = base.get("seed")
    seed = random.SystemRandom().randrange(2**31) if seed is None else seed
    settings = apply_overrides(base, {}, say if not index else None)
    settings["seed"] = seed
    return Trial(f"trial-{index:03d}", {}, seed, settings)


def assign(record: SweepRecord, trial: Trial, config: dict[str, Any]) -> None:
    """A proposed trial's values: its config, settings and name (its dir is made later)."""
    index = record.trials.index(trial)
    trial.settings = apply_overrides(trial.settings, config)
    trial.config, trial.name = config, trial_name(index, config, trial.seed)


def check_trials(trials: list[Trial], placement=None) -> None:
    """Every trial's settings checked as `launcher train` checks one run's (the env probed
    once per env, the RLlib config validated once per configuration); fills in the
    default stop criteria. One line naming the trial's values on the first mistake."""
    from launcher.training import algorithms
    from launcher.training.loop import check_settings, default_stop
    from launcher.training.rllib_config import build_config, hyperparameters

    probed: dict[str, Any] = {}
    checked: set[str] = set()
    for trial in trials:
        try:
            settings = TrainSettings.from_dict(trial.settings, where="the trial's settings")
            env_key = json.dumps([settings.env, settings.env_config, settings.code], default=str)
            if env_key not in probed:
                probed[env_key] = check_settings(settings, validate_keys=True, placement=placement)
            info = probed[env_key]
            settings.validate()
            algorithms.check_action_space(settings.algo, info.action_space)
            default_stop(settings, info)
            if trial.config_id not in checked:
                _validate_config(build_config(settings, info, 0), settings.algo)
        except UserError as exc:
            raise UserError(f"trial {trial.describe()}: {exc}") from None
        checked.add(trial.config_id)
        trial.settings = settings.to_dict()
        trial.preset_runners = hyperparameters(settings, info.family).get("num_env_runners")


def _validate_config(config, algo: str) -> None:
    try:
        config.validate()
    except ValueError as exc:
        raise UserError(f"invalid {algo} config: {first_line(exc)}") from None


# --- the record -------------------------------------------------------------------------
@dataclass
class SweepRecord:
    path: Path  # the sweep directory
    base: dict[str, Any]
    space: SearchSpace
    trials: list[Trial]
    command: str = ""
    rungs: dict[str, dict[str, float]] = field(default_factory=dict)  # early stopping's

    @property
    def file(self) -> Path:
        return self.path / SWEEP_FILE

    def trial_dir(self, trial: Trial) -> Path:
        return self.path / trial.name

    def save(self) -> None:
        data = {"version": 1, "command": self.command, "base": self.base,
                "space": self.space.to_dict(), "trials": [asdict(t) for t in self.trials],
                "rungs": self.rungs}
        write_atomic(self.file, json.dumps(data, indent=2, default=str) + "\n")

    def count(self, *states: str) -> int:
        return sum(1 for t in self.trials if t.state in states)


def is_sweep_dir(path: str | Path) -> bool:
    return (Path(path) / SWEEP_FILE).is_file()


def read_sweep(sweep_dir: str | Path) -> SweepRecord:
    """A sweep's record, trusted only if it is ours; one line when it is not a sweep."""
    path = Path(sweep_dir).expanduser().resolve()
    file = path / SWEEP_FILE
    if not file.is_file():
        raise UserError(f"{sweep_dir} is not a sweep directory (no {SWEEP_FILE} in it)")
    check_trusted(file)
    try:
        data = json.loads(file.read_text())
        names = {f.name for f in fields(Trial)}
        trials = [Trial(**{k: v for k, v in t.items() if k in names}) for t in data["trials"]]
        space = SearchSpace.from_dict(data.get("space") or {})
    except (OSError, ValueError, KeyError, TypeError, UserError) as exc:
        raise UserError(f"{file} cannot be read back: {first_line(exc)}") from None
    bad = [t.state for t in trials if t.state not in STATES]
    if bad:
        raise UserError(f"{file}: unknown trial state {bad[0]!r}")
    return SweepRecord(path, data.get("base") or {}, space, trials, data.get("command") or "",
                       data.get("rungs") or {})


def new_sweep(base: dict[str, Any], space: SearchSpace, trials: list[Trial],
              sweep_dir: str | Path | None = None, argv: list[str] | None = None) -> SweepRecord:
    """Write a new sweep's record: into `sweep_dir` (a cluster job's prepared run dir), or
    into a new directory OUTPUT/NAME (default `sweep_ALGO_ENV_TIME`), reserved."""
    from launcher.training.rundir import reserve, run_dir_name

    if sweep_dir is None:
        settings = TrainSettings.from_dict(trials[0].settings)
        name = run_dir_name(settings) if settings.name else f"sweep_{run_dir_name(settings)}"
        sweep_dir = reserve(Path(settings.output).expanduser() / name)
    argv = sys.argv if argv is None else argv
    record = SweepRecord(Path(sweep_dir).resolve(), base, space, trials,
                         " ".join(["launcher", *argv[1:]]))
    record.save()
    return record


def apply_resume(record: SweepRecord, overrides: dict[str, Any], retry_failed: bool = False) -> None:
    """Resources and stop criteria given again with --resume, for the unfinished trials
    (resume.overrides_for_resume has refused everything else); `retry_failed`: the failed
    trials run again too (from their checkpoints, if they left one)."""
    for trial in record.trials:
        if retry_failed and trial.state == FAILED:
            trial.state, trial.error = PENDING, None
        if trial.state in ENDED:
            continue
        for key, value in overrides.items():
            if key == "stop":
                trial.settings["stop"] = {**(trial.settings.get("stop") or {}), **value}
            else:
                trial.settings[key] = value


def check_sweep_resumable(sweep_dir: str | Path, retry_failed: bool = False) -> Path:
    """The sweep dir to resume, resolved; one line when nothing is left to run."""
    record = read_sweep(sweep_dir)
    left = [t for t in record.trials if t.state not in ENDED or (retry_failed and t.state == FAILED)]
    if not left:
        raise UserError(f"every trial of {record.path} has ended ({record.count(DONE)} done, "
                        f"{record.count(FAILED)} failed): nothing to resume"
                        + ("; --retry-failed runs the failed ones again" if record.count(FAILED) else ""))
    return record.path


def update_for_resume(sweep_dir: str | Path, overrides: dict[str, Any],
                      retry_failed: bool = False) -> SweepRecord:
    """`launcher local|submit --resume SWEEP_DIR`: the options given again written into
    the record, which the job's head then continues."""
    record = read_sweep(sweep_dir)
    apply_resume(record, overrides, retry_failed)
    record.save()
    return record


def follow_snapshot(trials: list[Trial], original_env: str, env: str, code: str | None) -> None:
    """A cluster job's trials use the env code copied into its run dir (jobdir.prepare_job
    rewrote the base settings' env and code); a sweep over env code files cannot."""
    for trial in trials:
        if trial.settings.get("env") != original_env:
            from launcher.training import envs

            if envs.is_entry_point(trial.settings["env"]):
                raise UserError("a cluster job ships one env's code: sweep over Gymnasium ids, "
                                f"or over env_config, not over env code ({trial.settings['env']})")
            continue
        settings = TrainSettings.from_dict(trial.settings)
        settings.env, settings.code = env, code
        trial.settings = settings.to_dict()


# --- a trial's directory -----------------------------------------------------------------
def describe_outcome(trial: Trial) -> str:
    """A finished trial, in one line of the sweep's log."""
    if trial.state == FAILED:
        return f"failed: {trial.error}"
    ret = "-" if trial.last_return is None else f"{trial.last_return:.1f}"
    return f"{trial.state} after {trial.iterations} iterations, mean return {ret} ({trial.stopped_because})"


def prepare_trial_dir(run_dir: Path, settings: dict[str, Any]) -> None:
    """A trial's run dir: kept when it holds a checkpoint (the trial continues from it),
    else made afresh with its spec and the start of its run record."""
    from launcher.training.checkpoints import checkpoints
    from launcher.training.run_record import begin_record
    from launcher.training.rundir import reserve

    if run_dir.is_dir() and checkpoints(run_dir):
        return
    if run_dir.is_dir():  # started before, nothing saved: it begins again
        shutil.rmtree(run_dir)
    reserve(run_dir)
    trial_settings = TrainSettings.from_dict(settings)
    trial_settings.write_spec(run_dir)
    begin_record(run_dir, trial_settings, sys.argv)
