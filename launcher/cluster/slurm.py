"""Slurm jobs: render the job template (slurm/job.sh.j2, which is
launcher/templates/slurm-job.sh.j2) from typed parameters, and talk to Slurm.

Rendering: `JobOptions` (flags > site profile > defaults, all validated) plus a run
directory prepared by launcher/jobdir.py become one bash script. With `gpus > 0` it is
a heterogeneous job (component 0: Ray head + trainer; 1: rollout nodes; 2: the learner
node with `--gres=gpu:N`); with `gpus == 0` a plain job of `nodes` nodes whose first
node hosts the head and the trainer. Every node runs `launcher node --run-dir DIR
--role ROLE`; the training settings stay in DIR/spec.yaml.

Talking to Slurm: every command (sbatch, squeue, scontrol, sacct, scancel) goes
through `Slurm.run`, one small wrapper: argument lists, never a shell; Slurm's own
error text reaches the user verbatim. Tests swap it for a recorder.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher import __version__
from launcher.cluster.site import (
    RUNTIMES,
    Placement,
    SiteProfile,
    check_path_text,
    check_slurm_name,
    check_time,
    time_to_seconds,
)
from launcher.errors import UserError

SCRIPT_FILE = "job.sh"
JOB_IDS_FILE = "slurm-job-ids"  # one Slurm job id per submission, newest last
COMMENT = "launcher"  # #SBATCH --comment: how `launcher list` finds our jobs
DEFAULT_TIME = "01:00:00"
ACTIVE_STATES = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING",
                 "SUSPENDED", "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT"}
JOB_ID = re.compile(r"^\d+(\+\d+)?$")


TEMPLATE = "slurm-job.sh.j2"  # in launcher/templates/ (slurm/job.sh.j2 links to it)


def template_path() -> Path:
    """The job template: $LAUNCHER_SLURM_TEMPLATE (a site's own copy), else the one
    installed with the package."""
    custom = os.environ.get("LAUNCHER_SLURM_TEMPLATE")
    if custom:
        return Path(custom).expanduser()
    return Path(__file__).resolve().parents[1] / "templates" / TEMPLATE


# --- what a job asks for -----------------------------------------------------------------
@dataclass
class JobOptions:
    """Everything the job script is rendered from, apart from the run directory.

    The field names are the schema: `launcher submit` flags and site-profile keys map
    onto them one to one.
    """

    nodes: int = 1  # rollout nodes (gpus > 0), or all nodes (gpus == 0)
    gpus: int = 0  # GPUs of the learner node; 0: no learner node, plain job
    cpus_per_node: int | None = None  # None: whole nodes (--exclusive)
    time: str = DEFAULT_TIME
    job_name: str = "launcher"
    runtime: str = "none"
    image: str | None = None
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
    def signal_s(self) -> int:
        if self.checkpoint_before is not None:
            return self.checkpoint_before
        return max(60, min(600, time_to_seconds(self.time) // 5))

    def validate(self) -> JobOptions:
        if not isinstance(self.nodes, int) or self.nodes < (0 if self.hetjob else 1):
            least = "0 with --gpus > 0" if self.hetjob else "1"
            raise UserError(f"--nodes must be at least {least}, got {self.nodes}")
        if not isinstance(self.gpus, int) or self.gpus < 0:
            raise UserError(f"--gpus must be a whole number >= 0, got {self.gpus}")
        if self.cpus_per_node is not None and self.cpus_per_node < 1:
            raise UserError(f"--cpus-per-node must be at least 1, got {self.cpus_per_node}")
        self.time = check_time(self.time)
        if time_to_seconds(self.time) < 60:
            raise UserError(f"--time {self.time} is under a minute: too short to start Ray")
        self.job_name = check_slurm_name(self.job_name, "--job-name")
        if self.runtime not in RUNTIMES:
            raise UserError(f"--runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}")
        if self.runtime == "apptainer":
            if not self.image:
                raise UserError("--runtime apptainer needs --image (a .sif file) or `image:` "
                                "in the site profile")
            self.image = check_path_text(self.image, "--image")
        for role in ("head", "rollout", "learner"):
            getattr(self, role).validate(role)
        if self.checkpoint_before is not None:
            limit = time_to_seconds(self.time)
            if not 10 <= self.checkpoint_before < limit:
                raise UserError(f"--checkpoint-before must be between 10 s and the time limit "
                                f"({limit} s), got {self.checkpoint_before}")
        # The site-profile fields were validated by SiteProfile.validate().
        return self

    def components(self) -> list[dict[str, Any]]:
        """One entry per het-job component (one for a plain job)."""
        def comp(role: str, nodes: int, gpus: int = 0) -> dict[str, Any]:
            cpus = self.cpus_per_node
            return {
                "role": role, "nodes": nodes, "gpus": gpus, "cpus": cpus,
                "step_cpus": f"--cpus-per-task={cpus}" if cpus else "--whole",
                **dataclasses.asdict(getattr(self, role)),
            }

        if not self.hetjob:
            return [comp("head", self.nodes)]
        return [comp("head", 1), comp("rollout", self.nodes), comp("learner", 1, self.gpus)]

    def shape(self) -> dict[str, Any]:
        """What launcher/jobdir.prepare_job needs to know about the nodes."""
        if self.hetjob:
            return {"rollout_nodes": self.nodes, "learner": True,
                    "learner_gpus": 0 if self.learner_on_cpu else self.gpus}
        return {"rollout_nodes": self.nodes - 1, "learner_gpus": 0}


def job_options(site: SiteProfile, flags: dict[str, Any]) -> JobOptions:
    """Flags (None = not given) > site profile > defaults, validated."""
    opts = JobOptions()
    for name in ("runtime", "image", "cpus_per_node", "time", "activate", "scratch",
                 "learner_on_cpu"):
        value = getattr(site, name)
        if value is not None:
            setattr(opts, name, value)
    for name in ("modules", "unset", "binds"):
        setattr(opts, name, list(getattr(site, name)))
    opts.env = dict(site.env)
    for role in ("head", "rollout", "learner"):
        setattr(opts, role, site.placement(role))
    return job_options_over(opts, flags)


def job_options_over(opts: JobOptions, flags: dict[str, Any]) -> JobOptions:
    """`opts` with the flags that were given (not None) applied, validated."""
    opts = dataclasses.replace(opts, **{r: dataclasses.replace(getattr(opts, r))
                                        for r in ("head", "rollout", "learner")})
    for name, value in flags.items():
        if value is None:
            continue
        if name in ("partition", "account", "qos"):  # a flag for every component
            for role in ("head", "rollout", "learner"):
                setattr(getattr(opts, role), name, value)
        elif "_" in name and name.split("_", 1)[0] in ("head", "rollout", "learner") \
                and name.split("_", 1)[1] in ("partition", "account", "qos"):
            role, what = name.split("_", 1)
            setattr(getattr(opts, role), what, value)
        elif name in {f.name for f in dataclasses.fields(JobOptions)}:
            setattr(opts, name, value)
        else:  # pragma: no cover - a programming error in the CLI
            raise TypeError(f"unknown job option {name}")
    return opts.validate()


OPTIONS_FILE = "slurm.yaml"  # the JobOptions a run dir was submitted with (for --resume)


def save_options(run_dir: str | Path, options: JobOptions) -> None:
    import yaml

    Path(run_dir, OPTIONS_FILE).write_text(yaml.safe_dump(dataclasses.asdict(options), sort_keys=False))


def load_options(run_dir: str | Path) -> JobOptions:
    from launcher.training.settings import check_keys, read_yaml

    path = Path(run_dir) / OPTIONS_FILE
    if not path.is_file():
        raise UserError(f"{run_dir} was not submitted with `launcher submit` (no {OPTIONS_FILE})")
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise UserError(f"{path} must be a mapping")
    check_keys(data, [f.name for f in dataclasses.fields(JobOptions)], str(path))
    for role in ("head", "rollout", "learner"):
        part = data.get(role) or {}
        check_keys(part, [f.name for f in dataclasses.fields(Placement)], f"{path}: {role}")
        data[role] = Placement(**part)
    return JobOptions(**data).validate()


# --- rendering ---------------------------------------------------------------------------
def render(options: JobOptions, run_dir: str | Path) -> str:
    """The job script for these options and run directory."""
    import jinja2

    from launcher.training.loop import EXIT_INTERRUPTED

    options.validate()
    template = template_path()
    if not template.is_file():
        raise UserError(f"the Slurm job template {template} is missing (a broken installation, "
                        "or LAUNCHER_SLURM_TEMPLATE pointing nowhere)")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template.parent)),
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True,
    )
    env.filters["q"] = lambda value: shlex.quote(str(value))
    run_dir = check_path_text(str(run_dir), "the run directory")
    return env.get_template(template.name).render(
        version=__version__,
        job_name=options.job_name, time=options.time, signal_s=options.signal_s,
        components=options.components(), hetjob=options.hetjob,
        run_dir=run_dir, runtime=options.runtime, image=options.image,
        scratch=options.scratch, modules=options.modules, activate=options.activate,
        unset=options.unset, env=options.env, binds=options.binds,
        exit_interrupted=EXIT_INTERRUPTED,
    )


def sbatch_command(script: str = SCRIPT_FILE) -> list[str]:
    """sbatch runs in the run directory: the job's working directory and its log
    (job-<id>.log) are there, and no path is spliced into an #SBATCH line."""
    return ["sbatch", "--parsable", script]


def shown_command(run_dir: Path) -> str:
    return f"cd {shlex.quote(str(run_dir))} && {shlex.join(sbatch_command())}"


# --- the one wrapper around Slurm's commands ------------------------------------------------
class SlurmError(UserError):
    """A Slurm command failed; the message is Slurm's own text."""


class Slurm:
    """Runs Slurm's commands. `runner` is subprocess.run's signature; tests replace it."""

    def __init__(self, runner=None, timeout: float = 60):
        self.runner = runner or subprocess.run
        self.timeout = timeout

    def run(self, *argv: str, cwd: str | Path | None = None, check: bool = True
            ) -> subprocess.CompletedProcess:
        argv = [str(a) for a in argv]
        try:
            proc = self.runner(argv, cwd=cwd, capture_output=True, text=True, timeout=self.timeout)
        except FileNotFoundError:
            raise UserError(f"{argv[0]} not found: run this on a machine with Slurm's commands "
                            "(a login node), or put them on PATH") from None
        except subprocess.TimeoutExpired:
            raise SlurmError(f"{argv[0]} did not answer within {self.timeout:g} s") from None
        if check and proc.returncode != 0:
            text = (proc.stderr or proc.stdout or "").strip()
            raise SlurmError(f"{argv[0]} failed: {text or f'exit status {proc.returncode}'}")
        return proc

    # --- submission ---------------------------------------------------------------------
    def submit(self, run_dir: Path, script: str = SCRIPT_FILE) -> str:
        out = self.run(*sbatch_command(script), cwd=run_dir).stdout.strip()
        job_id = out.split(";")[0].strip()  # --parsable: "id" or "id;cluster"
        if not job_id.isdigit():
            raise SlurmError(f"sbatch answered {out!r}, not a job id")
        with open(Path(run_dir) / JOB_IDS_FILE, "a") as fh:
            fh.write(job_id + "\n")
        return job_id

    # --- looking at jobs ----------------------------------------------------------------
    def show(self, job: str) -> dict[str, str] | None:
        """scontrol's record of the job (the first component of a het job), or None
        when the controller no longer knows it."""
        proc = self.run("scontrol", "show", "job", "--oneliner", job, check=False)
        if proc.returncode != 0:
            if "Invalid job id" in (proc.stderr or ""):
                return None
            raise SlurmError(f"scontrol failed: {(proc.stderr or proc.stdout).strip()}")
        line = proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else ""
        return parse_scontrol(line)

    def accounting(self, job: str) -> dict[str, str] | None:
        """sacct's record (for jobs the controller forgot); None without accounting."""
        fields = ["JobID", "JobName", "State", "ExitCode", "WorkDir", "Elapsed", "NodeList"]
        proc = self.run("sacct", "-n", "-P", "-X", "-j", job, "-o", ",".join(fields), check=False)
        if proc.returncode != 0 or not proc.stdout.strip():
            return None
        values = proc.stdout.strip().splitlines()[0].split("|")
        record = dict(zip(fields, values, strict=False))
        return {"JobId": record["JobID"], "JobName": record["JobName"],
                "JobState": record["State"].split()[0], "ExitCode": record["ExitCode"],
                "WorkDir": record["WorkDir"], "RunTime": record["Elapsed"],
                "NodeList": record["NodeList"]}

    def record(self, job: str) -> dict[str, str]:
        info = self.show(job) or self.accounting(job)
        if info is None:
            raise UserError(f"Slurm does not know job {job} (any more): its results are in "
                            "its run directory")
        return info

    def queue(self) -> list[dict[str, str]]:
        """This user's jobs that the launcher submitted (het components merged)."""
        columns = [("JobId", "%i"), ("Name", "%j"), ("State", "%T"), ("TimeUsed", "%M"),
                   ("TimeLimit", "%l"), ("NumNodes", "%D"), ("Reason", "%R"), ("Comment", "%k"),
                   ("WorkDir", "%Z")]  # WorkDir last: the only field that may hold a '|'
        fields = [name for name, _ in columns]
        fmt = "|".join(code for _, code in columns)
        proc = self.run("squeue", "--me", "--noheader", "-o", fmt)
        jobs: dict[str, dict[str, str]] = {}
        for line in proc.stdout.splitlines():
            values = [v.strip() for v in line.split("|", len(fields) - 1)]
            if len(values) < len(fields):
                continue
            row = dict(zip(fields, values, strict=False))
            if row["Comment"] != COMMENT:
                continue
            leader, _, _ = row["JobId"].partition("+")
            if leader in jobs:
                prev = jobs[leader]
                prev["NumNodes"] = str(int(prev["NumNodes"] or 0) + int(row["NumNodes"] or 0))
                continue
            row["JobId"] = leader
            jobs[leader] = row
        return list(jobs.values())

    def cancel(self, job: str) -> None:
        self.run("scancel", job)

    def wait_gone(self, job: str, timeout_s: float = 120, poll_s: float = 1.0) -> str:
        """Poll until the job is no longer active; return its final state."""
        deadline = time.monotonic() + timeout_s
        state = "UNKNOWN"
        while time.monotonic() < deadline:
            info = self.show(job)
            if info is None:
                return "GONE"
            state = info.get("JobState", "UNKNOWN")
            if state not in ACTIVE_STATES:
                return state
            time.sleep(poll_s)
        return state


def parse_scontrol(line: str) -> dict[str, str]:
    """`scontrol show job --oneliner`: Key=Value pairs separated by spaces; values
    may hold spaces (WorkDir, Command), so split on ' Key=' boundaries."""
    out: dict[str, str] = {}
    for match in re.finditer(r"(?:^|\s)([A-Za-z:/]+)=(.*?)(?=\s[A-Za-z:/]+=|$)", line):
        out.setdefault(match.group(1), match.group(2))
    return out


def resolve_job(job: str) -> tuple[str, Path | None]:
    """A job id, or a run directory (its newest submission)."""
    text = str(job).strip()
    if JOB_ID.match(text):
        return text.partition("+")[0], None
    path = Path(text).expanduser()
    ids = path / JOB_IDS_FILE
    if path.is_dir() and ids.is_file():
        lines = [x.strip() for x in ids.read_text().splitlines() if x.strip()]
        if lines:
            return lines[-1], path.resolve()
    raise UserError(f"{job!r} is neither a Slurm job id nor a run directory submitted with "
                    "`launcher submit`")


def log_path(info: dict[str, str], job: str, run_dir: Path | None) -> Path:
    """Where the job's log is: scontrol's StdOut, else RUN_DIR/job-<id>.log."""
    out = info.get("StdOut")
    if out:
        return Path(out)
    base = run_dir or (Path(info["WorkDir"]) if info.get("WorkDir") else None)
    if base is None:
        raise UserError(f"cannot tell where job {job} writes its log")
    return base / f"job-{job}.log"


# --- what `launcher submit` / `render` do ---------------------------------------------------
@dataclass
class PlannedJob:
    run_dir: Path
    script: str
    script_path: Path
    options: JobOptions


def default_job_name(run_dir: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9._+-]+", "_", run_dir.name).lstrip("._+-")[:128]
    return name or "launcher"


def plan(data: dict[str, Any], flags: dict[str, Any], site_path: str | Path | None, *,
         resume: str | Path | None = None, write: bool = True) -> PlannedJob:
    """Validate everything, prepare the run dir (when `write`), render the script.

    New job: `data` is a TrainSettings dict (`launcher train` options); jobdir.prepare_job
    validates it (train.check: the env is built once) and writes spec.yaml, cluster.yaml
    and the token. `resume`: an existing run dir is submitted again; its shape (nodes,
    GPUs, CPUs) comes from its cluster.yaml and only stop criteria may change.
    Nothing is submitted here.
    """
    from launcher.cluster import jobdir
    from launcher.cluster.site import load_site
    from launcher.training import loop as training
    from launcher.training.settings import TrainSettings

    if resume is not None:
        job = jobdir.load_job(resume)
        saved = load_options(job.path)
        for flag, name in (("--nodes", "nodes"), ("--gpus", "gpus")):
            if flags.get(name) is not None and flags[name] != getattr(saved, name):
                raise UserError(f"{flag} {flags[name]}: {job.path} was submitted with {flag} "
                                f"{getattr(saved, name)}; a resumed job keeps its shape")
        if site_path is not None:
            raise UserError("--site with --resume: the job keeps the options it was submitted "
                            f"with ({job.path / OPTIONS_FILE}); change them with flags")
        options = job_options_over(saved, flags)
        check_image(options, write)
        if not training.checkpoints(job.path):
            raise UserError(f"{job.path} holds no checkpoint yet: it would start over. "
                            "Submit a new job instead (or wait for its first checkpoint)")
        active = active_job(job.path)
        if active:
            raise UserError(f"job {active} of {job.path} is still queued or running; "
                            f"cancel it first (launcher cancel {active})")
        stop = data.get("stop") or {}
        if write and (stop or "checkpoint_every" in data or "num_env_runners" in data):
            settings = training.resume_settings(job.path, data)
            settings.write_spec(job.path)
        run_dir = job.path
    else:
        site = load_site(site_path)
        flags = {**flags, "nodes": 1 if flags.get("nodes") is None else flags["nodes"],
                 "gpus": 0 if flags.get("gpus") is None else flags["gpus"]}
        job_name = flags.get("job_name")
        options = job_options(site, {**flags, "job_name": job_name or "launcher"})
        check_image(options, write)
        settings = TrainSettings.from_dict(data, where="the training options")
        if options.hetjob and options.nodes == 0 and options.cpus_per_node == 1:
            raise UserError("with --nodes 0 the head runs the env runners: give it 2 or more CPUs")
        if write:
            job = jobdir.prepare_job(settings, **options.shape(),
                                     cpus_per_node=options.cpus_per_node, job_name=job_name)
            run_dir = job.path
        else:
            jobdir.place_settings(settings, options.hetjob, options.shape()["learner_gpus"])
            run_dir = Path(settings.output).expanduser().resolve() / training.run_dir_name(settings)
        if job_name is None:
            options.job_name = default_job_name(run_dir)
    script = render(options, run_dir)
    script_path = Path(run_dir) / SCRIPT_FILE
    if write:
        script_path.write_text(script)
        save_options(run_dir, options)
    return PlannedJob(run_dir=Path(run_dir), script=script, script_path=script_path, options=options)


def check_image(options: JobOptions, write: bool) -> None:
    """An apptainer image given as a local path must exist (where we submit from)."""
    if options.runtime == "apptainer" and write and "://" not in options.image \
            and not Path(options.image).expanduser().exists():
        raise UserError(f"--image {options.image}: no such file on this machine (build it with "
                        "apptainer/launcher.def, or give a path the nodes can read)")


def active_job(run_dir: Path, slurm: Slurm | None = None) -> str | None:
    """The run dir's newest job when Slurm still queues or runs it."""
    ids = Path(run_dir) / JOB_IDS_FILE
    if not ids.is_file():
        return None
    lines = [x.strip() for x in ids.read_text().splitlines() if x.strip()]
    if not lines:
        return None
    try:
        info = (slurm or Slurm()).show(lines[-1])
    except UserError:
        return None  # no Slurm here: nothing to protect
    return lines[-1] if info and info.get("JobState") in ACTIVE_STATES else None


# --- status, logs, cancel -------------------------------------------------------------------
def progress_summary(run_dir: Path) -> str | None:
    import csv

    path = Path(run_dir) / "progress.csv"
    if not path.is_file():
        return None
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError:
        return None
    if not rows:
        return None
    last = rows[-1]
    ret = last.get("episode_return_mean") or "-"
    try:
        ret = f"{float(ret):.1f}"
    except ValueError:
        pass
    return (f"iteration {last.get('training_iteration', '?')}, mean return {ret}, "
            f"{last.get('num_env_steps_sampled_lifetime', '?')} env steps")


def status_lines(job: str, slurm: Slurm | None = None) -> list[tuple[str, str]]:
    slurm = slurm or Slurm()
    job_id, run_dir = resolve_job(job)
    info = slurm.record(job_id)
    run_dir = run_dir or (Path(info["WorkDir"]) if info.get("WorkDir") else None)
    lines = [("job", f"{job_id} ({info.get('JobName', '?')})"),
             ("state", info.get("JobState", "?") + (
                 f" ({info['Reason']})" if info.get("Reason") not in (None, "", "None") else "")),
             ("exit code", info.get("ExitCode", "?")),
             ("time", f"{info.get('RunTime', '?')} of {info.get('TimeLimit', '?')}"),
             ("nodes", info.get("NodeList", "?"))]
    if info.get("Restarts") not in (None, "0"):
        lines.append(("restarts", info["Restarts"]))
    if run_dir is not None:
        lines.append(("run dir", str(run_dir)))
        done = Path(run_dir) / ".cluster" / "done.json"
        if done.is_file():
            import json

            try:
                marker = json.loads(done.read_text())
                lines.append(("trainer", f"exit {marker.get('status')}: {marker.get('reason')}"))
            except (OSError, ValueError):
                pass
        progress = progress_summary(Path(run_dir))
        if progress:
            lines.append(("progress", progress))
    try:
        lines.append(("log", str(log_path(info, job_id, run_dir))))
    except UserError:
        pass
    return lines


def log_chunks(job: str, follow: bool = False, slurm: Slurm | None = None, poll_s: float = 1.0):
    """The log's text; with `follow`, new text as it arrives until the job ends."""
    slurm = slurm or Slurm()
    job_id, run_dir = resolve_job(job)
    info = slurm.record(job_id)
    path = log_path(info, job_id, run_dir)
    offset = 0
    while True:
        if path.is_file():
            with open(path, errors="replace") as fh:
                fh.seek(offset)
                text = fh.read()
                offset = fh.tell()
            if text:
                yield text
        elif not follow:
            state = info.get("JobState", "")
            raise UserError(f"no log yet at {path} (job {job_id} is {state or 'unknown'})")
        if not follow:
            return
        current = slurm.show(job_id)
        if current is None or current.get("JobState") not in ACTIVE_STATES:
            if path.is_file():  # what was written while we looked
                with open(path, errors="replace") as fh:
                    fh.seek(offset)
                    rest = fh.read()
                if rest:
                    yield rest
            return
        time.sleep(poll_s)


def cancel(job: str, slurm: Slurm | None = None, timeout_s: float = 120) -> tuple[str, str]:
    """scancel, then wait until Slurm has ended the job (its nodes stop Ray on SIGTERM)."""
    slurm = slurm or Slurm()
    job_id, _ = resolve_job(job)
    info = slurm.record(job_id)
    if info.get("JobState") not in ACTIVE_STATES:
        return job_id, f"already ended ({info.get('JobState')})"
    slurm.cancel(job_id)
    final = slurm.wait_gone(job_id, timeout_s=timeout_s)
    if final in ACTIVE_STATES:
        return job_id, f"still {final} after {timeout_s:.0f} s; Slurm is ending it"
    return job_id, final
