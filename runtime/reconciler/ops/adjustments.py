"""Manual credit adjustments: balance and ledger entry in one transaction, idempotent on the reference.

Inputs are validated by the domain, as events' are (ids: 1 to 256 printable characters, at most 768 bytes; amounts: whole,
non-zero, at most MAX_CREDITS either way). `preview` reads what an adjustment would do (the balance before
and after, whether the user exists, whether the reference was used) so the CLI can put guard rails on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reconciler.domain.errors import LedgerEntryTaken
from reconciler.domain.ledger import LedgerEntry, adjustment_entry, iso_timestamp, legacy_adjustment_ledger_id
from reconciler.domain.validation import identifier, whole_credits
from reconciler.ops.operator_error import OpsError
from reconciler.service.retrying import Backoff, with_retries

APPLIED, ALREADY_APPLIED, WOULD_APPLY = "applied", "already-applied", "would-apply"
MAX_AMOUNT_DIGITS = 20  # read no more than this (sign aside): the domain's bound is 13 digits anyway


def parse_amount(text: str) -> int:
    """An amount as typed (`10`, `-10`, `+10`), validated by the domain; never a float or a 4,000-digit number."""
    raw = text.strip()
    digits = raw[1:] if raw[:1] in "+-" else raw
    if not digits.isdigit() or not digits.isascii():
        raise OpsError(f"amount must be a whole number of credits such as 10 or -10, got {text!r}")
    if len(digits) > MAX_AMOUNT_DIGITS:
        return whole_credits("amount", 10**MAX_AMOUNT_DIGITS, allow_negative=True)  # raises: out of bounds
    return whole_credits("amount", int(raw), allow_negative=True)


def validate(user_id: str, amount: int, reason: str, reference: str) -> None:
    identifier("userId", user_id)
    identifier("reference", reference)
    whole_credits("amount", amount, allow_negative=True)
    if not reason.strip():
        raise OpsError("an adjustment needs a reason (--reason)")
    if not reason.isprintable():
        raise OpsError("--reason must be printable text on one line")


@dataclass(frozen=True)
class AdjustmentResult:
    status: str
    entry: LedgerEntry
    balance_before: int | None = None

    @property
    def user_exists(self) -> bool:
        return self.balance_before is not None

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
    store: Any  # OperationsStore (or a fake): get_ledger_entry, get_balance, commit_adjustment
    clock: Callable[[], str] = iso_timestamp
    backoff: Callable[[], Backoff] = Backoff

    def preview(self, user_id: str, amount: int, reason: str, reference: str, actor: str) -> AdjustmentResult:
        """What adjust would do, from a consistent read; writes nothing."""
        validate(user_id, amount, reason, reference)
        entry = adjustment_entry(user_id, amount, reason, reference, actor, self.clock())
        existing = self._existing(entry, reference)
        if existing is not None:
            return self._already(existing, user_id, amount, reference)
        balance = self.store.get_balance(user_id)
        return AdjustmentResult(WOULD_APPLY, entry, balance["remaining"] if balance else None)

    def adjust(self, user_id: str, amount: int, reason: str, reference: str, actor: str, dry_run: bool = False) -> AdjustmentResult:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise OpsError(f"an adjustment is a whole number of credits, got {amount!r}")
        validate(user_id, amount, reason, reference)

        def attempt() -> AdjustmentResult:
            result = self.preview(user_id, amount, reason, reference, actor)
            if result.status == ALREADY_APPLIED or dry_run:
                return result
            # The id derives from the reference and is written with attribute_not_exists: a concurrent run
            # with the same reference fails this write's condition, and what that run wrote decides the answer.
            try:
                self.store.commit_adjustment(result.entry)
            except LedgerEntryTaken:
                existing = self._existing(result.entry, reference)
                if existing is None:
                    raise
                return self._already(existing, user_id, amount, reference)
            return AdjustmentResult(APPLIED, result.entry, result.balance_before)

        result, _ = with_retries(attempt, self.backoff())
        return result

    def _existing(self, entry: LedgerEntry, reference: str) -> LedgerEntry | None:
        found = self.store.get_ledger_entry(entry.ledger_id)
        if found is None:  # an adjustment applied before the unambiguous ids had `adjustment#{reference}`
            found = self.store.get_ledger_entry(legacy_adjustment_ledger_id(reference))
        return found

    @staticmethod
    def _already(existing: LedgerEntry, user_id: str, amount: int, reference: str) -> AdjustmentResult:
        if existing.user_id != user_id or existing.signed_amount != amount:
            raise OpsError(
                f"reference {reference!r} was already used for {existing.signed_amount:+d} credits to user {existing.user_id}; use a new reference"
            )
        return AdjustmentResult(ALREADY_APPLIED, existing)
