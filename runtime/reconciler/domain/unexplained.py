"""Every balance change explained (docs/events.md, "Every balance change explained"): the rule that tells a Credits
change no ledger entry explains.

Pure. A change of a Credits item (its stream record's two images) is **explained** when it moves no posted balance
(`remaining + held`: a hold or a release moves credits between the two), when it is an operator's `audit --fix
--trust ledger` (which sets the balance back to its books and records `lastAuditFix` at its `updatedAt`), or when
every one of these holds:
- the item's `version` went up by exactly one (every reconciler write adds one, and sets `updatedAt` to the timestamp
  of the entries it writes with it: two writes in one millisecond keep it);
- the ledger entries written at that `updatedAt` (the caller reads them: `explaining_entry` says where) sum to the
  posted change, or the postings of one job among them do (two settlements of a user in the same millisecond).
Anything else (a direct write by another system, a hand edit in the console, a restore) is **unexplained**: the
user, the change and what is missing, for an alert that names the command to book it or to undo it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from reconciler.domain.attributes import (
    HELD_ATTRIBUTE,
    LAST_AUDIT_FIX_ATTRIBUTE,
    LAST_LEDGER_ENTRY_ATTRIBUTE,
    REMAINING_ATTRIBUTE,
    UPDATED_AT_ATTRIBUTE,
    USER_ID_ATTRIBUTE,
    VERSION_ATTRIBUTE,
)
from reconciler.domain.ledger import LedgerEntry


@dataclass(frozen=True)
class UnexplainedChange:
    user_id: str
    posted_before: int
    posted_after: int
    reason: str
    changed_at: str | None = None

    @property
    def change(self) -> int:
        return self.posted_after - self.posted_before


def _whole(value: Any) -> int | None:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)) or value != int(value):
        return None
    return int(value)


def posted(image: Mapping[str, Any] | None) -> int | None:
    """remaining + held of an image (no item: 0); None when a figure is damaged (the balance events report it)."""
    if image is None:
        return 0
    remaining, held = _whole(image.get(REMAINING_ATTRIBUTE)), _whole(image.get(HELD_ATTRIBUTE))
    return None if remaining is None or held is None else remaining + held


def moves_posted_balance(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> bool:
    """Whether a change needs explaining at all (a REMOVE, a damaged figure and a hold or release do not)."""
    before, after = posted(old), posted(new)
    return new is not None and before is not None and after is not None and before != after


def explaining_entry(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str | None:
    """The Ledger entry a change names (an adjustment, a correction, credits in: it changed `lastLedgerEntry`), or
    None: then only a job's postings at its `updatedAt` (UserLedger) can explain it."""
    named = new.get(LAST_LEDGER_ENTRY_ATTRIBUTE)
    if isinstance(named, str) and named != (old or {}).get(LAST_LEDGER_ENTRY_ATTRIBUTE):
        return named
    return None


def unexplained(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, entries: Iterable[LedgerEntry]) -> UnexplainedChange | None:
    """None when the change is explained; else what is wrong with it. Images are plain values (deserialized)."""
    if new is None or not moves_posted_balance(old, new):
        return None
    before, after = posted(old) or 0, posted(new) or 0
    user, updated = str(new.get(USER_ID_ATTRIBUTE, "")), new.get(UPDATED_AT_ATTRIBUTE)
    shown_at = updated if isinstance(updated, str) else None

    def refused(reason: str) -> UnexplainedChange:
        return UnexplainedChange(user, before, after, reason, shown_at)

    fix = new.get(LAST_AUDIT_FIX_ATTRIBUTE)
    if isinstance(fix, Mapping) and isinstance(updated, str) and fix.get("at") == updated and fix != (old or {}).get(LAST_AUDIT_FIX_ATTRIBUTE):
        return None  # `audit --fix --trust ledger`: the balance set back to its books by an operator
    old_version, new_version = _whole((old or {}).get(VERSION_ATTRIBUTE)), _whole(new.get(VERSION_ATTRIBUTE))
    if old_version is None or new_version is None or new_version != old_version + 1:
        return refused(
            f"its version went from {(old or {}).get(VERSION_ATTRIBUTE)} to {new.get(VERSION_ATTRIBUTE)}, not up by one: not a reconciler write"
        )
    if not isinstance(updated, str):
        return refused("it has no updatedAt: not a reconciler write")
    at_that_moment = [entry for entry in entries if entry.user_id == user and entry.timestamp == updated]
    booked = sum(entry.signed_amount for entry in at_that_moment)
    if booked != after - before and after - before not in _per_writer(at_that_moment):
        return refused(f"the ledger entries written at {updated} sum to {booked:+d}, the posted balance moved {after - before:+d}")
    return None


def _per_writer(entries: list[LedgerEntry]) -> set[int]:
    """The sums of the entries of each writer among them (a job's postings share the id before their last part)."""
    sums: dict[str, int] = {}
    for entry in entries:
        writer = entry.ledger_id.rsplit(":", 1)[0]
        sums[writer] = sums.get(writer, 0) + entry.signed_amount
    return set(sums.values())
