"""Balance audit: each stored balance against the sum of its ledger (opening balance 0).

Policy of a fix: the stored balance is what every settlement was conditioned on (and what the user could
spend), and the ledger is append-only, so a correction is a ledger entry that explains the balance;
history is never rewritten. If the balance itself is wrong, follow the fix with `reconciler adjust`,
which moves it back with its own entry: both steps stay in the books.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterable, Mapping

from reconciler.domain.ledger import CREDIT, DEBIT, LedgerEntry, iso_timestamp
from reconciler.ops.errors import OpsError
from reconciler.repository.retry import Backoff
from reconciler.service.retrying import with_retries


@dataclass(frozen=True)
class Discrepancy:
    user_id: str
    stored: int | None  # None: the user has no Credits item
    ledger_sum: int
    entry_count: int

    @property
    def difference(self) -> int:
        """What the ledger lacks to explain the stored balance."""
        return (self.stored or 0) - self.ledger_sum

    def as_dict(self) -> dict:
        return {"userId": self.user_id, "stored": self.stored, "ledgerSum": self.ledger_sum, "difference": self.difference}


def ledger_sums(entries: Iterable[LedgerEntry]) -> dict[str, tuple[int, int]]:
    """user -> (sum of signed amounts, number of entries)."""
    sums: dict[str, tuple[int, int]] = {}
    for entry in entries:
        total, count = sums.get(entry.user_id, (0, 0))
        sums[entry.user_id] = (total + entry.signed_amount, count + 1)
    return sums


def find_discrepancies(balances: Mapping[str, int | None], sums: Mapping[str, tuple[int, int]]) -> list[Discrepancy]:
    """Users whose stored balance (missing counts as 0) differs from their ledger sum, by user id."""
    found = []
    for user_id in sorted(set(balances) | set(sums)):
        total, count = sums.get(user_id, (0, 0))
        candidate = Discrepancy(user_id, balances.get(user_id), total, count)
        if candidate.difference != 0:
            found.append(candidate)
    return found


def correction_entry(discrepancy: Discrepancy, reason: str, actor: str, timestamp: str) -> LedgerEntry:
    if not reason.strip():
        raise OpsError("a correction needs a reason (--reason)")
    difference = discrepancy.difference
    wording = "Opening balance" if discrepancy.entry_count == 0 else "Audit correction"
    return LedgerEntry(
        # One per user and moment; a retry re-audits first, so a committed correction is never doubled.
        ledger_id=f"audit#{discrepancy.user_id}#{timestamp}",
        user_id=discrepancy.user_id,
        type=CREDIT if difference > 0 else DEBIT,
        amount=abs(difference),
        description=f"{wording}: {reason}",
        reference=f"audit:{timestamp}",
        timestamp=timestamp,
        actor=actor,
    )


@dataclass(frozen=True)
class FixResult:
    discrepancy: Discrepancy
    status: str  # "fixed", "would-fix" or "recently-changed" (left alone, see fix)
    entry: LedgerEntry | None = None


@dataclass
class Auditor:
    """Audits through a store (DynamoDBStore or any object with the same reads and commit_correction)."""

    store: object
    clock: Callable[[], str] = iso_timestamp
    backoff: Callable[[], Backoff] = Backoff

    def audit_user(self, user_id: str) -> Discrepancy | None:
        balance = self.store.get_balance(user_id)
        sums = ledger_sums(self.store.ledger_for_user(user_id))
        found = find_discrepancies({user_id: balance["remaining"] if balance else None}, sums)
        return found[0] if found else None

    def audit_all(self, progress: Callable[[int], None] = lambda n: None) -> list[Discrepancy]:
        balances = {}
        for item in self.store.scan_balances():
            balances[item["userId"]] = item["remaining"]
            progress(1)
        entries = []
        for entry in self.store.scan_ledger():
            entries.append(entry)
            progress(1)
        return find_discrepancies(balances, ledger_sums(entries))

    def fix(self, user_id: str, reason: str, actor: str, dry_run: bool, min_age: timedelta) -> FixResult | None:
        """Corrects one user from a fresh, per-user read; optimistic on the balance that read saw."""

        def attempt() -> FixResult | None:
            balance = self.store.get_balance(user_id)
            sums = ledger_sums(self.store.ledger_for_user(user_id))
            found = find_discrepancies({user_id: balance["remaining"] if balance else None}, sums)
            if not found:
                return None
            discrepancy, now = found[0], self.clock()
            # The Ledger index is eventually consistent: an entry committed a moment ago may not be
            # in the query yet, and "fixing" that would double it. Leave fresh balances alone.
            updated_at = (balance or {}).get("updatedAt")
            if updated_at and _parse(updated_at) > _parse(now) - min_age:
                return FixResult(discrepancy, "recently-changed")
            entry = correction_entry(discrepancy, reason, actor, now)
            if dry_run:
                return FixResult(discrepancy, "would-fix", entry)
            self.store.commit_correction(entry, discrepancy.stored)
            return FixResult(discrepancy, "fixed", entry)

        result, _ = with_retries(attempt, self.backoff())
        return result


def _parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
