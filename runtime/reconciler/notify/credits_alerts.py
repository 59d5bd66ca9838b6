"""Alerts of the credits-in path (docs/events.md, "Credits in"): a revocation that overdraws, and an invalid event."""

from __future__ import annotations

from typing import Any

from reconciler.notify import commands as cli
from reconciler.notify.alerts import ERROR, WARNING, Alert, _raw_detail, clip, dead_letter_commands

REVOCATION_OVERDRAFT = "revocation-overdraft"
INVALID_CREDITS_EVENT = "invalid-credits-event"
UNEXPLAINED_BALANCE_CHANGE = "unexplained-balance-change"


def from_credits_outcome(outcome: Any, stage: str, raw_event: Any = None) -> Alert | None:
    """The alert a credits-in outcome needs, or None (applied within the balance, duplicate)."""
    if outcome.kind == "rejected":
        return _invalid(outcome, stage, raw_event)
    if outcome.overdraft:
        return _overdraft(outcome, stage)
    return None


def _overdraft(outcome: Any, stage: str) -> Alert:
    event, application = outcome.event, outcome.application
    user = clip(event.user_id)
    after = application.balance_after
    shown_after = f"{after}" if after is not None else "below zero"
    return Alert(
        kind=REVOCATION_OVERDRAFT,
        stage=stage,
        severity=ERROR,
        group_key=f"{REVOCATION_OVERDRAFT}:{event.category}",
        title=f"A {event.category} revoked more credits than {user} had: balance {shown_after}",
        what_happened=(
            f"{event.detail_type} {clip(event.reference)} ({event.category}) took back {event.credits} credits from "
            f"{user}, who had {application.balance_before if application.balance_before is not None else 'no'} left: "
            f"the credits were already spent."
        ),
        reconciler_did=(
            f"Applied it in full as ledger entry {clip(application.entry.ledger_id)}: the balance is now {shown_after} "
            "(an overdraft). Renders are still settled; new holds are refused until the balance is topped up."
        ),
        users=(user,),
        credits_involved=event.credits,
        money_note=(f"{event.amount_paid} {event.currency} returned by billing" if event.amount_paid is not None else "no amount of money stated"),
        facts={
            "userId": user,
            "reference": clip(event.reference),
            "paymentReference": clip(event.payment_reference) if event.payment_reference else None,
            "category": event.category,
            "credits": event.credits,
            "balanceBefore": application.balance_before,
            "balanceAfter": after,
            "ledgerId": clip(application.entry.ledger_id),
        },
        commands=(cli.balance(stage, event.user_id), cli.ledger(stage, event.user_id)),
    )


def _invalid(outcome: Any, stage: str, raw_event: Any) -> Alert:
    error = outcome.error
    field_name = clip(getattr(error, "field", "event"), 40)
    reason = clip(getattr(error, "reason", str(error)), 300)
    given = _raw_detail(raw_event)
    user = given.get("userId")
    dlq_id = outcome.dead_letter_id
    commands = dead_letter_commands(stage, dlq_id, user)
    detail_type = clip(raw_event.get("detail-type") if isinstance(raw_event, dict) else None, 40)
    return Alert(
        kind=INVALID_CREDITS_EVENT,
        stage=stage,
        severity=WARNING,
        group_key=f"{INVALID_CREDITS_EVENT}:{field_name}",
        title=f"Invalid {detail_type} dead-lettered: {field_name}",
        what_happened=(
            f"Event {given.get('eventId', '(no id)')} ({detail_type}, reference {given.get('reference', 'none')}) "
            f"was refused: {field_name}: {reason}."
        ),
        reconciler_did=(
            f"Nothing was written; the event was parked on the dead-letter queue{' as message ' + dlq_id if dlq_id else ''} "
            "with its reason. Billing fixes it and publishes it again, or an operator replays it once corrected."
        ),
        users=(user,) if user else (),
        credits_involved=None,
        money_note="no credits moved",
        facts={"field": field_name, "reason": reason, "deadLetterId": dlq_id, **given},
        commands=tuple(commands),
    )


def unexplained_change(found: Any, stage: str, sequence: str | None = None) -> Alert:
    """A balance change no ledger entry explains (domain/unexplained.py): who, how much, and the two ways out."""
    user = clip(found.user_id)
    change = found.change
    return Alert(
        kind=UNEXPLAINED_BALANCE_CHANGE,
        stage=stage,
        severity=ERROR,
        group_key=f"{UNEXPLAINED_BALANCE_CHANGE}:{user}",
        title=f"Balance of {user} changed by {change:+d} credits with no ledger entry",
        what_happened=(
            f"The posted balance (remaining + held) of {user} went from {found.posted_before} to {found.posted_after} "
            f"({change:+d}){' at ' + clip(found.changed_at) if found.changed_at else ''}, and no ledger entry explains it: "
            f"{clip(found.reason, 300)}. Something other than the reconciler wrote the Credits item (a direct write, a hand edit)."
        ),
        reconciler_did=(
            "Nothing: the balance is left as written. Find who wrote it; then book it (an entry that explains the balance, "
            "if the change was right) or undo it (the balance set back to its ledger). Credits should come in as events "
            "(credits.purchased, credits.granted, credits.revoked), never as writes to Credits."
        ),
        users=(user,),
        credits_involved=abs(change),
        money_note="credits appeared or vanished without an entry: the books and the balance disagree until it is booked or undone",
        facts={
            "userId": user,
            "postedBefore": found.posted_before,
            "postedAfter": found.posted_after,
            "change": change,
            "changedAt": found.changed_at,
            "sequence": sequence,
            "reason": clip(found.reason, 300),
        },
        commands=(
            cli.ledger(stage, found.user_id),
            cli.audit(stage, found.user_id),
            cli.audit_fix_trusting(stage, found.user_id, "balance", f"book unexplained change of {change:+d}"),
            cli.audit_fix_trusting(stage, found.user_id, "ledger", f"undo unexplained change of {change:+d}"),
        ),
    )
