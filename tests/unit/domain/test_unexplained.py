"""The rule that tells a balance change no ledger entry explains (domain/unexplained.py)."""

from __future__ import annotations

from decimal import Decimal

from reconciler.domain.ledger import LedgerEntry
from reconciler.domain.unexplained import unexplained

AT = "2026-11-28T12:00:00.000Z"


def entry(amount: int, timestamp: str = AT, user: str = "u") -> LedgerEntry:
    return LedgerEntry(f"purchase:1:{amount}", user, "credit" if amount > 0 else "debit", abs(amount), "", "r", timestamp)


def image(remaining, held=0, version=1, updated="2026-11-28T11:00:00.000Z") -> dict:
    return {"userId": "u", "remaining": Decimal(remaining), "held": Decimal(held), "version": Decimal(version), "updatedAt": updated}


def test_a_reconciler_write_with_its_entries_is_explained():
    assert unexplained(image(10), image(510, version=2, updated=AT), [entry(500)]) is None


def test_a_hold_moves_no_posted_balance_and_needs_no_entry():
    assert unexplained(image(10), image(5, held=5, version=2, updated=AT), []) is None


def test_a_direct_write_without_the_version_is_unexplained_with_the_change():
    found = unexplained(image(10), image(1010, version=1), [])
    assert found is not None and found.change == 1000 and found.user_id == "u" and "version" in found.reason


def test_a_write_that_mimics_the_version_but_books_nothing_is_unexplained():
    found = unexplained(image(10), image(60, version=2, updated=AT), [entry(500, "2026-11-28T12:00:00.001Z")])
    assert found is not None and "sum to +0" in found.reason


def test_a_first_item_written_by_hand_is_unexplained_and_a_remove_is_not_judged():
    assert unexplained(None, {"userId": "u", "remaining": Decimal(50)}, []) is not None
    assert unexplained(image(10), None, []) is None


def test_an_operators_restore_to_the_books_is_explained_and_a_version_jump_is_not():
    restored = {**image(10, version=3, updated=AT), "lastAuditFix": {"actor": "op", "reason": "r", "at": AT}}
    assert unexplained(image(900, version=2), restored, []) is None
    jumped = unexplained(image(10), image(510, version=3, updated=AT), [entry(500)])
    assert jumped is not None and "not up by one" in jumped.reason and jumped.changed_at == AT


def test_an_entry_named_by_the_change_is_where_its_explanation_is():
    from reconciler.domain.unexplained import explaining_entry

    assert explaining_entry(image(10), {**image(510, version=2, updated=AT), "lastLedgerEntry": "purchase:1:500"}) == "purchase:1:500"
    same = {**image(10), "lastLedgerEntry": "x"}
    assert explaining_entry(same, {**image(5, version=2, updated=AT), "lastLedgerEntry": "x"}) is None  # a render: its postings
