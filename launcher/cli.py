"""The `launcher` command line: parse, call, print. No logic lives here.

User mistakes raise `UserError` anywhere below; `main()` turns them into one
line on stderr and exit status 2, without a traceback.
"""

from __future__ import annotations

import sys
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
    algo: str | None, env: str | None, framework: str | None, config_file: Path | None,
    sets: list[str] | None, env_config: list[str] | None, stop_iters: int | None,
    stop_timesteps: int | None, stop_reward: float | None, stop_time: float | None,
    num_cpus: int | None, num_gpus: float | None, num_env_runners: int | None,
    local_mode: bool | None, seed: int | None, output: Path | None, name: str | None,
    checkpoint_every: int | None, address: str | None,
) -> dict[str, Any]:
    """Merge: defaults < experiment file < flags. Returns a TrainSettings dict."""
    from launcher.experiment import load_experiment

    data: dict[str, Any] = load_experiment(config_file) if config_file else {}
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
        from launcher.experiment import translate_config

        data["config"] = {**(data.get("config") or {}), **translate_config(
            parse_assignments(sets, "--set"), where="--set")}
    if env_config:
        data["env_config"] = {**(data.get("env_config") or {}),
                              **parse_assignments(env_config, "--env-config")}
    return data


# --- train -------------------------------------------------------------------------------
@app.command()
def train(
    algo: str = typer.Option(None, "--algo", "--run", help=TRAIN_HELP["algo"]),
    env: str = typer.Option(None, "--env", "--name-env", help=TRAIN_HELP["env"]),
    framework: str = typer.Option(None, "--framework", help="torch (default) or tf2 (legacy)."),
    config_file: Path = typer.Option(None, "--config", "-f", help=TRAIN_HELP["config"]),
    sets: list[str] = typer.Option(None, "--set", help="RLlib setting key=value (repeatable)."),
    env_config: list[str] = typer.Option(None, "--env-config",
                                         help="Env constructor argument key=value (repeatable)."),
    stop_iters: int = typer.Option(None, "--stop-iters", help="Stop after N iterations."),
    stop_timesteps: int = typer.Option(None, "--stop-timesteps", help="Stop after N env steps."),
    stop_reward: float = typer.Option(None, "--stop-reward", help="Stop at this mean return."),
    stop_time: float = typer.Option(None, "--stop-time", help="Stop after N seconds."),
    num_cpus: int = typer.Option(None, "--num-cpus", help="CPUs for Ray (default: all)."),
    num_gpus: float = typer.Option(None, "--num-gpus", help="GPUs for the learner (default 0)."),
    num_env_runners: int = typer.Option(None, "--num-env-runners",
                                        help="Remote env runners (default: fit the CPUs)."),
    local_mode: bool = typer.Option(False, "--local-mode", help="One core, no remote workers."),
    seed: int = typer.Option(None, "--seed", help="Random seed."),
    output: Path = typer.Option(None, "--output", "-o", help="Results root (./ray_results)."),
    name: str = typer.Option(None, "--name", help="Run directory name (default: algo_env_time)."),
    checkpoint_every: int = typer.Option(None, "--checkpoint-every",
                                         help="Iterations between checkpoints (10; 0 = final only)."),
    address: str = typer.Option(None, "--address", envvar="RAY_ADDRESS",
                                help="Join a running Ray cluster instead of starting one."),
    resume: Path = typer.Option(None, "--resume", help="Continue RUN_DIR from its last checkpoint."),
) -> None:
    """Train an agent. With no options: PPO on CartPole-v1 until it is solved."""
    from launcher import train as training
    from launcher.progress import Reporter
    from launcher.settings import TrainSettings

    data = train_options(algo, env, framework, config_file, sets, env_config, stop_iters,
                         stop_timesteps, stop_reward, stop_time, num_cpus, num_gpus,
                         num_env_runners, local_mode, seed, output, name, checkpoint_every,
                         address)
    if resume is not None:
        settings = training.resume_settings(resume, data_overrides_for_resume(data))
    else:
        settings = TrainSettings.from_dict(data, where="the training options")
    summary = training.train(settings, resume=resume, reporter=Reporter())
    if summary.interrupted:
        raise typer.Exit(training.EXIT_INTERRUPTED)


def data_overrides_for_resume(data: dict[str, Any]) -> dict[str, Any]:
    """On --resume only resources and stop criteria may change; the rest is the spec's."""
    allowed = {"num_cpus", "num_gpus", "num_env_runners", "address", "stop", "checkpoint_every"}
    refused = sorted(k for k in data if k not in allowed and k != "stop")
    if refused:
        raise UserError(f"--resume continues a run as it was started; cannot change: {', '.join(refused)}")
    return {k: v for k, v in data.items() if k != "stop" or v}


# --- results -----------------------------------------------------------------------------
@app.command()
def results(run_dirs: list[Path] = typer.Argument(..., help="Run directories.")) -> None:
    """Print best and last mean return, env steps and wall time of runs."""
    from rich.console import Console
    from rich.table import Table

    from launcher.results import table_rows

    table = Table("run", "iterations", "env steps", "best return", "last return", "time (s)")
    for row in table_rows(run_dirs):
        fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        table.add_row(row["run"], str(row["iterations"]), f"{row['env_steps']:,}",
                      fmt(row["best_return"]), fmt(row["last_return"]), f"{row['time_s']:.1f}")
    Console().print(table)


@app.command()
def plot(
    run_dirs: list[Path] = typer.Argument(..., help="Run directories."),
    out: Path = typer.Option(Path("reward.png"), "--out", "-o", help="Image file to write."),
    x: str = typer.Option("env_steps", "--x", help="x axis: env_steps, iteration or time."),
) -> None:
    """Draw the mean-return curves of one or several runs in one figure."""
    from launcher.results import plot as draw

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
    from launcher.node import run_node

    raise typer.Exit(run_node(run_dir, role, num_cpus=num_cpus, num_gpus=num_gpus, node_ip=node_ip))


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
