"""Commands that run cluster jobs and follow them: local (Docker containers on this
machine), submit and render (Slurm), and status, logs, cancel, list for Slurm jobs.

Each command parses its options, calls one function of the cluster side, and
prints what it returns. `submit` and `render` are one function: `render` prints the
job script that `submit` would write and submit.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated

import typer

from launcher.cli import options as opt
from launcher.cli import slurm_options as sopt
from launcher.cluster.slurm.site import RUNTIMES

app = typer.Typer()


@app.command(rich_help_panel=opt.CLUSTERS)
def local(
    algo: opt.Algo = None, env: opt.Env = None, framework: opt.Framework = None,
    config_file: opt.ConfigFile = None, sets: opt.Sets = None, env_config: opt.EnvConfig = None,
    code: opt.Code = None,
    seed: opt.Seed = None,
    stop_iters: opt.StopIters = None, stop_timesteps: opt.StopTimesteps = None,
    stop_reward: opt.StopReward = None, stop_time: opt.StopTime = None,
    num_env_runners: opt.NumEnvRunners = None,
    output: opt.Output = None, name: opt.Name = None, checkpoint_every: opt.CheckpointEvery = None,
    seeds: opt.Seeds = None, grid: opt.Grid = None, sample: opt.Sample = None,
    trials: opt.Trials = None, max_concurrent: opt.MaxConcurrent = None,
    early_stop: opt.EarlyStop = None, search: opt.Search = None,
    retry_failed: opt.RetryFailed = False,
    resume: Annotated[Path | None, typer.Option(
        "--resume", metavar="RUN_DIR", help="Continue RUN_DIR (same topology; or a sweep's "
                                            "directory) from its last checkpoints.",
        rich_help_panel=opt.OUTPUT)] = None,
    nodes: opt.Nodes = 2,
    gpus: opt.Gpus = 0,
    cpus_per_node: Annotated[int | None, typer.Option(
        "--cpus-per-node", metavar="N", help="CPUs per container.",
        show_default="this machine's CPUs shared between them", rich_help_panel=opt.PLACEMENT)] = None,
    memory: Annotated[str | None, typer.Option(
        "--memory", metavar="SIZE", help="Memory limit per container, e.g. 2g.",
        rich_help_panel=opt.CONTAINERS)] = None,
    shm_size: Annotated[str, typer.Option(
        "--shm-size", metavar="SIZE", help="Shared memory per container (Ray's object store).",
        rich_help_panel=opt.CONTAINERS)] = "1g",
    image: Annotated[str, typer.Option(
        "--image", metavar="IMAGE", help="Trainer image (`make image`).",
        rich_help_panel=opt.CONTAINERS)] = "launcher:cpu",
    keep: Annotated[bool, typer.Option(
        "--keep", help="Leave the containers and network for inspection.",
        rich_help_panel=opt.CONTAINERS)] = False,
    prefix: Annotated[str | None, typer.Option(
        "--prefix", metavar="NAME", help="Container/network name prefix.",
        show_default="launcher-local-<job id>",
        rich_help_panel=opt.CONTAINERS)] = None,
    ready_timeout: Annotated[float, typer.Option(
        "--ready-timeout", metavar="SECONDS", help="Seconds for every node to join.",
        rich_help_panel=opt.CONTAINERS)] = 120,
) -> None:
    """Run a cluster job as Docker containers on this machine: a head, --nodes rollout
    containers and, with --gpus, a learner.

    Every container runs `launcher node`, as on Slurm; without NVIDIA GPUs on the host
    the learner container trains on CPUs.

    Exit status: the head's (0 done, 75 stopped after a checkpoint: --resume continues;
    2 bad input, nothing started); a head that dies says how to --resume.
    """
    from launcher.cluster.local import LocalOptions, run_local
    from launcher.training.options import cluster_defaults, merge_training_options
    from launcher.training.resume import overrides_for_resume
    from launcher.training.sweep_start import SweepFlags, check_resume_flags, job_settings

    flags = SweepFlags(seed, seeds, grid, sample, trials, max_concurrent, early_stop, search)
    training = merge_training_options(
        algo=algo, env=env, framework=framework, config_file=config_file, sets=sets,
        env_config=env_config, code=code, seed=flags.single_seed(), stop_iters=stop_iters,
        stop_timesteps=stop_timesteps, stop_reward=stop_reward, stop_time=stop_time,
        num_env_runners=num_env_runners, output=output, name=name, checkpoint_every=checkpoint_every)
    opts = LocalOptions(nodes=nodes, gpus=gpus, cpus_per_node=cpus_per_node, memory=memory,
                        shm_size=shm_size, image=image, keep=keep, prefix=prefix,
                        ready_timeout_s=ready_timeout)
    check_resume_flags(resume, flags, retry_failed)
    if resume is not None:
        overrides = overrides_for_resume(training)
        status = run_local(None, opts, resume=resume, resume_overrides=overrides or None,
                           retry_failed=retry_failed)
    else:
        settings, plan = job_settings(cluster_defaults(training), flags, say=typer.echo)
        status = run_local(settings, opts, sweep=plan)
    raise typer.Exit(status)


def job_command(
    algo: opt.Algo = None, env: opt.Env = None, framework: opt.Framework = None,
    config_file: opt.ConfigFile = None, sets: opt.Sets = None, env_config: opt.EnvConfig = None,
    code: opt.Code = None,
    seed: opt.Seed = None,
    stop_iters: opt.StopIters = None, stop_timesteps: opt.StopTimesteps = None,
    stop_reward: opt.StopReward = None, stop_time: opt.StopTime = None,
    num_env_runners: opt.NumEnvRunners = None,
    output: opt.Output = None, name: opt.Name = None, checkpoint_every: opt.CheckpointEvery = None,
    seeds: opt.Seeds = None, grid: opt.Grid = None, sample: opt.Sample = None,
    trials: opt.Trials = None, max_concurrent: opt.MaxConcurrent = None,
    early_stop: opt.EarlyStop = None, search: opt.Search = None,
    retry_failed: opt.RetryFailed = False,
    resume: Annotated[Path | None, typer.Option(
        "--resume", metavar="RUN_DIR", help="Submit RUN_DIR (or a sweep's directory) again; it "
                                            "continues from its last checkpoints.",
        rich_help_panel=opt.OUTPUT)] = None,
    nodes: opt.JobNodes = None,
    gpus: opt.JobGpus = None,
    cpus_per_node: Annotated[int | None, typer.Option(
        "--cpus-per-node", metavar="N", help="CPUs per node (with --exclusive, if not given: the "
                                             "whole node's).",
        show_default="the site profile's, else 4", rich_help_panel=opt.PLACEMENT)] = None,
    learner_on_cpu: Annotated[bool | None, typer.Option(
        "--learner-on-cpu/--learner-on-gpu",
        help="Train on the learner node's CPUs although Slurm allocates its GPU (GPUs torch "
             "cannot use).", rich_help_panel=opt.PLACEMENT)] = None,
    time_limit: Annotated[str | None, typer.Option(
        "--time", "-t", metavar="[D-]HH:MM:SS", help="Time limit, or MINUTES, MM:SS, D-HH, "
                                                     "D-HH:MM.", show_default="01:00:00",
        rich_help_panel=opt.SLURM)] = None,
    partition: Annotated[str | None, typer.Option(
        "--partition", "-p", metavar="NAME", help="Partition for every component.",
        rich_help_panel=opt.SLURM)] = None,
    account: Annotated[str | None, typer.Option(
        "--account", "-A", metavar="NAME", help="Account for every component.",
        rich_help_panel=opt.SLURM)] = None,
    qos: Annotated[str | None, typer.Option(
        "--qos", metavar="NAME", help="QoS for every component.", rich_help_panel=opt.SLURM)] = None,
    job_name: Annotated[str | None, typer.Option(
        "--job-name", "-J", metavar="NAME", help="Slurm job name.", show_default="the run's name",
        rich_help_panel=opt.SLURM)] = None,
    site: Annotated[Path | None, typer.Option(
        "--site", envvar="LAUNCHER_SITE", metavar="FILE",
        help="Site profile YAML: partitions, account, modules, image...",
        rich_help_panel=opt.SLURM)] = None,
    checkpoint_before: Annotated[int | None, typer.Option(
        "--checkpoint-before", metavar="SECONDS",
        help="Seconds before the time limit to checkpoint and requeue.",
        show_default="a fifth of --time, 60-600",
        rich_help_panel=opt.SLURM)] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Write the run dir and job script; print the sbatch command.",
        rich_help_panel=opt.SLURM)] = False,
    head_partition: Annotated[str | None, typer.Option(
        "--head-partition", metavar="NAME", help="Partition of the head.",
        rich_help_panel=opt.SLURM_PER_COMPONENT)] = None,
    head_account: Annotated[str | None, typer.Option(
        "--head-account", metavar="NAME", help="Account of the head.",
        rich_help_panel=opt.SLURM_PER_COMPONENT)] = None,
    head_qos: Annotated[str | None, typer.Option(
        "--head-qos", metavar="NAME", help="QoS of the head.",
        rich_help_panel=opt.SLURM_PER_COMPONENT)] = None,
    rollout_partition: Annotated[str | None, typer.Option(
        "--rollout-partition", metavar="NAME", help="Partition of the rollout nodes.",
        rich_help_panel=opt.SLURM_PER_COMPONENT)] = None,
    rollout_account: Annotated[str | None, typer.Option(
        "--rollout-account", metavar="NAME", help="Account of the rollout nodes.",
        rich_help_panel=opt.SLURM_PER_COMPONENT)] = None,
    rollout_qos: Annotated[str | None, typer.Option(
        "--rollout-qos", metavar="NAME", help="QoS of the rollout nodes.",
        rich_help_panel=opt.SLURM_PER_COMPONENT)] = None,
    learner_partition: Annotated[str | None, typer.Option(
        "--learner-partition", metavar="NAME", help="Partition of the learner (GPU) node.",
        rich_help_panel=opt.SLURM_PER_COMPONENT)] = None,
    learner_account: Annotated[str | None, typer.Option(
        "--learner-account", metavar="NAME", help="Account of the learner node.",
        rich_help_panel=opt.SLURM_PER_COMPONENT)] = None,
    learner_qos: Annotated[str | None, typer.Option(
        "--learner-qos", metavar="NAME", help="QoS of the learner node.",
        rich_help_panel=opt.SLURM_PER_COMPONENT)] = None,
    image: Annotated[str | None, typer.Option(
        "--image", metavar="SIF", help="Container image (.sif) of every node for --runtime apptainer.",
        rich_help_panel=opt.RUNTIME)] = None,
    head_image: Annotated[str | None, typer.Option(
        "--head-image", metavar="SIF", help="Image of the head.", show_default="--image",
        rich_help_panel=opt.RUNTIME)] = None,
    rollout_image: Annotated[str | None, typer.Option(
        "--rollout-image", metavar="SIF", help="Image of the rollout nodes.", show_default="--image",
        rich_help_panel=opt.RUNTIME)] = None,
    learner_image: Annotated[str | None, typer.Option(
        "--learner-image", metavar="SIF",
        help="Image of the learner node, e.g. the CUDA one; a CPU-only torch image with "
             "--gpus is refused.", show_default="--image",
        rich_help_panel=opt.RUNTIME)] = None,
    runtime: Annotated[str | None, typer.Option(
        "--runtime", **opt.choices(RUNTIMES, "runtime"),
        help="apptainer, or none: `launcher` from the host environment.",
        show_default="the site profile's, else none",
        rich_help_panel=opt.RUNTIME)] = None,
    mem: sopt.Mem = None, constraint: sopt.Constraint = None, reservation: sopt.Reservation = None,
    mail_type: sopt.MailType = None, mail_user: sopt.MailUser = None,
    dependency: sopt.Dependency = None, gpu_type: sopt.GpuType = None,
    exclusive: sopt.Exclusive = None, sbatch: sopt.Sbatch = None,
    rendering: bool = False,
) -> None:
    """`submit` and `render`: plan a Slurm job from the options; `render` prints its job
    script, `submit` writes the run directory and submits it (or, --dry-run, says how).
    Each command takes this signature less what it has no use for (`command_from`)."""
    from launcher.cluster import slurm as slurm_jobs
    from launcher.training.options import cluster_defaults, merge_training_options
    from launcher.training.resume import overrides_for_resume
    from launcher.training.sweep_start import SweepFlags, check_resume_flags, plan_sweep

    sweep_flags = SweepFlags(seed, seeds, grid, sample, trials, max_concurrent, early_stop, search)
    training = merge_training_options(
        algo=algo, env=env, framework=framework, config_file=config_file, sets=sets,
        env_config=env_config, code=code, seed=sweep_flags.single_seed(), stop_iters=stop_iters,
        stop_timesteps=stop_timesteps, stop_reward=stop_reward, stop_time=stop_time,
        num_env_runners=num_env_runners, output=output, name=name, checkpoint_every=checkpoint_every)
    check_resume_flags(resume, sweep_flags, retry_failed)
    sweep = None
    if resume is not None:
        training = overrides_for_resume(training)
    else:
        base, sweep = plan_sweep(cluster_defaults(training), sweep_flags, say=typer.echo)
        training = sweep.trials[0].settings if sweep is not None else base
    flags = {
        "nodes": nodes, "gpus": gpus, "cpus_per_node": cpus_per_node, "time": time_limit,
        "partition": partition, "account": account, "qos": qos,
        "head_partition": head_partition, "head_account": head_account, "head_qos": head_qos,
        "rollout_partition": rollout_partition, "rollout_account": rollout_account,
        "rollout_qos": rollout_qos, "learner_partition": learner_partition,
        "learner_account": learner_account, "learner_qos": learner_qos,
        "image": image, "head_image": head_image, "rollout_image": rollout_image,
        "learner_image": learner_image, "runtime": runtime, "job_name": job_name,
        "checkpoint_before": checkpoint_before, "learner_on_cpu": learner_on_cpu,
        "mem": mem, "constraint": constraint, "reservation": reservation, "mail_type": mail_type,
        "mail_user": mail_user, "dependency": dependency, "gpu_type": gpu_type,
        "exclusive": exclusive, "sbatch": sbatch,
    }
    job = slurm_jobs.plan(training, flags, site, resume=resume, write=not rendering, sweep=sweep,
                          retry_failed=retry_failed)
    if rendering:
        typer.echo(job.script, nl=False)
        return
    typer.echo(f"run dir: {job.run_dir}")
    typer.echo(f"script:  {job.script_path}")
    if dry_run:
        typer.echo("not submitted (--dry-run); submit it with:")
        typer.echo(f"  {slurm_jobs.shown_command(job.run_dir)}")
        return
    job_id = slurm_jobs.Slurm().submit(job.run_dir)
    typer.echo(f"submitted Slurm job {job_id}")
    typer.echo(f"  follow: launcher logs {job_id} --follow   status: launcher status {job_id}   "
               f"stop: launcher cancel {job_id}")


def command_from(planner, name: str, **fixed):
    """`planner` as the command `name`: the parameters in `fixed` leave its signature
    (and its --help) and always get these values."""
    signature = inspect.signature(planner, eval_str=True)

    def command(**options):
        return planner(**options, **fixed)

    command.__name__ = name
    command.__signature__ = signature.replace(
        parameters=[p for key, p in signature.parameters.items() if key not in fixed])
    return command


app.command("submit", rich_help_panel=opt.CLUSTERS,
            help="Submit a training job to Slurm: Ray head + trainer, --nodes rollout nodes and "
                 "(--gpus N) a GPU learner node; every `launcher train` option works.")(
    command_from(job_command, "submit", rendering=False))
app.command("render", rich_help_panel=opt.CLUSTERS,
            help="Print the Slurm job script `launcher submit` would submit (nothing is written "
                 "or submitted).")(
    command_from(job_command, "render", rendering=True, dry_run=False))


@app.command(rich_help_panel=opt.CLUSTERS)
def status(job: opt.JobRef) -> None:
    """State, exit code, nodes, run dir and training progress of a launcher job."""
    from launcher.cluster import slurm as slurm_jobs

    for key, value in slurm_jobs.status_lines(job):
        typer.echo(f"{key + ':':<11}{value}")


@app.command(rich_help_panel=opt.CLUSTERS)
def logs(
    job: opt.JobRef,
    follow: Annotated[bool, typer.Option(
        "--follow", "-F", help="Keep printing until the job ends.")] = False,
) -> None:
    """Print the job's log (every node's output, all restarts)."""
    from launcher.cluster import slurm as slurm_jobs

    for chunk in slurm_jobs.log_chunks(job, follow=follow):
        typer.echo(chunk, nl=False)


@app.command(rich_help_panel=opt.CLUSTERS)
def cancel(job: opt.JobRef) -> None:
    """Cancel a job; its nodes stop Ray. Waits until Slurm has ended it."""
    from launcher.cluster import slurm as slurm_jobs

    job_id, final = slurm_jobs.cancel(job)
    typer.echo(f"job {job_id}: {final}")


@app.command("list", rich_help_panel=opt.CLUSTERS)
def list_jobs() -> None:
    """This user's launcher jobs that Slurm still queues or runs."""
    from launcher.cluster import slurm as slurm_jobs

    for line in queue_lines(slurm_jobs.Slurm().queue()):
        typer.echo(line)


def queue_lines(rows: list[dict[str, str]]) -> list[str]:
    """`launcher list`'s text: a header and one line per job of `Slurm.queue()`."""
    if not rows:
        return ["no launcher jobs in the queue"]
    lines = [f"{'JOB':<10}{'NAME':<32}{'STATE':<12}{'TIME':<12}{'LIMIT':<12}{'NODES':<7}"
             "WHY / RUN DIR"]
    for r in rows:
        why = r["Reason"] if r["State"] == "PENDING" else r["WorkDir"]
        lines.append(f"{r['JobId']:<10}{r['Name'][:31]:<32}{r['State']:<12}{r['TimeUsed']:<12}"
                     f"{r['TimeLimit']:<12}{r['NumNodes']:<7}{why}")
    return lines
