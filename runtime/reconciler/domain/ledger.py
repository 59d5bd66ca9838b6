"""Ledger entries: every change to a balance is one of these, written in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from reconciler.domain.validation import identifier, whole_credits

DEBIT = "debit"
CREDIT = "credit"


def iso_timestamp(moment: datetime | None = None) -> str:
    """ISO-8601 UTC with milliseconds and Z, the runbook's ledger timestamp format."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class LedgerEntry:
    ledger_id: str
    user_id: str
    type: str
    amount: int
    description: str
    reference: str
    timestamp: str
    event_id: str | None = None
    actor: str | None = None
    # Credits in (domain/credits_in.py): the entry's category (paid, promotional, goodwill, refund, chargeback), the
    # money behind it where there is some (exact), and the payment a revocation takes back. None on every other entry.
    category: str | None = None
    amount_paid: Decimal | None = None
    currency: str | None = None
    payment_reference: str | None = None
    # A purchase's or grant's expiry (ISO-8601 UTC), when it has one: what the rule leaves of it then is booked as an
    # expiry (domain/consumption.py, service/credit_expiry.py).
    expires_at: str | None = None

    def __post_init__(self) -> None:
        if self.type not in (DEBIT, CREDIT):
            raise ValueError(f"ledger type must be debit or credit, got {self.type!r}")
        if not isinstance(self.amount, int) or isinstance(self.amount, bool) or self.amount <= 0:
            raise ValueError(f"ledger amount must be a positive whole number, got {self.amount!r}")

    @property
    def signed_amount(self) -> int:
        """What this entry does to the balance."""
        return self.amount if self.type == CREDIT else -self.amount


def balance_delta(entries: tuple[LedgerEntry, ...] | list[LedgerEntry]) -> int:
    return sum(entry.signed_amount for entry in entries)


# Ledger ids. Each writer has its own prefix, and every id it embeds is length-prefixed, so no id a job,
# an adjustment or an audit can hold (whatever its characters: '#', ':', digits) ever produces another
# writer's ledger id: "job:10:adjustment:charge" and "adjustment:6:charge" cannot meet. Entries written
# before this scheme ("{jobId}#charge", "adjustment#{reference}", "audit#{user}#{time}") stay readable.
JOB_POSTINGS = ("reserve", "release", "charge", "refund")


def job_ledger_id(job_id: str, posting: str) -> str:
    if posting not in JOB_POSTINGS:
        raise ValueError(f"unknown job posting {posting!r}")
    return f"job:{_counted(job_id)}:{posting}"


def adjustment_ledger_id(reference: str) -> str:
    return f"adjustment:{_counted(reference)}"


def legacy_adjustment_ledger_id(reference: str) -> str:
    """The id v2.0 gave an adjustment; a re-run of an adjustment applied before the upgrade must see it."""
    return f"adjustment#{reference}"


def correction_ledger_id(user_id: str, version: int) -> str:
    """One per discrepancy: the balance version the audit read (every balance write moves it), so two runs that
    read the same books book at most one correction between them. Corrections booked before versions existed
    carry a timestamp instead (`audit:{n}:{user}:{time}`) and stay readable."""
    return f"audit:{_counted(user_id)}:v{version}"


def _counted(value: str) -> str:
    return f"{len(value)}:{value}"


def adjustment_entry(user_id: str, amount: int, reason: str, reference: str, actor: str, timestamp: str) -> LedgerEntry:
    """An operator's manual adjustment; its id derives from the reference, so re-running it is a no-op.

    Validated as events are (InvalidEvent, a ValueError, names the field): ids, a whole bounded amount.
    """
    user_id = identifier("userId", user_id)
    reference = identifier("reference", reference)
    amount = whole_credits("amount", amount, allow_negative=True)
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("an adjustment needs a reason")
    return LedgerEntry(
        ledger_id=adjustment_ledger_id(reference),
        user_id=user_id,
        type=CREDIT if amount > 0 else DEBIT,
        amount=abs(amount),
        description=f"Manual adjustment: {reason}",
        reference=reference,
        timestamp=timestamp,
        actor=actor,
    )
