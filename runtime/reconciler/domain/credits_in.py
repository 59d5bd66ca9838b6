"""Credits in: purchases, grants and revocations published by billing or support (docs/events.md, "Credits in").

Pure: parses an EventBridge envelope of source `credits.billing` into one of three events and decides the ledger
entry that applies it. Each entry's id derives from the outside reference (the payment, the grant, the refund or
dispute), length-prefixed like every ledger id (domain/ledger.py), so a webhook delivered twice books once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from reconciler.domain.errors import InvalidEvent
from reconciler.domain.holds import HoldExpiry, parse_moment
from reconciler.domain.ledger import CREDIT, DEBIT, LedgerEntry, iso_timestamp
from reconciler.domain.validation import identifier, printable_text, storable_decimal, whole_credits

CREDITS_IN_SOURCE = "credits.billing"
PURCHASED = "credits.purchased"
GRANTED = "credits.granted"
REVOKED = "credits.revoked"
CREDITS_IN_DETAIL_TYPES = (PURCHASED, GRANTED, REVOKED)

# Categories of the ledger entries credits-in books; purchases are always paid.
PAID, PROMOTIONAL, GOODWILL, REFUND, CHARGEBACK = "paid", "promotional", "goodwill", "refund", "chargeback"
GRANT_CATEGORIES = (PROMOTIONAL, GOODWILL)
REVOCATION_CATEGORIES = (REFUND, CHARGEBACK)
CATEGORIES = (PAID, PROMOTIONAL, GOODWILL, REFUND, CHARGEBACK)

# Ledger-id prefixes, one per event kind: a purchase and its refund may share the payment's reference.
LEDGER_PREFIXES = {PURCHASED: "purchase", GRANTED: "grant", REVOKED: "revocation"}
MAX_REASON_LENGTH = 1000
# An amount of money as billing states it: at most 2 decimals more than any ISO 4217 currency uses (3), and below a
# trillion (far inside DynamoDB's 38 digits).
MAX_MONEY = Decimal(10**12)
MAX_MONEY_DECIMALS = 6
CURRENCY = re.compile(r"^[A-Z]{3}$")


def credits_in_ledger_id(detail_type: str, reference: str) -> str:
    """`purchase:{n}:{reference}`, `grant:{n}:{reference}`, `revocation:{n}:{reference}` ({n}: the reference's length)."""
    return f"{LEDGER_PREFIXES[detail_type]}:{len(reference)}:{reference}"


@dataclass(frozen=True)
class CreditsInEvent:
    """One of credits.purchased, credits.granted, credits.revoked, validated."""

    detail_type: str
    event_id: str
    user_id: str
    credits: int
    reference: str
    category: str
    amount_paid: Decimal | None = None
    currency: str | None = None
    payment_reference: str | None = None
    reason: str | None = None
    expires_at: str | None = None  # ISO-8601 UTC; a purchase or a grant only

    @property
    def is_revocation(self) -> bool:
        return self.detail_type == REVOKED

    @property
    def ledger_id(self) -> str:
        return credits_in_ledger_id(self.detail_type, self.reference)

    # What a dead letter and an alert show about it (the handler's log keys).
    @property
    def job_id(self) -> str:
        return self.reference


@dataclass(frozen=True)
class CreditsApplication:
    """The decision: one ledger entry (and the balance change it makes), written in one transaction. A revocation
    is applied whatever remains: `overdraft` when the decision was made on a balance it takes below zero."""

    event: CreditsInEvent
    entry: LedgerEntry
    overdraft: bool = False
    balance_before: int | None = None  # known only when a failed guard returned it
    request_id: str | None = None  # the Lambda request that applies it (Lambda keeps it when it retries the invocation)

    @property
    def balance_delta(self) -> int:
        return self.entry.signed_amount

    @property
    def balance_after(self) -> int | None:
        return None if self.balance_before is None else self.balance_before + self.balance_delta


@dataclass(frozen=True)
class RecordedApplication:
    """A credits-in entry as stored, with what its writer recorded of the application (an entry written before
    they were recorded has no request and no overdraft)."""

    entry: LedgerEntry
    request_id: str | None = None
    overdraft: bool = False
    balance_before: int | None = None

    def written_by(self, event: CreditsInEvent, request_id: str | None) -> bool:
        """Whether this event's own invocation wrote it (an earlier attempt, or Lambda's retry of the invocation)."""
        return request_id is not None and self.request_id == request_id and self.entry.event_id == event.event_id

    def as_applied(self, event: CreditsInEvent) -> CreditsApplication:
        """The application as its writer decided it: the answer the first attempt would have given."""
        return CreditsApplication(event, self.entry, self.overdraft, self.balance_before, self.request_id)


def is_credits_in(envelope: Any) -> bool:
    """Whether an envelope is for this path (the handler's router; validation comes after)."""
    return isinstance(envelope, Mapping) and envelope.get("source") == CREDITS_IN_SOURCE


def parse_credits_in(envelope: Mapping[str, Any]) -> CreditsInEvent:
    """Validates an EventBridge envelope of source credits.billing; InvalidEvent names the field at fault."""
    if envelope.get("id") in (None, ""):
        raise InvalidEvent("id", "the EventBridge event id is missing")
    event_id = identifier("id", envelope.get("id"))
    if envelope.get("source") != CREDITS_IN_SOURCE:
        raise InvalidEvent("source", f"expected {CREDITS_IN_SOURCE!r}, got {envelope.get('source')!r}")
    detail_type = envelope.get("detail-type")
    if detail_type not in CREDITS_IN_DETAIL_TYPES:
        raise InvalidEvent("detail-type", f"unknown detail-type {detail_type!r}; expected one of {', '.join(CREDITS_IN_DETAIL_TYPES)}")
    detail = envelope.get("detail")
    if not isinstance(detail, Mapping):
        raise InvalidEvent("detail", f"must be a JSON object, got {type(detail).__name__}")
    user_id = identifier("userId", detail.get("userId"))
    credits = _credits(detail.get("credits"))
    reference = identifier("reference", detail.get("reference"))
    category = _category(detail_type, detail.get("category"))
    amount, currency = _money(detail, required=detail_type == PURCHASED)
    payment_reference = detail.get("paymentReference")
    if payment_reference is not None:
        payment_reference = identifier("paymentReference", payment_reference)
    return CreditsInEvent(
        detail_type=detail_type,
        event_id=event_id,
        user_id=user_id,
        credits=credits,
        reference=reference,
        category=category,
        amount_paid=amount,
        currency=currency,
        payment_reference=payment_reference,
        reason=_reason(detail.get("reason")),
        expires_at=_expires_at(detail_type, detail.get("expiresAt")),
    )


def check_expiry(event: CreditsInEvent, now: str, maximum: timedelta) -> None:
    """InvalidEvent (field expiresAt) when the credit's expiry is not after `now` or beyond the stage's maximum."""
    if event.expires_at is None:
        return
    if event.expires_at <= now:
        raise InvalidEvent("expiresAt", f"must be in the future (now is {now})")
    if parse_moment(event.expires_at) - parse_moment(now) > maximum:
        raise InvalidEvent("expiresAt", f"must be at most {maximum.days} days from now")


def decide_credits_in(
    event: CreditsInEvent, timestamp: str, balance: int | None = None, *, balance_known: bool = False, request_id: str | None = None
) -> CreditsApplication:
    """The entry that applies the event. A purchase or a grant credits; a revocation debits whatever remains (money
    already spent is still owed back): decided first as covered, and as an overdraft when the balance, returned by
    the failed guard (`balance_known`), does not cover it."""
    verb = {PURCHASED: "Purchase", GRANTED: "Grant", REVOKED: "Revocation"}[event.detail_type]
    money = f" ({event.amount_paid} {event.currency})" if event.amount_paid is not None else ""
    reason = f": {event.reason}" if event.reason else ""
    entry = LedgerEntry(
        ledger_id=event.ledger_id,
        user_id=event.user_id,
        type=DEBIT if event.is_revocation else CREDIT,
        amount=event.credits,
        description=f"{verb}, {event.category}{money}{reason}",
        reference=event.reference,
        timestamp=timestamp,
        event_id=event.event_id,
        category=event.category,
        amount_paid=event.amount_paid,
        currency=event.currency,
        payment_reference=event.payment_reference,
        expires_at=event.expires_at,
    )
    overdraft = event.is_revocation and balance_known and (balance or 0) < event.credits
    return CreditsApplication(event, entry, overdraft=overdraft, balance_before=balance if balance_known else None, request_id=request_id)


def same_application(existing: LedgerEntry, event: CreditsInEvent) -> bool:
    """Whether an entry already under the event's ledger id is this event's (a redelivery) rather than another
    event reusing its reference for something else (refused: the producer must use a new reference)."""
    expected_type = DEBIT if event.is_revocation else CREDIT
    booked = (existing.user_id, existing.type, existing.amount, existing.category)
    money = (existing.amount_paid, existing.currency, existing.payment_reference)  # what finance reads off the entry
    return (
        booked == (event.user_id, expected_type, event.credits, event.category)
        and money == (event.amount_paid, event.currency, event.payment_reference)
        and existing.expires_at == event.expires_at
    )


def _credits(value: Any) -> int:
    if value is None:
        raise InvalidEvent("credits", "is missing")
    if isinstance(value, float):  # Lambda hands JSON numbers over as floats: 10.0 is 10, 10.5 is refused
        value = Decimal(str(value))
    return whole_credits("credits", value)


def _category(detail_type: str, value: Any) -> str:
    allowed = {PURCHASED: (PAID,), GRANTED: GRANT_CATEGORIES, REVOKED: REVOCATION_CATEGORIES}[detail_type]
    if value is None and detail_type == PURCHASED:
        return PAID
    if value not in allowed:
        raise InvalidEvent("category", f"a {detail_type} event's category is one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _money(detail: Mapping[str, Any], *, required: bool) -> tuple[Decimal | None, str | None]:
    amount, currency = detail.get("amountPaid"), detail.get("currency")
    if amount is None and currency is None:
        if required:
            raise InvalidEvent("amountPaid", "a purchase states the amount paid and its currency")
        return None, None
    if amount is None or currency is None:
        raise InvalidEvent("amountPaid" if amount is None else "currency", "amountPaid and currency come together")
    if not isinstance(currency, str) or not CURRENCY.match(currency):
        raise InvalidEvent("currency", f"must be an ISO 4217 code of three capital letters, got {str(currency)[:20]!r}")
    return _amount(amount), currency


def _amount(value: Any) -> Decimal:
    """Money, exactly: a decimal string ("19.99", preferred) or a JSON number; never binary noise, never negative."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise InvalidEvent("amountPaid", f'must be a decimal string such as "19.99", got {type(value).__name__}')
    text = str(value) if isinstance(value, (str, float)) else None
    if text is not None and (len(text) > 40 or not re.fullmatch(r"\d+(\.\d+)?", text)):
        raise InvalidEvent("amountPaid", f'must be a decimal such as "19.99", got {text[:40]!r}')
    try:
        amount = Decimal(text) if text is not None else Decimal(value)
    except (InvalidOperation, ValueError):
        raise InvalidEvent("amountPaid", "is not a number") from None
    if not amount.is_finite() or amount < 0 or amount >= MAX_MONEY:
        raise InvalidEvent("amountPaid", f"must be at least 0 and below {MAX_MONEY}")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_MONEY_DECIMALS:
        raise InvalidEvent("amountPaid", f"has more than {MAX_MONEY_DECIMALS} decimals")
    return storable_decimal("amountPaid", amount) if amount else amount


def _expires_at(detail_type: str, value: Any) -> str | None:
    if value is not None and detail_type == REVOKED:
        raise InvalidEvent("expiresAt", "a revocation does not expire; only a purchase or a grant may carry expiresAt")
    moment = HoldExpiry.parse(value)
    return None if moment is None else iso_timestamp(moment)


def _reason(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidEvent("reason", f"must be a string when present, got {type(value).__name__}")
    text = printable_text(value, MAX_REASON_LENGTH).strip()
    return "".join(ch if ch.isprintable() else " " for ch in text) or None
