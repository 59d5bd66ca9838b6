"""What the balance-events function does with every Credits stream record besides balance events (docs/events.md):

- keeps the liability current: the record's change to the user's allocation by category (domain/liability.py) is
  added to the book's running totals once per record (the book refuses a sequence number it has applied);
- explains the change: a change of the posted balance that no ledger entry explains (domain/unexplained.py) is
  returned as UNEXPLAINED, for the handler's metric and alert. It reads one Ledger entry by id (a change that names
  one) or the user's postings at its moment (one consistent Query of UserLedger), and nothing for a change that
  moves no posted balance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.domain.attributes import UPDATED_AT_ATTRIBUTE, USER_ID_ATTRIBUTE
from reconciler.domain.ledger import LedgerEntry
from reconciler.domain.liability import allocation, allocation_change
from reconciler.domain.unexplained import UnexplainedChange, explaining_entry, moves_posted_balance, unexplained
from reconciler.service.ports import EntryLookup, LiabilityBook, StreamChange

EXPLAINED, UNEXPLAINED, SKIPPED = "explained", "unexplained", "skipped"


@dataclass
class ChangeOutcome:
    kind: str
    user_id: str | None = None
    liability_change: dict[str, int] = field(default_factory=dict)
    liability_applied: bool = False
    unexplained: UnexplainedChange | None = None
    entries_read: int = 0  # ledger reads made to explain it (0: it moved no posted balance)


@dataclass
class BalanceChangeService:
    book: LiabilityBook
    ledger: EntryLookup

    def handle(self, change: StreamChange) -> ChangeOutcome:
        """Raises (so the record is retried) when the book or the ledger cannot be read or written."""
        new, old = change.new_image, change.old_image
        user = change.key_user or (new or {}).get(USER_ID_ATTRIBUTE)
        sequence = change.sequence_number
        if change.undecodable is not None or not isinstance(user, str) or not isinstance(sequence, str) or not sequence.isdigit():
            return ChangeOutcome(SKIPPED, user if isinstance(user, str) else None)
        outcome = ChangeOutcome(EXPLAINED, user, liability_change=allocation_change(old, new))
        if outcome.liability_change:
            outcome.liability_applied = self.book.apply(user, sequence, outcome.liability_change, allocation(new))
        if new is not None and moves_posted_balance(old, new):
            entries = self._explaining(user, old, new)
            outcome.entries_read = 1
            found = unexplained(old, new, entries)
            if found is not None:
                outcome.kind, outcome.unexplained = UNEXPLAINED, found
        return outcome

    def _explaining(self, user: str, old: dict[str, Any] | None, new: dict[str, Any]) -> list[LedgerEntry]:
        named = explaining_entry(old, new)
        if named is not None:
            entry = self.ledger.entry(named)
            return [entry] if entry is not None else []
        changed_at = new.get(UPDATED_AT_ATTRIBUTE)
        return self.ledger.postings_at(user, changed_at) if isinstance(changed_at, str) else []
