"""A sweep's search space: seeds, grids and sampled values, expanded into trials.

A sweep is many runs of one base setting, each changed by a few values:

    --seeds 3                  seeds 0, 1, 2 (from S with a single --seed S)
    --seed 1,2,3               those seeds
    --grid lr=1e-3,3e-4        every value (several --grid: every combination)
    --sample lr=loguniform(1e-5,1e-3) --trials 20
                               20 draws; also uniform(a,b), randint(a,b), choice(v1,v2,...)

An experiment file says the same with Tune's `grid_search:` wherever a value goes
(`lr: {grid_search: [0.001, 0.0003]}`, as RLlib's tuned examples write it; a grid over
`seed` is a list of seeds) and, in the launcher's own format, a `sweep:` section with
`seeds`, `grid`, `sample`, `trials`, `max_concurrent` (and `num_samples`, Tune's word:
draws of `sample`, or seeds when nothing is sampled). Flags win over the file, key by key.

Trials: every draw x every grid combination x every seed; a *configuration* is a trial
without its seed, and results are compared per configuration (results/sweep_stats.py).
A key names a TrainSettings field (`gamma` is RLlib's, `stop.iters`, `env_config.size`,
`config.model_config.fcnet_hiddens`); plain RLlib keys are translated like `--set`'s.
Everything is checked here, before a directory is made or Ray starts.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from launcher.errors import UserError
from launcher.training import early_stop
from launcher.training.settings import TrainSettings, check_keys
from launcher.training.sweep_values import Distribution, parse_distribution, parse_values

GRID_SEARCH = "grid_search"
SWEEP_SECTION = "sweep"
SECTION_KEYS = ("seeds", "grid", "sample", "trials", "num_samples", "max_concurrent", "early_stop",
                "search")
SEARCHES = ("random", "optuna")  # how --sample's values are drawn (optuna: training/optuna_search.py)
NESTED = ("config", "env_config", "stop")
SETTINGS_FIELDS = tuple(f.name for f in dataclasses.fields(TrainSettings))
# The settings a trial may change; the others every trial shares: the algorithm and its
# framework, where results go, the code, and the resources the sweep divides up.
VARYING_FIELDS = ("env", "seed", "checkpoint_every", "eval_every", "eval_episodes", *NESTED)
FIXED_KEYS = tuple(name for name in SETTINGS_FIELDS if name not in VARYING_FIELDS)
MAX_TRIALS = 10_000


# --- flags ------------------------------------------------------------------------------
def parse_seed_option(text: str | None) -> tuple[int | None, list[int] | None]:
    """`--seed S` -> (S, None); `--seed 1,2,3` -> (None, [1, 2, 3])."""
    if text is None:
        return None, None
    seeds = parse_values(str(text), "--seed", "")
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise UserError(f"--seed takes whole numbers >= 0 (one, or several: 1,2,3), got {text!r}")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"--seed {text}: a seed is given twice")
    return (seeds[0], None) if len(seeds) == 1 and "," not in str(text) else (None, seeds)


def _split_assignment(item: str, flag: str, form: str) -> tuple[str, str]:
    key, sep, raw = str(item).partition("=")
    if not sep or not key.strip() or not raw.strip():
        raise UserError(f"{flag} expects {form}, got {item!r}")
    return key.strip(), raw


def parse_grid(items: list[str] | None, flag: str = "--grid") -> dict[str, list]:
    grid: dict[str, list] = {}
    for item in items or []:
        key, raw = _split_assignment(item, flag, "key=value1,value2,...")
        if key in grid:
            raise UserError(f"{flag} {key} is given twice")
        grid[key] = parse_values(raw, flag, key)
    return grid


def parse_sample(items: list[str] | None, flag: str = "--sample") -> dict[str, Distribution]:
    sample: dict[str, Distribution] = {}
    for item in items or []:
        key, raw = _split_assignment(item, flag, "key=loguniform(a,b) (or uniform, randint, choice)")
        if key in sample:
            raise UserError(f"{flag} {key} is given twice")
        sample[key] = parse_distribution(raw, flag, key)
    return sample


# --- the space --------------------------------------------------------------------------
@dataclass
class SearchSpace:
    """What varies between trials; see the module docstring."""

    seeds: list[int] = field(default_factory=list)
    grid: dict[str, list] = field(default_factory=dict)
    sample: dict[str, Distribution] = field(default_factory=dict)
    trials: int | None = None  # draws of `sample`
    max_concurrent: int | None = None
    sample_seed: int | None = None  # the draws' random seed (recorded, so they repeat)
    early_stop: dict[str, Any] | None = None  # training/early_stop.py's rule
    search: str = SEARCHES[0]

    def is_sweep(self) -> bool:
        return bool(self.seeds or self.grid or self.sample)

    def to_dict(self) -> dict[str, Any]:
        return {"seeds": self.seeds, "grid": self.grid,
                "sample": {k: str(d) for k, d in self.sample.items()}, "trials": self.trials,
                "max_concurrent": self.max_concurrent, "sample_seed": self.sample_seed,
                "early_stop": self.early_stop, "search": self.search}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchSpace:
        sample = {k: parse_distribution(v, "sample", k) for k, v in (data.get("sample") or {}).items()}
        return cls(list(data.get("seeds") or []), dict(data.get("grid") or {}), sample,
                   data.get("trials"), data.get("max_concurrent"), data.get("sample_seed"),
                   data.get("early_stop"), data.get("search") or SEARCHES[0])


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{what} must be a whole number >= 1, got {value!r}")
    return value


def _seed_list(value: Any, where: str) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return list(range(_count(value, f"{where} seeds")))
    if not isinstance(value, list) or not value or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in value):
        raise UserError(f"{where}: seeds must be a count or a list of whole numbers >= 0, got {value!r}")
    if len(set(value)) != len(value):
        raise UserError(f"{where}: a seed is given twice in {value!r}")
    return list(value)


def from_section(section: Any, where: str) -> SearchSpace:
    """The launcher file's `sweep:` section (also Tune's num_samples, passed in as one)."""
    if not isinstance(section, dict):
        raise UserError(f"'{SWEEP_SECTION}' in {where} must be a mapping of {', '.join(SECTION_KEYS)}")
    check_keys(section, SECTION_KEYS, f"{where}: {SWEEP_SECTION}")
    space = SearchSpace()
    if section.get("seeds") is not None:
        space.seeds = _seed_list(section["seeds"], f"{where}: {SWEEP_SECTION}")
    for name, parse in (("grid", _grid_from_file), ("sample", _sample_from_file)):
        value = section.get(name) or {}
        if not isinstance(value, dict):
            raise UserError(f"{where}: {SWEEP_SECTION}.{name} must be a mapping of key: values")
        setattr(space, name, parse(value, f"{where}: {SWEEP_SECTION}.{name}"))
    for name in ("trials", "max_concurrent"):
        if section.get(name) is not None:
            setattr(space, name, _count(section[name], f"{where}: {SWEEP_SECTION}.{name}"))
    if section.get("search") is not None:
        space.search = section["search"]
    if section.get("early_stop") is not None:
        space.early_stop = early_stop.from_file(section["early_stop"], f"{where}: {SWEEP_SECTION}")
    if section.get("num_samples") is not None:
        samples = _count(section["num_samples"], f"{where}: num_samples")
        if space.sample:
            space.trials = space.trials or samples
        elif samples > 1 and not space.seeds:
            space.seeds = list(range(samples))
    return space


def _grid_from_file(grid: dict, where: str) -> dict[str, list]:
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise UserError(f"{where} {key}: expected a non-empty list of values, got {values!r}")
    return {str(k): list(v) for k, v in grid.items()}


def _sample_from_file(sample: dict, where: str) -> dict[str, Distribution]:
    return {str(k): parse_distribution(v, where, str(k)) for k, v in sample.items()}


def pop_grid_searches(data: Any, path: tuple[str, ...] = ()) -> dict[str, list]:
    """Take Tune's `{grid_search: [...]}` values out of a settings dict (in place); return
    them by dotted path (`config.lr`, `seed`)."""
    found: dict[str, list] = {}
    if not isinstance(data, dict):
        return found
    for key in list(data):
        value, where = data[key], path + (str(key),)
        if isinstance(value, dict) and GRID_SEARCH in value:
            values = value[GRID_SEARCH]
            if len(value) != 1 or not isinstance(values, list) or not values:
                raise UserError(f"{'.'.join(where)}: {{grid_search: [...]}} takes one non-empty list "
                                "and nothing beside it")
            found[".".join(where)] = values
            del data[key]
        else:
            found.update(pop_grid_searches(value, where))
    return found


def search_space(training: dict[str, Any], *, seeds: int | None = None,
                 seed_list: list[int] | None = None, grid: list[str] | None = None,
                 sample: list[str] | None = None, trials: int | None = None,
                 max_concurrent: int | None = None, early_stopping: str | None = None,
                 search: str | None = None,
                 where: str = "the experiment file") -> tuple[dict[str, Any], SearchSpace]:
    """Split merged training options into the base settings dict and the search space:
    the file's `sweep:` section and `grid_search:` values, then the flags over them."""
    base = copy.deepcopy(training)
    section = base.pop(SWEEP_SECTION, None)
    space = from_section(section, where) if section is not None else SearchSpace()
    space.grid.update(pop_grid_searches(base))
    if "seed" in space.grid:
        space.seeds = _seed_list(space.grid.pop("seed"), f"{where}: seed grid_search")
    flag_grid, flag_sample = parse_grid(grid), parse_sample(sample)
    for key in [*flag_grid, *flag_sample]:  # a flag wins over the file's value for its key
        for name in (key, f"config.{key}"):
            space.grid.pop(name, None)
            space.sample.pop(name, None)
    space.grid.update(flag_grid)
    space.sample.update(flag_sample)
    if "seed" in space.grid:  # --grid seed=1,2: the seeds
        space.seeds = _seed_list(space.grid.pop("seed"), "--grid seed")
    if seeds is not None and seed_list:
        raise UserError("give either --seeds N or --seed 1,2,3, not both")
    if seeds is not None:
        first = base.get("seed") or 0
        space.seeds = list(range(first, first + _count(seeds, "--seeds")))
    elif seed_list:
        space.seeds = list(seed_list)
    space.trials = _count(trials, "--trials") if trials is not None else space.trials
    space.max_concurrent = (_count(max_concurrent, "--max-concurrent") if max_concurrent is not None
                            else space.max_concurrent)
    space.early_stop = early_stop.parse_flag(early_stopping) or space.early_stop
    space.search = search or space.search
    check_space(space, base)
    return base, space


def check_space(space: SearchSpace, base: dict[str, Any]) -> None:
    """Keys every trial may vary, no key both gridded and sampled, counts that make sense."""
    for key in list(space.grid) + list(space.sample):
        key_path(key)
    for key in set(space.grid) & set(space.sample):
        raise UserError(f"{key} is both in --grid and --sample: give it once")
    if "seed" in space.sample:
        raise UserError("seeds are not sampled: use --seeds N or --seed 1,2,3")
    if space.early_stop and not (space.grid or space.sample):
        raise UserError("early stopping compares configurations: give --grid or --sample")
    if space.search not in SEARCHES:
        raise UserError(f"--search is one of {', '.join(SEARCHES)}, got {space.search!r}")
    if space.search != SEARCHES[0] and (not space.sample or space.grid or space.seeds):
        raise UserError(f"--search {space.search} proposes one configuration per trial: give --sample "
                        "and --trials, without --grid or several seeds")
    if space.sample and space.trials is None:
        raise UserError("--sample draws --trials N values: give --trials")
    if space.trials is not None and not space.sample:
        raise UserError("--trials N counts draws of --sample; for repeats of one setting use --seeds N")
    for key, values in space.grid.items():
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) != len(values):
            raise UserError(f"--grid {key}: a value is given twice")
    total = (space.trials or 1) * math.prod(len(v) for v in space.grid.values()) * max(len(space.seeds), 1)
    if total > MAX_TRIALS:
        raise UserError(f"this sweep has {total} trials; more than {MAX_TRIALS} is surely a mistake")


# --- keys -------------------------------------------------------------------------------
def key_path(key: str) -> tuple[str, ...]:
    """Where a sweep key goes in a settings dict; one line for a key no trial may vary."""
    parts = tuple(key.split("."))
    if any(not p for p in parts):
        raise UserError(f"malformed key {key!r}")
    head = parts[0]
    if head in NESTED and len(parts) == 1:
        raise UserError(f"{key} needs a key under it, e.g. {key}.KEY")
    if head in ("env_config", "stop") and len(parts) != 2:
        raise UserError(f"{key}: {head} takes one level of keys ({head}.KEY)")
    if head == "stop":
        check_keys({parts[1]: None}, ("iters", "timesteps", "reward", "time_s"), "stop")
    if len(parts) == 1 and head in FIXED_KEYS:
        raise UserError(f"{key} is the same for every trial of a sweep: give it with its flag, "
                        "not as a sweep key")
    if head in SETTINGS_FIELDS and (len(parts) == 1 or head in NESTED):
        return parts
    return ("config", *parts)


def label(key: str) -> str:
    """A key as tables and trial names show it (`config.lr` -> `lr`)."""
    return key.removeprefix("config.")


def _put(data: dict, path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        inner = data.get(part)
        if not isinstance(inner, dict):
            inner = data[part] = {}
        data = inner
    current = data.get(path[-1])
    data[path[-1]] = {**current, **value} if isinstance(current, dict) and isinstance(value, dict) \
        else copy.deepcopy(value)


def apply_overrides(base: dict[str, Any], overrides: dict[str, Any], say=None) -> dict[str, Any]:
    """A trial's settings dict: the base with its values put in. A plain RLlib key (`lr`,
    `sgd_minibatch_size`) goes through the same translation as `--set`."""
    from launcher.training.experiment import translate_config

    data = copy.deepcopy(base)
    for key, value in overrides.items():
        path = key_path(key)
        if path[0] == "config" and len(path) == 2 and not key.startswith("config."):
            translated = translate_config({key: value}, where=f"sweep key {key}",
                                          say=say or (lambda _line: None),
                                          framework=data.get("framework"))
            for name, new_value in translated.items():
                _put(data, ("config", name), new_value)
        else:
            _put(data, path, value)
    return data
