"""Credits in in the simulator (simulator/credits_in.py, issue #24): the default seeds generate its phase with every
class (purchases, grants, refunds, overdrawing chargebacks, redeliveries, reused references, invalid input), a seed's
run books them with every invariant holding, and two realistic bugs of credits in are caught at the first seed of
`make sim`'s order that catches each (found by running seeds 0, 1, 2, ... with the bug)."""

from __future__ import annotations

from collections import Counter

import pytest

from simulator.scenario import generate
from tests.integration.simulator import mutations
from tests.integration.simulator.test_simulator import failures_at


@pytest.fixture(scope="module")
def templates(dev_templates):
    return dev_templates


def test_the_first_hundred_seeds_generate_credits_in_of_every_kind():
    kinds: Counter = Counter()
    for seed in range(100):
        scenario = generate(seed)
        kinds["phases"] += bool(scenario.credits_in)
        deliveries = [task for step in scenario.credits_in for task in step.args if task.kind == "credits"]
        for task in deliveries:
            app = task.args[1]
            kinds[f"{app.category}:{task.expect}"] += 1
            kinds["overdrawing"] += app.credits >= 10**6
        event_ids = Counter(task.args[0]["id"] for task in deliveries)
        kinds["the same event again"] += sum(count - 1 for count in event_ids.values())
        kinds["a webhook sent again"] += sum("-again-" in event_id for event_id in event_ids)
    assert 60 <= kinds["phases"] <= 80
    for kind in ("paid:valid", "promotional:valid", "goodwill:valid", "refund:valid", "chargeback:valid", "paid:invalid", "overdrawing"):
        assert kinds[kind], kind
    assert sum(count for kind, count in kinds.items() if kind.endswith(":reused")) >= 10
    assert kinds["the same event again"] and kinds["a webhook sent again"]


def test_a_seed_books_credits_in_once_with_every_invariant_holding(templates):
    from simulator import sim

    failed, covered = sim.simulate([2], shrink_failures=False, templates=templates)
    assert not failed, [run.failures[:3] for run in failed]
    assert covered["credits-in:outcome:applied:valid"] and covered["credits-in:outcome:duplicate:valid"]
    assert covered["credits-in:changes-judged:explained"] and not covered["credits-in:changes-judged:flagged"]


# (bug, the first seed of `make sim`'s order whose run fails with it, what the failing invariant says)
CAUGHT = (
    (mutations.a_reused_reference_taken_for_a_duplicate, 0, "ended duplicate; the oracle says rejected"),
    (mutations.refunds_add_to_the_paid_total, 1, "running totals are"),
)


@pytest.mark.parametrize(("bug", "seed", "caught_by"), CAUGHT, ids=[bug.__name__ for bug, _, _ in CAUGHT])
def test_a_bug_of_credits_in_is_caught_at_its_seed(templates, monkeypatch, bug, seed, caught_by):
    # Given the bug (tests/integration/simulator/mutations.py)
    bug(monkeypatch)
    # When the simulator runs the first seed that catches it, the invariant that names the bug fails
    failures = failures_at(templates, seed)
    assert any(caught_by in failure for failure in failures), failures[:5]
