"""`reconciler`: the operations CLI (see docs/operations.md). Commands parse, call reconciler.ops, print.

One module per command group; importing them registers their commands on the root `app`.
"""

from __future__ import annotations

from reconciler.cli import alarms, balances, books, dlq, jobs, local_stack, stage_control, telemetry  # noqa: F401  (registration)
from reconciler.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
