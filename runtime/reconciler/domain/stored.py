"""What the operators read of the books besides the ledger entries: a balance as stored, a job as stored, and a
window of the ledger."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.domain.ledger import LedgerEntry
from reconciler.domain.records import SettlementRecord
from reconciler.domain.settlement import JobRecord


@dataclass(frozen=True)
class AuditFix:
    """What the last `audit --fix` that set a balance recorded on it: when, who, why, and the figures it replaced."""

    at: str | None
    actor: str | None
    reason: str | None
    previous_remaining: int | None
    previous_held: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "actor": self.actor,
            "reason": self.reason,
            "previous": {"remaining": self.previous_remaining, "held": self.previous_held},
        }


@dataclass(frozen=True)
class StoredBalance:
    """A user's Credits item. `remaining` is what the user can spend (None: the item has none), `held` what open
    reservations hold (absent: 0); the posted balance, remaining + held, is what the ledger sums to. Every balance
    write moves `version`, and names in `last_ledger_entry` the Ledger entry it booked, if any: an operator's repair
    is conditioned on the version it read."""

    user_id: str
    remaining: int | None
    held: int = 0
    version: int = 0
    updated_at: str | None = None
    last_ledger_entry: str | None = None
    # What came in by category (paid, promotional, goodwill: domain/liability.py), as the credits-in transactions add it.
    came_in: dict[str, int] = field(default_factory=dict)
    last_audit_fix: AuditFix | None = None

    @property
    def posted(self) -> int:
        return (self.remaining or 0) + self.held


@dataclass
class LedgerWindow:
    """Every user's entries in a time window, oldest first, and what reading them cost (whole-table Scans)."""

    entries: list[LedgerEntry] = field(default_factory=list)
    scanned: int = 0
    capacity_units: float = 0.0


@dataclass(frozen=True)
class StoredJob:
    """A job's Jobs item and settlement record as stored, every attribute (for a person to read), and as the
    reconciler reads them (None where absent or damaged: `damage` says why)."""

    item: dict[str, Any] | None
    record_item: dict[str, Any] | None
    job: JobRecord | None = None
    record: SettlementRecord | None = None
    damage: tuple[str, ...] = ()
