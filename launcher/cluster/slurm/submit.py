"""What `launcher submit` and `launcher render` do before sbatch: plan a job.

Planning validates everything (training settings, job options, the image path, the
run directory as the script will see it), prepares the run directory when asked to
write (spec.yaml, cluster.yaml, the token: launcher/cluster/jobdir.py), renders the job
script and keeps it with the options it came from (job.sh, slurm.yaml). Every check
runs before the first file is written, so a refused job leaves nothing behind. Nothing
is submitted here: the CLI hands the run directory to `Slurm.submit`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.cluster.slurm import inimage
from launcher.cluster.slurm.commands import recorded_job_ids, require_sbatch
from launcher.cluster.slurm.images import check_image_labels, check_sif_paths
from launcher.cluster.slurm.jobs import active_job
from launcher.cluster.slurm.options import (
    DEFAULT_JOB_NAME,
    JobOptions,
    job_options,
    job_options_over,
    load_options,
    save_options,
)
from launcher.cluster.slurm.render import render
from launcher.cluster.slurm.site import load_site
from launcher.contract import RunPaths
from launcher.errors import UserError

# Settings a resumed job may change in spec.yaml (the CLI refuses the others).
RESUME_SPEC_KEYS = ("stop", "checkpoint_every", "num_env_runners")


@dataclass
class PlannedJob:
    run_dir: Path
    script: str
    script_path: Path
    options: JobOptions


def default_job_name(run_dir: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9._+-]+", "_", run_dir.name).lstrip("._+-")[:128]
    return name or DEFAULT_JOB_NAME


def plan(data: dict[str, Any], flags: dict[str, Any], site_path: str | Path | None, *,
         resume: str | Path | None = None, write: bool = True, sweep=None,
         retry_failed: bool = False) -> PlannedJob:
    """Validate everything, prepare the run dir (when `write`), render the script.

    New job: `data` is a TrainSettings dict (`launcher train` options); jobdir.prepare_job
    validates it (the env is built once) and writes spec.yaml, cluster.yaml and the
    token. `resume`: an existing run dir is submitted again; its shape (nodes, GPUs,
    CPUs) comes from its cluster.yaml and slurm.yaml, and only stop criteria may change.

    A run dir that was never submitted (its sbatch failed, or it was made with
    --dry-run) and holds no checkpoint is submitted again by `--resume` too, and starts
    from the beginning: that is how a failed submission is retried.

    `sweep`: a training.sweep_start.SweepPlan whose first trial is `data`; the job's head
    runs its trials. A resumed sweep continues its unfinished trials (and, with
    `retry_failed`, its failed ones).

    `write` (submit, not render): sbatch must exist on this machine, checked before
    anything is written. Nothing is submitted here.
    """
    if write:
        require_sbatch()
    spec = None
    if resume is not None:
        run_dir, options, spec = plan_resume(resume, data, flags, site_path, write, retry_failed)
    else:
        run_dir, options = plan_new(data, flags, site_path, write, sweep)
    script = render(options, run_dir)
    paths = RunPaths(run_dir)
    if write:
        from launcher.files import write_atomic

        if spec is not None:
            spec.write_spec(run_dir)
        write_atomic(paths.script, script)
        save_options(run_dir, options)
    return PlannedJob(run_dir=Path(run_dir), script=script, script_path=paths.script,
                      options=options)


def plan_new(data: dict[str, Any], flags: dict[str, Any], site_path: str | Path | None,
             write: bool, sweep=None) -> tuple[Path, JobOptions]:
    """A new job's options and run dir (prepared when `write`): the checks that need the
    training stack run here or in the job's image (inimage.py)."""
    from launcher.training.settings import TrainSettings

    site = load_site(site_path)
    job_name = flags.get("job_name")
    options = job_options(site, {
        **flags, "nodes": 0 if flags.get("nodes") is None else flags["nodes"],
        "gpus": 0 if flags.get("gpus") is None else flags["gpus"],
        "job_name": job_name or DEFAULT_JOB_NAME})
    check_sif_paths(options, write)
    settings = TrainSettings.from_dict(data, where="the training options")
    output = Path(settings.output).expanduser().resolve()
    render(options, output / DEFAULT_JOB_NAME)  # the script's own checks (the path), before any write
    check_image_labels(options)
    if inimage.runs_in_image(options):
        request = inimage.request_for("prepare" if write else "check", settings, options.shape(),
                                      cpus_per_node=options.cpus_per_node, job_name=job_name,
                                      hetjob=options.hetjob,
                                      sweep=sweep.to_dict() if sweep is not None else None)
        run_dir = Path(inimage.run_in_image(options, request)["run_dir"])
    else:
        run_dir = prepare_here(settings, options, job_name, write, sweep)
    if job_name is None:
        options.job_name = default_job_name(run_dir)
    return run_dir, options


def prepare_here(settings, options: JobOptions, job_name: str | None, write: bool,
                 sweep=None) -> Path:
    """The run dir prepared (or, not `write`, only checked) with this machine's stack."""
    from launcher.cluster import jobdir
    from launcher.training.rundir import run_dir_name
    from launcher.training.sweep_record import check_trials

    if write:
        return jobdir.prepare_job(settings, **options.shape(), cpus_per_node=options.cpus_per_node,
                                  job_name=job_name, sweep=sweep).path
    placement = jobdir.place_settings(settings, options.hetjob, options.shape()["learner_gpus"])
    if sweep is not None:
        check_trials(sweep.trials, placement=placement)
    return Path(settings.output).expanduser().resolve() / run_dir_name(settings)


def plan_resume(resume: str | Path, data: dict[str, Any], flags: dict[str, Any],
                site_path: str | Path | None, write: bool,
                retry_failed: bool = False) -> tuple[Path, JobOptions, Any]:
    """A submitted run dir's options, flags applied, and its spec when `data` changes
    it (None otherwise): refused while its job runs, or when it would start over. A
    sweep's record takes `data` (with `write`) for its unfinished trials instead."""
    from launcher.training.checkpoints import checkpoints
    from launcher.training.resume import resumed_settings
    from launcher.training.sweep_record import check_sweep_resumable, is_sweep_dir

    run_dir = loaded_run_dir(resume, flags)
    saved = load_options(run_dir)
    for flag, name in (("--nodes", "nodes"), ("--gpus", "gpus")):
        if flags.get(name) is not None and flags[name] != getattr(saved, name):
            raise UserError(f"{flag} {flags[name]}: {run_dir} was submitted with {flag} "
                            f"{getattr(saved, name)}; a resumed job keeps its shape")
    if site_path is not None:
        raise UserError("--site with --resume: the job keeps the options it was submitted "
                        f"with ({RunPaths(run_dir).slurm_options}); change them with flags")
    options = job_options_over(saved, flags)
    check_sif_paths(options, write)
    check_image_labels(options)
    sweep = is_sweep_dir(run_dir)
    if sweep:
        check_sweep_resumable(run_dir, retry_failed)
    elif recorded_job_ids(run_dir) and not checkpoints(run_dir):
        raise UserError(f"{run_dir} holds no checkpoint yet: it would start over. "
                        "Submit a new job instead (or wait for its first checkpoint)")
    active = active_job(run_dir)
    if active:
        raise UserError(f"job {active} of {run_dir} is still queued or running; "
                        f"cancel it first (launcher cancel {active})")
    if sweep:
        if write:
            from launcher.training.sweep_record import update_for_resume

            update_for_resume(run_dir, data, retry_failed)
        return run_dir, options, None
    changes = data.get("stop") or any(key in data for key in RESUME_SPEC_KEYS[1:])
    spec = resumed_settings(run_dir, data) if changes else None
    return run_dir, options, spec


def loaded_run_dir(resume: str | Path, flags: dict[str, Any]) -> Path:
    """A submitted run dir, read back and trusted (jobdir.load_job): here, or in its image
    where this machine lacks the training stack."""
    if not inimage.stack_here():
        saved = load_options(Path(resume).expanduser())
        options = job_options_over(saved, flags)
        if inimage.runs_in_image(options):
            request = {"action": "load", "run_dir": str(Path(resume).expanduser().resolve()),
                       "settings": None}
            return Path(inimage.run_in_image(options, request)["run_dir"])
    from launcher.cluster import jobdir

    return jobdir.load_job(resume).path
