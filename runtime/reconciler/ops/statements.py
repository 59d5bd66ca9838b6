"""Statements and the liability (issue #24): what finance reads, each figure traceable to ledger entries.

A **statement** of one user for one calendar month (UTC): the opening balance (the ledger's sum before the month),
the month's credits by category, its debits by category, the closing balance (opening plus the month's entries: the
posted balance at the month's end, `remaining + held`), and the holds open now that were placed before the month
ended (holds post nothing: they are shown, not summed). Every line names the ledger ids it sums.

The **liability**: outstanding credits of the whole book by category (paid, promotional, goodwill, other, overdrawn),
each user's posted balance allocated by domain/liability.py's rule. A scheduled job of the function sums them into a
snapshot (service/liability_snapshot.py), so a question reads one item and says how old it is; `check` sums every
balance's own allocation now (a Scan of Credits) beside it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reconciler.domain.ledger import LedgerEntry
from reconciler.domain.liability import LIABILITY_CATEGORIES, BookLiability, LiabilitySnapshot, book_of
from reconciler.ops.operator_error import NotFound, OpsError
from reconciler.ops.operator_ports import LiabilitySnapshots, StatementStore

USAGE, ADJUSTMENT, CORRECTION, OTHER = "usage", "adjustment", "correction", "other"
MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def month_bounds(month: str) -> tuple[str, str]:
    """`2026-11` -> ("2026-11-01T00:00:00.000Z", "2026-12-01T00:00:00.000Z"): the month, end exclusive, in ledger form."""
    found = MONTH.match(month)
    if not found or not 1 <= int(found.group(2)) <= 12:
        raise OpsError(f"--month must be YYYY-MM, such as 2026-11, got {month!r}")
    year, number = int(found.group(1)), int(found.group(2))
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + (number == 12), number % 12 + 1, 1, tzinfo=UTC)
    return _ledger_time(start), _ledger_time(end)


def _ledger_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def entry_category(entry: LedgerEntry) -> str:
    """An entry's category: its own (credits in), else what its writer makes it (renders, operators, the audit)."""
    if entry.category:
        return entry.category
    ledger_id = entry.ledger_id
    if ledger_id.startswith("job:") or re.search(r"#(reserve|release|charge|refund)$", ledger_id):
        return USAGE
    if ledger_id.startswith(("adjustment:", "adjustment#", "manual-adj")):
        return ADJUSTMENT
    if ledger_id.startswith(("audit:", "audit#")):
        return CORRECTION
    return OTHER


@dataclass(frozen=True)
class StatementLine:
    section: str  # "credits" or "debits"
    category: str
    amount: int  # signed: what the line does to the balance
    ledger_ids: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    user_id: str
    month: str
    start: str
    end: str
    opening: int
    opening_entries: int
    lines: tuple[StatementLine, ...]
    holds: tuple[dict[str, Any], ...] = ()

    @property
    def closing(self) -> int:
        return self.opening + sum(line.amount for line in self.lines)

    @property
    def held(self) -> int:
        return sum(int(hold["heldCredits"]) for hold in self.holds)

    def as_dict(self) -> dict[str, Any]:
        return {
            "userId": self.user_id,
            "month": self.month,
            "from": self.start,
            "until": self.end,
            "opening": self.opening,
            "openingEntries": self.opening_entries,
            "credits": [_line_dict(line) for line in self.lines if line.section == "credits"],
            "debits": [_line_dict(line) for line in self.lines if line.section == "debits"],
            "closing": self.closing,
            "holds": list(self.holds),
            "held": self.held,
        }

    def rows(self) -> list[list[Any]]:
        """(line, category, credits, ledger entries): the table and the CSV."""
        rows: list[list[Any]] = [["opening", "", self.opening, f"{self.opening_entries} entries before {self.start}"]]
        for line in self.lines:
            rows.append([line.section, line.category, line.amount, " ".join(line.ledger_ids)])
        rows.append(["closing", "", self.closing, f"posted balance at {self.end}"])
        for hold in self.holds:
            rows.append(["hold (open)", hold["jobId"], -int(hold["heldCredits"]), f"held {hold['heldSince']}, not posted"])
        return rows


def _line_dict(line: StatementLine) -> dict[str, Any]:
    return {"category": line.category, "amount": line.amount, "entries": len(line.ledger_ids), "ledgerIds": list(line.ledger_ids)}


def build_statement(user_id: str, month: str, entries: Iterable[LedgerEntry], holds: Iterable[Any] = ()) -> Statement:
    """A statement from the user's entries (any superset of those before the month's end) and open holds."""
    start, end = month_bounds(month)
    opening = opening_count = 0
    grouped: dict[tuple[str, str], list[LedgerEntry]] = defaultdict(list)
    for entry in entries:
        if entry.timestamp >= end:
            continue
        if entry.timestamp < start:
            opening += entry.signed_amount
            opening_count += 1
            continue
        section = "credits" if entry.signed_amount > 0 else "debits"
        grouped[(section, entry_category(entry))].append(entry)
    lines = tuple(
        StatementLine(section, category, sum(e.signed_amount for e in found), tuple(e.ledger_id for e in found))
        for (section, category), found in sorted(grouped.items())
    )
    open_holds = tuple(
        {"jobId": record.job_id, "heldCredits": record.held_credits, "heldSince": record.held_at}
        for record in holds
        if getattr(record, "held_at", None) and record.held_at < end and getattr(record, "held_credits", 0)
    )
    return Statement(user_id, month, start, end, opening, opening_count, lines, open_holds)


@dataclass
class Statements:
    """`reconciler statement` and `reconciler liability`: what finance reads."""

    store: StatementStore
    book: LiabilitySnapshots

    def statement(self, user_id: str, month: str) -> Statement:
        """Reads one user's ledger up to the month's end (two Queries, never a scan) and their open holds (one Query)."""
        _, end = month_bounds(month)
        entries = [entry for entry in self.store.ledger_for_user(user_id, until=end) if entry.timestamp < end]
        holds = [record for record in self.store.open_holds(user_id) if hasattr(record, "held_at")]
        return build_statement(user_id, month, entries, holds)

    def liability(self, check: bool = False, now: datetime | None = None) -> Liability:
        """The latest snapshot (one GetItem) and its age; with `check`, every balance's own allocation now (an eventually
        consistent Scan of Credits: 0.5 RRU per 4 KB) beside it."""
        snapshot = self.book.latest()
        found = Liability(snapshot)
        if snapshot is not None and snapshot.taken_at:
            taken = datetime.fromisoformat(snapshot.taken_at.replace("Z", "+00:00"))
            found.age_seconds = max(0, int(((now or datetime.now(UTC)) - taken).total_seconds()))
        if check:
            found.checked = book_of(self.book.balances())
        if snapshot is None and not check:
            raise NotFound("no liability snapshot yet: its schedule has not run (see docs/events.md); `liability --check` scans now")
        return found


# --- the liability -----------------------------------------------------------------------------------------------


@dataclass
class Liability:
    """The book's outstanding credits by category as the latest snapshot has them (None: none yet), its age, and with
    `check` every Credits item's own allocation now."""

    snapshot: LiabilitySnapshot | None
    age_seconds: int | None = None
    checked: BookLiability | None = None

    @property
    def by_category(self) -> dict[str, int]:
        book = self.snapshot.book if self.snapshot is not None else self.checked
        return dict(book.by_category) if book is not None else dict.fromkeys(LIABILITY_CATEGORIES, 0)

    @property
    def total(self) -> int:
        return sum(self.by_category.values())

    @property
    def agrees(self) -> bool | None:
        """None unchecked; else whether the snapshot is the balances' allocation now, category by category (it is
        only at a quiet moment: every change since the snapshot moves the balances)."""
        if self.checked is None or self.snapshot is None:
            return None
        return self.checked.by_category == self.snapshot.book.by_category

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"byCategory": self.by_category, "total": self.total}
        if self.snapshot is not None:
            book = self.snapshot.book
            found.update(takenAt=self.snapshot.taken_at, ageSeconds=self.age_seconds, users=book.users, balancesTotal=book.balances_total)
            found.update(damaged=book.damaged)
        if self.checked is not None:
            found["checked"] = {
                "byCategory": dict(self.checked.by_category),
                "total": self.checked.total,
                "balancesTotal": self.checked.balances_total,
                "users": self.checked.users,
                "damaged": self.checked.damaged,
                "agrees": self.agrees,
            }
        return found
