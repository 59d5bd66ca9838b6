"""Hold expiry on moto: the timer scan releases a hold whose expiry passed, once, never one whose job settled, and
a render arriving after its hold expired is still charged (docs/contract.md, "Timer scan"); a retry of a hold whose
requested expiry has passed since finds it in place (docs/pipeline.md)."""

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from reconciler.contract import HOLD_EXPIRED, HOLD_EXPIRED_DETAIL_TYPE
from reconciler.domain.errors import InvalidEvent, ReservationRefused
from reconciler.domain.ledger import iso_timestamp
from reconciler.service.hold_expiry import HoldExpiryService
from reconciler.service.retrying import Backoff
from tests.events import failed, rendered
from tests.fakes import RecordingPublisher


def in_minutes(minutes: float) -> str:
    return iso_timestamp(datetime.now(UTC) + timedelta(minutes=minutes))


@pytest.fixture
def expiry(aws):
    """The timer scan's expiry, ten minutes from now on its clock."""
    publisher = RecordingPublisher()
    service = HoldExpiryService(aws.store(), publisher, clock=lambda: in_minutes(10), backoff=lambda _: Backoff(sleep=lambda _: None))
    return service, publisher


def test_an_expired_hold_is_released_once_announced_and_a_late_render_is_still_charged(aws, expiry):
    service, publisher = expiry
    # Given 30 credits, of which 20 held for a job until five minutes from now
    aws.seed_balance("u", 30)
    aws.holds().reserve("job-1", "u", "test", 20, expires_at=in_minutes(5))
    assert (aws.balance("u"), aws.held("u")) == (10, 20)
    # When the scan runs ten minutes from now
    report = service.release_expired()
    # Then the hold is back in remaining, nothing is posted, the record says the expiry released it, and it is announced
    assert [release.job_id for release in report.released] == ["job-1"]
    assert (aws.balance("u"), aws.held("u"), aws.ledger_sum("u")) == (30, 0, 30)
    record = aws.record("job-1")
    assert (record.hold_open, record.hold_released_by, record.settled_as) == (False, HOLD_EXPIRED, None)
    assert [(kind, detail["jobId"], detail["credits"]) for kind, detail in publisher.published] == [(HOLD_EXPIRED_DETAIL_TYPE, "job-1", 20)]
    # And a second tick releases nothing
    assert service.release_expired().released == []
    assert (aws.balance("u"), aws.held("u")) == (30, 0)
    # And the render that arrives after its hold expired is charged in full, without a hold: 35 of 30 overdraws
    assert aws.processor().process(rendered("job-1", "u", seconds=35)).kind == "settled"
    assert (aws.balance("u"), aws.held("u"), aws.ledger_sum("u")) == (-5, 0, -5)


def test_a_failure_after_the_expiry_settles_and_moves_nothing_more(aws, expiry):
    service, _ = expiry
    aws.seed_balance("u", 30)
    aws.holds().reserve("job-2", "u", "test", 20, expires_at=in_minutes(5))
    service.release_expired()
    # When the job fails after its hold expired
    assert aws.processor().process(failed("job-2", "u")).kind == "settled"
    # Then it is settled as failed, and the balance is as the expiry left it
    assert aws.record("job-2").settled_as == "failed"
    assert (aws.balance("u"), aws.held("u"), aws.ledger_sum("u")) == (30, 0, 30)


def test_a_hold_settled_after_the_scan_read_it_is_not_released_again(aws, expiry):
    service, publisher = expiry
    # Given an expired hold as the scan's index read it, and its render settling before the scan's write
    aws.seed_balance("u", 30)
    aws.holds().reserve("job-3", "u", "test", 20, expires_at=in_minutes(5))
    (seen,) = aws.store().expired_holds(in_minutes(10))
    assert aws.processor().process(rendered("job-3", "u", seconds=4)).kind == "settled"
    # When the scan releases what it read
    released = service.expire(seen)
    # Then its write is refused (the hold is no longer open), and a strong read finds nothing to release
    assert released is None and publisher.published == []
    assert (aws.balance("u"), aws.held("u"), aws.ledger_sum("u")) == (26, 0, 26)


def test_a_hold_not_yet_expired_or_without_an_expiry_stays(aws, expiry):
    service, _ = expiry
    aws.seed_balance("u", 30)
    aws.holds().reserve("later", "u", "test", 5, expires_at=in_minutes(60))
    aws.holds().reserve("default", "u", "test", 5)  # the stage's default: 6 hours
    assert service.release_expired().released == []
    assert aws.held("u") == 10
    assert aws.record("default").hold_expires_at > in_minutes(359)


@pytest.mark.parametrize(
    ("expires_at", "reason"),
    [("yesterday", "is not an ISO-8601 time"), ("2026-01-01T00:00:00", "needs its offset"), (-1, "must be an ISO-8601 time")],
)
def test_an_expiry_that_is_not_a_time_is_refused_and_holds_nothing(aws, expires_at, reason):
    aws.seed_balance("u", 30)
    with pytest.raises(InvalidEvent, match=reason):
        aws.holds().reserve("bad", "u", "test", 5, expires_at=expires_at)
    assert (aws.held("u"), aws.record("bad")) == (0, None)


def test_an_expiry_in_the_past_or_beyond_the_stages_maximum_is_refused(aws):
    aws.seed_balance("u", 30)
    with pytest.raises(InvalidEvent, match="must be in the future"):
        aws.holds().reserve("past", "u", "test", 5, expires_at=in_minutes(-1))
    with pytest.raises(InvalidEvent, match="at most 1440 minutes"):
        aws.holds().reserve("far", "u", "test", 5, expires_at=in_minutes(1441))
    assert aws.held("u") == 0


def test_a_retry_after_its_requested_expiry_passed_finds_the_hold_in_place_then_refused_once_released(aws, expiry):
    service, _ = expiry
    # Given a hold until five minutes from now whose answer the pipeline lost
    aws.seed_balance("u", 30)
    until = in_minutes(5)
    assert aws.holds().reserve("lost", "u", "test", 20, expires_at=until) is not None
    # When the pipeline retries the very same call ten minutes from now, before a tick released it
    late = replace(aws.holds(), clock=lambda: in_minutes(10))
    # Then the hold is in place (already-held), of the expiry it was made with, and nothing moved
    assert late.reserve("lost", "u", "test", 20, expires_at=until) is None
    assert (aws.balance("u"), aws.held("u"), aws.record("lost").hold_expires_at) == (10, 20, until)
    # And once the scan has released it at its expiry, the same retry is refused by its job, naming the expiry
    service.release_expired()
    with pytest.raises(ReservationRefused, match=re.escape(f"hold expired at {until}; a job is held once")):
        late.reserve("lost", "u", "test", 20, expires_at=until)
    assert (aws.balance("u"), aws.held("u")) == (30, 0)
