"""Errors an operator can act on; the CLI prints their message on one line and exits with the error's code.

One exit-code table for every command (docs/operations.md, "Exit status"): the same kind of mistake gives the
same code everywhere.
"""

DONE, FAILED, USAGE, NOT_FOUND, REFUSED = 0, 1, 2, 3, 4


class OpsError(Exception):
    """An impossible or failed operation, with a message meant for a person (exit 1)."""

    exit_code = FAILED


class InvalidInput(OpsError):
    """What was typed cannot be right: a bad amount, id, time or option value (exit 2, as a usage error)."""

    exit_code = USAGE


class NotFound(OpsError):
    """What was named does not exist: a user, a job, a DLQ message, an alarm, a local stack (exit 3)."""

    exit_code = NOT_FOUND


class Refused(OpsError):
    """A guard rail stopped it and nothing was changed: a confirmation missing or declined, a paused function,
    a reference used for something else (exit 4)."""

    exit_code = REFUSED
