"""The values a sweep's flags and files give, parsed: lists of values (`lr=1e-3,3e-4`)
and distributions to draw from (`loguniform(1e-5,1e-3)`). YAML syntax, with 1e-3 read
as a number; one line naming the flag and key for anything malformed."""

from __future__ import annotations

import copy
import json
import math
import random
import re
from dataclasses import dataclass
from typing import Any

import yaml

from launcher.errors import UserError
from launcher.training.settings import closest


# --- values as users type them ----------------------------------------------------------
class _Loader(yaml.SafeLoader):
    """YAML with 1e-3 read as a number (YAML 1.1 wants a dot: 1.0e-3)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."))


def parse_values(raw: str, flag: str, key: str) -> list[Any]:
    """`a,b,c` (YAML values: numbers, true, [64, 64], names) -> a list."""
    try:
        values = yaml.load(f"[{raw}]", Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError:
        raise UserError(f"{flag} {key}: cannot parse the values {raw!r}") from None
    if not values or any(v is None for v in values):
        raise UserError(f"{flag} {key}: expected values separated by commas, got {raw!r}")
    return values


def _number(value: Any, flag: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{flag} {key}: {value!r} is not a number")
    return value


# --- distributions ----------------------------------------------------------------------
DISTRIBUTIONS = ("loguniform", "uniform", "randint", "choice")


@dataclass(frozen=True)
class Distribution:
    """A value drawn per trial: loguniform(a,b), uniform(a,b), randint(a,b) (a <= x < b)
    or choice(v1, v2, ...)."""

    kind: str
    args: tuple

    def sample(self, rng: random.Random) -> Any:
        if self.kind == "choice":
            return copy.deepcopy(rng.choice(self.args))
        low, high = self.args
        if self.kind == "randint":
            return rng.randrange(low, high)
        if self.kind == "loguniform":
            value = math.exp(rng.uniform(math.log(low), math.log(high)))
        else:
            value = rng.uniform(low, high)
        return float(f"{value:.6g}")  # readable in names and tables; recorded as drawn

    def __str__(self) -> str:
        return f"{self.kind}({', '.join(json.dumps(a) for a in self.args)})"


def parse_distribution(text: Any, flag: str, key: str) -> Distribution:
    match = re.fullmatch(r"\s*([A-Za-z_]+)\s*\((.*)\)\s*", str(text), re.S)
    if not match:
        raise UserError(f"{flag} {key}: expected one of {', '.join(f'{d}(...)' for d in DISTRIBUTIONS)}, "
                        f"got {text!r}")
    kind, inner = match.group(1).lower(), match.group(2)
    if kind not in DISTRIBUTIONS:
        raise UserError(f"{flag} {key}: unknown distribution {kind!r}{closest(kind, DISTRIBUTIONS)}; "
                        f"valid: {', '.join(DISTRIBUTIONS)}")
    args = tuple(parse_values(inner, flag, key)) if inner.strip() else ()
    if kind == "choice":
        if not args:
            raise UserError(f"{flag} {key}: choice() needs at least one value")
        return Distribution(kind, args)
    if len(args) != 2:
        raise UserError(f"{flag} {key}: {kind}(low, high) takes two numbers, got {len(args)}")
    low, high = (_number(a, flag, key) for a in args)
    if kind == "randint" and not all(isinstance(a, int) for a in args):
        raise UserError(f"{flag} {key}: randint(low, high) takes whole numbers")
    if not low < high:
        raise UserError(f"{flag} {key}: {kind}(low, high) needs low < high, got {low} and {high}")
    if kind == "loguniform" and low <= 0:
        raise UserError(f"{flag} {key}: loguniform(low, high) needs 0 < low, got {low}")
    return Distribution(kind, (low, high))
