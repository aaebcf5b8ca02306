"""`--search optuna`: a sweep's sampled values proposed by Optuna's TPE sampler instead
of drawn at random, each trial's values chosen from the results of those before it.

    launcher train --sample 'lr=loguniform(1e-5,1e-3)' --sample 'gamma=uniform(0.9,0.999)' \\
        --trials 30 --search optuna --max-concurrent 4

Optuna is an optional extra (`pip install 'launcher[optuna]'`). Each trial is one
Optuna trial, asked when the trial starts (sweep_record.assign names it then) and told
its final mean return when it ends: failed trials are told FAIL, trials stopped early
PRUNED. The study lives in this process only: a resumed sweep rebuilds it from the
trials its record holds, so the proposals go on from everything already learned.
The sampler's seed is the sweep's recorded `sample_seed`.
"""

from __future__ import annotations

from typing import Any

from launcher.errors import MissingTool
from launcher.training.sweep_record import (
    DONE,
    ENDED,
    FAILED,
    STOPPED_EARLY,
    SweepRecord,
    Trial,
    assign,
)
from launcher.training.sweep_values import Distribution

EXTRA = "pip install 'launcher[optuna]'"


def require_optuna():
    try:
        import optuna
    except ImportError:
        raise MissingTool(f"--search optuna needs Optuna, which is not installed here: {EXTRA}") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def to_optuna(optuna, dist: Distribution):
    """Our distribution as Optuna's; choice() by index (its values may be lists)."""
    if dist.kind == "choice":
        return optuna.distributions.CategoricalDistribution(list(range(len(dist.args))))
    low, high = dist.args
    if dist.kind == "randint":  # ours excludes `high`, Optuna's includes it
        return optuna.distributions.IntDistribution(int(low), int(high) - 1)
    return optuna.distributions.FloatDistribution(float(low), float(high), log=dist.kind == "loguniform")


class OptunaSearch:
    """The study of one sweep run; `propose` before a trial starts, `tell` when it ends."""

    def __init__(self, record: SweepRecord):
        optuna = require_optuna()
        self.optuna, self.record = optuna, record
        self.space = record.space.sample
        self.distributions = {key: to_optuna(optuna, dist) for key, dist in self.space.items()}
        self.study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=record.space.sample_seed))
        self.asked: dict[str, int] = {}  # trial name -> Optuna trial number
        for trial in record.trials:
            if trial.config and trial.state in ENDED:
                self.add_ended(trial)

    def propose(self, trial: Trial) -> None:
        """Fill a trial that has no values yet with the sampler's proposal."""
        asked = self.study.ask(self.distributions)
        assign(self.record, trial, {key: self.value(key, asked.params[key]) for key in self.space})
        self.asked[trial.name] = asked.number

    def value(self, key: str, raw: Any) -> Any:
        dist = self.space[key]
        if dist.kind == "choice":
            return dist.args[raw]
        return int(raw) if dist.kind == "randint" else float(f"{raw:.6g}")

    def params(self, trial: Trial) -> dict[str, Any]:
        return {key: (self.space[key].args.index(value) if self.space[key].kind == "choice" else value)
                for key, value in trial.config.items()}

    def outcome(self, trial: Trial) -> tuple[Any, float | None]:
        state = self.optuna.trial.TrialState
        if trial.state == DONE and trial.last_return is not None:
            return state.COMPLETE, trial.last_return
        return (state.PRUNED if trial.state == STOPPED_EARLY else state.FAIL), None

    def tell(self, trial: Trial) -> None:
        """A trial ended (done, failed, stopped early): the study learns its result. One
        that was interrupted is told nothing: it continues later."""
        if trial.state not in (DONE, FAILED, STOPPED_EARLY):
            return
        number = self.asked.pop(trial.name, None)
        if number is None:  # proposed by an earlier run of the sweep
            self.add_ended(trial)
            return
        state, value = self.outcome(trial)
        self.study.tell(number, value, state=state if value is None else None)

    def add_ended(self, trial: Trial) -> None:
        state, value = self.outcome(trial)
        self.study.add_trial(self.optuna.trial.create_trial(
            params=self.params(trial), distributions=self.distributions, value=value, state=state))
