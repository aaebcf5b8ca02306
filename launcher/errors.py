"""The one exception type for user mistakes.

Anything the user can fix (a bad flag, an unknown env id, malformed YAML) raises
UserError; the CLI prints its message as one line and exits non-zero, without a
traceback. Everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A mistake in what the user asked for; the message says what to do."""

    exit_code = 2
