"""Manual credit adjustments: balance and ledger entry in one transaction, idempotent on the reference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from reconciler.domain.ledger import LedgerEntry, adjustment_entry, iso_timestamp
from reconciler.ops.errors import OpsError
from reconciler.repository.retry import Backoff
from reconciler.service.retrying import with_retries

APPLIED, ALREADY_APPLIED, WOULD_APPLY = "applied", "already-applied", "would-apply"


@dataclass(frozen=True)
class AdjustmentResult:
    status: str
    entry: LedgerEntry
    balance_before: int | None = None

    @property
    def balance_after(self) -> int | None:
        if self.status == ALREADY_APPLIED:
            return None
        return (self.balance_before or 0) + self.entry.signed_amount

    def as_dict(self) -> dict:
        return {
            "status": self.status,
            "userId": self.entry.user_id,
            "amount": self.entry.signed_amount,
            "ledgerId": self.entry.ledger_id,
            "reference": self.entry.reference,
            "actor": self.entry.actor,
            "balanceBefore": self.balance_before,
            "balanceAfter": self.balance_after,
        }


@dataclass
class Adjuster:
    store: object  # DynamoDBStore: get_ledger_entry, get_balance, commit_adjustment
    clock: Callable[[], str] = iso_timestamp
    backoff: Callable[[], Backoff] = Backoff

    def adjust(self, user_id: str, amount: int, reason: str, reference: str, actor: str, dry_run: bool = False) -> AdjustmentResult:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise OpsError(f"an adjustment is a whole number of credits, got {amount!r}")

        def attempt() -> AdjustmentResult:
            try:
                entry = adjustment_entry(user_id, amount, reason, reference, actor, self.clock())
            except ValueError as error:  # zero amount, blank reason or reference
                raise OpsError(str(error)) from None
            # The id derives from the reference: if it exists, this adjustment was made (by this or an earlier run).
            existing = self.store.get_ledger_entry(entry.ledger_id)
            if existing is not None:
                if existing.user_id != user_id or existing.signed_amount != amount:
                    raise OpsError(
                        f"reference {reference!r} was already used for {existing.signed_amount:+d} credits to user "
                        f"{existing.user_id}; use a new reference"
                    )
                return AdjustmentResult(ALREADY_APPLIED, existing)
            balance = self.store.get_balance(user_id)
            before = balance["remaining"] if balance else None
            if dry_run:
                return AdjustmentResult(WOULD_APPLY, entry, before)
            self.store.commit_adjustment(entry)
            return AdjustmentResult(APPLIED, entry, before)

        result, _ = with_retries(attempt, self.backoff())
        return result
