"""THE SHARED CONTRACT of the SettlementStore port (reconciler/service/ports.py).

Every test here runs twice, through the `tables` fixture: against the in-memory fake (tests/fakes.py) in
tests/unit/contract, and against DynamoDBStore on in-process moto with the dev stage's tables in tests/integration/contract. The same
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

from reconciler.contract import STAGE_LIMITS
from reconciler.domain.errors import DamagedBalance, DamagedJob, LedgerEntryTaken
from reconciler.domain.events import VideoFailed, VideoRendered
from reconciler.domain.holds import HoldRequest, plan_hold, plan_release
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
from reconciler.domain.records import SettledFacts, SettlementRecord
from reconciler.domain.settlement import UNREAD, Balance, Conflict, JobRecord, JobView, Known, Settlement, UnreadableJob, decide
from reconciler.domain.stored import StoredBalance
from reconciler.service.ports import BalanceChanged, StaleState

EARLIER = "2026-11-28T09:00:00.000Z"
NOW = "2026-11-28T12:00:00.000Z"
LATER = "2026-11-28T12:30:00.000Z"
OPENING = adjustment_ledger_id("opening-u")
# Both sides use the dev stage's cut-off: EARLIER is before it (a reservation on the Jobs item then is v2's own).
LEGACY_BEFORE = STAGE_LIMITS["dev"].legacy_reservations_before
assert EARLIER < LEGACY_BEFORE


# --- helpers: decisions made the service's way, against what the store loads ------------------------


def seed(tables, credits: int, user_id: str = "u") -> None:
    tables.store.commit_adjustment(adjustment_entry(user_id, credits, "opening balance", f"opening-{user_id}", "test", EARLIER))


def adjust(tables, credits: int, reference: str, user_id: str = "u") -> None:
    tables.store.commit_adjustment(adjustment_entry(user_id, credits, "meanwhile", reference, "test", NOW))


def rendered(job_id: str = "j", seconds: int = 3, event_id: str | None = None) -> VideoRendered:
    return VideoRendered(event_id or f"r-{job_id}", job_id, "u", Decimal(seconds), "test")


def failed(job_id: str = "j", event_id: str | None = None) -> VideoFailed:
    return VideoFailed(event_id or f"f-{job_id}", job_id, "u", "boom")


def decided(tables, event, request_id: str = "req-1", balance: Balance = UNREAD, job: JobView = UNREAD, moment: str = NOW):
    """As the service decides: a first attempt on the job's record alone (the Jobs item UNREAD), a retry on the
    record and the Jobs item (`decided_on_the_job`), and on the balance a failed guard returned."""
    return decide(event, Known(tables.store.load_record(event.job_id), job, balance), PriceBook(), moment, request_id, LEGACY_BEFORE)


def decided_on_the_job(tables, event, request_id: str = "req-1", balance: Balance = UNREAD):
    return decided(tables, event, request_id, balance, job=tables.store.load_job(event.job_id))


def reserve(tables, credits: int = 10, job_id: str = "j", timestamp: str = NOW):
    request = HoldRequest.sized(job_id, "u", "test", PriceBook(), credits=credits)
    return plan_hold(request, tables.store.load_record(job_id), timestamp)


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
    return tables.balance("u"), tables.held("u"), ledger_ids(tables), tables.job_item(job_id), tables.record_item(job_id)


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
    # The proof of settlement is the record, which only the reconciler writes
    assert tables.store.load_record("j") == SettlementRecord(
        "j", "u", settled_as="rendered", settled_at=NOW, settled_by_event="r-j", settled_by_request="req-1", charged_credits=3
    )
    assert tables.record_item("j")["chargedUnitPrice"] == Decimal(1)


def test_a_render_of_a_held_job_releases_the_hold_posts_only_the_charge_and_leaves_the_index(tables):
    seed(tables, 100)
    tables.store.commit_reservation(reserve(tables, 10))
    tables.store.commit_settlement(decided(tables, rendered(seconds=3)))
    assert (tables.balance("u"), tables.held("u")) == (97, 0)
    assert ledger_ids(tables) == sorted([OPENING, job_ledger_id("j", "charge")])
    record = tables.store.load_record("j")
    assert (record.settled_as, record.held_credits, record.released_credits, record.charged_credits, record.open_hold) == ("rendered", 10, 10, 3, 0)
    assert "holdUser" not in tables.record_item("j")
    job = tables.store.load_job("j")
    assert (job.settled_as, job.status, job.released_credits, job.charged_credits) == ("rendered", "rendered", 10, 3)
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
    assert tables.store.load_record("j").open_hold == 0


def test_a_first_attempt_that_did_not_read_a_job_with_a_v2_reservation_is_refused(tables):
    """Decided on the record alone, it assumed no reservation from before records: the Jobs item says otherwise."""
    seed(tables, 100)
    legacy_reservation(tables, 10)
    assert_refused(tables, lambda: tables.store.commit_settlement(decided(tables, rendered(seconds=3))))


def test_a_render_of_a_v2_reservation_is_settled_as_it_was_made_a_release_and_a_charge(tables):
    seed(tables, 100)
    legacy_reservation(tables, 10)
    tables.store.commit_settlement(decided_on_the_job(tables, rendered(seconds=3)))
    assert (tables.balance("u"), tables.held("u")) == (97, 0)
    postings = {posting: entry(tables, job_ledger_id("j", posting)) for posting in ("reserve", "release", "charge")}
    assert [(e.type, e.amount) for e in postings.values()] == [(DEBIT, 10), (CREDIT, 10), (DEBIT, 3)]
    assert "unsettled" not in tables.job_item("j")


def test_a_failure_of_a_v2_reservation_refunds_it_with_a_posting(tables):
    seed(tables, 100)
    legacy_reservation(tables, 10)
    tables.store.commit_settlement(decided_on_the_job(tables, failed()))
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
        tables.store.commit_settlement(decided(tables, event, "req", moment=moment))
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
    settlement = decided_on_the_job(tables, rendered())
    tables.put_job(**{**pipeline_job, **pipeline_write})
    refused = assert_refused(tables, lambda: tables.store.commit_settlement(settlement))
    assert not isinstance(refused, BalanceChanged)


def test_a_job_settled_by_another_event_since_it_was_read_is_stale(tables):
    seed(tables, 100)
    first, second = decided(tables, rendered(event_id="a")), decided(tables, failed(event_id="b"))
    tables.store.commit_settlement(first)
    assert_refused(tables, lambda: tables.store.commit_settlement(second))
    assert tables.store.load_job("j").settled_by_event == "a" == tables.store.load_record("j").settled_by_event


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
    record = tables.store.load_record("j")
    assert (record.conflict_event_ids, record.conflict_request_ids, record.settled_as) == ({"f1"}, {"req-2"}, "rendered")
    item = tables.record_item("j")
    assert (item["conflictCount"], item["lastConflictType"], item["lastConflictAt"]) == (1, "failed", NOW)
    # The same event again: refused, counted once
    assert_refused(tables, lambda: tables.store.record_conflict(conflict))
    assert tables.record_item("j")["conflictCount"] == 1
    # Another event: counted too
    tables.store.record_conflict(decided(tables, failed(event_id="f2"), request_id="req-3"))
    record = tables.store.load_record("j")
    assert record.conflict_event_ids == {"f1", "f2"} and record.conflict_request_ids == {"req-2", "req-3"}
    assert tables.record_item("j")["conflictCount"] == 2
    assert (tables.balance("u"), ledger_ids(tables)) == (balance, entries)


def test_a_conflict_without_a_request_id_records_the_event_only(tables):
    tables.store.commit_settlement(decided(tables, failed()))
    tables.store.record_conflict(decided(tables, rendered(event_id="r2"), request_id=None))
    record = tables.store.load_record("j")
    assert record.conflict_event_ids == {"r2"} and record.conflict_request_ids == frozenset()


def test_a_conflict_with_a_job_settled_before_records_is_recorded_on_its_jobs_item(tables):
    tables.put_job(jobId="j", userId="u", status="rendered", settledAs="rendered", settledByEvent="r-j", createdAt=EARLIER)
    conflict = decided_on_the_job(tables, failed(event_id="f1"))
    assert isinstance(conflict, Conflict) and conflict.settled.source == "job"
    tables.store.record_conflict(conflict)
    assert tables.store.load_job("j").conflict_event_ids == {"f1"} and tables.record_item("j") is None


def test_a_conflict_with_a_job_that_is_not_settled_as_read_is_stale_and_creates_nothing(tables):
    settled_as_read = SettledFacts(settled_as="rendered", settled_by_event="r-j")
    conflict = Conflict(failed(event_id="f1"), settled_as_read, NOW, "req-2")
    assert_refused(tables, lambda: tables.store.record_conflict(conflict))
    assert tables.job_item("j") is None and tables.record_item("j") is None


# --- commit_reservation: a hold ----------------------------------------------------------------------


def test_a_hold_moves_the_credits_to_held_posts_nothing_and_records_itself_at_the_price_in_force(tables):
    seed(tables, 100)
    tables.store.commit_reservation(reserve(tables, 10))
    assert (tables.balance("u"), tables.held("u")) == (90, 10)
    assert ledger_ids(tables) == [OPENING]
    expected = SettlementRecord("j", "u", held_credits=10, hold_open=True, held_at=NOW, hold_model="test", unit_price=Decimal(1))
    assert tables.store.load_record("j") == expected
    assert tables.record_item("j")["holdUser"] == "u"  # in the open-holds index
    assert tables.job_item("j") is None  # the Jobs item is the pipeline's


@pytest.mark.parametrize("existing", [False, True], ids=["new-job", "pipelines-job"])
def test_a_hold_made_twice_from_the_same_read_is_stale_the_second_time(tables, existing):
    seed(tables, 100)
    if existing:
        tables.put_job(jobId="j", userId="u", status="submitted", createdAt=NOW, unsettled="PENDING")
    first, second = reserve(tables, 10), reserve(tables, 10)
    tables.store.commit_reservation(first)
    refused = assert_refused(tables, lambda: tables.store.commit_reservation(second))
    assert not isinstance(refused, BalanceChanged)
    assert (tables.balance("u"), tables.held("u")) == (90, 10)


@pytest.mark.parametrize("opening", [10, None], ids=["short", "no-balance"])
def test_a_hold_the_balance_does_not_cover_is_refused_with_the_balance_and_moves_nothing(tables, opening):
    if opening is not None:
        seed(tables, opening)
    plan = reserve(tables, 10)
    if opening is not None:
        adjust(tables, -5, "chargeback-1")
    refused = assert_refused(tables, lambda: tables.store.commit_reservation(plan), BalanceChanged)
    assert refused.balance == (None if opening is None else 5)
    assert tables.record_item("j") is None


def test_a_hold_of_a_job_settled_since_it_was_read_is_stale(tables):
    seed(tables, 100)
    plan = reserve(tables, 10)
    tables.store.commit_settlement(decided(tables, failed()))
    assert_refused(tables, lambda: tables.store.commit_reservation(plan))


# --- commit_release: a hold given back ----------------------------------------------------------------


def test_a_release_gives_the_hold_back_posts_nothing_and_closes_it(tables):
    seed(tables, 100)
    tables.store.commit_reservation(reserve(tables, 10))
    tables.store.commit_release(plan_release("j", "u", tables.store.load_record("j"), LATER))
    assert (tables.balance("u"), tables.held("u")) == (100, 0) and ledger_ids(tables) == [OPENING]
    record = tables.store.load_record("j")
    assert (record.open_hold, record.hold_released_at, record.held_credits) == (0, LATER, 10)
    assert "holdUser" not in tables.record_item("j")


def test_a_release_of_a_hold_settled_since_it_was_read_is_stale(tables):
    seed(tables, 100)
    tables.store.commit_reservation(reserve(tables, 10))
    release = plan_release("j", "u", tables.store.load_record("j"), LATER)
    tables.store.commit_settlement(decided(tables, rendered(seconds=3)))
    assert_refused(tables, lambda: tables.store.commit_release(release))
    assert (tables.balance("u"), tables.held("u")) == (97, 0)


# --- the Jobs item belongs to the pipeline -------------------------------------------------------------


def test_a_settlement_survives_a_whole_item_save_of_the_job_and_a_second_commit_is_refused_by_the_record(tables):
    seed(tables, 100)
    tables.store.commit_reservation(reserve(tables, 10))
    settlement = decided(tables, rendered(seconds=3))
    tables.store.commit_settlement(settlement)
    # The pipeline writes its item whole: the mirror of the settlement is gone, the marker is back
    tables.put_job(jobId="j", userId="u", status="rendered", model="test", createdAt=EARLIER, unsettled="PENDING")
    assert tables.store.load_record("j").is_settled
    assert_refused(tables, lambda: tables.store.commit_settlement(settlement))


def test_repair_mirror_writes_the_settlement_back_and_takes_the_job_out_of_the_index(tables):
    seed(tables, 100)
    tables.store.commit_settlement(decided(tables, rendered(seconds=3)))
    tables.put_job(jobId="j", userId="u", status="rendering", model="test", createdAt=EARLIER, unsettled="PENDING")
    tables.store.repair_mirror("j", tables.store.load_record("j").facts())
    job = tables.store.load_job("j")
    assert (job.settled_as, job.status, job.settled_by_event, job.charged_credits) == ("rendered", "rendered", "r-j", 3)
    assert list(tables.store.unsettled_jobs(LATER)) == [] and tables.balance("u") == 97


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
    tables.put_job(jobId="g-settled", userId="u", status="rendering", createdAt=EARLIER, unsettled="PENDING")
    tables.store.commit_settlement(decided(tables, failed("g-settled")))
    jobs = list(tables.store.unsettled_jobs(NOW))
    assert [job.job_id for job in jobs] == ["f-oldest", "b-at-cutoff"]
    assert all(isinstance(job, JobRecord) and job.user_id == "u" and job.unsettled for job in jobs)


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
    settlement = decided_on_the_job(tables, rendered(seconds=13))
    assert isinstance(settlement, Settlement) and len(settlement.entries) == 2
    # Then the balance guard refuses it, and neither posting, nor the balance, nor the job moved
    assert_refused(tables, lambda: tables.store.commit_settlement(settlement), BalanceChanged)
    assert job_ledger_id("j", "release") not in ledger_ids(tables)


# --- the reads the CLI's Adjuster makes besides the port (ops/adjustments.py) ------------------------


def test_the_adjusters_reads_see_the_balance_item_and_single_ledger_entries(tables):
    assert tables.operations.get_balance("u") is None and tables.operations.get_ledger_entry(adjustment_ledger_id("gift-1")) is None
    gift = adjustment_entry("u", 5, "gift", "gift-1", "test", NOW)
    tables.store.commit_adjustment(gift)
    expected = StoredBalance("u", remaining=5, held=0, version=1, updated_at=NOW, last_ledger_entry=gift.ledger_id)
    assert tables.operations.get_balance("u") == expected
    assert tables.operations.get_ledger_entry(gift.ledger_id) == gift


def test_every_balance_write_moves_the_version(tables):
    """A repair is conditioned on the version it read: each kind of balance write must move it."""
    seed(tables, 20)
    tables.store.commit_reservation(reserve(tables, credits=5))
    tables.store.commit_settlement(decided(tables, rendered(seconds=3)))
    adjust(tables, 1, "gift-2")
    assert tables.operations.get_balance("u").version == 4


# --- a release never takes more than is held ---------------------------------------------------------------


@pytest.mark.parametrize("held", [None, 3], ids=["nothing-held", "less-held"])
@pytest.mark.parametrize("event", [rendered, failed], ids=["render", "failure"])
def test_a_job_claiming_a_hold_the_balance_never_had_is_damaged_and_nothing_moves(tables, held, event):
    """Another writer marked the job held (10 credits) but never moved the balance: the release is refused."""
    tables.put_balance(userId="u", remaining=Decimal(50), **({"held": Decimal(held)} if held is not None else {}))
    tables.put_job(jobId="j", userId="u", status="rendering", createdAt=EARLIER, reservedCredits=10, reservedAs="hold", unsettled="PENDING")
    before = tables.balance_item("u"), tables.job_item("j"), ledger_ids(tables)
    with pytest.raises(DamagedJob) as refused:
        tables.store.commit_settlement(decided_on_the_job(tables, event()))
    assert "releases a hold of 10 credits" in refused.value.reason
    assert (tables.balance_item("u"), tables.job_item("j"), ledger_ids(tables)) == before
