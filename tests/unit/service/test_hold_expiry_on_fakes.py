"""Hold expiry's use case on the in-memory store: one release per expired hold, whatever came first, and its own
lost answer recognised (service/hold_expiry.py)."""

import re

import pytest

from reconciler.contract import HOLD_EXPIRED_DETAIL_TYPE
from reconciler.domain.errors import InvalidEvent, ReservationRefused
from reconciler.domain.holds import HoldRequest
from reconciler.domain.pricing import PriceBook
from reconciler.service.hold_expiry import HoldExpiryService
from reconciler.service.ports import AmbiguousWrite
from reconciler.service.reservations import ReservationService
from reconciler.service.retrying import Backoff
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
    return HoldExpiryService(store, publisher, clock=lambda: now, backoff=lambda: Backoff(sleep=lambda _: None))


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
