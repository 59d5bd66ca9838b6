"""The settlement decision for each rule of the contract."""

from decimal import Decimal

import pytest

from reconciler.domain.errors import InsufficientCredits, InvalidEvent, ReservationRefused
from reconciler.domain.events import VideoFailed, VideoRendered
from reconciler.domain.pricing import PriceBook
from reconciler.domain.settlement import Conflict, Duplicate, JobRecord, Settlement, SettlementState, decide, plan_reservation

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


def test_rendered_with_reservation_releases_it_and_charges_the_cost():
    decision = decide(render("5"), job(reserved_credits=8), 2, PRICES, NOW)
    assert entries(decision) == [("job:2:j1:release", "credit", 8), ("job:2:j1:charge", "debit", 5)]
    assert decision.balance_delta == 3


def test_a_render_that_ran_over_its_reservation_debits_the_difference():
    decision = decide(render("12"), job(reserved_credits=8), 0, PRICES, NOW)
    assert decision.balance_delta == -4 and decision.is_overdraft


def test_failed_with_reservation_refunds_it():
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


def test_a_reservation_debits_the_balance_with_a_ledger_entry():
    plan = plan_reservation("j1", "u1", "test", 10, None, 10, NOW)
    assert (plan.entry.ledger_id, plan.entry.type, plan.entry.amount) == ("job:2:j1:reserve", "debit", 10)


def test_the_same_reservation_again_is_a_no_op_and_a_different_one_is_refused():
    assert plan_reservation("j1", "u1", "test", 10, job(reserved_credits=10), 50, NOW) is None
    with pytest.raises(ReservationRefused):
        plan_reservation("j1", "u1", "test", 11, job(reserved_credits=10), 50, NOW)
    with pytest.raises(ReservationRefused):
        plan_reservation("j1", "u1", "test", 10, job(settled_as="failed"), 50, NOW)
