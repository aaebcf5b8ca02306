"""Commands that train on this machine and read runs back: train, results, plot,
tensorboard.

Each command parses its options, calls one function of the training or results
side, and prints what it returns. Heavy libraries (Ray, torch, matplotlib) are
imported inside the commands so that `launcher --help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from launcher.cli import options as opt
from launcher.contract import REWARD_PLOT

app = typer.Typer()


@app.command(rich_help_panel=opt.TRAIN_AND_INSPECT)
def train(
    algo: opt.Algo = None, env: opt.Env = None, framework: opt.Framework = None,
    config_file: opt.ConfigFile = None, sets: opt.Sets = None, env_config: opt.EnvConfig = None,
    code: opt.Code = None,
    seed: opt.Seed = None,
    stop_iters: opt.StopIters = None, stop_timesteps: opt.StopTimesteps = None,
    stop_reward: opt.StopReward = None, stop_time: opt.StopTime = None,
    num_cpus: opt.NumCpus = None, num_gpus: opt.NumGpus = None,
    num_env_runners: opt.NumEnvRunners = None, local_mode: opt.LocalMode = False,
    address: opt.Address = None,
    output: opt.Output = None, name: opt.Name = None, checkpoint_every: opt.CheckpointEvery = None,
    eval_every: opt.EvalEvery = None, eval_episodes: opt.EvalEpisodes = None,
    policies: opt.Policies = None, train_policies: opt.TrainPolicies = None,
    resume: Annotated[Path | None, typer.Option(
        "--resume", help="Continue RUN_DIR from its last checkpoint.",
        rich_help_panel=opt.OUTPUT)] = None,
) -> None:
    """Train an agent. With no options: PPO on CartPole-v1 until it is solved."""
    from launcher.contract import EXIT_INTERRUPTED
    from launcher.results.plots import write_reward_plot
    from launcher.training import loop as trainer
    from launcher.training.options import merge_training_options
    from launcher.training.progress import Reporter
    from launcher.training.resume import overrides_for_resume, resumed_settings
    from launcher.training.settings import TrainSettings

    training = merge_training_options(
        algo=algo, env=env, framework=framework, config_file=config_file, sets=sets,
        env_config=env_config, code=code, seed=seed, stop_iters=stop_iters, stop_timesteps=stop_timesteps,
        stop_reward=stop_reward, stop_time=stop_time, num_cpus=num_cpus, num_gpus=num_gpus,
        num_env_runners=num_env_runners, local_mode=local_mode, address=address,
        output=output, name=name, checkpoint_every=checkpoint_every, eval_every=eval_every,
        eval_episodes=eval_episodes, policies=policies, train_policies=train_policies)
    if resume is not None:
        settings = resumed_settings(resume, overrides_for_resume(training))
        from launcher.training.resume import completed_because

        reason = completed_because(settings, resume)
        if reason:
            typer.echo(f"{resume} is complete ({reason}): nothing to train; to go on, resume it "
                       "with a higher stop criterion, e.g. --stop-iters N")
            return
    else:
        settings = TrainSettings.from_dict(training, where="the training options")
    reporter = Reporter(resume_command="launcher train --resume")
    summary = trainer.train(settings, resume=resume, reporter=reporter)
    write_reward_plot(summary.run_dir)
    if summary.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)


@app.command(rich_help_panel=opt.TRAIN_AND_INSPECT)
def results(
    run_dirs: opt.RunDirs,
    record: Annotated[bool, typer.Option(
        "--record", help="Also how each run was made (run.json): seed, versions, image, hosts, "
                         "the env's git commit.")] = False,
) -> None:
    """Print best and last mean return, env steps and wall time of runs."""
    from rich.console import Console

    from launcher.results.tables import record_rows, results_table, run_dirs_in, table_rows

    run_dirs = run_dirs_in(run_dirs)
    rows = table_rows(run_dirs)
    if record:
        rows = record_rows(rows, run_dirs)
    # Outside a terminal (pipes, logs) nothing limits the width: never wrap run names.
    Console(width=None if sys.stdout.isatty() else 250).print(results_table(rows, record=record))


@app.command(rich_help_panel=opt.TRAIN_AND_INSPECT)
def plot(
    run_dirs: opt.RunDirs,
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Image file to write.")] = Path(REWARD_PLOT),
    x: Annotated[str, typer.Option(
        "--x", help="x axis: env_steps, iteration or time.")] = "env_steps",
) -> None:
    """Draw the mean-return curves of one or several runs in one figure."""
    from launcher.results.plots import plot as draw

    typer.echo(f"wrote {draw(run_dirs, out, x=x)}")


@app.command(rich_help_panel=opt.TRAIN_AND_INSPECT)
def tensorboard(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories (or a folder of runs).")],
    port: Annotated[int, typer.Option("--port", help="Port to serve on.")] = 6006,
    host: Annotated[str, typer.Option(
        "--host", help="Address to bind (0.0.0.0: all).")] = "127.0.0.1",
) -> None:
    """Serve TensorBoard on runs; prints the URL, and the ssh tunnel on a cluster."""
    from launcher.results.tensorboard import serve

    serve(run_dirs, port=port, host=host, say=typer.echo)
