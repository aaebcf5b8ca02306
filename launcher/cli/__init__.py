"""The `launcher` command line: parse, call, print. No logic lives here.

User mistakes raise `UserError` anywhere below; `main()` turns them into one
line on stderr and exit status 2, without a traceback.
"""

from __future__ import annotations

import functools
import inspect
import sys
import typing
from pathlib import Path
from typing import Any

import typer
import yaml

from launcher import __version__
from launcher.errors import UserError

app = typer.Typer(
    name="launcher",
    help="Train Ray RLlib agents on Gym environments: locally, in containers, on Slurm.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"launcher {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Train Ray RLlib agents on Gym environments: locally, in containers, on Slurm."""


# --- shared option parsing ---------------------------------------------------------------
def parse_assignments(items: list[str] | None, flag: str) -> dict[str, Any]:
    """`key=value` pairs; values are YAML scalars/lists/maps (1e-3, true, [64, 64])."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag} expects key=value, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            raise UserError(f"{flag} {key}: cannot parse the value {raw!r}") from None
    return out


TRAIN_HELP = {
    "algo": "RLlib algorithm: PPO, APPO, IMPALA, DQN, SAC. Alias: --run.",
    "env": "Gymnasium id, package.module:Class or path/to/file.py:Class. Alias: --name-env.",
    "config": "Experiment YAML: launcher settings, a tutorial-style config dict, "
              "or an RLlib experiment file.",
}


def train_options(
    *, algo: str | None = None, env: str | None = None, framework: str | None = None,
    config_file: Path | None = None, sets: list[str] | None = None,
    env_config: list[str] | None = None, stop_iters: int | None = None,
    stop_timesteps: int | None = None, stop_reward: float | None = None,
    stop_time: float | None = None, num_cpus: int | None = None, num_gpus: float | None = None,
    num_env_runners: int | None = None, local_mode: bool | None = None, seed: int | None = None,
    output: Path | None = None, name: str | None = None, checkpoint_every: int | None = None,
    address: str | None = None,
) -> dict[str, Any]:
    """Merge: defaults < experiment file < flags. Returns a TrainSettings dict."""
    from launcher.training.experiment import load_experiment

    data: dict[str, Any] = load_experiment(config_file, framework=framework) if config_file else {}
    flags = {
        "algo": algo, "env": env, "framework": framework, "num_cpus": num_cpus,
        "num_gpus": num_gpus, "num_env_runners": num_env_runners, "seed": seed,
        "output": str(output) if output else None, "name": name,
        "checkpoint_every": checkpoint_every, "address": address,
        "local_mode": local_mode or None,
    }
    data.update({k: v for k, v in flags.items() if v is not None})
    stop = {"iters": stop_iters, "timesteps": stop_timesteps, "reward": stop_reward,
            "time_s": stop_time}
    data["stop"] = {**(data.get("stop") or {}), **{k: v for k, v in stop.items() if v is not None}}
    if sets:
        from launcher.training.experiment import translate_config

        data["config"] = {**(data.get("config") or {}), **translate_config(
            parse_assignments(sets, "--set"), where="--set",
            framework=framework or data.get("framework"))}
    if env_config:
        data["env_config"] = {**(data.get("env_config") or {}),
                              **parse_assignments(env_config, "--env-config")}
    return data


# The training options, declared once. `train`, `local`, `prepare`, `submit` and `render`
# take them; @with_training_options appends them to a command's own options and hands
# the command the merged settings dict as `training`.
TRAINING_OPTIONS: dict[str, tuple[Any, Any]] = {
    "algo": (str | None, typer.Option(None, "--algo", "--run", help=TRAIN_HELP["algo"])),
    "env": (str | None, typer.Option(None, "--env", "--name-env", help=TRAIN_HELP["env"])),
    "framework": (str | None, typer.Option(None, "--framework",
                                              help="torch (default) or tf2 (legacy).")),
    "config_file": (Path | None, typer.Option(None, "--config", "-f", help=TRAIN_HELP["config"])),
    "sets": (list[str] | None, typer.Option(None, "--set",
                                               help="RLlib setting key=value (repeatable).")),
    "env_config": (list[str] | None, typer.Option(
        None, "--env-config", help="Env constructor argument key=value (repeatable).")),
    "stop_iters": (int | None, typer.Option(None, "--stop-iters", help="Stop after N iterations.")),
    "stop_timesteps": (int | None, typer.Option(None, "--stop-timesteps",
                                                   help="Stop after N env steps.")),
    "stop_reward": (float | None, typer.Option(None, "--stop-reward",
                                                  help="Stop at this mean return.")),
    "stop_time": (float | None, typer.Option(None, "--stop-time", help="Stop after N seconds.")),
    "num_cpus": (int | None, typer.Option(None, "--num-cpus", help="CPUs for Ray (default: all).")),
    "num_gpus": (float | None, typer.Option(None, "--num-gpus",
                                               help="GPUs for the learner (default 0).")),
    "num_env_runners": (int | None, typer.Option(
        None, "--num-env-runners", help="Remote env runners (default: fit the CPUs; on a "
                                        "cluster one per rollout CPU).")),
    "local_mode": (bool, typer.Option(False, "--local-mode", help="One core, no remote workers.")),
    "seed": (int | None, typer.Option(None, "--seed", help="Random seed.")),
    "output": (Path | None, typer.Option(None, "--output", "-o",
                                            help="Results root (./ray_results; on a cluster: "
                                                 "shared storage).")),
    "name": (str | None, typer.Option(None, "--name",
                                         help="Run directory name (default: algo_env_time).")),
    "checkpoint_every": (int | None, typer.Option(
        None, "--checkpoint-every", help="Iterations between checkpoints (train: 10, cluster "
                                         "jobs: 1; 0 = final only).")),
    "address": (str | None, typer.Option(None, "--address", envvar="RAY_ADDRESS",
                                            help="Join a running Ray cluster instead of starting one.")),
}


def cluster_defaults(training: dict[str, Any]) -> dict[str, Any]:
    """A new cluster job's defaults where they differ from `launcher train`'s."""
    from launcher.training.settings import CLUSTER_CHECKPOINT_EVERY

    return {"checkpoint_every": CLUSTER_CHECKPOINT_EVERY, **training}


# A cluster job sizes Ray from its nodes: these belong to `launcher train` only.
LOCAL_ONLY = ("num_cpus", "num_gpus", "local_mode", "address")


def with_training_options(exclude: tuple[str, ...] = ()):
    """Append TRAINING_OPTIONS (less `exclude`) to a command; it receives `training`."""

    def decorate(command):
        hints = typing.get_type_hints(command)
        own = [p.replace(annotation=hints.get(p.name, p.annotation))
               for p in inspect.signature(command).parameters.values() if p.name != "training"]
        added = {name: spec for name, spec in TRAINING_OPTIONS.items() if name not in exclude}
        extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                   annotation=annotation)
                 for name, (annotation, default) in added.items()]

        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            given = {name: kwargs.pop(name) for name in added if name in kwargs}
            return command(*args, training=train_options(**given), **kwargs)

        wrapper.__signature__ = inspect.Signature(own + extra)
        wrapper.__annotations__ = {p.name: p.annotation for p in own + extra}
        del wrapper.__wrapped__  # Typer must read the signature above, not the command's
        return wrapper

    return decorate


# --- train -------------------------------------------------------------------------------
@app.command()
@with_training_options()
def train(
    training: dict[str, Any],
    resume: Path = typer.Option(None, "--resume", help="Continue RUN_DIR from its last checkpoint."),
) -> None:
    """Train an agent. With no options: PPO on CartPole-v1 until it is solved."""
    from launcher.training import loop as trainer
    from launcher.training.progress import Reporter
    from launcher.training.settings import TrainSettings

    if resume is not None:
        settings = trainer.resume_settings(resume, data_overrides_for_resume(training))
    else:
        settings = TrainSettings.from_dict(training, where="the training options")
    summary = trainer.train(settings, resume=resume, reporter=Reporter())
    if summary.interrupted:
        raise typer.Exit(trainer.EXIT_INTERRUPTED)


def data_overrides_for_resume(data: dict[str, Any]) -> dict[str, Any]:
    """On --resume only resources and stop criteria may change; the rest is the spec's."""
    allowed = {"num_cpus", "num_gpus", "num_env_runners", "address", "stop", "checkpoint_every"}
    refused = sorted(k for k in data if k not in allowed)
    if refused:
        raise UserError(f"--resume continues a run as it was started; cannot change: {', '.join(refused)}")
    return {k: v for k, v in data.items() if k != "stop" or v}


# --- results -----------------------------------------------------------------------------
@app.command()
def results(run_dirs: list[Path] = typer.Argument(..., help="Run directories.")) -> None:
    """Print best and last mean return, env steps and wall time of runs."""
    from rich.console import Console
    from rich.table import Table

    from launcher.results.tables import table_rows

    table = Table("iterations", "env steps", "best return", "last return", "time (s)")
    table.add_column("run", no_wrap=True)
    for row in table_rows(run_dirs):
        fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        table.add_row(str(row["iterations"]), f"{row['env_steps']:,}", fmt(row["best_return"]),
                      fmt(row["last_return"]), f"{row['time_s']:.1f}", row["run"])
    # Outside a terminal (pipes, logs) nothing limits the width: never wrap run names.
    Console(width=None if sys.stdout.isatty() else 250).print(table)


@app.command()
def plot(
    run_dirs: list[Path] = typer.Argument(..., help="Run directories."),
    out: Path = typer.Option(Path("reward.png"), "--out", "-o", help="Image file to write."),
    x: str = typer.Option("env_steps", "--x", help="x axis: env_steps, iteration or time."),
) -> None:
    """Draw the mean-return curves of one or several runs in one figure."""
    from launcher.results.tables import plot as draw

    typer.echo(f"wrote {draw(run_dirs, out, x=x)}")


# --- node / local / doctor ---------------------------------------------------------------
@app.command()
def node(
    run_dir: Path = typer.Option(..., "--run-dir", help="Run directory prepared for the job "
                                 "(spec.yaml, cluster.yaml, .cluster/token)."),
    role: str = typer.Option(..., "--role", help="head, rollout or learner."),
    num_cpus: int = typer.Option(None, "--num-cpus", help="CPUs for Ray on this node "
                                 "(default: SLURM_CPUS_ON_NODE, cluster.yaml, or all usable)."),
    num_gpus: float = typer.Option(None, "--num-gpus", help="GPUs for Ray on this node "
                                   "(default: count of CUDA_VISIBLE_DEVICES, else 0)."),
    node_ip: str = typer.Option(None, "--node-ip", help="This node's address on the cluster "
                                "network (default: what the hostname resolves to / the route "
                                "to the head)."),
) -> None:
    """Run one node of a cluster job (Slurm, `launcher local`, or one `docker run`).

    The head starts Ray, waits for every expected node, trains and exits with the
    trainer's status (75: interrupted after a checkpoint, requeue). Rollout and learner
    nodes join the head and exit when it is done. See launcher/node.py.
    """
    from launcher.cluster.node import run_node

    raise typer.Exit(run_node(run_dir, role, num_cpus=num_cpus, num_gpus=num_gpus, node_ip=node_ip))


@app.command()
@with_training_options(exclude=LOCAL_ONLY)
def local(
    training: dict[str, Any],
    nodes: int = typer.Option(2, "--nodes", help="Rollout containers (env runners)."),
    gpus: int = typer.Option(0, "--gpus", help="GPUs for a learner container (0 = no learner "
                             "container; without NVIDIA GPUs on the host: a CPU learner)."),
    cpus_per_node: int = typer.Option(None, "--cpus-per-node", help="CPUs per container "
                                      "(default: this machine's CPUs shared between them)."),
    memory: str = typer.Option(None, "--memory", help="Memory limit per container, e.g. 2g."),
    shm_size: str = typer.Option("1g", "--shm-size", help="Shared memory per container "
                                 "(Ray's object store)."),
    image: str = typer.Option("launcher:cpu", "--image", help="Trainer image (`make image`)."),
    keep: bool = typer.Option(False, "--keep", help="Leave the containers and network for "
                              "inspection."),
    prefix: str = typer.Option(None, "--prefix", help="Container/network name prefix "
                               "(default launcher-local-<job id>)."),
    ready_timeout: float = typer.Option(120, "--ready-timeout", help="Seconds for every node "
                                        "to join."),
    resume: Path = typer.Option(None, "--resume", help="Continue RUN_DIR (same topology) from "
                                "its last checkpoint."),
) -> None:
    """Run a cluster job as Docker containers on this machine: a head, --nodes rollout
    containers and, with --gpus, a learner, all through `launcher node` as on Slurm.

    Exit status: the head's (0 done, 75 stopped after a checkpoint: --resume continues;
    2 bad input, nothing started); a head that dies says how to --resume.
    """
    from launcher.cluster.local import LocalOptions, run_local
    from launcher.training.settings import TrainSettings

    opts = LocalOptions(nodes=nodes, gpus=gpus, cpus_per_node=cpus_per_node, memory=memory,
                        shm_size=shm_size, image=image, keep=keep, prefix=prefix,
                        ready_timeout_s=ready_timeout)
    if resume is not None:
        overrides = data_overrides_for_resume(training)
        status = run_local(None, opts, resume=resume, resume_overrides=overrides or None)
    else:
        settings = TrainSettings.from_dict(cluster_defaults(training), where="the training options")
        status = run_local(settings, opts)
    raise typer.Exit(status)


@app.command()
@with_training_options(exclude=LOCAL_ONLY)
def prepare(
    training: dict[str, Any],
    nodes: int = typer.Option(0, "--nodes", help="Rollout nodes (0: the head runs the env runners)."),
    gpus: float = typer.Option(0, "--gpus", help="GPUs of a learner node (0 = no learner node)."),
    cpus_per_node: int = typer.Option(None, "--cpus-per-node", help="CPUs per node (default: "
                                      "what each node finds)."),
    job_name: str = typer.Option(None, "--job-name", help="Job name (default: the run dir name)."),
    ready_timeout: float = typer.Option(180, "--ready-timeout", help="Seconds for every node "
                                        "to join."),
) -> None:
    """Prepare a cluster job's run directory (spec.yaml, cluster.yaml, a private token) for
    `launcher node`, and print its path. For nodes started by hand, e.g. one `docker run`."""
    from launcher.cluster.jobdir import prepare_job
    from launcher.training.settings import TrainSettings

    settings = TrainSettings.from_dict(cluster_defaults(training), where="the training options")
    job = prepare_job(settings, rollout_nodes=nodes, learner_gpus=gpus, cpus_per_node=cpus_per_node,
                      job_name=job_name, ready_timeout_s=ready_timeout)
    typer.echo(str(job.path))


@app.command()
def doctor(
    modes: list[str] = typer.Option(None, "--for", help="Mode to be ready for (repeatable): "
                                    "train, local, slurm, apptainer, gpu."),
    image: str = typer.Option("launcher:cpu", "--image", help="Trainer image to look for."),
) -> None:
    """Check what this machine offers and say what to do about each missing piece.

    Checks: Ray, /dev/shm size (train); Docker engine, the image, Ray inside the image
    equal to this launcher's (local); sbatch (slurm); apptainer (apptainer); GPUs via
    nvidia-smi / torch (gpu). Exit status 1 only when a check needed by a mode given
    with --for failed; without --for, only `train`'s needs count. Everything else is
    shown as information.
    """
    from launcher.cluster import doctor as doc

    for mode in modes or []:
        if mode not in doc.MODES:
            raise UserError(f"unknown mode {mode!r} for --for; valid: {', '.join(doc.MODES)}")
    results = doc.run_checks(image, say=typer.echo)
    missing = doc.ready_modes(results)
    ready = [m for m in doc.MODES if not missing[m]]
    typer.echo(f"ready for: {', '.join(ready) or 'nothing'}")
    for mode in doc.MODES:
        if missing[mode]:
            typer.echo(f"not ready for {mode}: missing {', '.join(missing[mode])}")
    raise typer.Exit(doc.exit_status(results, list(modes or [])))


# --- tensorboard ---
@app.command()
def tensorboard(
    run_dirs: list[Path] = typer.Argument(..., help="Run directories (or a folder of runs)."),
    port: int = typer.Option(6006, "--port", help="Port to serve on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (0.0.0.0: all)."),
) -> None:
    """Serve TensorBoard on runs; prints the URL, and the ssh tunnel on a cluster."""
    from launcher.results.tensorboard import serve

    serve(run_dirs, port=port, host=host, echo=typer.echo)
# --- /tensorboard ---


# --- slurm -------------------------------------------------------------------------------
SLURM_HELP = {
    "nodes": "Rollout nodes (with --gpus > 0); with --gpus 0: all nodes, the first also "
             "runs the Ray head and the trainer.",
    "gpus": "GPUs for the learner node (its own het-job component, --gres=gpu:N); 0: none.",
    "cpus": "CPUs per node (default: site profile, else whole nodes with --exclusive).",
}


@with_training_options(exclude=LOCAL_ONLY)
def job_command(
    ctx: typer.Context,
    training: dict[str, Any],
    nodes: int = typer.Option(None, "--nodes", "-N", help=SLURM_HELP["nodes"] + " [default: 1]"),
    gpus: int = typer.Option(None, "--gpus", help=SLURM_HELP["gpus"] + " [default: 0]"),
    cpus_per_node: int = typer.Option(None, "--cpus-per-node", help=SLURM_HELP["cpus"]),
    time_limit: str = typer.Option(None, "--time", "-t",
                                   help="Time limit: MINUTES, HH:MM:SS or D-HH:MM:SS (01:00:00)."),
    partition: str = typer.Option(None, "--partition", "-p", help="Partition for every component."),
    account: str = typer.Option(None, "--account", "-A", help="Account for every component."),
    qos: str = typer.Option(None, "--qos", help="QoS for every component."),
    head_partition: str = typer.Option(None, "--head-partition", help="Partition of the head."),
    head_account: str = typer.Option(None, "--head-account", help="Account of the head."),
    head_qos: str = typer.Option(None, "--head-qos", help="QoS of the head."),
    rollout_partition: str = typer.Option(None, "--rollout-partition",
                                          help="Partition of the rollout nodes."),
    rollout_account: str = typer.Option(None, "--rollout-account", help="Account of the rollout nodes."),
    rollout_qos: str = typer.Option(None, "--rollout-qos", help="QoS of the rollout nodes."),
    learner_partition: str = typer.Option(None, "--learner-partition",
                                          help="Partition of the learner (GPU) node."),
    learner_account: str = typer.Option(None, "--learner-account", help="Account of the learner node."),
    learner_qos: str = typer.Option(None, "--learner-qos", help="QoS of the learner node."),
    image: str = typer.Option(None, "--image", help="Container image (.sif) for --runtime apptainer."),
    runtime: str = typer.Option(None, "--runtime",
                                help="apptainer, or none: `launcher` from the host environment."),
    job_name: str = typer.Option(None, "--job-name", "-J", help="Slurm job name (default: run name)."),
    site: Path = typer.Option(None, "--site", envvar="LAUNCHER_SITE",
                              help="Site profile YAML: partitions, account, modules, image..."),
    checkpoint_before: int = typer.Option(None, "--checkpoint-before",
                                          help="Seconds before the time limit to checkpoint and "
                                               "requeue (default: a fifth of --time, 60-600)."),
    learner_on_cpu: bool = typer.Option(None, "--learner-on-cpu/--learner-on-gpu",
                                        help="Train on the learner node's CPUs although Slurm "
                                             "allocates its GPU (GPUs torch cannot use)."),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Write the run dir and job script; print the sbatch command."),
    resume: Path = typer.Option(None, "--resume",
                                help="Submit RUN_DIR again; it continues from its last checkpoint."),
) -> None:
    from launcher.cluster import slurm as slurm_jobs

    rendering = ctx.info_name == "render"
    if rendering and dry_run:
        raise UserError("`launcher render` never submits; --dry-run belongs to `launcher submit`")
    flags = {
        "nodes": nodes, "gpus": gpus, "cpus_per_node": cpus_per_node, "time": time_limit,
        "partition": partition, "account": account, "qos": qos,
        "head_partition": head_partition, "head_account": head_account, "head_qos": head_qos,
        "rollout_partition": rollout_partition, "rollout_account": rollout_account,
        "rollout_qos": rollout_qos, "learner_partition": learner_partition,
        "learner_account": learner_account, "learner_qos": learner_qos,
        "image": image, "runtime": runtime, "job_name": job_name,
        "checkpoint_before": checkpoint_before, "learner_on_cpu": learner_on_cpu,
    }
    training = data_overrides_for_resume(training) if resume is not None else cluster_defaults(training)
    job = slurm_jobs.plan(training, flags, site, resume=resume, write=not rendering)
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


app.command("submit", help="Submit a training job to Slurm: Ray head + trainer, rollout "
            "nodes and (--gpus N) a GPU learner node; every `launcher train` option works.",
            )(job_command)
app.command("render", help="Print the Slurm job script `launcher submit` would submit "
            "(nothing is written or submitted).")(job_command)


@app.command()
def status(job: str = typer.Argument(..., help="Slurm job id, or a run directory.")) -> None:
    """State, exit code, nodes, run dir and training progress of a launcher job."""
    from launcher.cluster import slurm as slurm_jobs

    for key, value in slurm_jobs.status_lines(job):
        typer.echo(f"{key + ':':<11}{value}")


@app.command()
def logs(
    job: str = typer.Argument(..., help="Slurm job id, or a run directory."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until the job ends."),
) -> None:
    """Print the job's log (every node's output, all restarts)."""
    from launcher.cluster import slurm as slurm_jobs

    for chunk in slurm_jobs.log_chunks(job, follow=follow):
        typer.echo(chunk, nl=False)


@app.command()
def cancel(job: str = typer.Argument(..., help="Slurm job id, or a run directory.")) -> None:
    """Cancel a job; its nodes stop Ray. Waits until Slurm has ended it."""
    from launcher.cluster import slurm as slurm_jobs

    job_id, final = slurm_jobs.cancel(job)
    typer.echo(f"job {job_id}: {final}")


@app.command("list")
def list_jobs() -> None:
    """This user's launcher jobs that Slurm still queues or runs."""
    from launcher.cluster import slurm as slurm_jobs

    rows = slurm_jobs.Slurm().queue()
    if not rows:
        typer.echo("no launcher jobs in the queue")
        return
    typer.echo(f"{'JOB':<10}{'NAME':<32}{'STATE':<12}{'TIME':<12}{'LIMIT':<12}{'NODES':<7}WHY / RUN DIR")
    for r in rows:
        why = r["Reason"] if r["State"] == "PENDING" else r["WorkDir"]
        typer.echo(f"{r['JobId']:<10}{r['Name'][:31]:<32}{r['State']:<12}{r['TimeUsed']:<12}"
                   f"{r['TimeLimit']:<12}{r['NumNodes']:<7}{why}")


def main() -> None:
    """Console-script entry point: user mistakes become one line and exit status 2."""
    try:
        app()
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
