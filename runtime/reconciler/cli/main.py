"""`reconciler`: the operations CLI (see docs/operations.md). Commands parse, call reconciler.ops, print.

One module per command group (`*_commands.py`); importing them registers their commands on the root `app`
(cli/app.py: global options, output, one-line errors). The local stack has a command line of its own in the
checkout, `python -m emulator`: nothing here imports it.
"""

from __future__ import annotations

from reconciler.cli import (  # noqa: F401  (registration)
    alarm_commands,
    balance_commands,
    balance_event_commands,
    book_commands,
    dlq_commands,
    job_commands,
    migrate_commands,
    shadow_commands,
    stage_commands,
    statement_commands,
    telemetry_commands,
)
from reconciler.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
