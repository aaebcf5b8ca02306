"""The one exception type for user mistakes.

Anything the user can fix (a bad flag, an unknown env id, malformed YAML) raises
UserError; the CLI prints its message as one line and exits non-zero, without a
traceback. Everything else is a bug and keeps its traceback.
"""


def first_line(exc: BaseException) -> str:
    """An exception's first message line (its type's name when it has no message):
    what a one-line error shows of a library's multi-line exception."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class UserError(Exception):
    """A mistake in what the user asked for; the message says what to do."""

    exit_code = 2
