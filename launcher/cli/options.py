"""The options several commands share, declared once as `Annotated` types.

`launcher train`, `local`, `prepare`, `submit` and `render` all take the training
options below; each command lists the ones it takes in its own signature and hands
them to `launcher.training.options.merge_training_options`. A cluster job sizes Ray
from its nodes, so only `train` takes --num-cpus, --num-gpus, --local-mode and
--address.

The help panels group options (and commands) in `--help`; their titles live here so
that every command spells them the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from launcher.errors import UserError
from launcher.training.settings import ALGORITHMS, FRAMEWORKS, closest

# --- command panels (the top-level `launcher --help`) -------------------------------------
TRAIN_AND_INSPECT = "Train and inspect"
CLUSTERS = "Clusters"
IMAGES_AND_CHECKS = "Images and checks"
INTERNALS = "Internals"

# --- option panels (inside a command's --help) --------------------------------------------
TRAINING = "Training"
STOP_CRITERIA = "Stop criteria"
RESOURCES = "Resources"
OUTPUT = "Output"
PLACEMENT = "Placement"
CONTAINERS = "Containers"
SLURM = "Slurm"
SLURM_PER_COMPONENT = "Slurm per component"
RUNTIME = "Runtime"



def choices(values, noun: str, flag: str | None = None) -> dict[str, Any]:
    """typer.Option arguments for a fixed set of values: listed in --help (the metavar),
    offered by shell completion, any case accepted. A value outside the set is the
    launcher's one-line error naming the closest valid one (exit 2), not click's usage box."""
    values = [str(v) for v in values]

    def parse(value: Any) -> str:
        for choice in values:
            if str(value).lower() == choice.lower():
                return choice
        where = f" for {flag}" if flag else ""
        raise UserError(f"unknown {noun} {value!r}{where}; valid: {', '.join(values)}"
                        f"{closest(str(value), values)}")

    def complete(incomplete: str) -> list[str]:
        return [v for v in values if v.lower().startswith(incomplete.lower())]

    return {"parser": parse, "autocompletion": complete, "metavar": "[" + "|".join(values) + "]"}


# --- a cluster job's shape: one meaning in local, submit, render and prepare ---------------
NODES_HELP = ("Rollout nodes (env runners only) besides the head's node, and the learner's "
              "with --gpus; 0: the head runs the env runners.")
GPUS_HELP = "GPUs of a learner node of its own; 0: no learner node (the head's trainer learns)."
Nodes = Annotated[int, typer.Option(
    "--nodes", "-N", metavar="N", help=NODES_HELP, rich_help_panel=PLACEMENT)]
Gpus = Annotated[int, typer.Option(
    "--gpus", metavar="N", help=GPUS_HELP, rich_help_panel=PLACEMENT)]
# submit and render: None is "not given" (--resume keeps the job's shape).
JobNodes = Annotated[int | None, typer.Option(
    "--nodes", "-N", metavar="N", help=NODES_HELP, show_default="0",
    rich_help_panel=PLACEMENT)]
JobGpus = Annotated[int | None, typer.Option(
    "--gpus", metavar="N", help=GPUS_HELP, show_default="0", rich_help_panel=PLACEMENT)]

# --- training options ---------------------------------------------------------------------
Algo = Annotated[str | None, typer.Option(
    "--algo", "--run", **choices(ALGORITHMS, "algorithm"),
    help="RLlib algorithm. Alias: --run.", show_default="PPO", rich_help_panel=TRAINING)]
Env = Annotated[str | None, typer.Option(
    "--env", "--name-env", metavar="ENV",
    help="Gymnasium id, package.module:Class, path/to/file.py:Class, or a PettingZoo env module "
         "(mpe2.simple_spread_v3). Alias: --name-env.",
    rich_help_panel=TRAINING)]
Framework = Annotated[str | None, typer.Option(
    "--framework", **choices(FRAMEWORKS, "framework"),
    help="torch, or tf2 (RLlib's old API stack).", show_default="torch", rich_help_panel=TRAINING)]
ConfigFile = Annotated[Path | None, typer.Option(
    "--config", "-f", metavar="FILE",
    help="Experiment YAML: launcher settings, a tutorial-style config dict, or an RLlib "
         "experiment file.", rich_help_panel=TRAINING)]
Sets = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY=VALUE", help="RLlib setting (repeatable), e.g. lr=3e-4.",
    rich_help_panel=TRAINING)]
EnvConfig = Annotated[list[str] | None, typer.Option(
    "--env-config", metavar="KEY=VALUE", help="Env constructor argument (repeatable).",
    rich_help_panel=TRAINING)]
Code = Annotated[Path | None, typer.Option(
    "--code", metavar="DIR",
    help="Your env's code to ship with a cluster job; train: first on the import path.",
    show_default="the env file's folder, or its top-level package", rich_help_panel=TRAINING)]
Seed = Annotated[str | None, typer.Option(
    "--seed", metavar="N[,N...]",
    help="Random seed; several (1,2,3): a sweep, one trial per seed.", rich_help_panel=TRAINING)]

# --- sweeps (training/sweep.py) -------------------------------------------------------------
SWEEP = "Sweep"
Seeds = Annotated[int | None, typer.Option(
    "--seeds", metavar="N", help="N trials with seeds --seed, --seed+1, ...",
    show_default="seeds from 0", rich_help_panel=SWEEP)]
Grid = Annotated[list[str] | None, typer.Option(
    "--grid", metavar="KEY=V1,V2",
    help="Every value of a setting (repeatable: every combination), e.g. lr=1e-3,3e-4.",
    rich_help_panel=SWEEP)]
Sample = Annotated[list[str] | None, typer.Option(
    "--sample", metavar="KEY=DIST",
    help="Values drawn --trials times: loguniform(a,b), uniform(a,b), randint(a,b), "
         "choice(v1,v2,...) (repeatable).", rich_help_panel=SWEEP)]
Trials = Annotated[int | None, typer.Option(
    "--trials", metavar="N", help="Draws of --sample.", rich_help_panel=SWEEP)]
MaxConcurrent = Annotated[int | None, typer.Option(
    "--max-concurrent", metavar="N", help="Trials at once at most.",
    show_default="as many as the CPUs fit", rich_help_panel=SWEEP)]
EarlyStop = Annotated[str | None, typer.Option(
    "--early-stop", metavar="asha[:GRACE[:REDUCTION]]",
    help="Stop bad trials early (ASHA): at GRACE, GRACE*REDUCTION, ... iterations only the "
         "best 1/REDUCTION go on; GRACE 4 and REDUCTION 3 unless given.", rich_help_panel=SWEEP)]
Search = Annotated[str | None, typer.Option(
    "--search", metavar="random|optuna",
    help="How --sample's values are chosen: drawn at random, or proposed by Optuna from the "
         "results so far (pip install 'launcher[optuna]').", show_default="random",
    rich_help_panel=SWEEP)]
RetryFailed = Annotated[bool, typer.Option(
    "--retry-failed", help="With --resume SWEEP_DIR: run the failed trials again too.",
    rich_help_panel=SWEEP)]

# --- stop criteria ------------------------------------------------------------------------
StopIters = Annotated[int | None, typer.Option(
    "--stop-iters", metavar="N", help="Stop after N iterations.", rich_help_panel=STOP_CRITERIA)]
StopTimesteps = Annotated[int | None, typer.Option(
    "--stop-timesteps", metavar="N", help="Stop after N env steps.", rich_help_panel=STOP_CRITERIA)]
StopReward = Annotated[float | None, typer.Option(
    "--stop-reward", metavar="RETURN", help="Stop at this mean return.", rich_help_panel=STOP_CRITERIA)]
StopTime = Annotated[float | None, typer.Option(
    "--stop-time", metavar="SECONDS", help="Stop after this many seconds.", rich_help_panel=STOP_CRITERIA)]

# --- resources ----------------------------------------------------------------------------
NumCpus = Annotated[int | None, typer.Option(
    "--num-cpus", metavar="N", help="CPUs for Ray.", show_default="all",
    rich_help_panel=RESOURCES)]
NumGpus = Annotated[float | None, typer.Option(
    "--num-gpus", metavar="N", help="GPUs for the learner, may be a fraction.", show_default="0",
    rich_help_panel=RESOURCES)]
NumEnvRunners = Annotated[int | None, typer.Option(
    "--num-env-runners", metavar="N", help="Remote env runners.",
    show_default="what the CPUs fit; on a cluster one per rollout CPU", rich_help_panel=RESOURCES)]
LocalMode = Annotated[bool, typer.Option(
    "--local-mode", help="One core, no remote workers.", rich_help_panel=RESOURCES)]
Address = Annotated[str | None, typer.Option(
    "--address", envvar="RAY_ADDRESS", metavar="HOST:PORT",
    help="Join a running Ray cluster instead of starting one.",
    rich_help_panel=RESOURCES)]

# --- output -------------------------------------------------------------------------------
Output = Annotated[Path | None, typer.Option(
    "--output", "-o", metavar="DIR", help="Results root (on a cluster: shared storage).",
    show_default="./ray_results", rich_help_panel=OUTPUT)]
Name = Annotated[str | None, typer.Option(
    "--name", metavar="NAME", help="Run directory name.", show_default="ALGO_ENV_TIME",
    rich_help_panel=OUTPUT)]
CheckpointEvery = Annotated[int | None, typer.Option(
    "--checkpoint-every", metavar="N", help="Iterations between checkpoints (0: the final one only).",
    show_default="10; cluster jobs: 1", rich_help_panel=OUTPUT)]

# --- evaluation ---------------------------------------------------------------------------
EVALUATION = "Evaluation"
EvalEvery = Annotated[int | None, typer.Option(
    "--eval-every", metavar="N", help="Evaluate greedily every N iterations, on an env runner of "
                                      "its own (0: never). Its mean return goes to progress.csv "
                                      "(evaluation_return_mean), TensorBoard and the reward plot.",
    show_default="0", rich_help_panel=EVALUATION)]
EvalEpisodes = Annotated[int | None, typer.Option(
    "--eval-episodes", metavar="N", help="Episodes per evaluation.", show_default="10",
    rich_help_panel=EVALUATION)]

# --- multi-agent envs ---------------------------------------------------------------------
MULTI_AGENT = "Multi-agent"
Policies = Annotated[str | None, typer.Option(
    "--policies", **choices(("shared", "per-agent"), "policy layout", "--policies"),
    help="One policy for all agents (agents with different spaces get one each), or one per "
         "agent; groups of agents: in the experiment file.", show_default="shared",
    rich_help_panel=MULTI_AGENT)]
TrainPolicies = Annotated[str | None, typer.Option(
    "--train-policies", metavar="A,B", help="The policies that learn.", show_default="all",
    rich_help_panel=MULTI_AGENT)]

# --- a job's run directories --------------------------------------------------------------
JobRef = Annotated[str, typer.Argument(metavar="JOB_ID|RUN_DIR",
                                       help="Slurm job id, or a run directory.")]
RunDirs = Annotated[list[Path], typer.Argument(metavar="RUN_DIR...", help="Run directories.")]
