"""job show: one job with its settlement, ledger entries and dead letters."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import typer

from reconciler.cli.app import CONTEXT_SETTINGS, app, state_of
from reconciler.cli.balance_commands import entry_dict
from reconciler.cli.dlq_commands import queue_of
from reconciler.contract import HOLD, RESERVED_AS_ATTRIBUTE
from reconciler.ops.dead_letter_replay import peek
from reconciler.ops.jobs import job_entries, job_item
from reconciler.ops.operator_error import OpsError

job_app = typer.Typer(no_args_is_help=True, context_settings=CONTEXT_SETTINGS, help="One job of the Jobs table.")
app.add_typer(job_app, name="job")


def _plain(value):
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@job_app.command("show")
def job_show(
    ctx: typer.Context,
    job_id: str,
    dlq_max: Annotated[int, typer.Option("--dlq-max", min=0, help="Look at this many DLQ messages for the job (0: skip the DLQ).")] = 100,
) -> None:
    """The job's item (status, reservation, settlement, conflicts), its ledger entries (both tables) and its messages in the DLQ."""
    state = state_of(ctx)
    target = state.target
    item = job_item(target.client("dynamodb"), target.names.jobs_table, job_id)
    user_id, settled_at = ((item or {}).get("userId"), (item or {}).get("settledAt"))
    entries = job_entries(target.store, job_id, user_id if isinstance(user_id, str) else None, settled_at if isinstance(settled_at, str) else None)
    letters = []
    if dlq_max:
        with state.out.progress("looking for the job in the DLQ"):
            letters = [letter for letter in peek(queue_of(target), dlq_max) if letter.job_id == job_id]
    if item is None and not entries and not letters:
        raise OpsError(f"no job {job_id} in {target.names.jobs_table}, its ledger entries or the first {dlq_max} DLQ messages")
    job = _plain(item) if item else None
    state.out.data({"job": job, "ledger": [entry_dict(e) for e in entries], "deadLetters": [letter.as_dict() for letter in letters]})
    if job is None:
        state.out.line(f"{job_id} is not in {target.names.jobs_table}")
    else:
        state.out.table(f"Job {job_id} ({state.stage})", ["attribute", "value"], [[key, job[key]] for key in sorted(job)])
    state.out.table(
        "Ledger entries",
        ["timestamp", "ledgerId", "type", "amount", "description"],
        [[e.timestamp, e.ledger_id, e.type, f"{e.signed_amount:+d}", e.description] for e in entries],
    )
    state.out.table("Dead letters", ["messageId", "kind", "eventId", "reason"], [[m.message_id, m.kind, m.event_id, m.reason] for m in letters])
    shown = job or {}
    settled = shown.get("settledAs")
    if shown.get("reservedCredits") is not None:
        if shown.get(RESERVED_AS_ATTRIBUTE) == HOLD:
            state.out.line(f"reserved {shown['reservedCredits']} credits as a hold ({'released' if settled else 'held on the balance'})")
        else:
            state.out.line(f"reserved {shown['reservedCredits']} credits as a posted reservation (a Ledger debit, before holds)")
    state.out.line(f"settled as {settled} by {shown.get('settledByEvent')} at {shown.get('settledAt')}" if settled else "not settled")
