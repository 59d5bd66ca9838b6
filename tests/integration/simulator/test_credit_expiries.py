"""Credits that expire in the simulator's phase of its own (simulator/credit_expiries.py): seeds interleave credits with
expiries, holds, renders, refunds and raced ticks with every check holding, and a rule bent in the product (the order,
or a lot consumed past its expiry) is caught by the oracle's own model."""

from __future__ import annotations

import pytest

from reconciler.domain import consumption
from simulator.credit_expiries import run_seeds


def test_seeds_expire_what_the_rule_leaves_once_under_every_race():
    covered, failures = run_seeds(range(4))
    assert failures == []
    assert covered["expiries booked"] > 0 and covered["credits with an expiry"] > covered["expiries booked"]
    assert covered["expiries booked by a second scan first"] + covered["expiries whose answer was lost"] > 0


@pytest.mark.parametrize("bug", ["paid consumed first", "a lot consumed past its expiry"])
def test_a_bent_rule_is_caught(monkeypatch, bug):
    if bug == "paid consumed first":
        monkeypatch.setattr(consumption, "CONSUMED_FIRST", ("paid", "goodwill", "promotional", "other"))
    else:
        monkeypatch.setattr(consumption.Lot, "consumable_at", lambda self, moment: self.remaining > 0)
    _, failures = run_seeds(range(4))
    assert any("the rule left" in failure for failure in failures), failures
