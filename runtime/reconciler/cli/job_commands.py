"""job show: one job with its settlement, ledger entries and dead letters."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import typer

from reconciler.cli.app import CONTEXT_SETTINGS, JobId, app, state_of
from reconciler.cli.balance_commands import entry_dict
from reconciler.ops.operator_error import NotFound

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
    job_id: JobId,
    dlq_max: Annotated[int, typer.Option("--dlq-max", min=0, help="Look at this many DLQ messages for the job (0: skip the DLQ).")] = 100,
) -> None:
    """The job's item (status, reservation, settlement, conflicts), its ledger entries (both tables) and its messages in the DLQ."""
    state = state_of(ctx)
    with state.out.progress("reading the job, its ledger entries and the DLQ"):
        report = state.target.job_view().show(job_id, dlq_max)
    if not report.found:
        names = state.target.names
        raise NotFound(f"no job {job_id} in {names.jobs_table}, its settlement record, its ledger entries or the first {dlq_max} DLQ messages")
    item, record = report.stored.item, report.stored.record_item
    job, kept = (_plain(item) if item else None), (_plain(record) if record else None)
    entries, letters = report.entries, report.letters
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
    for line in report.story():
        state.out.line(line)
