"""The `launcher` command line: parse, call, print. No logic lives here.

One module per command group, each a Typer app merged into `app` below:
training (train, results, plot, tensorboard), agents (evaluate, export), clusters (local, submit, render,
status, logs, cancel, list), checks (doctor) and internals (node, prepare). The
options several commands share are declared once in options.py.

User mistakes raise `UserError` anywhere below; `main()` turns them, and Typer's own
usage errors, into one line on stderr and exit status 2, without a traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from launcher import __version__

try:  # Typer >= 0.26 carries its own copy of click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older Typer, on click
    from click import exceptions as click_errors
from launcher.cli import agents, checks, clusters, examples, internals, training
from launcher.errors import UserError

app = typer.Typer(
    name="launcher",
    help="Train Ray RLlib agents on Gym environments: locally, in containers, on Slurm.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# The order here is the order of the panels in `launcher --help`.
app.add_typer(training.app)
app.add_typer(agents.app)
app.add_typer(clusters.app)
app.add_typer(checks.app)
app.add_typer(internals.app)
examples.attach(training.app, agents.app, clusters.app, checks.app, internals.app)


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
    """Console-script entry point: user mistakes, Typer's usage errors included (an
    unknown option, a value of the wrong type), become one line and exit status 2."""
    try:
        status = app(standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:  # bare `launcher`: the help, as a usage error
        typer.echo(exc.format_message())
        sys.exit(exc.exit_code)
    except click_errors.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "launcher"
        typer.echo(f"error: {exc.format_message()} (see `{where} --help`)", err=True)
        sys.exit(exc.exit_code)
    except click_errors.ClickException as exc:
        typer.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(status if isinstance(status, int) else 0)
