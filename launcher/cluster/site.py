"""Site profiles: one YAML file with a cluster's defaults for `launcher submit`.

A site profile holds what every job on one cluster needs and a user should not
retype: partitions / account / QoS (per component: the learner usually needs a GPU
partition), modules to load, an environment to activate, environment variables,
container binds, the image and the container runtime. Flags on `launcher submit`
override the profile; the profile overrides the built-in defaults.

Example (see examples/site-example.yaml):

    runtime: apptainer
    image: /projects/rl/launcher.sif
    account: rl-lab
    partition: standard          # default for every component
    learner: {partition: gpu, qos: high}
    modules: [apptainer/1.3]
    unset: [LD_PRELOAD]
    env: {OMP_NUM_THREADS: "1"}
    binds: [/scratch, /projects/rl]

Every value is validated here; the job script gets each one as a single-quoted
shell word (or, for the `#SBATCH` lines that sbatch parses itself, only after it
matched a strict pattern), so nothing in a profile can run a command.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.errors import UserError
from launcher.training.settings import check_keys, read_yaml

RUNTIMES = ("apptainer", "none")
ROLES = ("head", "rollout", "learner")

# Values that end up on `#SBATCH` lines, which sbatch (not bash) parses: keep them
# to the characters Slurm itself allows in these names.
SLURM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Slurm time formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS.
TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")


def check_slurm_name(value: Any, what: str) -> str:
    text = str(value)
    if not SLURM_NAME.match(text):
        raise UserError(
            f"{what} {text!r} is not a valid Slurm name: use letters, digits and . _ + - "
            "(at most 128 characters, starting with a letter or digit)"
        )
    return text


def check_time(value: Any) -> str:
    text = str(value).strip()
    if not TIME.match(text):
        raise UserError(
            f"--time {value!r} is not a Slurm time: use MINUTES, HH:MM:SS or D-HH:MM:SS"
        )
    return text


def time_to_seconds(text: str) -> int:
    """Slurm time string -> seconds (`5` is five minutes, as sbatch reads it)."""
    days = 0
    if "-" in text:
        head, text = text.split("-", 1)
        days = int(head)
        parts = [int(p) for p in text.split(":")]
        parts += [0] * (3 - len(parts))  # D-HH, D-HH:MM
        hours, minutes, seconds = parts
    else:
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 1:
            hours, minutes, seconds = 0, parts[0], 0
        elif len(parts) == 2:
            hours, minutes, seconds = 0, parts[0], parts[1]
        else:
            hours, minutes, seconds = parts
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def check_path_text(value: Any, what: str) -> str:
    text = str(value)
    if not text or "\0" in text or "\n" in text:
        raise UserError(f"{what} must be a non-empty path on one line, got {value!r}")
    return text


@dataclass
class Placement:
    """Where one component's nodes come from."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None

    def validate(self, role: str) -> Placement:
        for name in ("partition", "account", "qos"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, check_slurm_name(value, f"{role} {name}"))
        return self


@dataclass
class SiteProfile:
    """A cluster's defaults. Every field is optional."""

    runtime: str | None = None
    image: str | None = None
    # Defaults for every component; `head` / `rollout` / `learner` override them.
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
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

    def placement(self, role: str) -> Placement:
        own: Placement = getattr(self, role)
        return Placement(
            partition=own.partition or self.partition,
            account=own.account or self.account,
            qos=own.qos or self.qos,
        )

    def validate(self, where: str = "site profile") -> SiteProfile:
        if self.runtime is not None and self.runtime not in RUNTIMES:
            raise UserError(f"{where}: runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}")
        for name in ("partition", "account", "qos"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, check_slurm_name(value, f"{where}: {name}"))
        for role in ROLES:
            getattr(self, role).validate(f"{where}: {role}")
        if self.cpus_per_node is not None and (not isinstance(self.cpus_per_node, int)
                                               or self.cpus_per_node < 1):
            raise UserError(f"{where}: cpus_per_node must be a whole number >= 1")
        if self.time is not None:
            self.time = check_time(self.time)
        if self.learner_on_cpu is not None and not isinstance(self.learner_on_cpu, bool):
            raise UserError(f"{where}: learner_on_cpu must be true or false")
        for what in ("image", "activate", "scratch"):
            value = getattr(self, what)
            if value is not None:
                setattr(self, what, check_path_text(value, f"{where}: {what}"))
        for what in ("modules", "unset", "binds"):
            value = getattr(self, what)
            if not isinstance(value, list):
                raise UserError(f"{where}: {what} must be a list")
            setattr(self, what, [check_path_text(v, f"{where}: {what} entry") for v in value])
        for name in self.unset:
            if not ENV_NAME.match(name):
                raise UserError(f"{where}: unset entry {name!r} is not a variable name")
        if not isinstance(self.env, dict):
            raise UserError(f"{where}: env must be a mapping NAME: value")
        clean = {}
        for key, value in self.env.items():
            if not ENV_NAME.match(str(key)):
                raise UserError(f"{where}: env name {key!r} is not a variable name")
            if value is None or isinstance(value, (dict, list)):
                raise UserError(f"{where}: env {key} must be a plain value")
            text = str(value).lower() if isinstance(value, bool) else str(value)
            if "\0" in text:
                raise UserError(f"{where}: env {key} holds a NUL byte")
            clean[str(key)] = text
        self.env = clean
        return self

    @classmethod
    def from_dict(cls, data: Any, where: str = "site profile") -> SiteProfile:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise UserError(f"{where} must be a mapping, got {type(data).__name__}")
        check_keys(data, [f.name for f in dataclasses.fields(cls)], where)
        data = dict(data)
        for role in ROLES:
            part = data.pop(role, None) or {}
            if not isinstance(part, dict):
                raise UserError(f"{where}: {role} must be a mapping of partition / account / qos")
            check_keys(part, [f.name for f in dataclasses.fields(Placement)], f"{where}: {role}")
            data[role] = Placement(**part)
        return cls(**data).validate(where)


def load_site(path: str | Path | None) -> SiteProfile:
    """Read a site profile; no path means no site defaults."""
    if path is None:
        return SiteProfile()
    return SiteProfile.from_dict(read_yaml(path), where=str(path))
