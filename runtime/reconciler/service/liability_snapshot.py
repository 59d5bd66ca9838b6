"""The liability snapshot (docs/events.md, "The liability"): a scheduled job of the function sums every Credits
item's allocation by category (domain/liability.py) and writes the book's totals, with the moment it began, to one
item that `reconciler liability` reads. Nothing per event: a run reads the Credits table once, eventually
consistent (0.5 RRU per 4 KB of items), and writes one item (1 WRU).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reconciler.domain.liability import LiabilitySnapshot, book_of
from reconciler.service.ports import SnapshotStore


@dataclass
class LiabilitySnapshotJob:
    store: SnapshotStore
    now: Callable[[], str]

    def run(self) -> tuple[LiabilitySnapshot, bool]:
        """Scans, sums and writes; returns the snapshot and whether it was stored (False: a later one is there)."""
        taken_at = self.now()
        book = book_of(self.store.balances())
        snapshot = LiabilitySnapshot(book, taken_at, self.now())
        return snapshot, self.store.put_snapshot(snapshot)
