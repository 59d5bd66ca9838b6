"""balance, ledger, adjust: a user's credits and the entries that explain them."""

from __future__ import annotations

import shlex
from typing import Annotated, cast

import typer

from reconciler.cli.app import DryRun, UserId, Yes, an_id, app, state_of
from reconciler.cli.output import confirm, confirm_write
from reconciler.cli.times import optional_window
from reconciler.domain.ledger import LedgerEntry, iso_timestamp
from reconciler.ops.adjustments import ALREADY_APPLIED, APPLIED, parse_amount
from reconciler.ops.operator_error import NotFound


def entry_dict(entry: LedgerEntry) -> dict:
    return {
        "ledgerId": entry.ledger_id,
        "userId": entry.user_id,
        "timestamp": entry.timestamp,
        "type": entry.type,
        "amount": entry.signed_amount,
        "description": entry.description,
        "reference": entry.reference,
        "eventId": entry.event_id,
        "actor": entry.actor,
    }


@app.command()
def balance(ctx: typer.Context, user: UserId) -> None:
    """A user's balance (Credits table): remaining (what they can spend), held (for open reservations) and
    posted (remaining + held: what their ledger sums to)."""
    state = state_of(ctx)
    stored = state.target.books().balance(user)
    remaining, held = (stored.remaining, stored.held) if stored else (None, None)
    posted = stored.posted if stored else None
    fix = stored.last_audit_fix if stored else None
    result = {
        "userId": user,
        "remaining": remaining,
        "held": held,
        "posted": posted,
        "updatedAt": stored.updated_at if stored else None,
        "lastAuditFix": fix.as_dict() if fix else None,
    }
    state.out.data(result)
    if stored is None:
        state.out.line(f"{user} has no balance")
    else:
        state.out.table(
            f"Balance ({state.stage})",
            ["user", "remaining", "held", "posted", "updated"],
            [[user, remaining, held, posted, result["updatedAt"]]],
        )
    if fix:
        state.out.line(
            f"last set by `audit --fix` at {fix.at} by {fix.actor}: {fix.reason} "
            f"(it replaced remaining {fix.previous_remaining}, held {fix.previous_held})"
        )


@app.command()
def ledger(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Argument(callback=an_id, help="The user (their postings and entries; never a scan). Omit with --all.")] = None,
    all_users: Annotated[bool, typer.Option("--all", help="Every user's entries in the window: full table scans (cost stated).")] = False,
    since: Annotated[str | None, typer.Option(help="From: ISO 8601 (UTC if no zone), 2h, 3d, yesterday ...")] = None,
    until: Annotated[str | None, typer.Option(help="Up to: same forms as --since.")] = None,
) -> None:
    """A user's ledger, oldest first: their job postings (UserLedger) and operator entries and history (Ledger),
    merged; or with --all, every user's in a time window (v1's scan, of both tables)."""
    state = state_of(ctx)
    start, end = optional_window(since, until)
    if all_users == (user is not None):
        raise typer.BadParameter("give a USER, or --all with --since (not both)", param_hint="USER / --all")
    books = state.target.books()
    if all_users:
        if start is None:
            raise typer.BadParameter("--all reads the whole ledger tables: give --since (and --until) to bound what it returns", param_hint="--since")
        tables = " and ".join(books.ledger_tables)
        with state.out.progress(f"scanning {tables}") as advance:
            window = books.window(iso_timestamp(start), iso_timestamp(end) if end else None, advance)
        entries = window.entries
        state.out.note(
            f"read all {window.scanned} items of {tables} (Scans, {window.capacity_units:g} read capacity units) to find {len(entries)} in the window"
        )
        title = f"Ledger of all users ({state.stage})"
    else:
        since, until = (iso_timestamp(start) if start else None), (iso_timestamp(end) if end else None)
        entries = books.ledger(cast(str, user), since, until)  # a USER, without --all (checked above)
        title = f"Ledger of {user} ({state.stage})"
    state.out.data([entry_dict(entry) for entry in entries])
    state.out.table(
        title,
        ["timestamp", "userId", "ledgerId", "type", "amount", "reference", "description", "actor"],
        [[e.timestamp, e.user_id, e.ledger_id, e.type, e.signed_amount, e.reference, e.description, e.actor] for e in entries],
    )
    state.out.line(f"{len(entries)} entries, net {sum(e.signed_amount for e in entries):+d}")


@app.command(context_settings={"ignore_unknown_options": True})
def adjust(
    ctx: typer.Context,
    user: UserId,
    amount: Annotated[str, typer.Argument(help="Whole credits, signed: 10 adds, -10 takes.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the ledger).")],
    reference: Annotated[str, typer.Option(help="Ticket or incident id; the adjustment's idempotency key.")],
    create_user: Annotated[bool, typer.Option("--create-user", help="Allow a user who has no balance yet.")] = False,
    yes_large: Annotated[bool, typer.Option("--yes-large", help="Confirm an amount above the stage's cap.")] = False,
    dry_run: DryRun = False,
    yes: Yes = False,
) -> None:
    """Move a user's balance with a ledger entry, in one transaction; re-running with the same reference does nothing.

    Guard rails: an unknown user needs --create-user; an amount above the stage's cap needs --yes-large (or a
    typed confirmation); a result below zero is confirmed (or --yes)."""
    state = state_of(ctx)
    target = state.target
    credits = parse_amount(amount)
    adjuster = target.adjuster()
    preview = adjuster.preview(user, credits, reason, reference, target.actor)
    if preview.status == ALREADY_APPLIED:
        state.out.data(preview.as_dict())
        state.out.line(f"already applied: {preview.entry.ledger_id} ({preview.entry.signed_amount:+d}) exists; nothing changed")
        return
    if not preview.user_exists and not create_user:
        raise NotFound(
            f"user {user!r} has no balance: check the id (`{state.hint('balance ' + shlex.quote(user))}`), or pass --create-user to open one"
        )
    cap = state.target.names.limits.large_adjustment
    after = preview.balance_after or 0
    if abs(credits) > cap and not yes_large:  # a dry run checks it too: it says what the real run would do
        confirm(
            f"{credits:+d} credits is above the {state.stage} cap of {cap}: go on?",
            f"{credits:+d} credits is above the {state.stage} cap of {cap}: pass --yes-large to confirm it",
        )
    if credits < 0 and after < 0:
        state.out.note(f"warning: {user} goes below zero: {preview.balance_before or 0} -> {after}")
        if not yes:
            confirm(f"leave {user} at {after} credits?", f"refusing to leave {user} at {after} credits without --yes")
    confirm_write(state.stage, f"adjust {user} by {credits:+d} credits", yes, dry_run)
    result = adjuster.apply(preview, dry_run=dry_run)
    state.out.data(result.as_dict())
    before = result.balance_before or 0
    if result.status == ALREADY_APPLIED:
        state.out.line(f"already applied: {result.entry.ledger_id} ({result.entry.signed_amount:+d}) exists; nothing changed")
    elif result.status == APPLIED:
        state.out.line(f"adjusted {user} by {credits:+d}: {before} -> {result.balance_after} ({result.entry.ledger_id}, by {result.entry.actor})")
    else:
        state.out.line(f"dry run: would adjust {user} by {credits:+d}: {before} -> {result.balance_after} ({result.entry.ledger_id})")
