"""The exception types for what the user can fix, and how their messages are shown.

Anything the user can fix (a bad flag, an unknown env id, malformed YAML) raises
UserError; the CLI prints its message as one line and exits with its status, without a
traceback. A machine that lacks something (no Docker engine, no sbatch) raises
MissingTool, whose status differs from a usage error's. Everything else is a bug and
keeps its traceback.
"""

from launcher.contract import EXIT_ENVIRONMENT, EXIT_USER_ERROR


def first_line(exc: BaseException) -> str:
    """An exception's first message line (its type's name when it has no message):
    what a one-line error shows of a library's multi-line exception."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class UserError(Exception):
    """A mistake in what the user asked for; the message says what to do."""

    exit_code = EXIT_USER_ERROR


class MissingTool(UserError):
    """This machine lacks a program or service the command needs; the message says how
    to get it."""

    exit_code = EXIT_ENVIRONMENT
