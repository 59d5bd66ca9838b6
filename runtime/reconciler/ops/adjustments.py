"""Manual credit adjustments: balance and ledger entry in one transaction, idempotent on the reference.

Inputs are validated once, by the domain as events' are (ids: 1 to 256 printable characters, at most 768 bytes;
amounts: whole, non-zero, at most MAX_CREDITS either way). `preview` reads once what an adjustment would do (the
balance before and after, whether the user exists, whether the reference was used), so the CLI can put guard rails
on it, and `apply` commits it without reading again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from reconciler.domain.errors import LedgerEntryTaken
from reconciler.domain.ledger import LedgerEntry, adjustment_entry, iso_timestamp, legacy_adjustment_ledger_id
from reconciler.domain.validation import whole_credits
from reconciler.ops.operator_error import InvalidInput, Refused
from reconciler.ops.operator_ports import AdjustmentCount, AdjustmentStore, NoAdjustmentCount
from reconciler.service.retrying import Backoff, with_retries

APPLIED, ALREADY_APPLIED, WOULD_APPLY = "applied", "already-applied", "would-apply"
MAX_AMOUNT_DIGITS = 20  # read no more than this (sign aside): the domain's bound is 13 digits anyway


def parse_amount(text: str) -> int:
    """An amount as typed (`10`, `-10`, `+10`), never a float or a 4,000-digit number; its bounds are the domain's,
    checked once, when the adjustment's entry is made."""
    raw = text.strip()
    digits = raw[1:] if raw[:1] in "+-" else raw
    if not digits.isdigit() or not digits.isascii():
        raise InvalidInput(f"amount must be a whole number of credits such as 10 or -10, got {text!r}")
    if len(digits) > MAX_AMOUNT_DIGITS:
        return whole_credits("amount", 10**MAX_AMOUNT_DIGITS, allow_negative=True)  # raises: out of bounds
    return int(raw)


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
    store: AdjustmentStore
    clock: Callable[[], str] = iso_timestamp
    backoff: Callable[[], Backoff] = Backoff
    counted: AdjustmentCount = field(default_factory=NoAdjustmentCount)  # the stage's Adjustments metric

    def preview(self, user_id: str, amount: int, reason: str, reference: str, actor: str) -> AdjustmentResult:
        """What the adjustment would do, validated once and read once (its ledger id, then the balance); writes
        nothing. `apply` commits it, so the CLI can put guard rails in between."""
        entry = self._entry(user_id, amount, reason, reference, actor)
        existing = self._existing(entry)
        if existing is not None:
            return self._already(existing, entry)
        balance = self.store.get_balance(user_id)
        return AdjustmentResult(WOULD_APPLY, entry, balance.remaining if balance else None)

    def apply(self, preview: AdjustmentResult, dry_run: bool = False) -> AdjustmentResult:
        """Commits what `preview` found to do, stamped now, without reading again: the id derives from the reference
        and is written with attribute_not_exists, so a concurrent run with the same reference fails this write's
        condition, and only then is what that run wrote read, to decide the answer."""
        if preview.status == ALREADY_APPLIED or dry_run:
            return preview

        def attempt() -> AdjustmentResult:
            entry = replace(preview.entry, timestamp=self.clock())
            try:
                self.store.commit_adjustment(entry)
            except LedgerEntryTaken:
                existing = self._existing(entry)
                if existing is None:
                    raise
                return self._already(existing, entry)
            return AdjustmentResult(APPLIED, entry, preview.balance_before)

        result, _ = with_retries(attempt, self.backoff())
        if result.status == APPLIED:
            self.counted.count(1)
        return result

    def adjust(self, user_id: str, amount: int, reason: str, reference: str, actor: str, dry_run: bool = False) -> AdjustmentResult:
        return self.apply(self.preview(user_id, amount, reason, reference, actor), dry_run)

    def _entry(self, user_id: str, amount: int, reason: str, reference: str, actor: str) -> LedgerEntry:
        """The adjustment's ledger entry: the reason checked here, ids and amount by the domain (as events' are)."""
        if not reason.strip():
            raise InvalidInput("an adjustment needs a reason (--reason)")
        if not reason.isprintable():
            raise InvalidInput("--reason must be printable text on one line")
        return adjustment_entry(user_id, amount, reason, reference, actor, self.clock())

    def _existing(self, entry: LedgerEntry) -> LedgerEntry | None:
        found = self.store.get_ledger_entry(entry.ledger_id)
        if found is None:  # an adjustment applied before the unambiguous ids had `adjustment#{reference}`
            found = self.store.get_ledger_entry(legacy_adjustment_ledger_id(entry.reference))
        return found

    @staticmethod
    def _already(existing: LedgerEntry, planned: LedgerEntry) -> AdjustmentResult:
        if existing.user_id != planned.user_id or existing.signed_amount != planned.signed_amount:
            raise Refused(
                f"reference {planned.reference!r} was already used for {existing.signed_amount:+d} credits to user {existing.user_id}; "
                "use a new reference"
            )
        return AdjustmentResult(ALREADY_APPLIED, existing)
