"""The simulator's invariants of progress and its own oracle (prices, events, classification, the audit judged by
what it finds): each catches a realistic bug of the product that the older invariants let through."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from importlib import resources

import pytest

from simulator.oracle import DUPLICATE, PRICES, SETTLED, Books, GeneratedEvent, generated_event, render_cost
from simulator.scenario import generate
from tests.integration.simulator import mutations
from tests.integration.simulator.test_simulator import first_failing_runs


@pytest.fixture(scope="module")
def templates(dev_templates_for_simulator):
    return dev_templates_for_simulator


def test_the_oracle_restates_the_published_prices_of_the_stage_it_runs():
    # prices.json and the dev stage's overrides (infra/config.py), read as data: the oracle's own table must say the same
    from infra.config import config_for

    prices_json = json.loads(resources.files("reconciler.domain").joinpath("prices.json").read_text())
    published = {model: Fraction(price) for model, price in prices_json.items() if not model.startswith("_")}
    published.update({model: Fraction(price) for model, price in config_for("dev").price_overrides.items()})
    assert published == PRICES
    # and the rounding rule: a started credit is a spent credit, exactly (30 significant digits are not rounded first)
    assert render_cost("test", Fraction(Decimal("1.00000000000000000000000000001"))) == 2
    assert render_cost("hd-v2", Fraction(2.5)) == 7 and render_cost("standard-v1", Fraction(7)) == 14


def test_the_oracle_reads_back_the_events_it_generated():
    envelope = {"id": "e-1", "detail-type": "video.rendered", "detail": '{"jobId": "j", "userId": "u", "seconds": 2.5, "model": "test"}'}
    assert generated_event(envelope) == GeneratedEvent("e-1", "rendered", "j", "u", Fraction(5, 2), "test")
    failed = {"id": "e-2", "detail-type": "video.failed", "detail": {"jobId": "j", "userId": "u", "reason": None}}
    assert generated_event(failed) == GeneratedEvent("e-2", "failed", "j", "u")


def test_the_oracle_classifies_each_delivery_from_what_it_knows_of_the_job():
    books = Books()
    books.adjust("u", 10)
    render = GeneratedEvent("e-1", "rendered", "j", "u", Fraction(3), "test")
    assert books.expected_outcome(render, "r-1") == "unsettled"
    books.settle("j", "u", "rendered", 3, ("e-1", "r-1"))
    assert books.expected_outcome(render, "r-1") == SETTLED  # this request's own settlement (its answer was lost)
    assert books.expected_outcome(render, "r-2") == DUPLICATE  # a redelivery
    assert books.expected_outcome(GeneratedEvent("e-9", "rendered", "j", "u", Fraction(1), "test"), "r-3") == DUPLICATE
    failure = GeneratedEvent("e-2", "failed", "j", "u")
    assert books.expected_outcome(failure, "r-4") == "conflict"
    books.record_conflict("j", "e-2", "r-4")
    assert books.expected_outcome(failure, "r-4") == "conflict" and books.expected_outcome(failure, "r-5") == DUPLICATE
    assert books.expected_outcome(GeneratedEvent("e-3", "failed", "j", "someone else"), "r-6") == "rejected"
    # and a hold: refused for another user, a settled job, other credits; allowed in place
    books.hold("k", "u", 4, "test", 0)
    assert books.refuses_reservation("k", "u", 4) is None and books.refuses_reservation("k", "u", 5) and books.refuses_reservation("k", "v", 4)
    assert books.refuses_reservation("j", "u", 1) and books.refuses_reservation("new", "u", 1) is None


def test_some_runs_damage_the_books_for_the_audit_to_find():
    kinds = [task.args[0] for seed in range(60) for task in generate(seed).discrepancies]
    assert {"balance", "held", "delete-entry", "extra-entry"} <= set(kinds)


# (bug, what the new invariant says, seeds it may take, seeds per run of the simulator). A bug that livelocks the
# product (50 settlement attempts on each of Lambda's 3) is tried one seed at a time: the first seed catches it.
@pytest.mark.parametrize(
    ("bug", "caught_by", "seeds", "step"),
    [
        (mutations.a_held_render_never_commits, "went to the on-failure destination, but no fault was injected", 3, 1),
        (mutations.a_damaged_job_is_read_again, "(no fault injected)", 10, 5),
        (mutations.the_hold_guard_is_off_by_one, "the hold condition refused a covered hold", 10, 5),
        (mutations.a_held_failure_is_taken_for_a_duplicate, "still holds", 5, 5),
        (mutations.the_returned_balance_is_ignored, "beyond its bound", 5, 1),
        (mutations.a_price_rounded_half_even, "the price of", 5, 5),
        (mutations.a_duration_parsed_as_whole_seconds, "the price of", 5, 5),
        (mutations.a_duplicate_of_another_event_is_a_conflict, "the oracle classifies it duplicate", 5, 5),
        (mutations.the_audit_difference_has_the_wrong_sign, "the damage", 15, 15),
    ],
)
def test_a_bug_the_older_invariants_missed_is_caught(templates, monkeypatch, bug, caught_by, seeds, step):
    # Given a realistic bug of the product (tests/integration/simulator/mutations.py says what each one is)
    bug(monkeypatch)
    # When the simulator runs its first seeds, `step` at a time, until a run fails
    failed = first_failing_runs(templates, seeds=seeds, step=step)
    # Then the new invariant says so
    assert failed, "the simulator did not notice the bug"
    assert any(caught_by in failure for run in failed for failure in run.failures), [run.failures[:3] for run in failed]
