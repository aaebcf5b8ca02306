"""From a command's options to a sweep, and back in with --resume.

`launcher train`, `local` and `submit` merge their training options as for one run;
`plan_sweep` then splits the search space off them (the flags below, an experiment
file's `sweep:` section and `grid_search:` values) and expands it into trials. No
search space: the command trains one run as before.

Where the sweep runs: `launcher train` writes its record into a new sweep directory
and runs it here (trials.run_sweep); a cluster job writes the record into the job's
run directory (cluster/jobdir.py `prepare_job`), whose head runs it. `--resume
SWEEP_DIR` continues the unfinished trials, with the resources and stop criteria
given again, and `--retry-failed` runs the failed ones again too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from launcher.errors import UserError
from launcher.training.sweep import SearchSpace, parse_seed_option, search_space
from launcher.training.sweep_record import SweepRecord, Trial, expand, is_sweep_dir, new_sweep


@dataclass
class SweepFlags:
    """The sweep options as typed (`--seed` is text: one seed, or several: 1,2,3)."""

    seed: str | None = None
    seeds: int | None = None
    grid: list[str] | None = None
    sample: list[str] | None = None
    trials: int | None = None
    max_concurrent: int | None = None
    early_stop: str | None = None
    search: str | None = None

    def single_seed(self) -> int | None:
        """`--seed S`: the run's seed, merged with the other training options."""
        return parse_seed_option(self.seed)[0]

    def given(self) -> list[str]:
        """The flags that define a search space, as typed (a resumed sweep keeps its own)."""
        names = {"seeds": "--seeds", "grid": "--grid", "sample": "--sample", "trials": "--trials",
                 "early_stop": "--early-stop", "search": "--search"}
        given = [flag for name, flag in names.items() if getattr(self, name)]
        return given + (["--seed A,B"] if parse_seed_option(self.seed)[1] else [])


@dataclass
class SweepPlan:
    """A sweep before it has a directory: the base settings, the space, the trials."""

    base: dict[str, Any]
    space: SearchSpace
    trials: list[Trial]

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base, "space": self.space.to_dict(),
                "trials": [asdict(t) for t in self.trials]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepPlan:
        names = {f.name for f in fields(Trial)}
        trials = [Trial(**{k: v for k, v in t.items() if k in names}) for t in data["trials"]]
        return cls(data["base"], SearchSpace.from_dict(data["space"]), trials)

    def write(self, sweep_dir: str | Path | None = None) -> SweepRecord:
        """The sweep record, in `sweep_dir` (a cluster job's run dir) or a new directory."""
        return new_sweep(self.base, self.space, self.trials, sweep_dir=sweep_dir)


def plan_sweep(training: dict[str, Any], flags: SweepFlags,
               say=None) -> tuple[dict[str, Any], SweepPlan | None]:
    """The base settings (the merged options without their search space) and, when the
    options ask for several trials, the plan; its trials are checked by the caller
    (sweep_record.check_trials), with the placement where they will run."""
    base, space = search_space(
        training, seeds=flags.seeds, seed_list=parse_seed_option(flags.seed)[1], grid=flags.grid,
        sample=flags.sample, trials=flags.trials, max_concurrent=flags.max_concurrent,
        early_stopping=flags.early_stop, search=flags.search)
    if not space.is_sweep():
        return base, None
    if space.search == "optuna":
        from launcher.training.optuna_search import require_optuna

        require_optuna()  # before anything is written
    trials = expand(base, space, say)
    if say is not None:
        say(f"sweep: {len(trials)} trials ({describe(space)})")
    return base, SweepPlan(base, space, trials)


def job_settings(training: dict[str, Any], flags: SweepFlags, say=None):
    """A cluster job's TrainSettings: its one run's, or its sweep's first trial's; and
    the sweep's plan (None: one run)."""
    from launcher.training.settings import TrainSettings

    base, plan = plan_sweep(training, flags, say)
    first = plan.trials[0].settings if plan is not None else base
    return TrainSettings.from_dict(first, where="the training options"), plan


def describe(space: SearchSpace) -> str:
    parts = [f"{key} in {values}" for key, values in space.grid.items()]
    parts += [f"{key} ~ {dist}" for key, dist in space.sample.items()]
    if space.sample:
        parts.append(f"{space.trials} draws")
    if space.seeds:
        parts.append(f"seeds {', '.join(map(str, space.seeds))}")
    if space.search != "random":
        parts.append(f"values proposed by {space.search}")
    if space.early_stop:
        rule = space.early_stop
        parts.append(f"early stopping: {rule['method']}, grace {rule['grace_iters']} iterations, "
                     f"reduction {rule['reduction']}")
    return "; ".join(parts)


def check_resume_flags(resume: Path | None, flags: SweepFlags, retry_failed: bool) -> bool:
    """Whether `resume` is a sweep directory; one line for sweep flags that cannot apply."""
    sweep = resume is not None and is_sweep_dir(Path(resume).expanduser())
    if resume is not None and flags.given():
        raise UserError(f"{', '.join(flags.given())}: a resumed run keeps its trials; start a new "
                        "sweep for other values")
    if retry_failed and not sweep:
        raise UserError("--retry-failed runs a sweep's failed trials again: give --resume SWEEP_DIR")
    return sweep
