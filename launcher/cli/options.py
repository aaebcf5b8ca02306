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
from typing import Annotated

import typer

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

# --- training options ---------------------------------------------------------------------
Algo = Annotated[str | None, typer.Option(
    "--algo", "--run", help="RLlib algorithm: PPO, APPO, IMPALA, DQN, SAC. Alias: --run.",
    rich_help_panel=TRAINING)]
Env = Annotated[str | None, typer.Option(
    "--env", "--name-env",
    help="Gymnasium id, package.module:Class, path/to/file.py:Class, or a PettingZoo env module "
         "(mpe2.simple_spread_v3). Alias: --name-env.",
    rich_help_panel=TRAINING)]
Framework = Annotated[str | None, typer.Option(
    "--framework", help="torch (default) or tf2 (legacy).", rich_help_panel=TRAINING)]
ConfigFile = Annotated[Path | None, typer.Option(
    "--config", "-f", help="Experiment YAML: launcher settings, a tutorial-style config dict, "
                           "or an RLlib experiment file.", rich_help_panel=TRAINING)]
Sets = Annotated[list[str] | None, typer.Option(
    "--set", help="RLlib setting key=value (repeatable).", rich_help_panel=TRAINING)]
EnvConfig = Annotated[list[str] | None, typer.Option(
    "--env-config", help="Env constructor argument key=value (repeatable).",
    rich_help_panel=TRAINING)]
Code = Annotated[Path | None, typer.Option(
    "--code", metavar="DIR",
    help="Your env's code to ship with a cluster job (default: the env file's folder, or its "
         "top-level package); train: first on the import path.", rich_help_panel=TRAINING)]
Seed = Annotated[int | None, typer.Option("--seed", help="Random seed.", rich_help_panel=TRAINING)]

# --- stop criteria ------------------------------------------------------------------------
StopIters = Annotated[int | None, typer.Option(
    "--stop-iters", help="Stop after N iterations.", rich_help_panel=STOP_CRITERIA)]
StopTimesteps = Annotated[int | None, typer.Option(
    "--stop-timesteps", help="Stop after N env steps.", rich_help_panel=STOP_CRITERIA)]
StopReward = Annotated[float | None, typer.Option(
    "--stop-reward", help="Stop at this mean return.", rich_help_panel=STOP_CRITERIA)]
StopTime = Annotated[float | None, typer.Option(
    "--stop-time", help="Stop after N seconds.", rich_help_panel=STOP_CRITERIA)]

# --- resources ----------------------------------------------------------------------------
NumCpus = Annotated[int | None, typer.Option(
    "--num-cpus", help="CPUs for Ray (default: all).", rich_help_panel=RESOURCES)]
NumGpus = Annotated[float | None, typer.Option(
    "--num-gpus", help="GPUs for the learner (default 0).", rich_help_panel=RESOURCES)]
NumEnvRunners = Annotated[int | None, typer.Option(
    "--num-env-runners", help="Remote env runners (default: fit the CPUs; on a cluster one "
                              "per rollout CPU).", rich_help_panel=RESOURCES)]
LocalMode = Annotated[bool, typer.Option(
    "--local-mode", help="One core, no remote workers.", rich_help_panel=RESOURCES)]
Address = Annotated[str | None, typer.Option(
    "--address", envvar="RAY_ADDRESS", help="Join a running Ray cluster instead of starting one.",
    rich_help_panel=RESOURCES)]

# --- output -------------------------------------------------------------------------------
Output = Annotated[Path | None, typer.Option(
    "--output", "-o", help="Results root (./ray_results; on a cluster: shared storage).",
    rich_help_panel=OUTPUT)]
Name = Annotated[str | None, typer.Option(
    "--name", help="Run directory name (default: algo_env_time).", rich_help_panel=OUTPUT)]
CheckpointEvery = Annotated[int | None, typer.Option(
    "--checkpoint-every", help="Iterations between checkpoints (train: 10, cluster jobs: 1; "
                               "0 = final only).", rich_help_panel=OUTPUT)]

# --- evaluation ---------------------------------------------------------------------------
EVALUATION = "Evaluation"
EvalEvery = Annotated[int | None, typer.Option(
    "--eval-every", help="Evaluate greedily every N iterations, on an env runner of its own "
                         "(0 = never; default 0). Its mean return goes to progress.csv "
                         "(evaluation_return_mean), TensorBoard and the reward plot.",
    rich_help_panel=EVALUATION)]
EvalEpisodes = Annotated[int | None, typer.Option(
    "--eval-episodes", help="Episodes per evaluation (default 10).", rich_help_panel=EVALUATION)]

# --- multi-agent envs ---------------------------------------------------------------------
MULTI_AGENT = "Multi-agent"
Policies = Annotated[str | None, typer.Option(
    "--policies", help="shared (default: one policy for all agents; agents with different "
                       "spaces get one each) or per-agent; groups of agents: in the experiment "
                       "file.", rich_help_panel=MULTI_AGENT)]
TrainPolicies = Annotated[str | None, typer.Option(
    "--train-policies", metavar="A,B", help="The policies that learn (default: all).",
    rich_help_panel=MULTI_AGENT)]

# --- a job's run directories --------------------------------------------------------------
JobRef = Annotated[str, typer.Argument(help="Slurm job id, or a run directory.")]
RunDirs = Annotated[list[Path], typer.Argument(help="Run directories.")]
