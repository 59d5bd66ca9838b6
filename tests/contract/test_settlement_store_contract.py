"""THE SHARED CONTRACT of the SettlementStore port (reconciler/service/ports.py).

Every test here runs twice, through the `tables` fixture (tests/contract/conftest.py): against the in-memory
fake (tests/fakes.py) and against DynamoDBStore on in-process moto with the dev stage's tables. The same
Given/When/Then, the same assertions: what the service relies on (the conditions, the errors they raise,
all-or-nothing transactions, the unsettled index) is one promise, and the fake cannot drift from the adapter.
Outcomes are read through the port's own `load_job` and `unsettled_jobs`, and stored state through each side's
raw view (table items for moto, the fake's accessors).

When the two disagree, the fake is wrong, unless the adapter breaks AWS's own semantics.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from reconciler.domain.errors import DamagedBalance, DamagedJob, LedgerEntryTaken
from reconciler.domain.events import VideoFailed, VideoRendered
from reconciler.domain.ledger import (
    CREDIT,
    DEBIT,
    LedgerEntry,
    adjustment_entry,
    adjustment_ledger_id,
    job_ledger_id,
    legacy_adjustment_ledger_id,
)
from reconciler.domain.pricing import PriceBook
from reconciler.domain.settlement import UNREAD, Balance, Conflict, JobRecord, Settlement, UnreadableJob, decide, plan_reservation
from reconciler.service.ports import BalanceChanged, StaleState

EARLIER = "2026-11-28T09:00:00.000Z"
NOW = "2026-11-28T12:00:00.000Z"
LATER = "2026-11-28T12:30:00.000Z"
OPENING = adjustment_ledger_id("opening-u")


# --- helpers: decisions made the service's way, against what the store loads ------------------------


def seed(tables, credits: int, user_id: str = "u") -> None:
    tables.store.commit_adjustment(adjustment_entry(user_id, credits, "opening balance", f"opening-{user_id}", "test", EARLIER))


def adjust(tables, credits: int, reference: str, user_id: str = "u") -> None:
    tables.store.commit_adjustment(adjustment_entry(user_id, credits, "meanwhile", reference, "test", NOW))


def rendered(job_id: str = "j", seconds: int = 3, event_id: str | None = None) -> VideoRendered:
    return VideoRendered(event_id or f"r-{job_id}", job_id, "u", Decimal(seconds), "test")


def failed(job_id: str = "j", event_id: str | None = None) -> VideoFailed:
    return VideoFailed(event_id or f"f-{job_id}", job_id, "u", "boom")


def decided(tables, event, request_id: str = "req-1", balance: Balance = UNREAD):
    """As the service decides: on the job alone (UNREAD), or on the balance a failed guard returned."""
    return decide(event, tables.store.load_job(event.job_id), balance, PriceBook(), NOW, request_id)


def reserve(tables, credits: int = 10, job_id: str = "j", timestamp: str = NOW):
    return plan_reservation(job_id, "u", "test", credits, tables.store.load_job(job_id), UNREAD, timestamp)


def legacy_reservation(tables, credits: int = 10, job_id: str = "j") -> None:
    """A reservation as v2 made it: a posted "reserve" debit in Ledger, remaining lowered, no reservedAs."""
    tables.put_ledger_entry(LedgerEntry(job_ledger_id(job_id, "reserve"), "u", DEBIT, credits, "Reservation (v2)", job_id, EARLIER))
    adjust(tables, -credits, f"v2-reserve-{job_id}")
    tables.put_job(jobId=job_id, userId="u", status="submitted", model="test", createdAt=EARLIER, reservedCredits=credits, unsettled="PENDING")


def ledger_ids(tables, user_id: str = "u") -> list[str]:
    """Sorted: entries of one timestamp have no order the two tables promise together."""
    return sorted(entry.ledger_id for entry in tables.ledger(user_id))


def entry(tables, ledger_id: str, user_id: str = "u") -> LedgerEntry:
    (found,) = [entry for entry in tables.ledger(user_id) if entry.ledger_id == ledger_id]
    return found


def snapshot(tables, job_id: str = "j") -> tuple:
    """Everything a refused write must leave as it was."""
    return tables.balance("u"), tables.held("u"), ledger_ids(tables), tables.job_item(job_id)


def assert_refused(tables, write: Callable[[], None], error: type[Exception] = StaleState) -> Exception:
    """The write raises `error` and leaves the balance, the hold, the ledger and the job as they were."""
    before = snapshot(tables)
    with pytest.raises(error) as refused:
        write()
    assert snapshot(tables) == before
    return refused.value


def taken(ledger_id: str) -> LedgerEntry:
    return LedgerEntry(ledger_id, "u", DEBIT, 1, "written by hand in v1", "", EARLIER)


# --- load_job: the one read ----------------------------------------------------------------------------


def test_load_job_of_an_unknown_job_is_none(tables):
    assert tables.store.load_job("nobody's job") is None


def test_load_job_reads_the_job_as_stored(tables):
    tables.put_job(jobId="j", userId="u", status="rendering", model="test", reservedCredits=4, reservedAs="hold", createdAt=EARLIER)
    assert tables.store.load_job("j") == JobRecord(
        "j", "u", status="rendering", model="test", reserved_credits=4, created_at=EARLIER, reserved_as="hold"
    )


# --- commit_settlement -----------------------------------------------------------------------------


def test_a_render_without_reservation_writes_balance_posting_and_job_together(tables):
    seed(tables, 12)
    settlement = decided(tables, rendered(seconds=3))
    tables.store.commit_settlement(settlement)
    assert (tables.balance("u"), tables.held("u")) == (9, 0)
    assert ledger_ids(tables) == [OPENING, job_ledger_id("j", "charge")]
    charge = entry(tables, job_ledger_id("j", "charge"))
    assert (charge.type, charge.amount, charge.event_id, charge.reference, charge.timestamp) == (DEBIT, 3, "r-j", "j", NOW)
    assert tables.store.load_job("j") == JobRecord(
        "j",
        "u",
        status="rendered",
        model="test",
        seconds=Decimal(3),
        created_at=NOW,
        settled_as="rendered",
        settled_by_event="r-j",
        settled_by_request="req-1",
        charged_credits=3,
        settled_at=NOW,
    )
    assert "unsettled" not in tables.job_item("j")


def test_a_render_of_a_held_job_releases_the_hold_posts_only_the_charge_and_leaves_the_index(tables):
    seed(tables, 100)
    tables.store.commit_reservation(reserve(tables, 10))
    tables.store.commit_settlement(decided(tables, rendered(seconds=3)))
    assert (tables.balance("u"), tables.held("u")) == (97, 0)
    assert ledger_ids(tables) == sorted([OPENING, job_ledger_id("j", "charge")])
    job = tables.store.load_job("j")
    assert (job.settled_as, job.status, job.reserved_credits, job.released_credits, job.charged_credits) == ("rendered", "rendered", 10, 10, 3)
    assert job.reserved_as == "hold" and job.held_credits == 0
    assert "unsettled" not in tables.job_item("j")
    assert list(tables.store.unsettled_jobs(LATER)) == []


def test_a_failure_of_a_held_job_releases_the_hold_and_posts_nothing(tables):
    seed(tables, 100)
    tables.store.commit_reservation(reserve(tables, 10))
    tables.store.commit_settlement(decided(tables, failed()))
    assert (tables.balance("u"), tables.held("u")) == (100, 0)
    assert ledger_ids(tables) == [OPENING]
    job = tables.store.load_job("j")
    assert (job.settled_as, job.status, job.refunded_credits, job.charged_credits) == ("failed", "failed", 10, 0)
    assert tables.job_item("j")["failureReason"] == "boom" and "unsettled" not in tables.job_item("j")


def test_a_render_of_a_v2_reservation_is_settled_as_it_was_made_a_release_and_a_charge(tables):
    seed(tables, 100)
    legacy_reservation(tables, 10)
    tables.store.commit_settlement(decided(tables, rendered(seconds=3)))
    assert (tables.balance("u"), tables.held("u")) == (97, 0)
    postings = {posting: entry(tables, job_ledger_id("j", posting)) for posting in ("reserve", "release", "charge")}
    assert [(e.type, e.amount) for e in postings.values()] == [(DEBIT, 10), (CREDIT, 10), (DEBIT, 3)]
    assert "unsettled" not in tables.job_item("j")


def test_a_failure_of_a_v2_reservation_refunds_it_with_a_posting(tables):
    seed(tables, 100)
    legacy_reservation(tables, 10)
    tables.store.commit_settlement(decided(tables, failed()))
    assert (tables.balance("u"), tables.held("u")) == (100, 0)
    refund = entry(tables, job_ledger_id("j", "refund"))
    assert (refund.type, refund.amount) == (CREDIT, 10)


def test_a_failure_without_reservation_records_the_job_and_touches_no_balance(tables):
    tables.store.commit_settlement(decided(tables, failed()))
    assert tables.store.load_job("j").settled_as == "failed"
    assert tables.balance("u") is None and ledger_ids(tables) == []


def test_a_users_postings_come_back_in_time_order(tables):
    seed(tables, 100)
    for job_id, moment in (("late", LATER), ("early", EARLIER), ("noon", NOW)):
        event = rendered(job_id)
        tables.store.commit_settlement(decide(event, None, UNREAD, PriceBook(), moment, "req"))
    charges = [entry.reference for entry in tables.ledger("u") if entry.ledger_id != OPENING]
    assert charges == ["early", "noon", "late"]


@pytest.mark.parametrize("reserved", [False, True], ids=["new-job", "held-job"])
def test_a_second_commit_of_the_same_settlement_is_stale_and_writes_nothing(tables, reserved):
    seed(tables, 100)
    if reserved:
        tables.store.commit_reservation(reserve(tables, 10))
    settlement = decided(tables, rendered())
    tables.store.commit_settlement(settlement)
    assert_refused(tables, lambda: tables.store.commit_settlement(settlement))


@pytest.mark.parametrize(
    "pipeline_write",
    [{"status": "rendered"}, {"updatedAt": NOW}, {"reservedCredits": 5}, {"reservedCredits": 10, "reservedAs": "hold"}],
    ids=["status", "updatedAt", "reservation", "reservation-kind"],
)
def test_a_job_written_since_it_was_read_is_stale_and_nothing_is_written(tables, pipeline_write):
    seed(tables, 100)
    pipeline_job = dict(
        jobId="j", userId="u", status="rendering", model="test", createdAt=EARLIER, updatedAt=EARLIER, reservedCredits=10, unsettled="PENDING"
    )
    tables.put_job(**pipeline_job)
    settlement = decided(tables, rendered())
    tables.put_job(**{**pipeline_job, **pipeline_write})
    refused = assert_refused(tables, lambda: tables.store.commit_settlement(settlement))
    assert not isinstance(refused, BalanceChanged)


def test_a_job_settled_by_another_event_since_it_was_read_is_stale(tables):
    seed(tables, 100)
    first, second = decided(tables, rendered(event_id="a")), decided(tables, failed(event_id="b"))
    tables.store.commit_settlement(first)
    assert_refused(tables, lambda: tables.store.commit_settlement(second))
    assert tables.store.load_job("j").settled_by_event == "a"


def test_a_v1_entry_under_a_postings_id_in_ledger_does_not_block_the_settlement(tables):
    # Job postings live in UserLedger; exactly-once comes from the job's condition, not from ledger ids.
    seed(tables, 100)
    tables.put_ledger_entry(taken(job_ledger_id("j", "charge")))
    tables.store.commit_settlement(decided(tables, rendered(seconds=3)))
    assert tables.store.load_job("j").is_settled and tables.balance("u") == 97


# --- damaged balances: named, never a crash, never a truncated decision ----------------------------------


DAMAGED_FIGURES = {
    "text": ("remaining", "25"),
    "boolean": ("remaining", True),
    "fraction": ("remaining", Decimal("2.5")),  # a number to DynamoDB: refused only when it comes back with a guard
    "held-text": ("held", "5"),
}


def damage(tables, kind: str) -> dict:
    attribute, value = DAMAGED_FIGURES[kind]
    tables.put_balance(userId="u", **{"remaining": Decimal(2), "held": Decimal(5), attribute: value})
    return tables.balance_item("u")


def assert_damage_named(tables, kind: str, write: Callable[[], None]) -> None:
    before = damage(tables, kind), tables.job_item("j"), ledger_ids(tables)
    with pytest.raises(DamagedBalance) as refused:
        write()
    assert refused.value.field == "balance" and refused.value.attribute == DAMAGED_FIGURES[kind][0]
    assert (tables.balance_item("u"), tables.job_item("j"), ledger_ids(tables)) == before


@pytest.mark.parametrize("kind", ["text", "boolean", "fraction"])
def test_a_settlement_against_a_damaged_balance_is_refused_naming_the_attribute(tables, kind):
    damage(tables, kind)
    assert_damage_named(tables, kind, lambda: tables.store.commit_settlement(decided(tables, rendered(seconds=3))))


@pytest.mark.parametrize("kind", ["text", "boolean", "held-text"])
def test_a_reservation_against_a_damaged_balance_is_refused_naming_the_attribute(tables, kind):
    assert_damage_named(tables, kind, lambda: tables.store.commit_reservation(reserve(tables, credits=1)))


@pytest.mark.parametrize("kind", ["text", "boolean"])
def test_an_adjustment_to_a_damaged_balance_is_refused_naming_the_attribute(tables, kind):
    entry = adjustment_entry("u", 5, "top-up", "ref-damaged", "test", NOW)
    assert_damage_named(tables, kind, lambda: tables.store.commit_adjustment(entry))


# --- the overdraft decision's balance guard --------------------------------------------------------


@pytest.mark.parametrize("opening", [2, None], ids=["short", "no-balance"])
def test_a_debit_decided_without_a_read_that_the_balance_does_not_cover_is_refused_with_the_balance(tables, opening):
    if opening is not None:
        seed(tables, opening)
    settlement = decided(tables, rendered(seconds=3))
    assert not settlement.is_overdraft and settlement.balance_after is None
    refused = assert_refused(tables, lambda: tables.store.commit_settlement(settlement), BalanceChanged)
    assert refused.balance == opening
    assert tables.job_item("j") is None


def test_a_debit_decided_again_on_the_returned_balance_settles_into_overdraft(tables):
    seed(tables, 2)
    with pytest.raises(BalanceChanged) as short:
        tables.store.commit_settlement(decided(tables, rendered(seconds=3)))
    settlement = decided(tables, rendered(seconds=3), balance=short.value.balance)
    assert settlement.is_overdraft and settlement.balance_after == -1
    tables.store.commit_settlement(settlement)
    assert tables.balance("u") == -1 and tables.store.load_job("j").settled_into_overdraft is True


@pytest.mark.parametrize(
    ("opening", "meanwhile", "overdraft"),
    [(4, -2, False), (2, 5, True)],
    ids=["covered-then-short", "short-then-covered"],
)
def test_a_settlement_whose_overdraft_decision_the_balance_no_longer_supports_is_refused_with_the_balance(tables, opening, meanwhile, overdraft):
    seed(tables, opening)
    settlement = decided(tables, rendered(seconds=3), balance=opening)
    assert settlement.is_overdraft is overdraft
    adjust(tables, meanwhile, "meanwhile-1")
    refused = assert_refused(tables, lambda: tables.store.commit_settlement(settlement), BalanceChanged)
    assert refused.balance == opening + meanwhile
    assert tables.job_item("j") is None


@pytest.mark.parametrize(
    ("opening", "meanwhile", "after"),
    [(12, 5, 14), (12, -8, 1), (2, -1, -2), (1, 1, -1)],
    ids=["covered-stays-covered-up", "covered-stays-covered-down", "short-stays-short-down", "short-stays-short-up"],
)
def test_a_balance_that_moved_without_crossing_the_threshold_does_not_refuse_the_settlement(tables, opening, meanwhile, after):
    seed(tables, opening)
    settlement = decided(tables, rendered(seconds=3), balance=opening)
    adjust(tables, meanwhile, "meanwhile-1")
    tables.store.commit_settlement(settlement)
    assert tables.balance("u") == after
    assert tables.store.load_job("j").settled_into_overdraft is settlement.is_overdraft


def test_a_settlement_into_overdraft_is_recorded_as_one_and_a_missing_balance_counts_as_zero(tables):
    settlement = decided(tables, rendered(seconds=3), balance=None)
    assert settlement.is_overdraft and settlement.balance_before is None
    tables.store.commit_settlement(settlement)
    assert tables.balance("u") == -3
    assert tables.store.load_job("j").settled_into_overdraft is True


def test_a_missing_balance_that_appears_and_covers_the_debit_makes_an_overdraft_decision_stale(tables):
    settlement = decided(tables, rendered(seconds=3), balance=None)
    seed(tables, 10)
    refused = assert_refused(tables, lambda: tables.store.commit_settlement(settlement), BalanceChanged)
    assert refused.balance == 10
    assert tables.balance("u") == 10 and tables.job_item("j") is None


def test_a_held_render_costing_more_than_its_hold_guards_the_difference(tables):
    # Given 2 credits left after a hold of 10, and a render that costs 13: 3 more than the hold
    seed(tables, 12)
    tables.store.commit_reservation(reserve(tables, 10))
    settlement = decided(tables, rendered(seconds=13))
    assert settlement.balance_delta == -3
    refused = assert_refused(tables, lambda: tables.store.commit_settlement(settlement), BalanceChanged)
    assert refused.balance == 2
    tables.store.commit_settlement(decided(tables, rendered(seconds=13), balance=refused.balance))
    assert (tables.balance("u"), tables.held("u")) == (-1, 0)
    assert tables.store.load_job("j").settled_into_overdraft is True


# --- record_conflict ---------------------------------------------------------------------------------


def test_a_conflict_is_recorded_once_per_event_id_and_moves_nothing(tables):
    seed(tables, 100)
    tables.store.commit_settlement(decided(tables, rendered()))
    balance, entries = tables.balance("u"), ledger_ids(tables)
    conflict = decided(tables, failed(event_id="f1"), request_id="req-2")
    assert isinstance(conflict, Conflict)
    tables.store.record_conflict(conflict)
    job = tables.store.load_job("j")
    assert (job.conflict_event_ids, job.conflict_request_ids, job.settled_as) == ({"f1"}, {"req-2"}, "rendered")
    item = tables.job_item("j")
    assert (item["conflictCount"], item["lastConflictType"], item["lastConflictAt"]) == (1, "failed", NOW)
    # The same event again: refused, counted once
    assert_refused(tables, lambda: tables.store.record_conflict(conflict))
    assert tables.job_item("j")["conflictCount"] == 1
    # Another event: counted too
    tables.store.record_conflict(decided(tables, failed(event_id="f2"), request_id="req-3"))
    job = tables.store.load_job("j")
    assert job.conflict_event_ids == {"f1", "f2"} and job.conflict_request_ids == {"req-2", "req-3"}
    assert tables.job_item("j")["conflictCount"] == 2
    assert (tables.balance("u"), ledger_ids(tables)) == (balance, entries)


def test_a_conflict_without_a_request_id_records_the_event_only(tables):
    tables.store.commit_settlement(decided(tables, failed()))
    tables.store.record_conflict(decided(tables, rendered(event_id="r2"), request_id=None))
    job = tables.store.load_job("j")
    assert job.conflict_event_ids == {"r2"} and job.conflict_request_ids == frozenset()


def test_a_conflict_with_a_job_that_is_not_settled_as_read_is_stale_and_creates_nothing(tables):
    settled_as_read = JobRecord("j", "u", status="rendered", settled_as="rendered", settled_by_event="r-j")
    conflict = Conflict(failed(event_id="f1"), settled_as_read, NOW, "req-2")
    assert_refused(tables, lambda: tables.store.record_conflict(conflict))
    assert tables.job_item("j") is None


# --- commit_reservation: a hold ----------------------------------------------------------------------


def test_a_reservation_of_a_new_job_holds_the_credits_posts_nothing_and_creates_the_job_in_the_index(tables):
    seed(tables, 100)
    tables.store.commit_reservation(reserve(tables, 10))
    assert (tables.balance("u"), tables.held("u")) == (90, 10)
    assert ledger_ids(tables) == [OPENING]
    assert tables.store.load_job("j") == JobRecord(
        "j", "u", status="submitted", model="test", reserved_credits=10, created_at=NOW, reserved_as="hold"
    )
    assert tables.job_item("j")["unsettled"] == "PENDING"


@pytest.mark.parametrize("created_at", [EARLIER, None], ids=["keeps-createdAt", "sets-createdAt"])
def test_a_reservation_of_an_existing_job_adds_the_hold_and_the_marker_and_keeps_the_pipelines_fields(tables, created_at):
    seed(tables, 100)
    tables.put_job(jobId="j", userId="u", status="rendering", model="test", createdAt=created_at, updatedAt=EARLIER)
    tables.store.commit_reservation(reserve(tables, 10))
    job = tables.store.load_job("j")
    assert (tables.balance("u"), tables.held("u")) == (90, 10)
    assert (job.status, job.reserved_credits, job.reserved_as, job.created_at, job.updated_at) == (
        "rendering",
        10,
        "hold",
        created_at or NOW,
        EARLIER,
    )
    assert tables.job_item("j")["unsettled"] == "PENDING"


@pytest.mark.parametrize("existing", [False, True], ids=["new-job", "existing-job"])
def test_a_reservation_made_twice_from_the_same_read_is_stale_the_second_time(tables, existing):
    seed(tables, 100)
    if existing:
        tables.put_job(jobId="j", userId="u", status="submitted", createdAt=EARLIER)
    first, second = reserve(tables, 10), reserve(tables, 10)
    tables.store.commit_reservation(first)
    refused = assert_refused(tables, lambda: tables.store.commit_reservation(second))
    assert not isinstance(refused, BalanceChanged)
    assert (tables.balance("u"), tables.held("u")) == (90, 10)


@pytest.mark.parametrize("opening", [10, None], ids=["short", "no-balance"])
def test_a_reservation_the_balance_does_not_cover_is_refused_with_the_balance_and_moves_nothing(tables, opening):
    if opening is not None:
        seed(tables, opening)
    plan = reserve(tables, 10)
    if opening is not None:
        adjust(tables, -5, "chargeback-1")
    refused = assert_refused(tables, lambda: tables.store.commit_reservation(plan), BalanceChanged)
    assert refused.balance == (None if opening is None else 5)
    assert tables.job_item("j") is None


def test_a_reservation_of_a_job_settled_since_it_was_read_is_stale(tables):
    seed(tables, 100)
    tables.put_job(jobId="j", userId="u", status="rendering", createdAt=EARLIER)
    plan = reserve(tables, 10)
    tables.store.commit_settlement(decided(tables, failed()))
    assert_refused(tables, lambda: tables.store.commit_reservation(plan))


# --- commit_adjustment -------------------------------------------------------------------------------


def test_an_adjustment_is_written_once_per_reference(tables):
    gift = adjustment_entry("u", 5, "gift", "gift-1", "test", NOW)
    tables.store.commit_adjustment(gift)
    assert (tables.balance("u"), tables.ledger("u")) == (5, [gift])
    again = adjustment_entry("u", 5, "gift again", "gift-1", "test", LATER)
    refused = assert_refused(tables, lambda: tables.store.commit_adjustment(again), LedgerEntryTaken)
    assert refused.ledger_ids == [gift.ledger_id]


def test_an_adjustment_applied_under_the_legacy_id_is_refused_naming_that_id(tables):
    tables.put_ledger_entry(taken(legacy_adjustment_ledger_id("gift-1")))
    gift = adjustment_entry("u", 5, "gift", "gift-1", "test", NOW)
    refused = assert_refused(tables, lambda: tables.store.commit_adjustment(gift), LedgerEntryTaken)
    assert refused.ledger_ids == [legacy_adjustment_ledger_id("gift-1")]
    assert tables.balance("u") is None and ledger_ids(tables) == [legacy_adjustment_ledger_id("gift-1")]


def test_an_adjustment_needs_no_balance_and_may_take_it_below_zero(tables):
    tables.store.commit_adjustment(adjustment_entry("u", -5, "chargeback", "cb-1", "test", NOW))
    assert tables.balance("u") == -5 and tables.store.load_job("j") is None


# --- unsettled_jobs ----------------------------------------------------------------------------------


def test_unsettled_jobs_are_those_with_the_marker_created_up_to_the_cutoff_oldest_first(tables):
    seed(tables, 100)
    for job_id, created_at, marker in [
        ("b-at-cutoff", NOW, "PENDING"),
        ("c-after-cutoff", LATER, "PENDING"),
        ("d-no-marker", EARLIER, None),
        ("e-other-marker", EARLIER, "DONE"),
        ("f-oldest", "2026-11-28T08:00:00.000Z", "PENDING"),
    ]:
        tables.put_job(jobId=job_id, userId="u", status="rendering", createdAt=created_at, unsettled=marker)
    tables.store.commit_reservation(reserve(tables, 10, job_id="g-reserved", timestamp="2026-11-28T10:00:00.000Z"))
    tables.store.commit_reservation(reserve(tables, 10, job_id="h-reserved-then-settled", timestamp=EARLIER))
    tables.store.commit_settlement(decided(tables, failed("h-reserved-then-settled")))
    jobs = list(tables.store.unsettled_jobs(NOW))
    assert [job.job_id for job in jobs] == ["f-oldest", "g-reserved", "b-at-cutoff"]
    assert all(isinstance(job, JobRecord) and job.user_id == "u" for job in jobs)
    assert jobs[1].reserved_credits == 10


@pytest.mark.parametrize(
    ("damage", "names", "shown_status"),
    [
        ({"reservedCredits": Decimal("1.5")}, "reservedCredits", "rendering"),
        ({"status": Decimal(7)}, "status", "Decimal('7')"),
        ({"userId": None}, "userId", "rendering"),
        ({"conflictEventIds": ["e1"]}, "conflictEventIds", "rendering"),
    ],
    ids=["fractional-reservation", "numeric-status", "no-owner", "list-not-set"],
)
def test_a_damaged_job_is_a_damaged_job_on_load_and_unreadable_in_the_index_without_stopping_it(tables, damage, names, shown_status):
    tables.put_job(**{"jobId": "j", "userId": "u", "status": "rendering", "createdAt": EARLIER, "unsettled": "PENDING", **damage})
    tables.put_job(jobId="k", userId="u", status="rendering", createdAt=NOW, unsettled="PENDING")
    with pytest.raises(DamagedJob, match=names) as damaged:
        tables.store.load_job("j")
    unreadable, readable = tables.store.unsettled_jobs(LATER)
    assert unreadable == UnreadableJob(
        job_id="j",
        reason=str(damaged.value),
        user_id="" if "userId" in damage else "u",
        status=shown_status,
        created_at=EARLIER,
    )
    assert isinstance(readable, JobRecord) and readable.job_id == "k"


# --- whole transactions ------------------------------------------------------------------------------


def test_a_refused_settlement_leaves_no_part_of_itself_behind(tables):
    # Given a v2 reservation of 10 and a render costing 13, decided as covered, while only 2 credits are left
    seed(tables, 12)
    legacy_reservation(tables, 10)
    settlement = decided(tables, rendered(seconds=13))
    assert isinstance(settlement, Settlement) and len(settlement.entries) == 2
    # Then the balance guard refuses it, and neither posting, nor the balance, nor the job moved
    assert_refused(tables, lambda: tables.store.commit_settlement(settlement), BalanceChanged)
    assert job_ledger_id("j", "release") not in ledger_ids(tables)


# --- the reads the CLI's Adjuster makes besides the port (ops/adjustments.py) ------------------------


def test_the_adjusters_reads_see_the_balance_item_and_single_ledger_entries(tables):
    assert tables.operations.get_balance("u") is None and tables.operations.get_ledger_entry(adjustment_ledger_id("gift-1")) is None
    gift = adjustment_entry("u", 5, "gift", "gift-1", "test", NOW)
    tables.store.commit_adjustment(gift)
    expected = {"userId": "u", "remaining": 5, "held": 0, "updatedAt": NOW, "version": 1, "lastLedgerEntry": gift.ledger_id}
    assert tables.operations.get_balance("u") == expected
    assert tables.operations.get_ledger_entry(gift.ledger_id) == gift


def test_every_balance_write_moves_the_version(tables):
    """A repair is conditioned on the version it read: each kind of balance write must move it."""
    seed(tables, 20)
    tables.store.commit_reservation(reserve(tables, credits=5))
    tables.store.commit_settlement(decided(tables, rendered(seconds=3)))
    adjust(tables, 1, "gift-2")
    assert tables.operations.get_balance("u")["version"] == 4


# --- a release never takes more than is held ---------------------------------------------------------------


@pytest.mark.parametrize("held", [None, 3], ids=["nothing-held", "less-held"])
@pytest.mark.parametrize("event", [rendered, failed], ids=["render", "failure"])
def test_a_job_claiming_a_hold_the_balance_never_had_is_damaged_and_nothing_moves(tables, held, event):
    """Another writer marked the job held (10 credits) but never moved the balance: the release is refused."""
    tables.put_balance(userId="u", remaining=Decimal(50), **({"held": Decimal(held)} if held is not None else {}))
    tables.put_job(jobId="j", userId="u", status="rendering", createdAt=EARLIER, reservedCredits=10, reservedAs="hold", unsettled="PENDING")
    before = tables.balance_item("u"), tables.job_item("j"), ledger_ids(tables)
    with pytest.raises(DamagedJob) as refused:
        tables.store.commit_settlement(decided(tables, event()))
    assert "releases a hold of 10 credits" in refused.value.reason
    assert (tables.balance_item("u"), tables.job_item("j"), ledger_ids(tables)) == before
