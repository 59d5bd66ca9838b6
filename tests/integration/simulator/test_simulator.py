"""The simulator of the money path: `make test` runs its first 40 seeds and the two later ones that catch a bug with
every invariant and the coverage check, and for each bug it must catch the one seed that catches it first; `make sim`
runs 10,000 (docs/simulator.md says exactly what runs where)."""

from __future__ import annotations

from collections import Counter

import pytest

from simulator import sim
from simulator.harness import Harness
from simulator.oracle import crossing_id, ground_truth
from simulator.run import run_scenario
from simulator.scenario import generate

# make test's share of the default seeds: 0 to 39, and 46 and 67 (the two seeds beyond them at which a bug test below
# catches its bug: each must pass with no bug applied), in two samples so that pytest-xdist's two workers share them.
# `make sim` runs 10,000 with the same invariants and the same coverage check (docs/simulator.md).
SAMPLES = ([*range(0, 20), 46], [*range(20, 40), 67])


@pytest.fixture(scope="module")
def templates(dev_templates):
    return dev_templates


@pytest.mark.long
@pytest.mark.parametrize("seeds", SAMPLES, ids=["seeds-0-19-and-46", "seeds-20-39-and-67"])
def test_every_invariant_holds_for_the_default_seeds(seeds, templates):
    failed, covered = sim.simulate(seeds, shrink_failures=False, templates=templates)
    assert not failed, "\n".join(f"seed {run.seed}: {run.failures[:3]}" for run in failed)
    # And the runs covered what they claim (sim.REQUIRED_COUNTERS: faults in AWS's shapes, Lambda's retries, every
    # outcome, the balance events, the holds design, concurrent balance changes, the closing phase, stale reads)
    assert sim.uncovered(covered, len(seeds)) == []


def test_a_sample_that_misses_a_class_is_reported_uncovered():
    full = Counter({name: 1 for name in sim.REQUIRED_COUNTERS} | {"fault:throttle": 1, "stale:outcome:settled": 1, "audits-clean": 40})
    assert sim.uncovered(full, 20) == []
    assert sim.uncovered(full - Counter({"race:crossing": 1}), 20) == ["race:crossing"]
    assert sim.uncovered(full, 21) == ["audits-clean=40 (expected 42)"]


def test_the_same_seed_reproduces_the_same_run(templates):
    first = generate(1234)
    again = generate(1234)
    assert [task.describe() for task in first.tasks] == [task.describe() for task in again.tasks]
    assert (first.workers, first.fault_rate, first.stream) == (again.workers, again.fault_rate, again.stream)
    assert [task.describe() for task in first.setup] == [task.describe() for task in again.setup]


def test_a_seed_replays_exactly_with_its_balance_events(templates):
    # The stream's batches, faults, retries and what reached the bus are the seed's, like the money path's; so
    # are the workers' hand-overs and every counter (the digest that compares two versions of the simulator),
    # whatever ran before in the process (seed 16's alerts once depended on the earlier runs' and the clock).
    harness = Harness(templates)
    try:
        results = [(generate(seed), run_scenario(harness, generate(seed))) for seed in (16, 11, 16, 11)]
    finally:
        harness.close()
    runs = [{name: count for name, count in result.covered.items() if name.startswith(("balance:", "fault:stream:"))} for _, result in results]
    assert runs[:2] == runs[2:]
    assert runs[0]["balance:events-on-the-bus"] + runs[1]["balance:events-on-the-bus"] > 0
    digests = [sim.digest(scenario, result) for scenario, result in results]
    assert digests[:2] == digests[2:] and digests[0] != digests[1]
    assert all(result.handovers for _, result in results)


def test_a_verdict_does_not_depend_on_how_long_the_run_takes(templates, monkeypatch):
    # Seed 5182 failed once on a loaded machine: its invocations' 30-second budget ran out while other workers ran,
    # and settlements gave up after one attempt with no fault injected. The simulator models no wall time, so a
    # clock that jumps a minute at every reading must give a passing run (with a 30-second budget seed 3 fails so).
    class SlowMachine:
        now = 0.0

        @classmethod
        def monotonic(cls) -> float:
            cls.now += 60.0
            return cls.now

    monkeypatch.setattr("reconciler.service.event_settlement.time", SlowMachine)
    monkeypatch.setattr("reconciler.service.retrying.time", SlowMachine)
    failed, covered = sim.simulate([3], shrink_failures=False, templates=templates)
    assert not failed, [run.failures[:3] for run in failed]
    assert SlowMachine.now > 0 and covered["outcome:settled"]  # deadlines were computed on the jumping clock


def test_the_oracle_restates_the_documented_rules():
    # docs/events.md's example: 15 -> 8 low, 5 -> 0 exhausted, 0 -> -4 overdrawn, -5 -> 15 restored; a new item
    # into overdraft enters all three; an override judges both sides; a bad override falls back; REMOVE emits nothing.
    def record(seq, before, after, **new):
        data = {"Keys": {"userId": {"S": "u"}}, "SequenceNumber": str(seq), "NewImage": {"remaining": {"N": str(after)}, **new}}
        if before is not None:
            data["OldImage"] = {"remaining": {"N": str(before)}}
        return {"eventName": "MODIFY" if before is not None else "INSERT", "dynamodb": data}

    def kinds(*records):
        return [(c["detail-type"], c["threshold"]) for c in ground_truth(list(records), (10, 0)).values()]

    assert kinds(record(1, 15, 8), record(2, 8, 5), record(3, 5, 0), record(4, 0, -4), record(5, -4, -5), record(6, -5, 15)) == [
        ("credits.low", 10),
        ("credits.exhausted", 0),
        ("credits.overdrawn", 0),
        ("credits.restored", 10),
    ]
    assert kinds(record(1, None, -3)) == [("credits.low", 10), ("credits.exhausted", 0), ("credits.overdrawn", 0)]
    assert kinds(record(1, None, 100)) == [] and kinds(record(1, -20, 80)) == [("credits.restored", 10)]
    assert kinds(record(1, 150, 150, lowBalanceThreshold={"N": "200"})) == []  # an override alone emits nothing
    assert kinds(record(1, 250, 150, lowBalanceThreshold={"N": "200"})) == [("credits.low", 200)]
    assert kinds(record(1, 5, -3, overdraftAlertLevel={"N": "-5"})) == [("credits.exhausted", 0)]
    assert kinds(record(1, 20, 5, lowBalanceThreshold={"S": "lots"}, overdraftAlertLevel={"N": "2"})) == [("credits.low", 10)]
    assert kinds(record(1, 20, 5, lowBalanceThreshold={"N": "7.5"})) == [("credits.low", 10)]
    assert (
        kinds({"eventName": "REMOVE", "dynamodb": {"Keys": {"userId": {"S": "u"}}, "SequenceNumber": "1", "OldImage": {"remaining": {"N": "1"}}}})
        == []
    )
    # crossingId: the documented hash, the same as the function's for the same record
    from reconciler.domain import crossings

    assert crossing_id("carol", "1100000000017454423010", "credits.exhausted") == crossings.crossing_id(
        "carol", "1100000000017454423010", "credits.exhausted"
    )


def failures_at(templates, seed: int) -> list[str]:
    """What seed `seed`'s run reports failed (nothing: it passed), unshrunk.

    A test that shows the simulator catches a bug runs the first seed of 0, 1, 2, ... (the order `make sim` runs them)
    whose run fails with that bug, found by running them in that order: a change that stops that seed from catching it
    fails the test, and none runs the seeds before it again, which pass (or fail otherwise) with the bug.
    """
    failed, _ = sim.simulate([seed], shrink_failures=False, templates=templates)
    return failed[0].failures if failed else []


def test_a_reintroduced_bug_is_caught(templates, monkeypatch):
    # Given the old bug of counting a settlement confirmed by re-reading as a duplicate
    from reconciler.domain import settlement

    monkeypatch.setattr(settlement, "recovered_settlement", lambda event, facts: settlement.Duplicate(event, facts))
    # When the simulator runs seed 1, the first that catches it
    failures = failures_at(templates, 1)
    # Then the metrics no longer equal the ground truth, and the run says so
    assert failures, "the simulator did not notice the bug"
    assert any("metric Settlements" in failure for failure in failures), failures[:3]


def _no_guard_on_a_debit(monkeypatch):
    from reconciler.repository import dynamodb

    monkeypatch.setattr(dynamodb, "_settlement_guard", lambda settlement: ("none", None))


def _a_held_failure_posts_a_refund(monkeypatch):
    from reconciler.domain import settlement

    original = settlement._failure_entries
    monkeypatch.setattr(settlement, "_failure_entries", lambda event, refunded, timestamp, as_hold: original(event, refunded, timestamp, False))


def _a_reservation_holds_nothing(monkeypatch):
    from reconciler.repository.dynamodb import DynamoDBStore

    original = DynamoDBStore._balance_update
    monkeypatch.setattr(
        DynamoDBStore,
        "_balance_update",
        lambda self, user, delta, timestamp, guard, held_delta=0, **rest: original(self, user, delta, timestamp, guard, **rest),
    )


def _a_lock_on_the_balance(monkeypatch):
    # A decision made on a known balance requires exactly that balance (a version check), instead of its threshold.
    from reconciler.repository import dynamodb

    def guard(settlement):
        if settlement.balance_delta >= 0:
            return ("none", None)
        return ("equals", settlement.balance_before) if settlement.balance_read else ("covers", -settlement.balance_delta)

    monkeypatch.setattr(dynamodb, "_settlement_guard", guard)


def _a_job_read_as_absent_is_written_blind(monkeypatch):
    # The settlement of a job whose record its read did not find overwrites whatever is there: a decision on an
    # eventually consistent read that missed a just-made hold (or a racing reservation) then erases the hold.
    from reconciler.repository.dynamodb import DynamoDBStore

    original = DynamoDBStore._record_settlement

    def blind(self, settlement):
        write = original(self, settlement)
        write.get("Put", {}).pop("ConditionExpression", None)
        return write

    monkeypatch.setattr(DynamoDBStore, "_record_settlement", blind)


# (bug, the first seed that catches it, what the failing invariant says)
@pytest.mark.parametrize(
    ("bug", "seed", "caught_by"),
    [
        (_a_job_read_as_absent_is_written_blind, 3, "the oracle says"),
        (_no_guard_on_a_debit, 0, "settledIntoOverdraft=False but the oracle's balance"),
        (_a_held_failure_posts_a_refund, 1, "is one the oracle does not expect"),
        (_a_reservation_holds_nothing, 0, "the oracle says"),
        (_a_lock_on_the_balance, 19, "serialise on the balance"),
    ],
)
def test_a_reintroduced_holds_bug_is_caught(templates, monkeypatch, bug, seed, caught_by):
    # Given a bug in the holds design (an overdraft decided without its guard, a posting for a released hold, a
    # hold that moves nothing to held, settlements serialised on the balance)
    bug(monkeypatch)
    # When the simulator runs the first seed that catches it
    failures = failures_at(templates, seed)
    # Then the oracle's invariants say so
    assert failures, "the simulator did not notice the bug"
    assert any(caught_by in failure for failure in failures), failures[:3]


def _skip_the_marker_check(monkeypatch):
    from reconciler.repository.balance_event_store import BalanceEventLog

    monkeypatch.setattr(BalanceEventLog, "is_published", lambda self, user_id, key: False)


def _go_on_after_a_failed_record(monkeypatch):
    from reconciler.handlers import balance_stream

    original = balance_stream.InOrder.__call__

    def eager(self, record):
        self.failed = False  # forgets the earlier failure: later records are published before it
        return original(self, record)

    monkeypatch.setattr(balance_stream.InOrder, "__call__", eager)


def _causes_from_the_ledger_alone(monkeypatch):
    # The crossing's cause read from Ledger only: the job postings in UserLedger are left out.
    from reconciler.repository.balance_event_store import LedgerLookup

    original = LedgerLookup.entries_at
    monkeypatch.setattr(LedgerLookup, "entries_at", lambda self, user, at: (e for e in original(self, user, at) if "entryKey" not in e))


# (bug, the first seed that catches it, what the failing invariant says: one of these)
@pytest.mark.parametrize(
    ("bug", "seed", "caught_by"),
    [
        (_skip_the_marker_check, 3, ("with only", "out of balance order")),
        (_go_on_after_a_failed_record, 0, ("not every record after the first failure", "out of balance order")),
        (_causes_from_the_ledger_alone, 0, ("names ledgerEntries",)),
    ],
)
def test_a_reintroduced_balance_events_bug_is_caught(templates, monkeypatch, bug, seed, caught_by):
    # Given a bug in the balance-events path (a retried record publishes again; a record after a failed one is published)
    bug(monkeypatch)
    # When the simulator runs the first seed that catches it
    failures = failures_at(templates, seed)
    # Then the balance-event invariants say so
    assert failures, "the simulator did not notice the bug"
    assert any(text in failure for failure in failures for text in caught_by), failures[:3]


def test_a_hand_written_hold_that_never_landed_is_not_expected_in_the_audit(templates):
    # Seed 702's pipeline wrote a hold whose TransactWriteItems a fault stopped before it arrived; the checker
    # counted it as hand-written anyway and expected the audit to name a reservation that was never stored.
    failed, covered = sim.simulate([702], shrink_failures=False, templates=templates)
    assert not failed, [run.failures[:3] for run in failed]
    assert any(name.startswith("pipeline:write-failed:") for name in covered) and covered["audits:off-the-books-reported"]


def test_runs_do_not_accumulate_motos_copies_of_the_tables(templates):
    # moto tracks every model object it makes, and each TransactWriteItems deep-copies its tables: a long run grew
    # by about 4 MB per seed until the harness dropped moto's tracking between runs.
    from moto.core.model_instances import model_data

    def tracked() -> int:
        return sum(len(model.instances_tracked) for models in model_data.values() for model in models.values())  # type: ignore[attr-defined]

    harness = Harness(templates)
    try:
        credits = harness.resources.tables["Credits"]
        check = {"ConditionCheck": {"TableName": credits, "Key": {"userId": {"S": "nobody"}}, "ConditionExpression": "attribute_exists(userId)"}}
        with pytest.raises(harness.dynamodb.exceptions.TransactionCanceledException):
            harness.dynamodb.transact_write_items(TransactItems=[check])
        assert tracked() > 0
        harness.reset()
        assert tracked() == 0
    finally:
        harness.close()


def test_a_crossing_only_redeployed_thresholds_imply_may_follow_later_records_events(templates):
    # Seed 6034 (10,000-seed run): record ...016's credits.restored, which only thresholds deployed between its
    # attempts imply, was published after record ...017's credits.exhausted from an earlier attempt (docs/events.md,
    # the ordering exception). The checker allowed such a late crossing within its own record only.
    failed, covered = sim.simulate([6034], shrink_failures=False, templates=templates)
    assert not failed, [run.failures[:3] for run in failed]
    assert covered["config:threshold-deploys-between-attempts"] and covered["balance:function-errors"]
