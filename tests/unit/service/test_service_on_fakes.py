"""The use cases on the in-memory fakes (tests/fakes.py): the main scenarios, in well under two seconds.

The fakes keep the contract of DynamoDBStore and SqsDeadLetters (tests/contract/ runs the same scenarios against
both), so what holds here holds on DynamoDB. Races are made at the port: `FaultyStore` lets another writer
commit between a decision's read and its write, refuses a write, or loses a committed write's answer. The
moto-based tests beside this file keep what only AWS shows (error shapes, client faults, the handlers).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from reconciler.domain.errors import InsufficientCredits, ReservationRefused
from reconciler.domain.ledger import (
    CREDIT,
    DEBIT,
    LedgerEntry,
    adjustment_entry,
    balance_delta,
    iso_timestamp,
    job_ledger_id,
    legacy_adjustment_ledger_id,
)
from reconciler.domain.pricing import PriceBook
from reconciler.ops.adjustments import ALREADY_APPLIED, APPLIED, WOULD_APPLY, Adjuster
from reconciler.ops.operator_error import OpsError
from reconciler.service.event_settlement import (
    ALREADY_REFUSED,
    CONFLICT,
    DUPLICATE,
    REJECTED,
    SETTLED,
    SUPERSEDED,
    EventProcessor,
    SettlementService,
)
from reconciler.service.ports import AmbiguousWrite, Contention, RetriesExhausted, StaleState
from reconciler.service.reservations import ReservationService
from reconciler.service.retrying import Backoff
from reconciler.service.timer_scan import TimerScan
from tests.events import envelope, failed, rendered
from tests.fakes import InMemoryDeadLetters, InMemorySettlementStore

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LOSE_ANSWER = "lose-answer"


def ago(**delta: float) -> str:
    return iso_timestamp(NOW - timedelta(**delta))


def no_wait(deadline: float | None = None, max_attempts: int = 50) -> Backoff:
    return Backoff(deadline=deadline, max_attempts=max_attempts, sleep=lambda _: None)


class FaultyStore:
    """The fake store with a plan for its next writes, one step each: a callable runs first (another writer
    commits between this decision's read and its write), an exception is raised instead of writing,
    LOSE_ANSWER commits and then raises AmbiguousWrite (the answer was lost), None just writes."""

    WRITES = ("commit_settlement", "commit_reservation", "commit_adjustment", "record_conflict")

    def __init__(self, store: InMemorySettlementStore, *plan: Any) -> None:
        self.store = store
        self.plan = list(plan)
        self.writes: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, name)
        if name not in self.WRITES:
            return method

        def write(*args: Any) -> None:
            self.writes.append(name)
            step = self.plan.pop(0) if self.plan else None
            if isinstance(step, Exception):
                raise step
            if callable(step):
                step()
            method(*args)
            if step == LOSE_ANSWER:
                raise AmbiguousWrite("the answer was lost after the commit")

        return write


@pytest.fixture
def store() -> InMemorySettlementStore:
    return InMemorySettlementStore()


@pytest.fixture
def dead_letters() -> InMemoryDeadLetters:
    return InMemoryDeadLetters()


def settlement(store: Any, max_attempts: int = 50) -> SettlementService:
    return SettlementService(store, PriceBook(), clock=lambda: ago(), backoff=lambda deadline: no_wait(deadline, max_attempts))


def processor(store: Any, dead_letters: InMemoryDeadLetters, max_attempts: int = 50) -> EventProcessor:
    return EventProcessor(settlement(store, max_attempts), dead_letters)


def reservations(store: Any) -> ReservationService:
    return ReservationService(store, PriceBook(), clock=lambda: ago(minutes=30), backoff=no_wait)


def seed(store: InMemorySettlementStore, credits: int, user_id: str = "u") -> None:
    store.commit_adjustment(adjustment_entry(user_id, credits, "opening balance", f"opening-{user_id}", "test", ago(days=1)))


def adjust(store: InMemorySettlementStore, credits: int, reference: str, user_id: str = "u") -> Callable[[], None]:
    """An adjustment to run later, as another writer."""
    return lambda: store.commit_adjustment(adjustment_entry(user_id, credits, "meanwhile", reference, "test", ago()))


def assert_books_balance(store: InMemorySettlementStore, balance: int, user_id: str = "u", held: int = 0) -> None:
    """`balance` is what the user can spend; the ledger sums to it plus what open reservations hold."""
    assert (store.balance_of(user_id), store.held_of(user_id)) == (balance, held)
    assert balance + held == balance_delta(store.ledger_of(user_id)) and held == store.open_hold_total(user_id)


# --- events: exactly once -----------------------------------------------------------------------------


def test_a_reserved_render_is_charged_once_and_every_redelivery_is_a_duplicate(store, dead_letters):
    seed(store, 100)
    reservations(store).reserve("j", "u", "test", 10)
    events = processor(store, dead_letters)
    outcome = events.process(rendered("j", "u", seconds=6), request_id="req-1")
    # Decided on the job alone: the balance was never read, so the summary claims no balance after it
    assert outcome.kind == SETTLED and outcome.summary()["balanceDelta"] == 4 and "balanceAfter" not in outcome.summary()
    assert [entry.ledger_id for entry in store.ledger_of("u")][1:] == [job_ledger_id("j", "charge")]
    redeliveries = [rendered("j", "u", seconds=6), rendered("j", "u", seconds=9, event_id="other")]
    assert [events.process(event).kind for event in redeliveries] == [DUPLICATE, DUPLICATE]
    assert_books_balance(store, 94)
    job = store.job("j")
    assert (job.settled_as, job.settled_by_event, job.released_credits, job.charged_credits) == ("rendered", "evt-r-j", 10, 6)
    assert dead_letters.sent == []


def test_a_contradicting_event_is_a_conflict_recorded_once_and_moves_nothing(store, dead_letters):
    seed(store, 100)
    events = processor(store, dead_letters)
    events.process(rendered("j", "u", seconds=4))
    assert events.process(failed("j", "u", event_id="f1")).kind == CONFLICT
    assert events.process(failed("j", "u", event_id="f1")).kind == DUPLICATE
    assert events.process(failed("j", "u", event_id="f2")).kind == CONFLICT
    assert store.record_item("j")["conflictEventIds"] == {"f1", "f2"} and store.record_item("j")["conflictCount"] == 2
    assert_books_balance(store, 96)


def test_events_in_the_wrong_order_settle_the_job_by_the_first_and_record_the_second(store, dead_letters):
    # Given a reserved job whose failure arrives first, then a render for it
    seed(store, 100)
    reservations(store).reserve("j", "u", "test", 10)
    events = processor(store, dead_letters)
    assert events.process(failed("j", "u")).kind == SETTLED
    assert events.process(rendered("j", "u", seconds=5)).kind == CONFLICT
    # Then the reservation was refunded and nothing was charged
    assert_books_balance(store, 100)
    assert store.job("j").settled_as == "failed"


def test_an_event_before_its_reservation_settles_the_job_and_the_late_reservation_is_refused(store, dead_letters):
    seed(store, 100)
    assert processor(store, dead_letters).process(rendered("j", "u", seconds=5)).kind == SETTLED
    with pytest.raises(ReservationRefused, match="already settled"):
        reservations(store).reserve("j", "u", "test", 10)
    assert_books_balance(store, 95)


def test_a_render_the_balance_cannot_cover_is_settled_into_overdraft(store, dead_letters):
    seed(store, 2)
    outcome = processor(store, dead_letters).process(rendered("j", "u", seconds=5))
    assert outcome.kind == SETTLED and outcome.summary()["overdraft"] is True
    assert_books_balance(store, -3)
    assert store.job("j").settled_into_overdraft is True


# --- retries ------------------------------------------------------------------------------------------


def test_a_render_the_balance_turns_out_not_to_cover_is_decided_again_on_the_returned_balance_without_a_read(store, dead_letters):
    # Given a balance drained below the cost between the job's read and the write
    seed(store, 4)
    racing = FaultyStore(store, adjust(store, -2, "meanwhile-1"))
    outcome = processor(racing, dead_letters).process(rendered("j", "u", seconds=3))
    # Then the guard's failure carried the balance (2): decided again as an overdraft in the same attempt
    assert (outcome.kind, outcome.attempts, outcome.settlement.is_overdraft) == (SETTLED, 1, True)
    assert outcome.summary()["balanceAfter"] == -1
    assert racing.writes == ["commit_settlement"] * 2
    assert_books_balance(store, -1)


def test_a_balance_topped_up_across_the_threshold_after_an_overdraft_decision_is_retried_and_judged_anew(store, dead_letters):
    # Given 2 credits (a render of 3 does not fit), topped up to 7 just before the overdraft write
    seed(store, 2)
    racing = FaultyStore(store, None, adjust(store, 5, "meanwhile-1"))
    outcome = processor(racing, dead_letters).process(rendered("j", "u", seconds=3))
    # Then: covered-write refused (2), overdraft-write refused (7), and the retry settles it as covered
    assert (outcome.kind, outcome.attempts, outcome.settlement.is_overdraft) == (SETTLED, 2, False)
    assert racing.writes == ["commit_settlement"] * 3
    assert_books_balance(store, 4)


def test_a_job_the_pipeline_reserved_between_read_and_write_is_settled_with_its_reservation(store, dead_letters):
    seed(store, 100)
    racing = FaultyStore(store, lambda: reservations(store).reserve("j", "u", "test", 10))
    outcome = processor(racing, dead_letters).process(rendered("j", "u", seconds=3))
    assert (outcome.kind, outcome.attempts, outcome.settlement.released) == (SETTLED, 2, 10)
    assert_books_balance(store, 97)


@pytest.mark.parametrize("refusal", [StaleState("changed"), Contention("throttled"), AmbiguousWrite("no answer")], ids=type)
def test_refused_writes_are_retried_until_the_settlement_commits_once(store, dead_letters, refusal):
    seed(store, 100)
    outcome = processor(FaultyStore(store, refusal, refusal), dead_letters).process(rendered("j", "u", seconds=3))
    assert (outcome.kind, outcome.attempts) == (SETTLED, 3)
    assert_books_balance(store, 97)


def test_a_settlement_whose_answer_was_lost_is_recognised_as_its_own_and_counted_once(store, dead_letters):
    seed(store, 100)
    lossy = FaultyStore(store, LOSE_ANSWER)
    outcome = processor(lossy, dead_letters).process(rendered("j", "u", seconds=3), request_id="req-1")
    assert (outcome.kind, outcome.attempts, outcome.summary().get("recovered")) == (SETTLED, 2, True)
    assert lossy.writes == ["commit_settlement"]  # the retry read it back, and wrote nothing
    # Lambda's retry of the same invocation (same request id) finds it too; another delivery is a duplicate
    assert processor(store, dead_letters).process(rendered("j", "u", seconds=3), request_id="req-1").kind == SETTLED
    assert processor(store, dead_letters).process(rendered("j", "u", seconds=3), request_id="req-2").kind == DUPLICATE
    assert_books_balance(store, 97)


def test_a_conflict_whose_answer_was_lost_is_still_reported_as_the_conflict(store, dead_letters):
    seed(store, 100)
    processor(store, dead_letters).process(rendered("j", "u", seconds=3))
    outcome = processor(FaultyStore(store, LOSE_ANSWER), dead_letters).process(failed("j", "u"), request_id="req-9")
    assert (outcome.kind, outcome.attempts) == (CONFLICT, 2)
    assert store.record_item("j")["conflictCount"] == 1


def test_contention_that_outlasts_the_budget_raises_and_writes_nothing(store, dead_letters):
    seed(store, 100)
    busy = FaultyStore(store, *[Contention("throttled")] * 3)
    with pytest.raises(RetriesExhausted):
        processor(busy, dead_letters, max_attempts=3).process(rendered("j", "u", seconds=3))
    assert busy.writes == ["commit_settlement"] * 3
    assert store.job("j") is None and dead_letters.sent == []
    assert_books_balance(store, 100)


# --- the first read is eventually consistent ------------------------------------------------------------


def test_the_first_read_is_eventually_consistent_and_every_retry_reads_strongly(store, dead_letters):
    seed(store, 100)
    processor(FaultyStore(store, StaleState("changed")), dead_letters).process(rendered("j", "u", seconds=3))
    # The first attempt reads the settlement record alone; the retry reads it and the Jobs item, strongly
    assert (store.record_reads, store.reads) == ([("j", False), ("j", True)], [("j", True)])


def test_a_settled_job_read_as_it_was_before_is_refused_its_write_and_found_settled_on_the_strong_read(store, dead_letters):
    # Given a held job that settled, and an eventually consistent read that still sees it held
    seed(store, 100)
    reservations(store).reserve("j", "u", "test", 10)
    held = store.record_item("j")
    events = processor(store, dead_letters)
    assert events.process(rendered("j", "u", seconds=6)).kind == SETTLED
    store.serve_earlier_version("j", held)
    # When the render is delivered again
    outcome = events.process(rendered("j", "u", seconds=6, event_id="again"))
    # Then the write decided on the earlier version was refused, and the strong re-read made it a duplicate
    assert (outcome.kind, outcome.attempts) == (DUPLICATE, 2)
    assert store.record_reads[-2:] == [("j", False), ("j", True)]
    assert_books_balance(store, 94)


def test_a_job_read_as_absent_before_its_hold_is_settled_with_the_hold(store, dead_letters):
    # Given a hold just made, which an eventually consistent read does not see yet
    seed(store, 100)
    reservations(store).reserve("j", "u", "test", 10)
    store.serve_earlier_version("j", None)
    outcome = processor(store, dead_letters).process(rendered("j", "u", seconds=3))
    # Then the settlement as a job never seen was refused, and the retry released the hold and charged once
    assert (outcome.kind, outcome.attempts, outcome.settlement.hold_released) == (SETTLED, 2, 10)
    assert_books_balance(store, 97)


def test_a_duplicate_seen_on_the_first_read_costs_that_read_alone(store, dead_letters):
    seed(store, 100)
    events = processor(store, dead_letters)
    events.process(rendered("j", "u", seconds=3))
    store.reads.clear()
    store.record_reads.clear()
    assert events.process(rendered("j", "u", seconds=3, event_id="again")).kind == DUPLICATE
    assert (store.record_reads, store.reads) == ([("j", False)], [])


def test_a_damaged_record_is_judged_on_the_current_item_not_an_earlier_version(store, dead_letters):
    # Given a record whose damage was repaired, and an eventually consistent read that still sees the damage
    seed(store, 100)
    reservations(store).reserve("j", "u", "test", 10)
    repaired = store.record_item("j")
    store.serve_earlier_version("j", {**repaired, "heldCredits": Decimal("2.5")})
    outcome = processor(store, dead_letters).process(rendered("j", "u", seconds=3))
    # Then it settles on the repaired record, and nothing goes to the dead letters
    assert (outcome.kind, outcome.settlement.hold_released) == (SETTLED, 10)
    assert dead_letters.sent == [] and store.record_reads == [("j", True), ("j", False), ("j", True)]
    assert_books_balance(store, 97)


# --- what goes to the dead-letter queue -----------------------------------------------------------------


def arrange_damaged_job(store: InMemorySettlementStore) -> None:
    store.put_job(jobId="j", userId="u", status="rendering", reservedCredits=Decimal("2.5"), createdAt=ago(hours=1))


def arrange_foreign_job(store: InMemorySettlementStore) -> None:
    store.put_job(jobId="j", userId="someone else", status="rendering", createdAt=ago(hours=1))


def hand_written(ledger_id: str, type: str = DEBIT, amount: int = 1, reference: str = "") -> LedgerEntry:
    """An entry written outside the reconciler (a v1 manual entry, a v2.0 adjustment)."""
    return LedgerEntry(ledger_id, "u", type, amount, "written by hand", reference, ago(days=2))


@pytest.mark.parametrize(
    ("arrange", "event", "error_type", "field"),
    [
        (None, rendered("j", "u", seconds=-1), "InvalidEvent", "seconds"),
        (None, rendered("j", "u", model="no-such-model"), "InvalidEvent", "model"),
        (None, envelope("video.started", {"jobId": "j", "userId": "u"}), "InvalidEvent", "detail-type"),
        (arrange_foreign_job, rendered("j", "u"), "InvalidEvent", "userId"),
        (arrange_damaged_job, rendered("j", "u"), "DamagedJob", "job"),
    ],
    ids=["bad-seconds", "unknown-model", "unknown-type", "other-users-job", "damaged-job"],
)
def test_an_event_that_can_never_settle_goes_to_the_dead_letters_with_its_reason_and_nothing_moves(
    store, dead_letters, arrange, event, error_type, field
):
    seed(store, 100)
    if arrange:
        arrange(store)
    before = (dict(store.jobs), dict(store.balances), dict(store.entries))
    outcome = processor(store, dead_letters).process(event)
    (letter,) = dead_letters.sent
    assert (outcome.kind, outcome.dead_letter_id) == (REJECTED, letter.message_id)
    assert (letter.original, letter.error_type, letter.field, letter.event_id) == (event, error_type, field, event["id"])
    assert (dict(store.jobs), dict(store.balances), dict(store.entries)) == before


def test_text_that_is_not_json_is_dead_lettered_as_it_arrived(store, dead_letters):
    outcome = processor(store, dead_letters).process('{"id": "evt-1", "detail": ')
    assert outcome.kind == REJECTED
    assert [(letter.original, letter.field, letter.event_id) for letter in dead_letters.sent] == [('{"id": "evt-1", "detail": ', "event", None)]


def replayed(event: dict, name: str = "cc-reconciler-dev-20261128T120000Z") -> dict:
    """The event as an archive replay delivers it: EventBridge adds the replay's name (and may give a new id)."""
    return {**event, "id": f"replayed-{event['id']}", "replay-name": name}


def test_an_archive_replay_skips_what_was_already_handled_and_a_named_replay_dead_letters_the_refused_again(store, dead_letters):
    seed(store, 100)
    events = processor(store, dead_letters)
    good, bad = rendered("j-ok", "u", seconds=2), rendered("j-bad", "u", model="no-such-model", event_id="evt-bad")
    assert [events.process(event).kind for event in (good, bad)] == [SETTLED, REJECTED]
    assert len(dead_letters.sent) == 1
    # Replayed from the archive: the settled job and the refused event are both skipped, and say so
    skipped = [events.process(replayed(event)) for event in (good, bad)]
    assert [(o.kind, o.skipped_in_replay, o.replay) for o in skipped] == [
        (DUPLICATE, True, "cc-reconciler-dev-20261128T120000Z"),
        (ALREADY_REFUSED, True, "cc-reconciler-dev-20261128T120000Z"),
    ]
    assert skipped[1].summary()["reason"] and len(dead_letters.sent) == 1
    assert_books_balance(store, 98)
    # A replay that dead-letters what it refuses (`--refused dead-letter`): as on a first arrival
    again = events.process(replayed(bad, "cc-reconciler-dev-20261128T120000Z-dead-letter-refused"))
    assert (again.kind, again.skipped_in_replay) == (REJECTED, False) and len(dead_letters.sent) == 2
    # A dead letter replayed by an operator is decided afresh, never skipped (dlq replay removes the replay's name)
    from reconciler.domain.events import as_first_delivery

    assert events.process(as_first_delivery(replayed(bad))).kind == REJECTED and len(dead_letters.sent) == 3


# --- reservations -------------------------------------------------------------------------------------


def test_a_reservation_takes_the_credits_once_and_a_retry_of_it_is_a_no_op(store):
    seed(store, 100)
    made = reservations(store).reserve("j", "u", "test", 10)
    assert made.credits == 10
    assert reservations(store).reserve("j", "u", "test", 10) is None
    # A hold: 10 of the 100 held, nothing posted
    assert_books_balance(store, 90, held=10)
    assert [entry.ledger_id for entry in store.ledger_of("u")] == ["adjustment:9:opening-u"]
    # The hold lives on the job's settlement record, at the price in force; the Jobs item (the pipeline's) is untouched
    assert store.record_item("j") == {
        "jobId": "j",
        "userId": "u",
        "heldCredits": 10,
        "heldAt": ago(minutes=30),
        "holdModel": "test",
        "unitPrice": Decimal(1),
        "holdUser": "u",
        "holdExpiresAt": ago(minutes=30 - 360),  # the stage's default: six hours after the hold
    }
    assert store.job_item("j") is None


@pytest.mark.parametrize(
    ("arrange", "credits", "refused"),
    [
        (lambda store: reservations(store).reserve("j", "u", "test", 10), 20, ReservationRefused),
        (lambda store: (seed(store, 50, "other"), reservations(store).reserve("j", "other", "test", 10)), 10, ReservationRefused),
        (None, 101, InsufficientCredits),
    ],
    ids=["other-amount-held", "other-users-job", "insufficient"],
)
def test_a_reservation_that_cannot_be_made_is_refused_and_moves_nothing(store, arrange, credits, refused):
    seed(store, 100)
    if arrange:
        arrange(store)
    before = (dict(store.records), dict(store.balances), dict(store.entries))
    with pytest.raises(refused):
        reservations(store).reserve("j", "u", "test", credits)
    assert (dict(store.records), dict(store.balances), dict(store.entries)) == before


def test_a_reservation_raced_by_the_same_reservation_is_made_once(store):
    seed(store, 100)
    racing = FaultyStore(store, lambda: reservations(store).reserve("j", "u", "test", 10))
    assert ReservationService(racing, PriceBook(), backoff=no_wait).reserve("j", "u", "test", 10) is None
    assert_books_balance(store, 90, held=10)


def test_a_reservation_whose_balance_is_drained_between_read_and_write_is_insufficient(store):
    seed(store, 10)
    racing = FaultyStore(store, adjust(store, -5, "chargeback-1"))
    with pytest.raises(InsufficientCredits):
        ReservationService(racing, PriceBook(), backoff=no_wait).reserve("j", "u", "test", 10)
    assert_books_balance(store, 5)
    assert store.record_item("j") is None


# --- the timer scan -----------------------------------------------------------------------------------


def scan(store: Any, max_attempts: int = 50) -> TimerScan:
    return TimerScan(store, settlement(store, max_attempts), grace=timedelta(minutes=15), stuck_after=timedelta(hours=6), now=lambda: NOW)


def pipeline_job(store: InMemorySettlementStore, job_id: str, status: str, created: str, **extra: Any) -> None:
    store.put_job(jobId=job_id, userId="u", model="test", status=status, createdAt=created, unsettled="PENDING", **extra)


def test_the_scan_settles_lost_events_once_and_reports_what_waits_what_is_stuck_and_what_is_damaged(store, dead_letters):
    seed(store, 100)
    pipeline_job(store, "lost-render", "rendered", ago(hours=2), seconds=Decimal(6), updatedAt=ago(hours=1))
    reservations(store).reserve("lost-render", "u", "test", 10)
    pipeline_job(store, "lost-failure", "failed", ago(hours=2), updatedAt=ago(hours=1))
    reservations(store).reserve("lost-failure", "u", "test", 7)
    pipeline_job(store, "fresh", "rendered", ago(hours=1), seconds=Decimal(3), updatedAt=ago(minutes=5))
    pipeline_job(store, "slow", "rendering", ago(hours=2))
    pipeline_job(store, "stuck", "rendering", ago(hours=7))
    pipeline_job(store, "damaged", "rendered", ago(hours=3), seconds=Decimal(3), reservedCredits=Decimal("0.5"))
    pipeline_job(store, "future", "rendered", ago(minutes=1), seconds=Decimal(3))

    report = scan(store).run()

    assert report.summary() == {
        "examined": 6,
        "settled": ["lost-render", "lost-failure"],
        "alreadySettled": [],
        "conflicts": [],
        "waiting": 2,
        "stuck": ["stuck"],
        "unsettleable": [{"jobId": "damaged", "reason": report.unsettleable[0][1]}],
        "deferred": [],
        "mirrorsRepaired": [],
        "stoppedEarly": False,
        "interrupted": None,
    }
    assert "reservedCredits" in report.unsettleable[0][1]
    assert (store.job("lost-render").settled_by_event, store.job("lost-failure").refunded_credits) == ("timer-scan:lost-render", 7)
    assert_books_balance(store, 94)
    # The late event is a duplicate, and the next tick finds only what still waits
    assert processor(store, dead_letters).process(rendered("lost-render", "u", seconds=6)).kind == DUPLICATE
    assert scan(store).run().summary()["settled"] == []
    assert_books_balance(store, 94)


def test_a_job_the_pipeline_changes_between_the_scans_read_and_write_is_left_for_the_next_tick(store):
    pipeline_job(store, "j", "rendered", ago(hours=1), seconds=Decimal(3), updatedAt=ago(hours=1))
    still_rendering = {**store.job_item("j"), "status": "rendering", "updatedAt": ago(minutes=1)}
    racing = FaultyStore(store, lambda: store.put_job(**still_rendering))
    outcome = settlement(racing).settle_lost_event("j", "u", ago(minutes=15))
    assert (outcome.kind, outcome.attempts) == (SUPERSEDED, 2)
    assert store.job("j").status == "rendering" and not store.job("j").is_settled and store.entries == {}


def test_a_job_whose_settlement_keeps_failing_is_deferred_and_the_jobs_behind_it_settle(store):
    pipeline_job(store, "a", "failed", ago(hours=3))
    pipeline_job(store, "b", "failed", ago(hours=2))
    report = scan(FaultyStore(store, Contention("throttled"), Contention("throttled")), max_attempts=2).run()
    assert [job.job_id for job, _ in report.deferred] == ["a"] and "RetriesExhausted" in report.deferred[0][1]
    assert [outcome.event.job_id for outcome in report.settled] == ["b"]
    assert not store.job("a").is_settled


def test_a_scan_whose_index_read_fails_part_way_reports_what_it_settled(store):
    pipeline_job(store, "a", "failed", ago(hours=3))
    pipeline_job(store, "b", "failed", ago(hours=2))

    class IndexFailsAfterOne:
        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def unsettled_jobs(self, created_before: str):
            jobs = store.unsettled_jobs(created_before)
            yield next(jobs)
            raise Contention("the index read was throttled")

    report = scan(IndexFailsAfterOne()).run()
    assert [outcome.event.job_id for outcome in report.settled] == ["a"]
    assert report.interrupted == "Contention: the index read was throttled"
    assert not store.job("b").is_settled


# --- the operator's adjustments -----------------------------------------------------------------------


def adjuster(store: Any) -> Adjuster:
    return Adjuster(store, clock=lambda: ago(), backoff=no_wait)


def test_an_adjustment_applies_once_per_reference(store):
    seed(store, 10)
    assert adjuster(store).preview("u", 5, "goodwill", "ticket-1", "ops").status == WOULD_APPLY
    applied = adjuster(store).adjust("u", 5, "goodwill", "ticket-1", "ops")
    assert (applied.status, applied.balance_before, applied.balance_after) == (APPLIED, 10, 15)
    assert adjuster(store).adjust("u", 5, "goodwill", "ticket-1", "ops").status == ALREADY_APPLIED
    with pytest.raises(OpsError, match="already used"):
        adjuster(store).adjust("u", 6, "goodwill", "ticket-1", "ops")
    assert_books_balance(store, 15)


def test_an_adjustment_applied_under_its_v2_0_id_is_not_applied_again(store):
    store.put_ledger_entry(hand_written(legacy_adjustment_ledger_id("ticket-1"), CREDIT, 5, "ticket-1"))
    assert adjuster(store).adjust("u", 5, "goodwill", "ticket-1", "ops").status == ALREADY_APPLIED
    assert store.balance_of("u") is None


class Counted:
    """The Adjustments metric as the use cases see it: what they counted."""

    def __init__(self) -> None:
        self.counts: list[int] = []

    def count(self, adjustments: int) -> None:
        self.counts.append(adjustments)


def test_an_applied_adjustment_counts_once_in_the_adjustments_metric_and_neither_a_repeat_nor_a_dry_run_counts(store):
    counted = Counted()
    counting = Adjuster(store, clock=lambda: ago(), backoff=no_wait, counted=counted)
    counting.adjust("u", 5, "goodwill", "ticket-9", "ops", dry_run=True)
    counting.adjust("u", 5, "goodwill", "ticket-9", "ops")
    counting.adjust("u", 5, "goodwill", "ticket-9", "ops")
    assert counted.counts == [1]


def test_a_dry_run_writes_nothing_and_a_retried_adjustment_lands_once(store):
    assert adjuster(store).adjust("u", -4, "chargeback", "cb-1", "ops", dry_run=True).status == WOULD_APPLY
    assert store.balance_of("u") is None
    result = adjuster(FaultyStore(store, StaleState("moved"))).adjust("u", -4, "chargeback", "cb-1", "ops")
    assert result.status == APPLIED
    assert_books_balance(store, -4)


# --- the pipeline's side of the contract: whatever it writes to its Jobs item ------------------------------


def save_whole(store: InMemorySettlementStore, job_id: str, **fields: Any) -> None:
    """The pipeline saves its job as a whole item (an ORM's PutItem): only the fields it knows, the rest dropped."""
    store.jobs[job_id] = {"jobId": job_id, "userId": "u", "model": "test", **fields}


def test_a_job_saved_whole_by_the_pipeline_after_its_settlement_is_not_charged_again(store, dead_letters):
    seed(store, 100)
    reservations(store).reserve("j", "u", "test", 10)
    events = processor(store, dead_letters)
    assert events.process(rendered("j", "u", seconds=6)).kind == SETTLED
    # The pipeline writes its item back as it knows it: no settlement, the unsettled marker again
    save_whole(store, "j", status="rendered", seconds=Decimal(6), createdAt=ago(hours=2), updatedAt=ago(hours=1), unsettled="PENDING")
    # EventBridge delivers the same event again, and the timer scan finds the job in its index
    assert events.process(rendered("j", "u", seconds=6)).kind == DUPLICATE
    report = scan(store).run()
    assert report.mirrors_repaired == ["j"] and report.settled == []
    assert_books_balance(store, 94)
    assert store.job_item("j")["settledAs"] == "rendered" and "unsettled" not in store.job_item("j")
    assert [entry.ledger_id for entry in store.ledger_of("u")] == ["adjustment:9:opening-u", job_ledger_id("j", "charge")]


def test_a_failed_job_saved_whole_and_then_rendered_is_a_conflict_not_a_charge(store, dead_letters):
    seed(store, 100)
    events = processor(store, dead_letters)
    assert events.process(failed("j", "u")).kind == SETTLED
    save_whole(store, "j", status="rendered")
    assert events.process(rendered("j", "u", seconds=6)).kind == CONFLICT
    assert_books_balance(store, 100)


def test_a_render_held_at_one_price_and_settled_after_a_price_change_is_charged_at_the_held_price(store, dead_letters):
    seed(store, 100)
    ReservationService(store, PriceBook({"test": Decimal(2)}), backoff=no_wait).reserve("j", "u", "test", 20)
    # A deploy halves the price before the render settles
    after_the_change = SettlementService(store, PriceBook({"test": Decimal(1)}), backoff=lambda deadline: no_wait(deadline))
    outcome = EventProcessor(after_the_change, dead_letters).process(rendered("j", "u", seconds=6))
    assert outcome.settlement.charged == 12 and outcome.settlement.unit_price == Decimal(2)
    assert_books_balance(store, 88)


@pytest.mark.parametrize("reserved_as", [None, "hold"])
def test_a_hold_written_by_hand_on_the_jobs_item_moves_no_money(store, dead_letters, reserved_as):
    """A hand-written hold (not through the hold function) on a job created after the cut-off: without reservedAs
    it would have posted a release credit for money that never moved; marked held without moving the balance it
    would have released credits nobody paid for. Neither counts: the render is charged, nothing is released."""
    seed(store, 100)
    attributes = {"reservedCredits": 10, **({"reservedAs": reserved_as} if reserved_as else {})}
    store.put_job(jobId="j", userId="u", status="rendering", createdAt=ago(hours=1), unsettled="PENDING", **attributes)
    outcome = processor(store, dead_letters).process(rendered("j", "u", seconds=6))
    assert outcome.kind == SETTLED and outcome.settlement.hold_released == 0 and outcome.settlement.released == 0
    assert_books_balance(store, 94)


def test_a_hold_released_by_the_pipeline_gives_the_credits_back_and_a_late_render_is_still_charged(store, dead_letters):
    seed(store, 100)
    reservations(store).reserve("j", "u", "test", 10)
    released = reservations(store).release("j", "u")
    assert released is not None and released.credits == 10
    assert reservations(store).release("j", "u") is None  # nothing held any more
    assert_books_balance(store, 100)
    with pytest.raises(ReservationRefused, match="released"):
        reservations(store).reserve("j", "u", "test", 10)
    outcome = processor(store, dead_letters).process(rendered("j", "u", seconds=6))
    assert (outcome.kind, outcome.settlement.hold_released, outcome.settlement.charged) == (SETTLED, 0, 6)
    assert_books_balance(store, 94)


class SettledBetweenTheReads:
    """The store, with another event's settlement committing just before the next Jobs item read: between a retry's
    read of the settlement record and its read of the Jobs item."""

    def __init__(self, store: InMemorySettlementStore, settle: Callable[[], Any]) -> None:
        self.store, self.settle = store, settle

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def load_job(self, job_id: str, *, consistent: bool = True) -> Any:
        settle, self.settle = self.settle, lambda: None
        settle()
        return self.store.load_job(job_id, consistent=consistent)


@pytest.mark.parametrize("held", [False, True], ids=["no-record-read", "open-hold-read"])
def test_a_conflict_whose_job_settles_between_the_record_read_and_the_job_read_is_recorded_on_the_record(store, dead_letters, held):
    """Found by the simulator (seeds 243, 170): a retry read no record (or an open hold), then the Jobs item with the
    mirror of a settlement committed in between, and took the job for one settled before records: the conflict went
    onto the Jobs item (the pipeline's, which a whole save may drop), and the record kept none, so a redelivery was a
    second conflict."""
    seed(store, 100)
    if held:
        reservations(store).reserve("j", "u", "test", 10)
    other = lambda: processor(store, dead_letters).process(failed("j", "u", event_id="e-failed"))  # noqa: E731 - one step
    racing = FaultyStore(SettledBetweenTheReads(store, other), StaleState("the first attempt's write is refused"))
    assert processor(racing, dead_letters).process(rendered("j", "u", event_id="e-rendered")).kind == CONFLICT
    assert store.record_item("j")["conflictEventIds"] == {"e-rendered"} and "conflictEventIds" not in store.job_item("j")
    assert processor(store, dead_letters).process(rendered("j", "u", event_id="e-rendered")).kind == DUPLICATE


BEFORE_THE_CUT_OFF = "2026-12-01T09:00:00.000Z"  # the dev stage's cut-off is 2026-12-07


@pytest.mark.parametrize(("reserved_as", "credited", "postings"), [(None, 10, ["release", "charge"]), ("hold", 0, ["charge"])], ids=["v2", "held"])
def test_a_lost_answer_of_a_settlement_of_a_reservation_from_before_records_is_reported_as_made(store, dead_letters, reserved_as, credited, postings):
    """Found by the simulator (seed 149): a Lambda retry that finds its own settlement rebuilds it from the record, which
    did not say whether the reservation was v2's posted one: its release posting was left out of the report, and
    CreditsRefunded undercounted."""
    seed(store, 100)
    if reserved_as:  # a hold of the code before records: held on the balance
        store.balances["u"].update(remaining=90, held=10)
    attributes = {"reservedCredits": 10, **({"reservedAs": reserved_as} if reserved_as else {})}
    store.put_job(jobId="j", userId="u", status="rendered", createdAt=BEFORE_THE_CUT_OFF, unsettled="PENDING", **attributes)
    # The first attempt's write is refused (it did not read the item's reservation); the second commits, its answer lost
    lost = FaultyStore(store, None, LOSE_ANSWER)
    service = SettlementService(lost, PriceBook(), backoff=lambda deadline: no_wait(deadline), legacy_before=store.legacy_reservations_before)
    outcome = EventProcessor(service, dead_letters).process(rendered("j", "u", seconds=6))
    assert (outcome.kind, outcome.settlement.recovered, outcome.settlement.credited) == (SETTLED, True, credited)
    assert [entry.ledger_id.rsplit(":", 1)[1] for entry in outcome.settlement.entries] == postings


@pytest.mark.parametrize("reserved_as", [None, "hold"], ids=["v2-posted", "held-on-the-jobs-item"])
def test_a_hold_of_a_job_reserved_before_settlement_records_is_in_place_never_taken_twice(store, reserved_as):
    """A job reserved on its Jobs item before the cut-off (v2's posted reservation, or a hold of the code before
    records) that the pipeline holds again (a retried call across the deploy): its render settles that reservation;
    a second hold on the record would take the credits twice and the first would never be given back."""
    seed(store, 100)
    attributes = {"reservedCredits": 10, **({"reservedAs": reserved_as} if reserved_as else {})}
    store.put_job(jobId="j", userId="u", status="rendering", createdAt=BEFORE_THE_CUT_OFF, unsettled="PENDING", **attributes)
    service = ReservationService(store, PriceBook(), backoff=no_wait, legacy_before=store.legacy_reservations_before)
    assert service.reserve("j", "u", "test", 10) is None  # in place already
    with pytest.raises(ReservationRefused, match="10"):
        service.reserve("j", "u", "test", 12)
    with pytest.raises(ReservationRefused, match="another user"):
        service.reserve("j", "someone else", "test", 10)
    assert store.record_item("j") is None and (store.balance_of("u"), store.held_of("u")) == (100, 0)


def test_a_hold_of_a_job_settled_before_settlement_records_is_refused(store):
    seed(store, 100)
    store.put_job(jobId="j", userId="u", status="rendered", createdAt=BEFORE_THE_CUT_OFF, settledAs="rendered", settledByEvent="e")
    service = ReservationService(store, PriceBook(), backoff=no_wait, legacy_before=store.legacy_reservations_before)
    with pytest.raises(ReservationRefused, match="settled"):
        service.reserve("j", "u", "test", 10)
    assert store.record_item("j") is None and (store.balance_of("u"), store.held_of("u")) == (100, 0)


def test_a_hold_sized_by_seconds_is_priced_now(store):
    seed(store, 100)
    made = ReservationService(store, PriceBook(), backoff=no_wait).reserve("j", "u", "standard-v2", seconds=Decimal("2.5"))
    assert (made.credits, made.unit_price) == (7, Decimal("2.5"))
    assert_books_balance(store, 93, held=7)
