"""The settlement decision for each rule of the contract."""

from decimal import Decimal

import pytest

from reconciler.domain.errors import DamagedJob, InsufficientCredits, InvalidEvent, ReservationRefused
from reconciler.domain.events import VideoFailed, VideoRendered
from reconciler.domain.pricing import PriceBook
from reconciler.domain.settlement import (
    UNREAD,
    Conflict,
    Duplicate,
    JobRecord,
    Settlement,
    SettlementState,
    decide,
    plan_reservation,
    recovered_settlement,
)

NOW = "2026-11-28T12:00:00.000Z"
PRICES = PriceBook()


def render(seconds="5", event_id="e1"):
    return VideoRendered(event_id, "j1", "u1", Decimal(seconds), "test")


def failure(event_id="e2"):
    return VideoFailed(event_id, "j1", "u1", "gpu")


def job(**fields):
    return JobRecord(job_id="j1", user_id="u1", **fields)


def entries(decision):
    return [(e.ledger_id, e.type, e.amount) for e in decision.entries]


def test_rendered_without_reservation_debits_the_cost():
    decision = decide(render("5"), job(status="rendering"), 10, PRICES, NOW)
    assert isinstance(decision, Settlement)
    assert entries(decision) == [("job:2:j1:charge", "debit", 5)]
    assert decision.balance_after == 5 and not decision.is_overdraft


def test_a_render_of_a_held_job_releases_the_hold_and_posts_only_the_charge():
    decision = decide(render("5"), job(reserved_credits=8, reserved_as="hold"), 2, PRICES, NOW)
    assert entries(decision) == [("job:2:j1:charge", "debit", 5)]
    assert (decision.hold_released, decision.held_delta, decision.posted_delta, decision.balance_delta) == (8, -8, -5, 3)
    assert (decision.released, decision.charged, decision.debited, decision.credited) == (8, 5, 5, 0)


def test_a_failure_of_a_held_job_releases_the_hold_posts_nothing_and_counts_it_refunded():
    decision = decide(failure(), job(reserved_credits=8, reserved_as="hold"), 2, PRICES, NOW)
    assert decision.entries == () and (decision.hold_released, decision.balance_delta, decision.posted_delta) == (8, 8, 0)
    assert (decision.refunded, decision.credited) == (8, 8)


def test_a_held_render_over_its_hold_is_an_overdraft_only_on_a_balance_short_of_the_difference():
    held = job(reserved_credits=8, reserved_as="hold")
    assert decide(render("12"), held, 4, PRICES, NOW).is_overdraft is False
    assert decide(render("12"), held, 3, PRICES, NOW).is_overdraft is True


def test_a_decision_on_the_job_alone_assumes_a_covered_debit_and_claims_no_balance_after():
    decision = decide(render("5"), job(), UNREAD, PRICES, NOW)
    assert not decision.balance_read and decision.balance_before is None
    assert decision.balance_after is None and decision.is_overdraft is False and decision.balance_delta == -5


def test_a_settlement_recovered_from_a_held_job_is_the_hold_release_it_committed():
    settled = job(reserved_credits=8, reserved_as="hold", settled_as="rendered", settled_by_event="e1", settled_by_request="r1")
    settled = JobRecord(**{**settled.__dict__, "charged_credits": 5, "released_credits": 8})
    decision = recovered_settlement(render("5"), settled)
    assert entries(decision) == [("job:2:j1:charge", "debit", 5)] and decision.hold_released == 8 and decision.recovered


def test_an_unknown_reservation_kind_is_a_damaged_job():
    with pytest.raises(DamagedJob, match="reservedAs"):
        job(reserved_credits=8, reserved_as="posted")


def test_rendered_with_a_v2_reservation_releases_it_and_charges_the_cost():
    decision = decide(render("5"), job(reserved_credits=8), 2, PRICES, NOW)
    assert entries(decision) == [("job:2:j1:release", "credit", 8), ("job:2:j1:charge", "debit", 5)]
    assert decision.balance_delta == 3


def test_a_render_that_ran_over_its_reservation_debits_the_difference():
    decision = decide(render("12"), job(reserved_credits=8), 0, PRICES, NOW)
    assert decision.balance_delta == -4 and decision.is_overdraft


def test_failed_with_a_v2_reservation_refunds_it():
    decision = decide(failure(), job(reserved_credits=8), 2, PRICES, NOW)
    assert entries(decision) == [("job:2:j1:refund", "credit", 8)]


def test_failed_without_reservation_moves_nothing_but_settles_the_job():
    decision = decide(failure(), job(), 2, PRICES, NOW)
    assert isinstance(decision, Settlement) and decision.entries == () and decision.settled_as == "failed"


def test_an_unknown_job_is_settled_on_the_event_alone():
    decision = decide(render("3"), None, None, PRICES, NOW)
    assert entries(decision) == [("job:2:j1:charge", "debit", 3)] and decision.balance_after == -3


def test_the_same_terminal_event_again_is_a_duplicate():
    assert isinstance(decide(render(event_id="e9"), job(settled_as="rendered", settled_by_event="e1"), 5, PRICES, NOW), Duplicate)


def test_the_other_terminal_event_is_a_conflict_and_moves_nothing():
    decision = decide(failure(), job(settled_as="rendered", settled_by_event="e1"), 5, PRICES, NOW)
    assert isinstance(decision, Conflict)


def test_a_conflict_already_recorded_is_a_duplicate():
    settled = job(settled_as="rendered", conflict_event_ids=frozenset({"e2"}))
    assert isinstance(decide(failure("e2"), settled, 5, PRICES, NOW), Duplicate)


def test_an_event_for_another_users_job_is_rejected():
    with pytest.raises(InvalidEvent) as raised:
        decide(render(), JobRecord(job_id="j1", user_id="someone-else"), 5, PRICES, NOW)
    assert raised.value.field == "userId"


def test_settlement_state_machine():
    assert job().state is SettlementState.OPEN
    assert job(reserved_credits=3).state is SettlementState.RESERVED
    assert job(settled_as="rendered").state is SettlementState.SETTLED_RENDERED
    assert job(settled_as="failed").state is SettlementState.SETTLED_FAILED


def test_a_reservation_needs_cover_and_moves_nothing_without_it():
    with pytest.raises(InsufficientCredits):
        plan_reservation("j1", "u1", "test", 10, None, 9, NOW)
    with pytest.raises(InsufficientCredits):
        plan_reservation("j1", "u1", "test", 10, None, None, NOW)


def test_a_reservation_is_a_hold_without_a_posting_and_leaves_an_unread_balance_to_the_write():
    plan = plan_reservation("j1", "u1", "test", 10, None, 10, NOW)
    assert (plan.job_id, plan.credits, plan.timestamp) == ("j1", 10, NOW) and not hasattr(plan, "entry")
    assert plan_reservation("j1", "u1", "test", 10, None, UNREAD, NOW) == plan


def test_the_same_reservation_again_is_a_no_op_and_a_different_one_is_refused():
    assert plan_reservation("j1", "u1", "test", 10, job(reserved_credits=10), 50, NOW) is None
    with pytest.raises(ReservationRefused):
        plan_reservation("j1", "u1", "test", 11, job(reserved_credits=10), 50, NOW)
    with pytest.raises(ReservationRefused):
        plan_reservation("j1", "u1", "test", 10, job(settled_as="failed"), 50, NOW)
