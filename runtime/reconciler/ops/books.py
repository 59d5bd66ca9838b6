"""What operators read of the books: a user's balance, a user's ledger (both tables, merged), and every user's
entries in a time window (v1's scan of the ledger)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reconciler.domain.ledger import LedgerEntry
from reconciler.domain.stored import LedgerWindow, StoredBalance
from reconciler.ops.operator_ports import BookStore


@dataclass
class Books:
    store: BookStore
    ledger_tables: tuple[str, str]  # the tables a window scans, UserLedger then Ledger: named in what it says it cost

    def balance(self, user_id: str) -> StoredBalance | None:
        return self.store.get_balance(user_id)

    def ledger(self, user_id: str, since: str | None = None, until: str | None = None) -> list[LedgerEntry]:
        """The user's entries, oldest first: one Query of each table, never a scan."""
        return list(self.store.ledger_for_user(user_id, since, until))

    def window(self, since: str, until: str | None, progress: Callable[[int], None] = lambda n: None) -> LedgerWindow:
        """Every user's entries in the window: full Scans of both tables (their cost is in the result)."""
        return self.store.ledger_window(since, until, progress)
