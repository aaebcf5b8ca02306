"""What a Slurm job asks for (`JobOptions`): merged from flags, a site profile and the
defaults, validated, and kept in the run directory (slurm.yaml) for `submit --resume`.

The field names are the schema: `launcher submit` flags and site-profile keys map onto
them one to one. Whatever the source (a flag, a profile, slurm.yaml read back from a
run directory that others may have touched) a value passes the same checks of site.py
before it can reach the job script.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.cluster.slurm.sbatch_values import check_sbatch_option, merged, split_role
from launcher.cluster.slurm.site import (
    LIST_FIELDS,
    PLACEMENT_CHECKS,
    PLACEMENT_FIELDS,
    SHARED_CHECKS,
    Placement,
    SiteProfile,
    check_bind_path,
    check_path_text,
    check_shared,
    check_slurm_name,
    check_whole,
    is_whole,
    read_mapping,
    time_to_seconds,
)
from launcher.contract import HEAD, LEARNER, ROLES, ROLLOUT, RunPaths
from launcher.errors import UserError

DEFAULT_TIME = "01:00:00"
DEFAULT_JOB_NAME = "launcher"
# CPUs each node asks for when neither --cpus-per-node, the site profile nor --exclusive
# (whole nodes) says: the head's driver and a few env runners.
DEFAULT_CPUS_PER_NODE = 4
# Fields a `launcher submit` flag sets (`cpus_per_node` is `--cpus-per-node`).
FLAG_FIELDS = ("nodes", "gpus", "cpus_per_node", "time", "job_name", "runtime", "image",
               "head_image", "rollout_image", "learner_image", "checkpoint_before", "learner_on_cpu",
               "exclusive", "gpu_type", "mail_type", "mail_user", "dependency")
ROLE_IMAGES = {role: f"{role}_image" for role in ROLES}
# Options that apply to the whole job: on the first component's #SBATCH lines.
JOB_DIRECTIVES = ("mail_type", "mail_user", "dependency")


@dataclass
class JobOptions:
    """Everything the job script is rendered from, apart from the run directory."""

    nodes: int = 0  # rollout nodes; 0: the head runs the env runners
    gpus: int = 0  # GPUs of the learner node; 0: no learner node, plain job
    cpus_per_node: int | None = None  # None: DEFAULT_CPUS_PER_NODE, or whole nodes if exclusive
    exclusive: bool = False  # whole nodes (#SBATCH --exclusive)
    gpu_type: str | None = None  # --gres=gpu:TYPE:N on the learner
    mail_type: str | None = None
    mail_user: str | None = None
    dependency: str | None = None
    time: str = DEFAULT_TIME
    job_name: str = DEFAULT_JOB_NAME
    runtime: str = "none"
    image: str | None = None  # every role's, unless the role has its own below
    head_image: str | None = None
    rollout_image: str | None = None
    learner_image: str | None = None
    head: Placement = field(default_factory=Placement)
    rollout: Placement = field(default_factory=Placement)
    learner: Placement = field(default_factory=Placement)
    modules: list[str] = field(default_factory=list)
    activate: str | None = None
    unset: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    binds: list[str] = field(default_factory=list)
    scratch: str | None = None
    checkpoint_before: int | None = None  # seconds before the limit; None: a fifth, 60-600 s
    # Slurm allocates the GPU node, but the learner trains on its CPUs: for GPUs torch
    # cannot use (the test cluster's GRES "GPU" is /dev/null). Placement is unchanged.
    learner_on_cpu: bool = False

    @property
    def hetjob(self) -> bool:
        return self.gpus > 0

    @property
    def apptainer(self) -> bool:
        return self.runtime == "apptainer"

    @property
    def roles(self) -> tuple[str, ...]:
        """The roles this job has nodes for."""
        return (HEAD, *((ROLLOUT,) if self.nodes else ()), *((LEARNER,) if self.hetjob else ()))

    def image_for(self, role: str) -> str | None:
        return getattr(self, ROLE_IMAGES[role]) or self.image

    @property
    def learner_nv(self) -> bool:
        """Apptainer's --nv on the learner: it trains on its GPUs."""
        return self.hetjob and not self.learner_on_cpu

    @property
    def signal_s(self) -> int:
        if self.checkpoint_before is not None:
            return self.checkpoint_before
        return max(60, min(600, time_to_seconds(self.time) // 5))

    def validate(self, where: str | None = None) -> JobOptions:
        """Check every field (types included) and normalise it. `where`: the file the
        options were read from; None: they came from flags and a site profile."""
        def label(name: str) -> str:
            if where is not None:
                return f"{where}: {name}"
            return "--" + name.replace("_", "-") if name in FLAG_FIELDS else name

        check_whole(self.gpus, label("gpus"), 0)
        check_whole(self.nodes, label("nodes"), 0)
        self.job_name = check_slurm_name(self.job_name, label("job_name"))
        optional = ("image", *ROLE_IMAGES.values(), "cpus_per_node", "activate", "scratch",
                    "gpu_type", *JOB_DIRECTIVES)
        check_shared(self, label, optional)
        if self.cpus_per_node is None and not self.exclusive:
            self.cpus_per_node = DEFAULT_CPUS_PER_NODE
        if self.nodes == 0 and self.cpus_per_node == 1:
            raise UserError(f"{label('nodes')} 0: the head runs the env runners; give it 2 or "
                            f"more CPUs ({label('cpus_per_node')}) or a rollout node")
        if time_to_seconds(self.time) < 60:
            raise UserError(f"{label('time')} {self.time} is under a minute: too short to start Ray")
        for role in ROLES:
            getattr(self, role).validate(role if where is None else f"{where}: {role}")
        if self.checkpoint_before is not None:
            limit = time_to_seconds(self.time)
            seconds = check_whole(self.checkpoint_before, label("checkpoint_before"), 10)
            if seconds >= limit:
                raise UserError(f"{label('checkpoint_before')} must be between 10 s and the time "
                                f"limit ({limit} s), got {seconds}")
        if self.apptainer:
            self.check_apptainer(label)
        else:
            for name in ROLE_IMAGES.values():
                if getattr(self, name) is not None:
                    raise UserError(f"{label(name)} is for --runtime apptainer (runtime is {self.runtime})")
        return self

    def check_apptainer(self, label) -> None:
        """An image for every role, and binds Apptainer reads as one path each."""
        for role in self.roles:
            if not self.image_for(role):
                raise UserError(f"--runtime apptainer needs --image (a .sif file) or `image:` in the "
                                f"site profile{'' if role == HEAD else f' (or {label(ROLE_IMAGES[role])})'}")
        for bind in self.binds:
            if "," in bind:
                raise UserError(f"{label('binds')} entry {bind!r} holds ',': give one bind per "
                                "entry (SRC[:DEST[:OPTS]])")
        if self.scratch is not None:
            check_bind_path(self.scratch, label("scratch"))

    @property
    def gres(self) -> str:
        """The learner node's GPUs as Slurm's --gres value."""
        return f"gpu:{self.gpu_type}:{self.gpus}" if self.gpu_type else f"gpu:{self.gpus}"

    def job_directives(self) -> list[str]:
        """The #SBATCH options (without `#SBATCH `) of the whole job, beyond the launcher's."""
        return [f"--{name.replace('_', '-')}={getattr(self, name)}" for name in JOB_DIRECTIVES
                if getattr(self, name) is not None]

    def components(self) -> list[dict[str, Any]]:
        """One entry per het-job component (one for a plain job, whose first node is the
        head's): its role, nodes, GPUs and #SBATCH options. A role without nodes has none."""
        if self.hetjob:
            shapes = [(HEAD, 1, 0), (ROLLOUT, self.nodes, 0), (LEARNER, 1, self.gpus)]
        else:
            shapes = [(HEAD, 1 + self.nodes, 0)]
        shapes = [shape for shape in shapes if shape[1] > 0]
        # cpus, step_cpus and the placement's fields: for a site's own copy of an older
        # template (LAUNCHER_SLURM_TEMPLATE), which wrote the lines itself.
        cpus = self.cpus_per_node
        return [{"role": role, "nodes": nodes, "gpus": gpus, "group": group,
                 "directives": self.directives(role, nodes, gpus), "cpus": cpus,
                 "step_cpus": f"--cpus-per-task={cpus}" if cpus else "--whole",
                 **dataclasses.asdict(getattr(self, role))}
                for group, (role, nodes, gpus) in enumerate(shapes)]

    def directives(self, role: str, nodes: int, gpus: int) -> list[str]:
        """One component's #SBATCH options (without `#SBATCH `), in a fixed order."""
        place: Placement = getattr(self, role)
        lines = [f"--nodes={nodes}", "--ntasks-per-node=1"]
        if self.cpus_per_node:
            lines.append(f"--cpus-per-task={self.cpus_per_node}")
        if self.exclusive:
            lines.append("--exclusive")
        if gpus:
            lines.append(f"--gres={self.gres}")
        lines += [f"--{name}={getattr(place, name)}" for name in PLACEMENT_FIELDS
                  if name != "sbatch" and getattr(place, name) is not None]
        return lines + [f"--{entry}" for entry in merged(place.sbatch)]

    def shape(self) -> dict[str, Any]:
        """What launcher/cluster/jobdir.prepare_job needs to know about the nodes."""
        if self.hetjob:
            return dict(rollout_nodes=self.nodes, learner=True,
                        learner_gpus=0 if self.learner_on_cpu else self.gpus)
        return dict(rollout_nodes=self.nodes, learner_gpus=0)


def job_options(site: SiteProfile, flags: dict[str, Any]) -> JobOptions:
    """Flags (None = not given) > site profile > defaults, validated."""
    opts = JobOptions()
    for name in SHARED_CHECKS:
        value = getattr(site, name)
        if name in LIST_FIELDS:
            setattr(opts, name, type(value)(value))  # a copy
        elif value is not None:
            setattr(opts, name, value)
    for role in ROLES:
        setattr(opts, role, site.placement(role))
    return job_options_over(opts, flags)


def job_options_over(opts: JobOptions, flags: dict[str, Any]) -> JobOptions:
    """`opts` with the flags that were given (not None) applied, validated."""
    opts = dataclasses.replace(opts, **{r: dataclasses.replace(getattr(opts, r)) for r in ROLES})
    fields = {f.name for f in dataclasses.fields(JobOptions)}
    for name, value in flags.items():
        role, _, what = name.partition("_")
        if value is None:
            continue
        if name == "sbatch":  # [ROLE:]OPTION=VALUE entries, after the site profile's
            add_sbatch_flags(opts, value)
        elif name in PLACEMENT_FIELDS:  # a flag for every component
            value = PLACEMENT_CHECKS[name](value, f"--{name}")
            for each in ROLES:
                setattr(getattr(opts, each), name, value)
        elif role in ROLES and what in PLACEMENT_FIELDS:
            setattr(getattr(opts, role), what, value)
        elif name in fields:
            setattr(opts, name, value)
        else:  # pragma: no cover - a programming error in the CLI
            raise TypeError(f"unknown job option {name}")
    if flags.get("gpu_type") is not None and opts.gpus == 0:
        raise UserError("--gpu-type is the learner node's GPU model: give --gpus N too")
    for entry in flags.get("sbatch") or []:
        role = split_role(entry)[0]
        if role not in (None, HEAD) and not opts.hetjob:
            raise UserError(f"--sbatch {entry}: without --gpus the job is one component of "
                            "the head's and the rollout nodes: give OPTION=VALUE without a role")
    return opts.validate()


def add_sbatch_flags(opts: JobOptions, entries: list[str]) -> None:
    """`--sbatch OPTION=VALUE` for every component, `--sbatch ROLE:OPTION=VALUE` for one."""
    for entry in entries:
        role, option = split_role(entry)
        option = check_sbatch_option(option, "--sbatch")
        for each in (role,) if role else ROLES:
            place = getattr(opts, each)
            place.sbatch = merged([*place.sbatch, option])


def save_options(run_dir: str | Path, options: JobOptions) -> None:
    import yaml

    from launcher.files import write_atomic

    write_atomic(RunPaths(run_dir).slurm_options,
                 yaml.safe_dump(dataclasses.asdict(options), sort_keys=False))


def load_options(run_dir: str | Path) -> JobOptions:
    """The options a run dir was submitted with, checked exactly as flags and a site
    profile are (the file may have been edited since): one line per mistake."""
    from launcher.files import check_trusted
    from launcher.training.settings import read_yaml

    path = RunPaths(run_dir).slurm_options
    if not path.is_file():
        raise UserError(f"{run_dir} was not submitted with `launcher submit` (no {path.name})")
    check_trusted(path)
    where = str(path)
    data = upgraded(read_yaml(path))
    return JobOptions(**read_mapping(data, JobOptions, where)).validate(where)


def upgraded(data: Any) -> Any:
    """slurm.yaml as written before `exclusive` was a field: there `nodes` counted the
    head's node too in a job without GPUs, and no CPUs per node meant whole nodes."""
    if not isinstance(data, dict) or "exclusive" in data:
        return data
    data = {**data, "exclusive": data.get("cpus_per_node") is None}
    if is_whole(data.get("gpus")) and data["gpus"] == 0 and is_whole(data.get("nodes")):
        data["nodes"] = max(0, data["nodes"] - 1)
    return data


def check_run_dir_text(options: JobOptions, run_dir: str | Path) -> str:
    """The run directory as the script gets it: one line; with Apptainer, a path its
    --bind can take."""
    text = check_path_text(str(run_dir), "the run directory")
    if options.apptainer:
        check_bind_path(text, "the run directory")
    return text
