"""Ledger entries: every change to a balance is one of these, written in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

DEBIT = "debit"
CREDIT = "credit"


def iso_timestamp(moment: datetime | None = None) -> str:
    """ISO-8601 UTC with milliseconds and Z, the runbook's ledger timestamp format."""
    moment = (moment or datetime.now(timezone.utc)).astimezone(timezone.utc)
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


def adjustment_entry(
    user_id: str, amount: int, reason: str, reference: str, actor: str, timestamp: str
) -> LedgerEntry:
    """An operator's manual adjustment; its id derives from the reference, so re-running it is a no-op."""
    if amount == 0:
        raise ValueError("an adjustment of 0 credits changes nothing")
    if not reason.strip():
        raise ValueError("an adjustment needs a reason")
    if not reference.strip():
        raise ValueError("an adjustment needs a reference")
    return LedgerEntry(
        ledger_id=f"adjustment#{reference}",
        user_id=user_id,
        type=CREDIT if amount > 0 else DEBIT,
        amount=abs(amount),
        description=f"Manual adjustment: {reason}",
        reference=reference,
        timestamp=timestamp,
        actor=actor,
    )
