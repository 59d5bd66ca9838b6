"""The simulator of the money path runs a few hundred seeds in every `make test`; `make sim` runs 10,000."""

from __future__ import annotations

import pytest

from simulator import sim

# make test's share of the default seeds, split so that pytest-xdist's two workers share them.
CHUNKS = 4
SEEDS_PER_CHUNK = 50


@pytest.fixture(scope="module")
def templates(dev_templates_for_simulator):
    return dev_templates_for_simulator


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_every_invariant_holds_for_the_default_seeds(chunk, templates):
    seeds = list(range(chunk * SEEDS_PER_CHUNK, (chunk + 1) * SEEDS_PER_CHUNK))
    failed, covered = sim.simulate(seeds, shrink_failures=False, templates=templates)
    assert not failed, "\n".join(f"seed {run.seed}: {run.failures[:3]}" for run in failed)
    # And the runs covered what they claim: faults in AWS's shapes, Lambda's retries, every outcome
    assert covered["outcome:settled"] and covered["outcome:rejected"] and covered["task:scan"]
    assert sum(count for name, count in covered.items() if name.startswith("fault:")) > 0


def test_the_same_seed_reproduces_the_same_run(templates):
    first = sim.generate(1234)
    again = sim.generate(1234)
    assert [task.describe() for task in first.tasks] == [task.describe() for task in again.tasks]
    assert (first.workers, first.fault_rate) == (again.workers, again.fault_rate)


def test_a_reintroduced_bug_is_caught(templates, monkeypatch):
    # Given the old bug of counting a settlement confirmed by re-reading as a duplicate
    from reconciler.domain import settlement

    monkeypatch.setattr(settlement, "recovered_settlement", lambda event, job: settlement.Duplicate(event, job))
    # When the simulator runs seeds until one fails
    failed, _ = sim.simulate(list(range(0, 40)), shrink_failures=False, templates=templates)
    # Then the metrics no longer equal the ground truth, and the run says so
    assert failed, "the simulator did not notice the bug"
    assert any("metric Settlements" in failure for run in failed for failure in run.failures)
