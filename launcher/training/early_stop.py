"""Early stopping of a sweep's bad trials: asynchronous successive halving (ASHA).

    --early-stop asha          rungs at 4, 12, 36, ... iterations (grace 4, reduction 3)
    --early-stop asha:5        grace 5: rungs at 5, 15, 45, ...
    --early-stop asha:5:2      grace 5, reduction 2: rungs at 5, 10, 20, ...
    sweep: {early_stop: {method: asha, grace_iters: 5, reduction: 2}}   in a file

When a trial completes a rung's iteration, its mean return there is recorded for the
rung; it goes on only while that return is among the best 1/reduction of the returns
recorded at the rung so far (at least `reduction` trials must have reached the rung
before any is stopped). This is the rule of Li et al., "A System for Massively Parallel
Hyperparameter Tuning" (2020), which Tune's ASHAScheduler implements; no trial waits for
another. A stopped trial checkpoints, keeps its results and ends "stopped early": a
resumed sweep does not continue it, and `launcher results` ranks configurations by the
trials that ran to their stop criterion, counting the stopped ones apart.

The rungs' returns are kept in the sweep record, so a requeued sweep goes on deciding
with what it had seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from launcher.errors import UserError

METHODS = ("asha",)
DEFAULT_GRACE, DEFAULT_REDUCTION = 4, 3
RULE_KEYS = ("method", "grace_iters", "reduction")
CHECK_EVERY_S = 1.0


def _whole(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{what} must be a whole number >= {minimum}, got {value!r}")
    return value


def rule(method: Any, grace: Any = DEFAULT_GRACE, reduction: Any = DEFAULT_REDUCTION,
         where: str = "--early-stop") -> dict[str, Any]:
    if method not in METHODS:
        raise UserError(f"{where}: early stopping is one of {', '.join(METHODS)}, got {method!r}")
    return {"method": method, "grace_iters": _whole(grace, f"{where}: grace_iters", 1),
            "reduction": _whole(reduction, f"{where}: reduction", 2)}


def parse_flag(text: str | None) -> dict[str, Any] | None:
    """`asha`, `asha:GRACE` or `asha:GRACE:REDUCTION`."""
    if text is None:
        return None
    match = re.fullmatch(r"([a-z]+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not match:
        raise UserError(f"--early-stop takes asha, asha:GRACE or asha:GRACE:REDUCTION, got {text!r}")
    method, grace, reduction = match.groups()
    return rule(method, int(grace) if grace else DEFAULT_GRACE,
                int(reduction) if reduction else DEFAULT_REDUCTION)


def from_file(value: Any, where: str) -> dict[str, Any]:
    """`early_stop: asha` or a mapping of method, grace_iters, reduction."""
    if isinstance(value, str):
        return rule(value, where=where)
    if not isinstance(value, dict):
        raise UserError(f"{where}: early_stop must be asha or a mapping of {', '.join(RULE_KEYS)}")
    unknown = sorted(set(value) - set(RULE_KEYS))
    if unknown:
        raise UserError(f"{where}: unknown early_stop key {unknown[0]!r} (known: {', '.join(RULE_KEYS)})")
    return rule(value.get("method"), value.get("grace_iters", DEFAULT_GRACE),
                value.get("reduction", DEFAULT_REDUCTION), where)


@dataclass
class Asha:
    """The rungs and the decision; `rungs` maps a rung's iteration to {trial: return}."""

    grace: int
    reduction: int
    rungs: dict[int, dict[str, float]] = field(default_factory=dict)

    def levels_up_to(self, iteration: int) -> list[int]:
        levels, level = [], self.grace
        while level <= iteration:
            levels.append(level)
            level *= self.reduction
        return levels

    def report(self, trial: str, history: dict[int, float | None]) -> str | None:
        """Record the trial's returns at the rungs it completed; the reason to stop it,
        or None. An iteration without a finished episode is recorded at no rung."""
        for level in self.levels_up_to(max(history, default=0)):
            value = history.get(level)
            seen = self.rungs.setdefault(level, {})
            if value is None or trial in seen:
                continue
            seen[trial] = value
            ranked = sorted(seen.values(), reverse=True)
            keep = max(1, len(ranked) // self.reduction)
            if len(ranked) >= self.reduction and value < ranked[keep - 1]:
                return (f"stopped early at iteration {level}: mean return {value:.1f} below the best "
                        f"1/{self.reduction} of the {len(ranked)} trials there (>= {ranked[keep - 1]:.1f})")
        return None


def asha_of(space_rule: dict[str, Any] | None, saved: dict[str, dict[str, float]]) -> Asha | None:
    """The sweep's ASHA state from its rule and the rungs its record saved."""
    if not space_rule:
        return None
    rungs = {int(level): dict(values) for level, values in (saved or {}).items()}
    return Asha(space_rule["grace_iters"], space_rule["reduction"], rungs)
