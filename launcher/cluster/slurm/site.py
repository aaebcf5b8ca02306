"""Site profiles, and the checks every Slurm job value passes wherever it comes from.

A site profile is one YAML file with what every job on one cluster needs and a user
should not retype: partitions / account / QoS / reservation / constraint / memory and
any other `#SBATCH` option (`sbatch:`), per component (the learner usually needs a GPU
partition), whole nodes (`exclusive: true`), a GPU type, mail, modules to load, an
environment to activate, environment variables, container binds, the images (one for
every node, or one per role) and the container runtime. Flags on `launcher submit`
override the profile; the profile overrides the built-in defaults.

Example (see examples/site-example.yaml):

    runtime: apptainer
    image: /projects/rl/launcher-cpu.sif
    learner_image: /projects/rl/launcher-gpu.sif   # CUDA torch on the GPU node
    account: rl-lab
    partition: standard          # default for every component
    learner: {partition: gpu, qos: high, constraint: a100, sbatch: [gres-flags=enforce-binding]}
    mem: 16G                     # per node; `exclusive: true` asks for whole nodes instead
    mail_type: END,FAIL
    modules: [apptainer/1.3]
    unset: [LD_PRELOAD]
    env: {OMP_NUM_THREADS: "1"}
    binds: [/scratch, /projects/rl]

The `check_*` functions here are the one set of rules for a value, whether it came from
a flag, a site profile or a run directory's slurm.yaml (options.py): type first (a bool
is not a number, a number is not a path), then the value. Every pattern must match the
whole text (`re.fullmatch`: a trailing newline is refused). The job script gets each
value as a single-quoted shell word, or, on the `#SBATCH` lines that sbatch parses
itself, only after it matched a strict pattern; so nothing in a profile can run a
command.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.cluster.slurm.sbatch_values import (
    check_constraint,
    check_dependency,
    check_mail_type,
    check_mail_user,
    check_mem,
    check_sbatch_options,
    merged,
)
from launcher.contract import ROLES
from launcher.errors import UserError
from launcher.training.settings import check_keys, read_yaml

RUNTIMES = ("apptainer", "none")
# What each component may ask for on its own (a flag sets it for every component).
PLACEMENT_FIELDS = ("partition", "account", "qos", "reservation", "constraint", "mem", "sbatch")

# Values that end up on `#SBATCH` lines, which sbatch (not bash) parses: keep them
# to the characters Slurm itself allows in these names.
SLURM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Slurm's time formats: MINUTES, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS.
TIME_WITH_DAYS = re.compile(r"([0-9]+)-([0-9]{1,2})(?::([0-9]{1,2}))?(?::([0-9]{1,2}))?")
TIME_NO_DAYS = re.compile(r"([0-9]+)(?::([0-9]{1,2}))?(?::([0-9]{1,2}))?")
TIME_FORMATS = "MINUTES, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS"
# Apptainer's --bind syntax: SRC[:DEST[:OPTS]], several joined by ','.
BIND_SEPARATORS = (":", ",")


def is_whole(value: Any) -> bool:
    """An int that is not a bool (YAML's `true` is not a count)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_whole(value: Any, what: str, least: int) -> int:
    if not is_whole(value):
        raise UserError(f"{what} must be a whole number, got {value!r}")
    if value < least:
        raise UserError(f"{what} must be at least {least}, got {value}")
    return value


def check_flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"{what} must be true or false, got {value!r}")
    return value


def check_slurm_name(value: Any, what: str) -> str:
    """A partition / account / QoS / job name: it goes on an #SBATCH line as it is."""
    if not (isinstance(value, str) or is_whole(value)):
        raise UserError(f"{what} must be a name, got {value!r}")
    text = str(value)
    if not SLURM_NAME.fullmatch(text):
        raise UserError(
            f"{what} {text!r} is not a valid Slurm name: use letters, digits and . _ + - "
            "(at most 128 characters, starting with a letter or digit)"
        )
    return text


def time_to_seconds(text: str) -> int:
    """Slurm time string -> seconds (`5` is five minutes, as sbatch reads it).
    ValueError for what Slurm would not read: another format, or a field out of range
    (seconds under 60, minutes too unless they lead, hours under 24 once days lead)."""
    match = TIME_WITH_DAYS.fullmatch(text)
    if match:
        days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
        bounded = {"hours": (hours, 24), "minutes": (minutes, 60), "seconds": (seconds, 60)}
    else:
        match = TIME_NO_DAYS.fullmatch(text)
        if not match:
            raise ValueError(f"use {TIME_FORMATS}")
        parts = [int(g) for g in match.groups() if g is not None]
        days = 0
        hours, minutes, seconds = {1: (0, parts[0], 0), 2: (0, *parts), 3: tuple(parts)}[len(parts)]
        bounded = {"minutes": (minutes, 60)} if len(parts) == 3 else {}
        if len(parts) > 1:
            bounded["seconds"] = (seconds, 60)
    for name, (value, limit) in bounded.items():
        if value >= limit:
            raise ValueError(f"{name} must be under {limit}, got {value}")
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def check_time(value: Any, what: str = "--time") -> str:
    if not (isinstance(value, str) or is_whole(value)):
        raise UserError(f"{what} must be a Slurm time ({TIME_FORMATS}), got {value!r}")
    text = str(value).strip()
    try:
        time_to_seconds(text)
    except ValueError as exc:
        raise UserError(f"{what} {value!r} is not a Slurm time: {exc}") from None
    return text


def check_runtime(value: Any, what: str = "--runtime") -> str:
    if value not in RUNTIMES or not isinstance(value, str):
        raise UserError(f"{what} must be one of {', '.join(RUNTIMES)}, got {value!r}")
    return value


def check_path_text(value: Any, what: str) -> str:
    """A path or word that reaches bash as one quoted word: text on one line."""
    if not isinstance(value, str) or not value or "\0" in value or "\n" in value:
        raise UserError(f"{what} must be a non-empty path on one line, got {value!r}")
    return value


def check_bind_path(value: str, what: str) -> str:
    """A path Apptainer's --bind gets as its source: ':' and ',' would split it."""
    if any(sep in value for sep in BIND_SEPARATORS):
        raise UserError(f"{what} {value!r} holds ':' or ',', which Apptainer's --bind reads as "
                        "separators: use a path without them with --runtime apptainer")
    return value


def check_list(value: Any, what: str) -> list:
    if not isinstance(value, list):
        raise UserError(f"{what} must be a list, got {value!r}")
    return value


def check_paths(value: Any, what: str) -> list[str]:
    return [check_path_text(v, f"{what} entry") for v in check_list(value, what)]


def check_env_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
        raise UserError(f"{what} {name!r} is not a variable name")
    return name


def check_unset(value: Any, what: str) -> list[str]:
    return [check_env_name(v, f"{what} entry") for v in check_list(value, what)]


def check_env(value: Any, what: str) -> dict[str, str]:
    """NAME: value pairs; values become text (true -> 'true'), never lists or mappings."""
    if not isinstance(value, dict):
        raise UserError(f"{what} must be a mapping NAME: value, got {value!r}")
    clean = {}
    for key, item in value.items():
        name = check_env_name(key, f"{what} name")
        if item is None or not isinstance(item, (str, int, float)):
            raise UserError(f"{what} {name} must be a plain value, got {item!r}")
        text = str(item).lower() if isinstance(item, bool) else str(item)
        if "\0" in text:
            raise UserError(f"{what} {name} holds a NUL byte")
        clean[name] = text
    return clean


# The fields a site profile and a job share, each with its check. Scalars may be None
# where the owner allows it (every field of a site profile is optional).
SHARED_CHECKS = {
    "runtime": check_runtime,
    "image": check_path_text,
    "head_image": check_path_text,
    "rollout_image": check_path_text,
    "learner_image": check_path_text,
    "cpus_per_node": lambda value, what: check_whole(value, what, 1),
    "time": check_time,
    "activate": check_path_text,
    "scratch": check_path_text,
    "learner_on_cpu": check_flag,
    "exclusive": check_flag,
    "gpu_type": check_slurm_name,
    "mail_type": check_mail_type,
    "mail_user": check_mail_user,
    "dependency": check_dependency,
    "modules": check_paths,
    "unset": check_unset,
    "env": check_env,
    "binds": check_paths,
}
LIST_FIELDS = ("modules", "unset", "env", "binds")


def check_shared(obj: Any, label, optional: tuple[str, ...]) -> None:
    """Check and normalise `obj`'s SHARED_CHECKS fields in place; `label(name)` says
    where a value came from (a flag, a file's key)."""
    for name, check in SHARED_CHECKS.items():
        value = getattr(obj, name)
        if value is None and name in optional:
            continue
        setattr(obj, name, check(value, label(name)))


PLACEMENT_CHECKS = {
    "partition": check_slurm_name, "account": check_slurm_name, "qos": check_slurm_name,
    "reservation": check_slurm_name, "constraint": check_constraint, "mem": check_mem,
    "sbatch": check_sbatch_options,
}


def check_placement(obj: Any, where: str) -> None:
    """Check and normalise `obj`'s PLACEMENT_FIELDS in place (None: not given)."""
    for name in PLACEMENT_FIELDS:
        value = getattr(obj, name)
        if value is not None:
            setattr(obj, name, PLACEMENT_CHECKS[name](value, f"{where} {name}"))


@dataclass
class Placement:
    """Where one component's nodes come from, and what each of them asks for."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    reservation: str | None = None
    constraint: str | None = None
    mem: str | None = None  # per node, e.g. 16G
    sbatch: list[str] = field(default_factory=list)  # any other #SBATCH option: OPTION=VALUE

    def validate(self, role: str) -> Placement:
        check_placement(self, role)
        return self


def read_mapping(data: Any, cls: type, where: str) -> dict[str, Any]:
    """A YAML mapping for dataclass `cls`, keys checked, its per-role placements built."""
    if not isinstance(data, dict):
        raise UserError(f"{where} must be a mapping, got {type(data).__name__}")
    check_keys(data, [f.name for f in dataclasses.fields(cls)], where)
    data = dict(data)
    for role in ROLES:
        part = data.pop(role, None) or {}
        if not isinstance(part, dict):
            raise UserError(f"{where}: {role} must be a mapping of {' / '.join(PLACEMENT_FIELDS)}")
        check_keys(part, PLACEMENT_FIELDS, f"{where}: {role}")
        data[role] = Placement(**part)
    return data


@dataclass
class SiteProfile:
    """A cluster's defaults. Every field is optional."""

    runtime: str | None = None
    image: str | None = None  # every node's image, unless its role has its own:
    head_image: str | None = None
    rollout_image: str | None = None
    learner_image: str | None = None  # e.g. the CUDA image on the GPU node
    # Defaults for every component; `head` / `rollout` / `learner` override them.
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    reservation: str | None = None
    constraint: str | None = None
    mem: str | None = None
    sbatch: list[str] = field(default_factory=list)
    head: Placement = field(default_factory=Placement)
    rollout: Placement = field(default_factory=Placement)
    learner: Placement = field(default_factory=Placement)
    cpus_per_node: int | None = None
    time: str | None = None
    modules: list[str] = field(default_factory=list)
    activate: str | None = None  # a script to source: venv/bin/activate, conda's activate
    unset: list[str] = field(default_factory=list)  # e.g. LD_PRELOAD, as the tutorial advises
    env: dict[str, str] = field(default_factory=dict)
    binds: list[str] = field(default_factory=list)  # apptainer --bind specs
    scratch: str | None = None  # node-local tmp dir base for Ray (default: $TMPDIR or /tmp)
    # GPU nodes whose GPUs torch cannot use (a test cluster's fake GRES GPU): Slurm still
    # allocates the GPU node and the learner still goes there, but trains on its CPUs.
    learner_on_cpu: bool | None = None
    exclusive: bool | None = None  # whole nodes (else the CPUs and memory asked for)
    gpu_type: str | None = None  # the learner's --gres=gpu:TYPE:N
    mail_type: str | None = None
    mail_user: str | None = None
    dependency: str | None = None

    def placement(self, role: str) -> Placement:
        """One role's placement: its own values, else the profile's for every component."""
        own: Placement = getattr(self, role)
        values = {name: getattr(own, name) or getattr(self, name)
                  for name in PLACEMENT_FIELDS if name != "sbatch"}
        return Placement(**values, sbatch=merged([*self.sbatch, *own.sbatch]))

    def validate(self, where: str = "site profile") -> SiteProfile:
        check_placement(self, f"{where}:")
        for role in ROLES:
            getattr(self, role).validate(f"{where}: {role}")
        optional = tuple(name for name in SHARED_CHECKS if name not in LIST_FIELDS)
        check_shared(self, lambda name: f"{where}: {name}", optional)
        return self

    @classmethod
    def from_dict(cls, data: Any, where: str = "site profile") -> SiteProfile:
        return cls(**read_mapping({} if data is None else data, cls, where)).validate(where)


def load_site(path: str | Path | None) -> SiteProfile:
    """Read a site profile; no path means no site defaults."""
    if path is None:
        return SiteProfile()
    return SiteProfile.from_dict(read_yaml(path), where=str(path))
