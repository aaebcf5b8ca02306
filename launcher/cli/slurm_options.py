"""The options of `launcher submit` and `render` that ask Slurm for more than the job's
shape: memory, node features, a reservation, mail, a dependency, a GPU model, whole
nodes, and any other `#SBATCH` option. Declared once as `Annotated` types; their values
are checked in launcher/cluster/slurm/sbatch_values.py before anything is written.
"""

from __future__ import annotations

from typing import Annotated

import typer

from launcher.cli.options import SLURM, SLURM_PER_COMPONENT

Mem = Annotated[str | None, typer.Option(
    "--mem", metavar="SIZE", help="Memory per node, e.g. 16G or 4000M (0: all of it).",
    rich_help_panel=SLURM)]
Constraint = Annotated[str | None, typer.Option(
    "--constraint", "-C", metavar="FEATURES", help="Node features, e.g. a100 or 'intel&ib'.",
    rich_help_panel=SLURM)]
Reservation = Annotated[str | None, typer.Option(
    "--reservation", metavar="NAME", help="Run in this reservation.", rich_help_panel=SLURM)]
MailType = Annotated[str | None, typer.Option(
    "--mail-type", metavar="TYPES", help="When Slurm mails: BEGIN, END, FAIL, REQUEUE, ALL, "
                                         "TIME_LIMIT_90..., joined by ','.",
    rich_help_panel=SLURM)]
MailUser = Annotated[str | None, typer.Option(
    "--mail-user", metavar="ADDRESS", help="Who Slurm mails.", show_default="you",
    rich_help_panel=SLURM)]
Dependency = Annotated[str | None, typer.Option(
    "--dependency", "-d", metavar="DEPENDENCY",
    help="Start after other jobs: afterok:ID[:ID], afterany:ID, afternotok:ID, singleton; a "
         "bare ID means afterok:ID.", rich_help_panel=SLURM)]
GpuType = Annotated[str | None, typer.Option(
    "--gpu-type", metavar="MODEL", help="GPU model of the learner node: --gres=gpu:MODEL:N "
                                        "(needs --gpus N).", rich_help_panel=SLURM)]
Exclusive = Annotated[bool | None, typer.Option(
    "--exclusive/--shared", help="Whole nodes for every component (--shared: only "
                                 "--cpus-per-node CPUs and --mem).",
    show_default="the site profile's, else --shared",
    rich_help_panel=SLURM)]
Sbatch = Annotated[list[str] | None, typer.Option(
    "--sbatch", metavar="[ROLE:]OPTION=VALUE",
    help="Any other #SBATCH option, e.g. gres-flags=enforce-binding or "
         "learner:gpu-bind=closest (ROLE: head, rollout or learner); repeatable. Options the "
         "launcher sets (--nodes, --time, --output...) are refused with the flag to use.",
    rich_help_panel=SLURM_PER_COMPONENT)]
