"""Threshold crossings: the pure rules of docs/events.md."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.domain.crossings import (
    EXHAUSTED,
    LOW,
    OVERDRAWN,
    RESTORED,
    Crossing,
    ThresholdError,
    Thresholds,
    conditions,
    crossing_id,
    crossings,
    user_thresholds,
    whole_number,
)

DEFAULT = Thresholds(low=10, overdraft_alert_level=0)


def types(before, after, thresholds=DEFAULT):
    return [c.detail_type for c in crossings(before, after, thresholds)]


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (50, 20, []),  # above, stays above
        (10, 9, [LOW]),  # the threshold itself is not low; one below is
        (9, 10, [RESTORED]),  # back at the threshold: restored
        (5, 1, []),  # low, stays low (not exhausted)
        (1, 0, [EXHAUSTED]),
        (0, -1, [OVERDRAWN]),
        (-1, -30, []),  # overdrawn stays overdrawn
        (50, -5, [LOW, EXHAUSTED, OVERDRAWN]),  # balance order, downwards
        (-5, 50, [RESTORED]),
        (-5, 3, []),  # leaves exhausted and overdrawn but is still low: no event
        (3, 0, [EXHAUSTED]),  # ... and entering exhausted again emits again
        (None, 100, []),  # a new item above every threshold
        (None, 5, [LOW]),
        (None, -3, [LOW, EXHAUSTED, OVERDRAWN]),  # a first render into overdraft
        (None, 0, [LOW, EXHAUSTED]),
    ],
)
def test_crossings_both_ways_and_none_on_the_same_side(before, after, expected):
    assert types(before, after) == expected


def test_thresholds_named_in_each_crossing():
    levels = Thresholds(low=100, overdraft_alert_level=-50)
    assert crossings(150, -60, levels) == [Crossing(LOW, 100), Crossing(EXHAUSTED, 0), Crossing(OVERDRAWN, -50)]
    assert crossings(-20, -40, levels) == []  # negative but above the alert level
    assert crossings(-60, 100, levels) == [Crossing(RESTORED, 100)]


@pytest.mark.parametrize(("low", "level"), [(0, 0), (-1, 0), (10, 1), (10**16, 0)])
def test_unusable_thresholds_are_refused(low, level):
    with pytest.raises(ThresholdError):
        Thresholds(low, level)


def test_overrides_apply_and_bad_ones_fall_back_with_a_problem_each():
    assert user_thresholds(DEFAULT, {"lowBalanceThreshold": Decimal(200), "overdraftAlertLevel": Decimal(-50)}) == (Thresholds(200, -50), [])
    assert user_thresholds(DEFAULT, None) == (DEFAULT, [])
    for bad in ("lots", "25", Decimal("2.5"), Decimal(0), True, {"nested": 1}):
        thresholds, problems = user_thresholds(DEFAULT, {"lowBalanceThreshold": bad})
        assert thresholds == DEFAULT and len(problems) == 1 and "lowBalanceThreshold" in problems[0]
    thresholds, problems = user_thresholds(DEFAULT, {"lowBalanceThreshold": Decimal(30), "overdraftAlertLevel": Decimal(5)})
    assert thresholds == Thresholds(30, 0) and len(problems) == 1  # the good one kept, the bad one reported


def test_whole_numbers_only():
    assert whole_number(Decimal("12")) == 12 and whole_number(Decimal("-3E+2")) == -300 and whole_number(7) == 7
    # Text is no number, even "7": a balance stored as text is damage (settlement refuses it too).
    assert [whole_number(v) for v in (Decimal("1.5"), "x", "7", None, True, Decimal("NaN"), 1.0)] == [None] * 7


def test_crossing_ids_are_deterministic_and_unambiguous():
    assert crossing_id("u", "100", LOW) == crossing_id("u", "100", LOW)
    ids = {
        crossing_id("u", "100", LOW),
        crossing_id("u", "100", EXHAUSTED),
        crossing_id("u", "101", LOW),
        crossing_id("u1", "00", LOW),
        crossing_id("u", "100", RESTORED),
    }
    assert len(ids) == 5
    assert crossing_id("a:1", "2", LOW) != crossing_id("a", "1:2", LOW)  # length-prefixed


@given(st.lists(st.integers(-200, 200), min_size=1, max_size=40), st.integers(1, 60), st.integers(-60, 0))
def test_events_alternate_and_match_the_conditions_of_any_balance_sequence(balances, low, level):
    """Over any sequence of balances (starting from no item): low and restored alternate, each condition is
    entered exactly once per time the balance moves into it, and the last state follows from the events."""
    thresholds = Thresholds(low, level)
    previous = None
    entered = {LOW: 0, EXHAUSTED: 0, OVERDRAWN: 0}
    restored = 0
    low_state = False
    for balance in balances:
        for crossing in crossings(previous, balance, thresholds):
            if crossing.detail_type == RESTORED:
                assert low_state
                low_state = False
                restored += 1
            else:
                entered[crossing.detail_type] += 1
                if crossing.detail_type == LOW:
                    assert not low_state
                    low_state = True
        assert low_state == conditions(balance, thresholds)[LOW]
        previous = balance
    assert entered[LOW] - restored == int(low_state)
