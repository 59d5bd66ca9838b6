"""`job show` tells a hold's expiry, and a hold the timer scan released at it (ops/jobs.py money_story)."""

from decimal import Decimal

from reconciler.domain.records import SettlementRecord
from reconciler.ops.jobs import money_story

HELD = dict(job_id="j", user_id="u", held_credits=20, unit_price=Decimal(1), hold_model="test", hold_expires_at="2026-12-07T18:00:00.000Z")


def test_an_open_hold_says_when_it_expires():
    story = money_story(SettlementRecord(**HELD, hold_open=True), None)
    assert story == ["held 20 credits at 1 a second of test (held on the balance, expiring at 2026-12-07T18:00:00.000Z)", "not settled"]


def test_an_expired_hold_says_the_timer_scan_released_it_and_the_job_is_not_settled():
    record = SettlementRecord(**HELD, hold_released_at="2026-12-07T18:04:00.000Z", hold_released_by="expiry")
    assert money_story(record, None) == [
        "held 20 credits at 1 a second of test (released by the timer scan at 2026-12-07T18:04:00.000Z: it expired at 2026-12-07T18:00:00.000Z)",
        "not settled",
    ]
