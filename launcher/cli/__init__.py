"""The `launcher` command line: parse, call, print. No logic lives here.

One module per command group, each a Typer app merged into `app` below:
training (train, results, plot, tensorboard), agents (evaluate, export), clusters (local, submit, render,
status, logs, cancel, list), checks (doctor) and internals (node, prepare). The
options several commands share are declared once in options.py.

User mistakes raise `UserError` anywhere below; `main()` turns them into one
line on stderr and exit status 2, without a traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from launcher import __version__
from launcher.cli import agents, checks, clusters, internals, training
from launcher.errors import UserError

app = typer.Typer(
    name="launcher",
    help="Train Ray RLlib agents on Gym environments: locally, in containers, on Slurm.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# The order here is the order of the panels in `launcher --help`.
app.add_typer(training.app)
app.add_typer(agents.app)
app.add_typer(clusters.app)
app.add_typer(checks.app)
app.add_typer(internals.app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"launcher {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Train Ray RLlib agents on Gym environments: locally, in containers, on Slurm."""


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
