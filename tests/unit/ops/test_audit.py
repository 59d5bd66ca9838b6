from dataclasses import replace
from datetime import timedelta

import pytest

from reconciler.domain.ledger import CREDIT, DEBIT, LedgerEntry
from reconciler.domain.records import SettlementRecord
from reconciler.domain.settlement import HOLD, JobRecord, UnreadableJob
from reconciler.domain.stored import StoredBalance
from reconciler.ops.audit import (
    FIXED,
    HOLDS_KIND,
    LEDGER_KIND,
    NOT_FIXABLE,
    POSTINGS_KIND,
    TRUST_BALANCE,
    TRUST_LEDGER,
    Auditor,
    Discrepancy,
    OpenHolds,
    correction_entry,
    find_discrepancies,
    ledger_sums,
    open_holds,
)
from reconciler.service.retrying import Backoff

NOW = "2026-06-01T00:00:00.000Z"


def entry(user: str, kind: str, amount: int, n: int = 0) -> LedgerEntry:
    return LedgerEntry(f"{user}#{n}", user, kind, amount, "d", "r", "2026-01-01T00:00:00.000Z")


LEGACY_BEFORE = "2026-05-01T00:00:00.000Z"


def job(
    job_id: str,
    user: str,
    reserved: int | None,
    reserved_as: str | None = HOLD,
    settled_as: str | None = None,
    created: str = "2026-04-01T00:00:00.000Z",
) -> JobRecord:
    """A Jobs item as the v2 code before settlement records left it (created before the cut-off, by default)."""
    return JobRecord(job_id=job_id, user_id=user, reserved_credits=reserved, reserved_as=reserved_as, settled_as=settled_as, created_at=created)


def hold(job_id: str, user: str, credits: int, open_: bool = True, settled_as: str | None = None) -> SettlementRecord:
    return SettlementRecord(job_id=job_id, user_id=user, held_credits=credits, hold_open=open_, settled_as=settled_as)


def test_balances_are_compared_with_the_ledger_sum_from_an_opening_balance_of_zero():
    sums = ledger_sums([entry("a", CREDIT, 10), entry("a", DEBIT, 3, 1), entry("b", CREDIT, 5)])
    assert sums == {"a": (7, 2), "b": (5, 1)}
    found = find_discrepancies({"a": 7, "b": 9, "c": 4, "d": None}, sums)
    assert [(d.user_id, d.remaining, d.ledger_sum, d.difference, d.kinds) for d in found] == [
        ("b", 9, 5, 4, (LEDGER_KIND,)),
        ("c", 4, 0, 4, (LEDGER_KIND,)),
    ]


def test_a_ledger_without_a_balance_item_counts_as_a_stored_zero():
    (found,) = find_discrepancies({}, {"a": (6, 1)})
    assert (found.remaining, found.difference) == (None, -6)


def test_the_posted_balance_is_remaining_plus_held_and_is_what_the_ledger_must_sum_to():
    # Given a user whose 10 credits are 6 remaining and 4 held for job-1
    holds = open_holds([hold("job-1", "a", 4)])
    # Then the books balance; and remaining alone, compared with the ledger, would have been a false alarm
    assert find_discrepancies({"a": 6}, {"a": (10, 1)}, held={"a": 4}, holds=holds) == []
    (found,) = find_discrepancies({"a": 6}, {"a": (10, 1)}, held={"a": 4}, holds={})
    assert found.kinds == (HOLDS_KIND,) and (found.posted, found.difference, found.held_difference) == (10, 0, 4)


def test_open_holds_are_recorded_holds_and_holds_made_on_jobs_items_before_records():
    records = [
        hold("h1", "a", 4),
        hold("released", "a", 6, open_=False),  # given back by the pipeline
        hold("done", "a", 9, open_=False, settled_as="rendered"),  # settled: its hold was released
        UnreadableJob(job_id="bad-record", reason="heldCredits must be whole", user_id="b"),
    ]
    jobs = [
        job("h2", "a", 3),  # a hold on the Jobs item, made before the cut-off
        job("v2", "a", 5, reserved_as=None),  # posted to the ledger when it was made: not held
        job("old-done", "a", 9, settled_as="rendered"),
        job("none", "b", None, reserved_as=None),
        job("by-hand", "b", 8, created="2026-05-02T00:00:00.000Z"),  # after the cut-off: another writer's, holds nothing
        UnreadableJob(job_id="bad", reason="seconds must be a number", user_id="b"),
    ]
    holds = open_holds(records, jobs, LEGACY_BEFORE)
    assert holds == {"a": OpenHolds(7, ("h1", "h2")), "b": OpenHolds(0, (), ("bad", "bad-record"), ("by-hand",))}


def test_a_discrepancy_reports_each_kind_in_words_and_as_data():
    (both,) = find_discrepancies({"a": 3}, {"a": (10, 2)}, held={"a": 2}, holds={"a": OpenHolds(4, ("j1",))})
    assert both.kinds == (LEDGER_KIND, HOLDS_KIND)
    assert both.as_dict() == {
        "userId": "a",
        "kinds": ["ledger", "holds"],
        "remaining": 3,
        "held": 2,
        "posted": 5,
        "ledgerSum": 10,
        "difference": -5,
        "openHolds": 4,
        "holdJobs": ["j1"],
        "heldDifference": -2,
        "unreadableJobs": [],
        "duplicatedLedgerIds": [],
        "ignoredReservations": [],
    }
    assert both.summary() == (
        "ledger: posted 5 (remaining 3 + held 2) != ledger sum 10, difference -5; holds: held 2 != open holds 4 (jobs: j1), difference -2"
    )
    # Trusting the ledger restores both figures from the books; trusting the balance cannot explain a hold
    assert both.corrections()[TRUST_LEDGER] == "set remaining 3 -> 6, held 2 -> 4 (posted = ledger sum 10); no entry booked"
    assert both.corrections()[TRUST_BALANCE].startswith("not possible: held 2 is not the open holds 4")


def test_the_correction_explains_the_difference_with_exact_whole_credits():
    fix = correction_entry(Discrepancy("a", 3, 10, 2), "INC-1", "arn:me", "2026-01-01T00:00:00.000Z")
    assert (fix.type, fix.amount, fix.signed_amount, fix.actor) == (DEBIT, 7, -7, "arn:me")
    assert fix.description == "Audit correction: INC-1"
    opening = correction_entry(Discrepancy("b", 40, 0, 0), "v1 migration", "me", "2026-01-01T00:00:00.000Z")
    assert (opening.signed_amount, opening.description) == (40, "Opening balance: v1 migration")
    # The posted balance is what is explained, held included: remaining 3 + held 4 against a ledger of 10 is -3
    held = correction_entry(Discrepancy("c", 3, 10, 2, held=4, holds=OpenHolds(4, ("j",))), "INC-2", "me", NOW)
    assert held.signed_amount == -3


class Books:
    """What the Auditor reads and writes, in memory: one user's balance, ledger and unsettled jobs."""

    def __init__(self, remaining: int | None, held: int, entries: list[LedgerEntry], jobs: list) -> None:
        self.balance = None if remaining is None else StoredBalance("a", remaining, held, updated_at="2026-01-01T00:00:00.000Z")
        self.entries, self.jobs = entries, jobs  # jobs: settlement records with holds, or unreadable ones
        self.restored: list[tuple] = []
        self.corrections: list[tuple] = []

    def get_balance(self, user_id):
        return self.balance

    def ledger_for_user(self, user_id):
        return iter(self.entries)

    def open_holds(self, user_id=None):
        return iter(self.jobs)

    def open_reservations(self, user_id=None):
        return iter(())

    def restore(self, user_id, seen, held_seen, remaining, held, timestamp, actor, reason, version_seen=0):
        self.restored.append((user_id, seen, held_seen, remaining, held))
        self.balance = replace(self.balance or StoredBalance("a", None), remaining=remaining, held=held)

    def commit_correction(self, entry, balance_seen, held_seen, version_seen=0):
        self.corrections.append((entry.signed_amount, balance_seen, held_seen))
        self.entries.append(entry)


def fix(books: Books, trust: str):
    auditor = Auditor(books, books, clock=lambda: NOW, backoff=lambda: Backoff(sleep=lambda _: None))
    return auditor.fix("a", "INC-1", "me", dry_run=False, min_age=timedelta(seconds=60), trust=trust)


def test_trusting_the_ledger_sets_remaining_to_the_ledger_sum_less_the_open_holds():
    # Given 10 credits posted, a hold of 4 open, and remaining corrupted to 50
    books = Books(50, 4, [entry("a", CREDIT, 10)], [hold("j1", "a", 4)])
    # When it is fixed trusting the ledger
    result = fix(books, TRUST_LEDGER)
    # Then remaining is 10 - 4, held stays 4, each written on condition of the figures read
    assert result.status == FIXED and books.restored == [("a", 50, 4, 6, 4)]
    assert Auditor(books).audit_user("a") is None


def test_trusting_the_ledger_fixes_a_held_that_leaked():
    # Given a hold of 5 never released (no open reservation), the posted balance right
    books = Books(5, 5, [entry("a", CREDIT, 10)], [])
    assert fix(books, TRUST_LEDGER).status == FIXED
    assert books.restored == [("a", 5, 5, 10, 0)]


def test_trusting_the_balance_books_the_posted_difference_and_refuses_a_holds_discrepancy():
    ledger_only = Books(8, 4, [entry("a", CREDIT, 10)], [hold("j1", "a", 4)])
    assert fix(ledger_only, TRUST_BALANCE).status == FIXED
    assert ledger_only.corrections == [(2, 8, 4)]  # +2 explains posted 12, guarded on remaining 8 and held 4
    holds_off = Books(3, 7, [entry("a", CREDIT, 10)], [hold("j1", "a", 4)])
    refused = fix(holds_off, TRUST_BALANCE)
    assert refused.status == NOT_FIXABLE and holds_off.corrections == [] and holds_off.restored == []
    assert "no ledger entry explains a hold" in refused.explain(60)


def test_a_holds_discrepancy_beside_an_unreadable_job_is_not_guessed_at():
    # Given an unsettled job that cannot be read: its hold, if any, is unknown
    books = Books(6, 4, [entry("a", CREDIT, 10)], [UnreadableJob(job_id="bad", reason="damaged", user_id="a")])
    result = fix(books, TRUST_LEDGER)
    assert result.status == NOT_FIXABLE and books.restored == []
    assert "bad" in result.explain(60)


@pytest.mark.parametrize("trust", [TRUST_LEDGER, TRUST_BALANCE])
def test_a_recently_changed_balance_is_left_alone(trust):
    books = Books(50, 4, [entry("a", CREDIT, 10)], [hold("j1", "a", 4)])
    books.balance = replace(books.balance, updated_at="2026-05-31T23:59:30.000Z")  # 30 s before NOW: the indexes may lag
    assert fix(books, trust).status == "recently-changed" and books.restored == [] and books.corrections == []


def test_a_ledger_id_posted_twice_is_a_discrepancy_of_its_own_that_no_trust_fixes():
    """A job charged twice moves balance and ledger together: the ledger kind alone would stay silent."""
    charge = LedgerEntry("job:1:j:charge", "a", DEBIT, 3, "Render", "j", "2026-01-02T00:00:00.000Z")
    twice = LedgerEntry("job:1:j:charge", "a", DEBIT, 3, "Render", "j", "2026-01-03T00:00:00.000Z")
    books = Books(4, 0, [entry("a", CREDIT, 10), charge, twice], [])
    found = Auditor(books).audit_user("a")
    assert found.kinds == (POSTINGS_KIND,) and found.duplicated == ("job:1:j:charge",) and found.difference == 0
    assert "posted more than once" in found.summary()
    assert fix(books, TRUST_BALANCE).status == NOT_FIXABLE and books.corrections == [] and books.restored == []
