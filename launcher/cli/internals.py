"""Commands a job runs rather than a person: node (one node of a cluster job, started
by the Slurm job script, `launcher local` or a hand-written `docker run`) and prepare
(the run directory those nodes start from).

Each command parses its options, calls one function of the cluster side, and
prints what it returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from launcher.cli import options as opt
from launcher.contract import ROLES

app = typer.Typer()


@app.command(rich_help_panel=opt.INTERNALS)
def node(
    run_dir: Annotated[Path, typer.Option(
        "--run-dir", metavar="RUN_DIR", help="Run directory prepared for the job (spec.yaml, cluster.yaml, "
                          ".cluster/token).")],
    role: Annotated[str, typer.Option("--role", **opt.choices(ROLES, "role"),
                                      help="This node's part in the job.")],
    num_cpus: Annotated[int | None, typer.Option(
        "--num-cpus", metavar="N", help="CPUs for Ray on this node.",
        show_default="SLURM_CPUS_ON_NODE, cluster.yaml, or all usable")] = None,
    num_gpus: Annotated[float | None, typer.Option(
        "--num-gpus", metavar="N", help="GPUs for Ray on this node.",
        show_default="count of CUDA_VISIBLE_DEVICES, else 0")] = None,
    node_ip: Annotated[str | None, typer.Option(
        "--node-ip", metavar="ADDRESS", help="This node's address on the cluster network.",
        show_default="what the hostname resolves to / the route to the head")] = None,
) -> None:
    """Run one node of a cluster job (Slurm, `launcher local`, or one `docker run`).

    The head starts Ray, waits for every expected node, trains and exits with the
    trainer's status (75: interrupted after a checkpoint, requeue). Rollout and learner
    nodes join the head and exit when it is done. See launcher/cluster/node.py.
    """
    from launcher.cluster.node import run_node

    raise typer.Exit(run_node(run_dir, role, num_cpus=num_cpus, num_gpus=num_gpus, node_ip=node_ip))


@app.command(rich_help_panel=opt.INTERNALS)
def prepare(
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
    nodes: opt.Nodes = 0,
    gpus: opt.Gpus = 0,
    cpus_per_node: Annotated[int | None, typer.Option(
        "--cpus-per-node", metavar="N", help="CPUs per node.", show_default="what each node finds",
        rich_help_panel=opt.PLACEMENT)] = None,
    job_name: Annotated[str | None, typer.Option(
        "--job-name", metavar="NAME", help="Job name.", show_default="the run dir's name",
        rich_help_panel=opt.PLACEMENT)] = None,
    ready_timeout: Annotated[float, typer.Option(
        "--ready-timeout", metavar="SECONDS", help="Seconds for every node to join.",
        rich_help_panel=opt.PLACEMENT)] = 180,
) -> None:
    """Prepare a cluster job's run directory (spec.yaml, cluster.yaml, a private token) for
    `launcher node`, and print its path. For nodes started by hand, e.g. one `docker run`."""
    from launcher.cluster.jobdir import prepare_job
    from launcher.training.options import cluster_defaults, merge_training_options
    from launcher.training.sweep_start import SweepFlags, job_settings

    flags = SweepFlags(seed, seeds, grid, sample, trials, max_concurrent, early_stop, search)
    training = merge_training_options(
        algo=algo, env=env, framework=framework, config_file=config_file, sets=sets,
        env_config=env_config, code=code, seed=flags.single_seed(), stop_iters=stop_iters,
        stop_timesteps=stop_timesteps, stop_reward=stop_reward, stop_time=stop_time,
        num_env_runners=num_env_runners, output=output, name=name, checkpoint_every=checkpoint_every)
    settings, plan = job_settings(cluster_defaults(training), flags)
    job = prepare_job(settings, rollout_nodes=nodes, learner_gpus=gpus, cpus_per_node=cpus_per_node,
                      job_name=job_name, ready_timeout_s=ready_timeout, sweep=plan)
    typer.echo(str(job.path))
