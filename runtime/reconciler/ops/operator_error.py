"""Errors an operator can act on; the CLI prints their message on one line and exits non-zero."""


class OpsError(Exception):
    """A refused or impossible operation, with a message meant for a person."""
