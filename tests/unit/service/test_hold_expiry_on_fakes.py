"""Hold expiry's use case on the in-memory store: one release per expired hold, whatever came first, and its own
lost answer recognised (service/hold_expiry.py)."""

import re
import time
from datetime import UTC, datetime, timedelta

import pytest

from reconciler.contract import HOLD_EXPIRED_DETAIL_TYPE
from reconciler.domain.errors import InvalidEvent, ReservationRefused
from reconciler.domain.holds import HoldRequest
from reconciler.domain.pricing import PriceBook
from reconciler.service.event_settlement import SettlementService
from reconciler.service.hold_expiry import HoldExpiryService
from reconciler.service.ports import AmbiguousWrite, Contention
from reconciler.service.reservations import ReservationService
from reconciler.service.retrying import Backoff
from reconciler.service.timer_scan import TimerScan
from tests.fakes import InMemorySettlementStore, RecordingPublisher


def a_store_with_a_hold(expires_at: str = "2026-12-07T12:00:30.000Z") -> InMemorySettlementStore:
    store = InMemorySettlementStore()
    store.balances["u"] = {"userId": "u", "remaining": 30, "held": 0}
    holds(store).hold(the_hold(expires_at))
    return store


def holds(store, now="2026-12-07T12:00:00.000Z") -> ReservationService:
    return ReservationService(store, PriceBook(), clock=lambda: now, backoff=lambda: Backoff(sleep=lambda _: None))


def the_hold(expires_at: str = "2026-12-07T12:00:30.000Z", job_id: str = "j") -> HoldRequest:
    return HoldRequest.sized(job_id, "u", "test", PriceBook(), credits=20, expires_at=expires_at)


def service(store, publisher=None, now="2026-12-07T12:05:00.000Z") -> HoldExpiryService:
    return HoldExpiryService(store, publisher, clock=lambda: now, backoff=lambda _: Backoff(sleep=lambda _: None))


def test_an_expired_hold_is_released_once_and_announced():
    store, publisher = a_store_with_a_hold(), RecordingPublisher()
    report = service(store, publisher).release_expired()
    assert [r.job_id for r in report.released] == ["j"] and store.balances["u"]["remaining"] == 30 and store.balances["u"]["held"] == 0
    assert publisher.published == [
        (
            HOLD_EXPIRED_DETAIL_TYPE,
            {
                "jobId": "j",
                "userId": "u",
                "credits": 20,
                "heldAt": "2026-12-07T12:00:00.000Z",
                "expiresAt": "2026-12-07T12:00:30.000Z",
                "releasedAt": "2026-12-07T12:05:00.000Z",
            },
        )
    ]
    assert service(store, publisher).release_expired().released == [] and len(publisher.published) == 1


def test_a_tick_before_the_expiry_releases_nothing():
    store = a_store_with_a_hold()
    assert service(store, now="2026-12-07T12:00:29.999Z").release_expired().released == []
    assert store.balances["u"]["held"] == 20


def test_a_lost_answer_of_its_own_release_is_that_release_not_nothing():
    # Given a store whose release commits and then loses its answer (a timeout after the commit)
    class LosingAnswers(InMemorySettlementStore):
        def commit_release(self, release):
            super().commit_release(release)
            raise AmbiguousWrite("read timeout after the commit")

    held, store = a_store_with_a_hold(), LosingAnswers()
    store.balances, store.records = held.balances, held.records
    publisher = RecordingPublisher()
    # When the tick releases the hold: its retry reads the record strongly and finds its own release
    report = service(store, publisher).release_expired()
    # Then it reports (and announces) that release once, and the hold was given back once
    assert [r.job_id for r in report.released] == ["j"] and len(publisher.published) == 1
    assert (store.balances["u"]["remaining"], store.balances["u"]["held"]) == (30, 0)


def test_a_failed_announcement_leaves_the_release_standing_and_is_reported():
    class Down:
        def publish(self, detail_type, detail):
            raise RuntimeError("EventBridge is down")

    store = a_store_with_a_hold()
    report = service(store, Down()).release_expired()
    assert [r.job_id for r in report.released] == ["j"] and report.unpublished == [("j", "RuntimeError: EventBridge is down")]
    assert store.balances["u"]["held"] == 0


def test_a_retry_after_its_requested_expiry_passed_finds_the_hold_in_place_for_one_read():
    # Given a hold until 12:00:30 whose answer the pipeline lost
    store = a_store_with_a_hold()
    store.record_reads.clear()
    # When it retries the same call at 12:00:31, after the expiry it asked for and before a tick released it
    result = holds(store, now="2026-12-07T12:00:31.000Z").hold(the_hold())
    # Then it is the hold in place (already-held), of its expiry, for one strong read of the record and no write
    assert (result.placed, result.credits, result.record.hold_expires_at) == (None, 20, "2026-12-07T12:00:30.000Z")
    assert store.record_reads == [("j", True)]
    assert (store.balances["u"]["remaining"], store.balances["u"]["held"]) == (10, 20)


def test_a_new_hold_whose_expiry_has_passed_is_refused_and_holds_nothing():
    store = a_store_with_a_hold()
    with pytest.raises(InvalidEvent, match=r"must be in the future \(now is 2026-12-07T12:00:31.000Z\)") as refused:
        holds(store, now="2026-12-07T12:00:31.000Z").hold(the_hold(job_id="other"))
    assert refused.value.field == "expiresAt" and "other" not in store.records
    assert (store.balances["u"]["remaining"], store.balances["u"]["held"]) == (10, 20)


def test_an_expiry_that_is_not_a_time_is_refused_before_any_read_one_past_the_maximum_after_one():
    store = a_store_with_a_hold()
    store.record_reads.clear()
    with pytest.raises(InvalidEvent, match="needs its offset"):
        holds(store).hold(the_hold("2026-12-07T13:00:00"))
    assert store.record_reads == []
    with pytest.raises(InvalidEvent, match="at most 1440 minutes"):
        holds(store).hold(the_hold("2026-12-08T12:00:00.001Z"))
    assert store.record_reads == [("j", True)]


def test_a_retry_after_the_tick_released_the_hold_at_its_expiry_is_refused_as_expired():
    store = a_store_with_a_hold()
    service(store).release_expired()
    with pytest.raises(ReservationRefused, match=re.escape("hold expired at 2026-12-07T12:00:30.000Z; a job is held once")):
        holds(store, now="2026-12-07T12:05:01.000Z").hold(the_hold())
    assert (store.balances["u"]["remaining"], store.balances["u"]["held"]) == (30, 0)


# --- the tick's deadline ----------------------------------------------------------------------------------------------


def test_a_release_that_keeps_failing_stops_at_the_ticks_deadline_and_waits_for_the_next_tick():
    # Given a store whose every release takes 60 ms and then meets contention
    class Contended(InMemorySettlementStore):
        commits = 0

        def commit_release(self, release):
            self.commits += 1
            time.sleep(0.06)
            raise Contention("TransactionConflict")

    held, store = a_store_with_a_hold(), Contended()
    store.balances, store.records = held.balances, held.records
    # When a tick with 50 ms left expires it (the service's own backoff)
    expiry = HoldExpiryService(store, RecordingPublisher(), clock=lambda: "2026-12-07T12:05:00.000Z")
    report = expiry.release_expired(deadline=time.monotonic() + 0.05)
    # Then no retry starts after the deadline: the hold is deferred, still open, for the next tick
    assert store.commits == 1 and [job for job, _ in report.deferred] == ["j"] and report.released == []
    assert store.balances["u"]["held"] == 20


def test_a_tick_past_its_deadline_starts_no_release_and_says_it_stopped():
    store = a_store_with_a_hold()
    report = service(store).release_expired(deadline=time.monotonic() - 1)
    assert (report.released, report.stopped_early, report.summary()["expiryStoppedEarly"]) == ([], True, True)
    assert store.balances["u"]["held"] == 20
    assert [r.job_id for r in service(store).release_expired().released] == ["j"]  # the next tick releases it


def test_a_backlog_of_jobs_that_outlasts_the_tick_leaves_expiry_its_share():
    # Given an expired hold, and a backlog of running jobs that takes 100 ms each to go through (20 of them: 2 s)
    class Backlogged(InMemorySettlementStore):
        def unsettled_jobs(self, created_before):
            for job in super().unsettled_jobs(created_before):
                time.sleep(0.1)
                yield job

    held, store = a_store_with_a_hold(), Backlogged()
    store.balances, store.records = held.balances, held.records
    for n in range(20):
        store.put_job(jobId=f"busy-{n}", userId="u", model="test", status="rendering", createdAt="2026-12-07T11:00:00.000Z", unsettled="PENDING")
    tick = TimerScan(
        store,
        SettlementService(store, PriceBook()),
        grace=timedelta(minutes=15),
        stuck_after=timedelta(hours=6),
        now=lambda: datetime(2026, 12, 7, 12, 5, tzinfo=UTC),
        expiry=service(store),
    )
    # When the tick has 1 s
    report = tick.run(deadline=time.monotonic() + 1.0)
    # Then the jobs stop at their share (about 7 of them) and the hold is still released in the quarter kept for it
    assert report.stopped_early and 0 < report.examined < 10
    assert report.expiry is not None and [r.job_id for r in report.expiry.released] == ["j"]
    assert (store.balances["u"]["remaining"], store.balances["u"]["held"]) == (30, 0)
