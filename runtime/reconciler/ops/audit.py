"""Balance audit: each stored balance against the sum of its ledger (opening balance 0).

A fix never guesses which side is right: the operator says which one to trust.
  * trust "balance": the stored balance is right and the ledger lacks an entry (a v1 opening balance, a
    write made behind the books): a ledger entry explaining the difference is booked, in one transaction
    conditioned on the balance still being what the audit read. History is never rewritten.
  * trust "ledger": the ledger is right and the balance was corrupted (a stray put-item): the balance is set
    back to the ledger sum, conditioned on it still being what the audit read; no entry is booked (the
    ledger already explains the right value), and the Credits item records who restored it and why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from reconciler.domain.ledger import CREDIT, DEBIT, LedgerEntry, correction_ledger_id, iso_timestamp
from reconciler.ops.operator_error import OpsError
from reconciler.service.retrying import Backoff, with_retries


@dataclass(frozen=True)
class Discrepancy:
    user_id: str
    stored: int | None  # None: the user has no Credits item
    ledger_sum: int
    entry_count: int
    recent: tuple[LedgerEntry, ...] = ()  # the latest few entries, newest last
    updated_at: str | None = None  # when the balance last changed

    @property
    def difference(self) -> int:
        """What the ledger lacks to explain the stored balance."""
        return (self.stored or 0) - self.ledger_sum

    def as_dict(self) -> dict:
        return {"userId": self.user_id, "stored": self.stored, "ledgerSum": self.ledger_sum, "difference": self.difference}

    def corrections(self) -> dict[str, str]:
        """The two possible fixes, in words."""
        difference = self.difference
        wording = "an opening-balance entry" if self.entry_count == 0 else "a correction entry"
        return {
            TRUST_BALANCE: f"keep the balance {self.stored or 0}; book {wording} of {difference:+d} (ledger becomes {self.stored or 0})",
            TRUST_LEDGER: f"set the balance {self.stored if self.stored is not None else '(none)'} -> {self.ledger_sum}; no entry booked",
        }


TRUST_BALANCE, TRUST_LEDGER = "balance", "ledger"
TRUSTS = (TRUST_LEDGER, TRUST_BALANCE)
RECENT_ENTRIES = 3


def ledger_sums(entries: Iterable[LedgerEntry]) -> dict[str, tuple[int, int]]:
    """user -> (sum of signed amounts, number of entries)."""
    sums: dict[str, tuple[int, int]] = {}
    for entry in entries:
        total, count = sums.get(entry.user_id, (0, 0))
        sums[entry.user_id] = (total + entry.signed_amount, count + 1)
    return sums


def recent_entries(entries: Iterable[LedgerEntry], limit: int = RECENT_ENTRIES) -> dict[str, tuple[LedgerEntry, ...]]:
    latest: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        latest.setdefault(entry.user_id, []).append(entry)
    return {user: tuple(sorted(items, key=lambda e: e.timestamp)[-limit:]) for user, items in latest.items()}


def find_discrepancies(
    balances: Mapping[str, int | None],
    sums: Mapping[str, tuple[int, int]],
    recent: Mapping[str, tuple[LedgerEntry, ...]] | None = None,
    updated: Mapping[str, str | None] | None = None,
) -> list[Discrepancy]:
    """Users whose stored balance (missing counts as 0) differs from their ledger sum, by user id."""
    found = []
    for user_id in sorted(set(balances) | set(sums)):
        total, count = sums.get(user_id, (0, 0))
        candidate = Discrepancy(user_id, balances.get(user_id), total, count, (recent or {}).get(user_id, ()), (updated or {}).get(user_id))
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
        ledger_id=correction_ledger_id(discrepancy.user_id, timestamp),
        user_id=discrepancy.user_id,
        type=CREDIT if difference > 0 else DEBIT,
        amount=abs(difference),
        description=f"{wording}: {reason}",
        reference=f"audit:{timestamp}",
        timestamp=timestamp,
        actor=actor,
    )


FIXED, WOULD_FIX, RECENTLY_CHANGED = "fixed", "would-fix", "recently-changed"


@dataclass(frozen=True)
class FixResult:
    discrepancy: Discrepancy
    status: str  # FIXED, WOULD_FIX or RECENTLY_CHANGED (left alone, see fix)
    trust: str = TRUST_BALANCE
    entry: LedgerEntry | None = None

    @property
    def resolved(self) -> bool:
        return self.status == FIXED

    def explain(self, min_age_seconds: int) -> str:
        if self.status == RECENTLY_CHANGED:
            return (
                f"skipped: the balance changed at {self.discrepancy.updated_at}, less than {min_age_seconds} s ago, and the "
                "ledger index may not show the newest entry yet; wait a minute and re-run, or pass --min-age 0 to include it"
            )
        verb = "fixed" if self.status == FIXED else "would fix"
        if self.trust == TRUST_LEDGER:
            return f"{verb}: balance {self.discrepancy.stored} -> {self.discrepancy.ledger_sum} (trusting the ledger)"
        entry = cast(LedgerEntry, self.entry)  # trusting the balance books a correction entry
        return f"{verb}: booked {entry.ledger_id} {entry.signed_amount:+d} ({entry.description}) (trusting the balance)"


class BalanceRestorer(Protocol):
    def restore(self, user_id: str, seen: int | None, value: int, timestamp: str, actor: str, reason: str) -> None: ...


@dataclass
class Auditor:
    """Audits through a store (DynamoDBStore or any object with the same reads and commit_correction)."""

    store: Any  # OperationsStore (or a fake): balances, ledger reads, commit_correction
    restorer: BalanceRestorer | None = None  # needed to trust the ledger
    clock: Callable[[], str] = iso_timestamp
    backoff: Callable[[], Backoff] = Backoff

    def audit_user(self, user_id: str) -> Discrepancy | None:
        balance = self.store.get_balance(user_id)
        entries = list(self.store.ledger_for_user(user_id))
        found = find_discrepancies(
            {user_id: balance["remaining"] if balance else None},
            ledger_sums(entries),
            recent_entries(entries),
            {user_id: (balance or {}).get("updatedAt")},
        )
        return found[0] if found else None

    def audit_all(self, progress: Callable[[int], None] = lambda n: None) -> list[Discrepancy]:
        balances, updated = {}, {}
        for item in self.store.scan_balances():
            balances[item["userId"]] = item["remaining"]
            updated[item["userId"]] = item.get("updatedAt")
            progress(1)
        entries = []
        for entry in self.store.scan_ledger():
            entries.append(entry)
            progress(1)
        return find_discrepancies(balances, ledger_sums(entries), recent_entries(entries), updated)

    def fix(self, user_id: str, reason: str, actor: str, dry_run: bool, min_age: timedelta, trust: str = TRUST_BALANCE) -> FixResult | None:
        """Corrects one user from a fresh, per-user read; optimistic on the balance that read saw."""
        if trust not in TRUSTS:
            raise OpsError(f"trust must be one of {', '.join(TRUSTS)}, got {trust!r}")
        if trust == TRUST_LEDGER and self.restorer is None:
            raise OpsError("trusting the ledger needs a balance restorer")
        if not reason.strip():
            raise OpsError("a correction needs a reason (--reason)")

        def attempt() -> FixResult | None:
            discrepancy, now = self.audit_user(user_id), self.clock()
            if discrepancy is None:
                return None
            # The Ledger index is eventually consistent: an entry committed a moment ago may not be
            # in the query yet, and "fixing" that would double it. Leave fresh balances alone.
            if discrepancy.updated_at and _parse(discrepancy.updated_at) > _parse(now) - min_age:
                return FixResult(discrepancy, RECENTLY_CHANGED, trust)
            if trust == TRUST_LEDGER:
                if not dry_run:
                    restorer = cast(BalanceRestorer, self.restorer)  # trusting the ledger needs one: checked above
                    restorer.restore(user_id, discrepancy.stored, discrepancy.ledger_sum, now, actor, reason)
                return FixResult(discrepancy, WOULD_FIX if dry_run else FIXED, trust)
            entry = correction_entry(discrepancy, reason, actor, now)
            if dry_run:
                return FixResult(discrepancy, WOULD_FIX, trust, entry)
            self.store.commit_correction(entry, discrepancy.stored)
            return FixResult(discrepancy, FIXED, trust, entry)

        result, _ = with_retries(attempt, self.backoff())
        return result


def _parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
