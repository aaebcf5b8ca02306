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
from launcher.results.plots import X_LABELS
from launcher.results.sweep_stats import RANK_BY

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
    seeds: opt.Seeds = None, grid: opt.Grid = None, sample: opt.Sample = None,
    trials: opt.Trials = None, max_concurrent: opt.MaxConcurrent = None,
    early_stop: opt.EarlyStop = None, search: opt.Search = None,
    retry_failed: opt.RetryFailed = False,
    policies: opt.Policies = None, train_policies: opt.TrainPolicies = None,
    resume: Annotated[Path | None, typer.Option(
        "--resume", metavar="RUN_DIR", help="Continue RUN_DIR (or a sweep's directory) from its "
                                            "last checkpoints.", rich_help_panel=opt.OUTPUT)] = None,
) -> None:
    """Train an agent. With no options: PPO on CartPole-v1 until it is solved.

    With --seeds, several --seed values, --grid or --sample (or a grid_search in the
    experiment file): a sweep, its trials side by side on this Ray, in one directory."""
    from launcher.training.options import merge_training_options
    from launcher.training.sweep_start import SweepFlags, check_resume_flags, plan_sweep

    flags = SweepFlags(seed, seeds, grid, sample, trials, max_concurrent, early_stop, search)
    training = merge_training_options(
        algo=algo, env=env, framework=framework, config_file=config_file, sets=sets,
        env_config=env_config, code=code, seed=flags.single_seed(), stop_iters=stop_iters,
        stop_timesteps=stop_timesteps, stop_reward=stop_reward, stop_time=stop_time,
        num_cpus=num_cpus, num_gpus=num_gpus, num_env_runners=num_env_runners,
        local_mode=local_mode, address=address, output=output, name=name,
        checkpoint_every=checkpoint_every, eval_every=eval_every, eval_episodes=eval_episodes,
        policies=policies, train_policies=train_policies)
    if check_resume_flags(resume, flags, retry_failed):
        _run_sweep(resume, training, retry_failed)
    elif resume is not None:
        _resume_run(resume, training)
    else:
        base, plan = plan_sweep(training, flags, say=typer.echo)
        if plan is None:
            _train_run(base, resume=None)
        else:
            from launcher.training.sweep_record import check_trials

            check_trials(plan.trials)
            _run_sweep(plan.write().path, None, False)


def _resume_run(resume: Path, training: dict) -> None:
    from launcher.training.resume import completed_because, overrides_for_resume, resumed_settings

    settings = resumed_settings(resume, overrides_for_resume(training))
    reason = completed_because(settings, resume)
    if reason:
        typer.echo(f"{resume} is complete ({reason}): nothing to train; to go on, resume it "
                   "with a higher stop criterion, e.g. --stop-iters N")
        return
    _train_run(settings, resume=resume)


def _train_run(settings, resume: Path | None) -> None:
    from launcher.contract import EXIT_INTERRUPTED
    from launcher.results.plots import write_reward_plot
    from launcher.training import loop as trainer
    from launcher.training.progress import Reporter
    from launcher.training.settings import TrainSettings

    if not isinstance(settings, TrainSettings):
        settings = TrainSettings.from_dict(settings, where="the training options")
    reporter = Reporter(resume_command="launcher train --resume")
    summary = trainer.train(settings, resume=resume, reporter=reporter)
    write_reward_plot(summary.run_dir)
    if summary.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)


def _run_sweep(sweep_dir: Path, training: dict | None, retry_failed: bool) -> None:
    """Run (or continue: `training` holds the options given again) a sweep here; print
    its ranking, draw its plot, exit with its status (75: resumable)."""
    from launcher.contract import EXIT_INTERRUPTED
    from launcher.training.sweep_record import DONE, check_sweep_resumable
    from launcher.training.trials import run_sweep

    overrides = None
    if training is not None:
        from launcher.training.resume import overrides_for_resume

        sweep_dir = check_sweep_resumable(sweep_dir, retry_failed)
        overrides = overrides_for_resume(training)
    summary = run_sweep(sweep_dir, overrides=overrides, retry_failed=retry_failed, say=typer.echo)
    counts = ", ".join(f"{n} {state}" for state, n in summary.counts.items() if n)
    typer.echo(f"sweep {summary.sweep_dir}: {counts}")
    if summary.counts[DONE]:
        _print_sweep(summary.sweep_dir)
    if summary.exit_status == EXIT_INTERRUPTED:
        typer.echo(f"to continue: launcher train --resume {summary.sweep_dir}")
    raise typer.Exit(summary.exit_status)


def _print_sweep(sweep_dir: Path) -> None:
    from rich.console import Console

    from launcher.results.sweep_stats import plot_sweep, stats_table, sweep_stats

    Console(width=None if sys.stdout.isatty() else 250).print(stats_table(sweep_stats(sweep_dir)))
    typer.echo(f"wrote {plot_sweep(sweep_dir, sweep_dir / REWARD_PLOT)}")


@app.command(rich_help_panel=opt.TRAIN_AND_INSPECT)
def results(
    run_dirs: opt.RunDirs,
    record: Annotated[bool, typer.Option(
        "--record", help="Also how each run was made (run.json): seed, versions, image, hosts, "
                         "the env's git commit.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout, for scripts.")] = False,
    by: Annotated[str, typer.Option(
        "--by", **opt.choices(RANK_BY, "ranking", "--by"),
        help="What ranks a sweep's configurations.")] = RANK_BY[0],
) -> None:
    """Print best and last mean return, env steps and wall time of runs. A sweep's
    directory: per configuration, the mean and 95 % confidence interval over seeds."""
    import json

    from rich.console import Console

    from launcher.results.tables import record_rows, results_table, run_dirs_in, table_rows
    from launcher.training.sweep_record import is_sweep_dir

    console = Console(width=None if sys.stdout.isatty() else 250)
    if len(run_dirs) == 1 and is_sweep_dir(run_dirs[0]):
        from launcher.results.sweep_stats import stats_json, stats_table, sweep_stats

        if as_json:
            typer.echo(stats_json(run_dirs[0], by))
        else:
            console.print(stats_table(sweep_stats(run_dirs[0], by), by))
        return
    run_dirs = run_dirs_in(run_dirs)
    rows = table_rows(run_dirs)
    if record:
        rows = record_rows(rows, run_dirs)
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
    else:  # outside a terminal (pipes, logs) nothing limits the width: never wrap run names
        console.print(results_table(rows, record=record))


@app.command(rich_help_panel=opt.TRAIN_AND_INSPECT)
def plot(
    run_dirs: opt.RunDirs,
    out: Annotated[Path, typer.Option(
        "--output", "--out", "-o", metavar="FILE", help="Image file to write (.png, .pdf, .svg).")] = Path(
        REWARD_PLOT),
    x: Annotated[str, typer.Option(
        "--x", **opt.choices(X_LABELS, "x axis", "--x"), help="The x axis.")] = "env_steps",
) -> None:
    """Draw the mean-return curves of one or several runs in one figure; for a sweep's
    directory, one mean curve per configuration with its 95 % confidence band."""
    from launcher.training.sweep_record import is_sweep_dir

    if len(run_dirs) == 1 and is_sweep_dir(run_dirs[0]):
        from launcher.results.sweep_stats import plot_sweep

        typer.echo(f"wrote {plot_sweep(run_dirs[0], out, x=x)}")
        return
    from launcher.results.plots import plot as draw

    typer.echo(f"wrote {draw(run_dirs, out, x=x)}")


@app.command(rich_help_panel=opt.TRAIN_AND_INSPECT)
def tensorboard(
    run_dirs: Annotated[list[Path], typer.Argument(
        metavar="RUN_DIR...", help="Run directories (or a folder of runs).")],
    port: Annotated[int, typer.Option("--port", metavar="PORT", help="Port to serve on.")] = 6006,
    host: Annotated[str, typer.Option(
        "--host", metavar="ADDRESS", help="Address to bind (0.0.0.0: all).")] = "127.0.0.1",
) -> None:
    """Serve TensorBoard on runs; prints the URL, and the ssh tunnel on a cluster."""
    from launcher.results.tensorboard import serve

    serve(run_dirs, port=port, host=host, say=typer.echo)
