from reconciler.domain.ledger import CREDIT, DEBIT, LedgerEntry
from reconciler.ops.audit import Discrepancy, correction_entry, find_discrepancies, ledger_sums


def entry(user: str, kind: str, amount: int, n: int = 0) -> LedgerEntry:
    return LedgerEntry(f"{user}#{n}", user, kind, amount, "d", "r", "2026-01-01T00:00:00.000Z")


def test_balances_are_compared_with_the_ledger_sum_from_an_opening_balance_of_zero():
    sums = ledger_sums([entry("a", CREDIT, 10), entry("a", DEBIT, 3, 1), entry("b", CREDIT, 5)])
    assert sums == {"a": (7, 2), "b": (5, 1)}
    found = find_discrepancies({"a": 7, "b": 9, "c": 4, "d": None}, sums)
    assert [d.as_dict() for d in found] == [
        {"userId": "b", "stored": 9, "ledgerSum": 5, "difference": 4},
        {"userId": "c", "stored": 4, "ledgerSum": 0, "difference": 4},
    ]


def test_a_ledger_without_a_balance_item_counts_as_a_stored_zero():
    (found,) = find_discrepancies({}, {"a": (6, 1)})
    assert (found.stored, found.difference) == (None, -6)


def test_the_correction_explains_the_difference_with_exact_whole_credits():
    fix = correction_entry(Discrepancy("a", 3, 10, 2), "INC-1", "arn:me", "2026-01-01T00:00:00.000Z")
    assert (fix.type, fix.amount, fix.signed_amount, fix.actor) == (DEBIT, 7, -7, "arn:me")
    assert fix.description == "Audit correction: INC-1"
    opening = correction_entry(Discrepancy("b", 40, 0, 0), "v1 migration", "me", "2026-01-01T00:00:00.000Z")
    assert (opening.signed_amount, opening.description) == (40, "Opening balance: v1 migration")
