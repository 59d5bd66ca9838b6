"""The domain's hold expiry: when a hold expires (HoldExpiry), whether a passed expiry refuses a hold (plan_hold), and
whether the timer scan may release it (plan_expiry)."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest

from reconciler.domain.errors import InvalidEvent, ReservationRefused
from reconciler.domain.holds import HoldExpiry, HoldRequest, plan_expiry, plan_hold
from reconciler.domain.pricing import PriceBook
from reconciler.domain.records import SettlementRecord

NOW = "2026-12-07T12:00:00.000Z"
POLICY = HoldExpiry(default=timedelta(hours=6), maximum=timedelta(hours=24))


def held(expires_at: str | None = "2026-12-07T11:59:59.999Z", **changes) -> SettlementRecord:
    values = dict(job_id="j", user_id="u", held_credits=20, hold_open=True, held_at="2026-12-07T06:00:00.000Z", unit_price=Decimal(1))
    return SettlementRecord(**{**values, "hold_expires_at": expires_at, **changes})


def test_an_open_hold_past_its_expiry_is_released_whole_on_that_expiry():
    release = plan_expiry(held(), NOW)
    assert release is not None
    expected = ("j", "u", 20, "2026-12-07T11:59:59.999Z", NOW)
    assert (release.job_id, release.user_id, release.credits, release.expired_at, release.timestamp) == expected


def test_a_hold_expiring_this_very_millisecond_is_due():
    assert plan_expiry(held(expires_at=NOW), NOW) is not None


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (held(expires_at="2026-12-07T12:00:00.001Z"), "not due yet"),
        (held(expires_at=None), "made before expiries"),
        (held(hold_open=False, hold_released_at="2026-12-07T10:00:00.000Z"), "released already (by the pipeline or a tick)"),
        (held(settled_as="rendered", settled_at="2026-12-07T11:00:00.000Z"), "settled: its settlement released the hold"),
        (held(settled_as="failed", hold_open=False), "failed"),
        (held(held_credits=0, hold_open=False), "never held"),
    ],
)
def test_nothing_to_release(record, why):
    assert plan_expiry(record, NOW) is None, why


def test_the_default_expiry_follows_the_hold():
    assert POLICY.expires_at(None, NOW) == "2026-12-07T18:00:00.000Z"


@pytest.mark.parametrize(
    ("requested", "stored"),
    [
        ("2026-12-07T13:00:00Z", "2026-12-07T13:00:00.000Z"),
        ("2026-12-07T14:00:00.123456+01:00", "2026-12-07T13:00:00.123Z"),  # normalised to UTC milliseconds
        ("2026-12-08T12:00:00.000Z", "2026-12-08T12:00:00.000Z"),  # exactly the maximum
    ],
)
def test_a_requested_expiry_is_stored_in_utc_milliseconds(requested, stored):
    assert POLICY.expires_at(requested, NOW) == stored


@pytest.mark.parametrize(
    ("requested", "reason"),
    [
        ("2026-12-08T12:00:00.001Z", "at most 1440 minutes"),
        ("2026-12-07T13:00:00", "needs its offset"),
        ("soon", "is not an ISO-8601 time"),
        (3600, "must be an ISO-8601 time"),
        ("2026-12-07T13:00:00Z" + " " * 40, "must be an ISO-8601 time"),
        ("0001-01-01T00:00:00+01:00", "is out of range"),
    ],
)
def test_an_expiry_the_pipeline_may_not_ask_for_is_refused_by_name(requested, reason):
    with pytest.raises(InvalidEvent, match=reason) as refused:
        POLICY.expires_at(requested, NOW)
    assert refused.value.field == "expiresAt"


def retry(expires_at: str) -> HoldRequest:
    """The pipeline's retry of the hold held() records: same job, user, credits and expiry."""
    return HoldRequest.sized("j", "u", "test", PriceBook(), credits=20, expires_at=expires_at)


@pytest.mark.parametrize("passed", ["2026-12-07T11:59:59.999Z", NOW])
def test_a_retry_whose_expiry_has_passed_since_finds_its_hold_in_place(passed):
    # The expiry is checked for its form and the maximum whether or not the hold exists, and has passed by now
    expiry = POLICY.expires_at(passed, NOW)
    assert plan_hold(retry(passed), held(expires_at=passed), NOW, expires_at=expiry) is None


@pytest.mark.parametrize("passed", [NOW, "2026-12-07T12:59:59.999+01:00"])
def test_a_new_hold_whose_expiry_is_not_after_now_is_refused_by_name(passed):
    with pytest.raises(InvalidEvent, match=f"must be in the future \\(now is {NOW}\\)") as refused:
        plan_hold(retry(passed), None, NOW, expires_at=POLICY.expires_at(passed, NOW))
    assert refused.value.field == "expiresAt"


def test_a_retry_after_the_scan_released_its_hold_is_refused_as_expired():
    released = held(hold_open=False, hold_released_at=NOW, hold_released_by="expiry")
    with pytest.raises(ReservationRefused, match=re.escape("j's hold expired at 2026-12-07T11:59:59.999Z; a job is held once")):
        plan_hold(retry("2026-12-07T11:59:59.999Z"), released, NOW, expires_at="2026-12-07T11:59:59.999Z")
    with pytest.raises(ReservationRefused, match=re.escape("j's hold was released; a job is held once")):
        plan_hold(retry("2026-12-07T11:59:59.999Z"), held(hold_open=False, hold_released_at=NOW), NOW, expires_at="2026-12-07T11:59:59.999Z")
