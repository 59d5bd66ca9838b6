"""job show: one job with its settlement, ledger entries and dead letters."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import typer

from reconciler.cli.app import CONTEXT_SETTINGS, app, state_of
from reconciler.cli.balance_commands import entry_dict
from reconciler.cli.dlq_commands import queue_of
from reconciler.contract import HOLD, HOLD_USER_ATTRIBUTE, RESERVED_AS_ATTRIBUTE
from reconciler.ops.dead_letter_replay import peek
from reconciler.ops.jobs import job_entries, job_item
from reconciler.ops.operator_error import OpsError

job_app = typer.Typer(no_args_is_help=True, context_settings=CONTEXT_SETTINGS, help="One job of the Jobs table.")
app.add_typer(job_app, name="job")


def _plain(value):
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)  # exact: never a float
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
    record = job_item(target.client("dynamodb"), target.names.settlements_table, job_id)
    settled_by = record if record and record.get("settledAs") else item
    user_id, settled_at = ((settled_by or {}).get("userId"), (settled_by or {}).get("settledAt"))
    entries = job_entries(target.store, job_id, user_id if isinstance(user_id, str) else None, settled_at if isinstance(settled_at, str) else None)
    letters = []
    if dlq_max:
        with state.out.progress("looking for the job in the DLQ"):
            letters = [letter for letter in peek(queue_of(target), dlq_max) if letter.job_id == job_id]
    if item is None and record is None and not entries and not letters:
        raise OpsError(f"no job {job_id} in {target.names.jobs_table}, its settlement record, its ledger entries or the first {dlq_max} DLQ messages")
    job, kept = (_plain(item) if item else None), (_plain(record) if record else None)
    state.out.data({"job": job, "record": kept, "ledger": [entry_dict(e) for e in entries], "deadLetters": [letter.as_dict() for letter in letters]})
    for title, shown in (
        (f"Job {job_id} ({state.stage}), as the pipeline's Jobs item holds it", job),
        ("Its settlement record (the reconciler's)", kept),
    ):
        if shown is None:
            state.out.line(f"{job_id}: no {'Jobs item' if shown is job else 'settlement record'}")
        else:
            state.out.table(title, ["attribute", "value"], [[key, shown[key]] for key in sorted(shown)])
    state.out.table(
        "Ledger entries",
        ["timestamp", "ledgerId", "type", "amount", "description"],
        [[e.timestamp, e.ledger_id, e.type, f"{e.signed_amount:+d}", e.description] for e in entries],
    )
    state.out.table("Dead letters", ["messageId", "kind", "eventId", "reason"], [[m.message_id, m.kind, m.event_id, m.reason] for m in letters])
    for line in _story(kept or {}, job or {}):
        state.out.line(line)


def _story(record: dict, job: dict) -> list[str]:
    """What happened to the job's money, in words: its hold (the record's, or one made on the Jobs item before
    records) and its settlement."""
    lines = []
    settled_by = record if record.get("settledAs") else job
    settled = settled_by.get("settledAs")
    if record.get("heldCredits"):
        if record.get(HOLD_USER_ATTRIBUTE):
            state = "held on the balance"
        elif record.get("holdReleasedAt"):
            state = f"released by the pipeline at {record['holdReleasedAt']}"
        else:
            state = "released by its settlement"
        lines.append(f"held {record['heldCredits']} credits at {record.get('unitPrice')} a second of {record.get('holdModel')} ({state})")
    elif job.get("reservedCredits") is not None:
        kind = "a hold" if job.get(RESERVED_AS_ATTRIBUTE) == HOLD else "a posted reservation (a Ledger debit)"
        claim = f"the Jobs item claims a reservation of {job['reservedCredits']} credits as {kind}"
        lines.append(f"{claim}: it counts only on a job created before settlement records")
    if settled:
        moved = f"charged {settled_by.get('chargedCredits', 0)}" if settled == "rendered" else f"gave back {settled_by.get('refundedCredits', 0)}"
        lines.append(f"settled as {settled} by {settled_by.get('settledByEvent')} at {settled_by.get('settledAt')}: {moved} credits")
    else:
        lines.append("not settled")
    return lines
