"""Errors that reach the user as one clear line.

Anything the operator can fix (bad config, unreachable host, refused action)
raises a ``UserError``. The CLI prints ``str(err)`` and exits with
``err.exit_code``; it never prints a traceback for these.
"""


class UserError(Exception):
    """An error caused by input or environment, explained in one line."""

    exit_code = 2

    def __init__(self, message: str, *, exit_code: int | None = None):
        # One line, always: a multi-line message would break the promise.
        super().__init__(" ".join(str(message).split()))
        if exit_code is not None:
            self.exit_code = exit_code


class CommandError(UserError):
    """An engine command was refused (unknown task, wrong state, bad argument)."""


class ConfirmationRequired(UserError):
    """A dangerous action was asked for without the required confirmation."""
