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
from tests.integration.simulator.test_simulator import failures_at


@pytest.fixture(scope="module")
def templates(dev_templates):
    return dev_templates


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


# A bug that livelocks the product runs every settlement to its retry budget (Backoff.max_attempts, 50) on each of
# Lambda's 3 attempts: its seed cost several times an ordinary run (16 s of CPU). With a budget of 10 the livelock
# ends in the on-failure destination all the same, and the seed without the bug is checked to pass at that budget
# first (it does at 5; at 3 a reserve() that retries injected faults gives up), so the budget is not what fails it.
SMALLER_RETRY_BUDGET = {mutations.a_held_render_never_commits: 10}


def _retry_budget(monkeypatch: pytest.MonkeyPatch, attempts: int) -> None:
    """Every Backoff gives up after `attempts` attempts instead of its max_attempts."""
    from reconciler.service.retrying import Backoff

    wait = Backoff.wait
    monkeypatch.setattr(Backoff, "wait", lambda self: wait(self) and self.attempts < attempts)


# (bug, the first seed that catches it, what the new invariant says).
@pytest.mark.parametrize(
    ("bug", "seed", "caught_by"),
    [
        (mutations.a_held_render_never_commits, 0, "went to the on-failure destination, but no fault was injected"),
        (mutations.a_damaged_job_is_read_again, 4, "(no fault injected)"),
        (mutations.the_hold_guard_is_off_by_one, 10, "the hold condition refused a covered hold"),
        (mutations.a_held_failure_is_taken_for_a_duplicate, 3, "still holds"),
        (mutations.the_returned_balance_is_ignored, 0, "beyond its bound"),
        (mutations.a_price_rounded_half_even, 0, "the price of"),
        (mutations.a_duration_parsed_as_whole_seconds, 0, "the price of"),
        (mutations.a_duplicate_of_another_event_is_a_conflict, 4, "the oracle classifies it duplicate"),
        (mutations.the_audit_difference_has_the_wrong_sign, 0, "the damage"),
    ],
)
def test_a_bug_the_older_invariants_missed_is_caught(templates, monkeypatch, bug, seed, caught_by):
    if bug in SMALLER_RETRY_BUDGET:
        _retry_budget(monkeypatch, SMALLER_RETRY_BUDGET[bug])
        assert failures_at(templates, seed) == [], "the smaller retry budget alone fails this seed"
    # Given a realistic bug of the product (tests/integration/simulator/mutations.py says what each one is)
    bug(monkeypatch)
    # When the simulator runs the first seed that catches it (test_simulator.failures_at)
    failures = failures_at(templates, seed)
    # Then the new invariant says so
    assert failures, "the simulator did not notice the bug"
    assert any(caught_by in failure for failure in failures), failures[:3]


# --- the checker on synthetic records: each new invariant flags what violates it, and only that --------------------


def _attempt_ended_by(fault_label: str, retried: bool, chained: bool = True):
    from simulator.records import Attempt

    injected = TimeoutError("the answer was lost")
    attempt = Attempt(writes_before=0, faults=[fault_label], fault_errors=[injected])
    if retried:
        attempt.retried_fault_errors.append((f"{fault_label} on TransactWriteItems", injected))
    try:
        if not chained:
            raise RuntimeError("another error, after the fault was retried")
        try:
            raise injected
        except TimeoutError as error:
            raise RuntimeError("ambiguous write") from error
    except RuntimeError as raised:
        attempt.error = raised
    return attempt


def _run_with(attempts, kind: str = "event", calls=()):
    from types import SimpleNamespace

    from simulator.records import Invocation
    from simulator.scenario import Task

    invocation = Invocation(Task(kind, ({"id": "e-1"},), "valid"), "req-1", attempts=list(attempts))
    return SimpleNamespace(invocations=[invocation], calls=list(calls))


def test_a_fault_the_code_retries_itself_that_ends_an_attempt_is_flagged():
    from simulator.liveness import a_fault_the_code_retries_itself_never_ends_an_attempt as invariant
    from simulator.scenario import Task

    # A lost commit answer the code should have read again, raised out of the handler and out of reserve()
    found = list(invariant(_run_with([_attempt_ended_by("read-timeout-after", retried=True)]), None))
    assert len(found) == 1 and "read-timeout-after on TransactWriteItems" in found[0]
    reserve = (Task("reserve", ("j", "u", "test", 1)), _attempt_ended_by("cancel-conflict", retried=True))
    assert len(list(invariant(_run_with([], calls=[reserve]), None))) == 1
    # A Lambda timeout, or an error unrelated to the retried fault, is another invariant's to judge
    assert list(invariant(_run_with([_attempt_ended_by("lambda-timeout-after", retried=False)]), None)) == []
    assert list(invariant(_run_with([_attempt_ended_by("cancel-conflict", retried=True, chained=False)]), None)) == []


def test_a_retry_that_reads_an_earlier_version_again_is_flagged():
    from simulator.liveness import a_retry_reads_the_record_as_it_is as invariant
    from simulator.records import Attempt

    assert list(invariant(_run_with([Attempt(writes_before=0, stale_reads=1)]), None)) == []
    found = list(invariant(_run_with([Attempt(writes_before=0, stale_reads=1), Attempt(writes_before=0, stale_reads=2)]), None))
    assert len(found) == 1 and found[0].startswith("attempt 2 of")


def test_an_old_copy_left_beside_a_re_dead_lettered_one_is_flagged():
    from types import SimpleNamespace

    from simulator.operators import a_replay_the_function_dead_letters_again_leaves_one_copy as invariant

    assert list(invariant(SimpleNamespace(operators=SimpleNamespace(left_in_the_dlq=[])), None)) == []
    left = SimpleNamespace(operators=SimpleNamespace(left_in_the_dlq=["message m-1 (rejected: detail: ...)"]))
    assert list(invariant(left, None)) == ["a replay re-dead-lettered message m-1 (rejected: detail: ...), and left the old copy in the DLQ"]


@pytest.mark.parametrize(
    ("task", "status", "entry", "flagged"),
    [
        (("u", 0, "zero-0", "refused"), "applied", ("u", 0), "accepted an adjustment it must refuse"),
        (("u", 5, "ref", ""), "already-applied", ("u", 5), None),
        (("u", 6, "ref", ""), "already-applied", ("u", 5), "used for +5 credits"),
        (("u", 6, "ref", ""), "applied", ("u", 6), None),
    ],
)
def test_the_adjusters_answer_is_judged(task, status, entry, flagged):
    from collections import Counter
    from types import SimpleNamespace

    from simulator.direct_calls import DirectCalls
    from simulator.scenario import Task

    run = SimpleNamespace(result=SimpleNamespace(failures=[], covered=Counter()))
    *args, expect = task
    result = SimpleNamespace(status=status, entry=SimpleNamespace(user_id=entry[0], signed_amount=entry[1]))
    DirectCalls(run)._judge_adjustment(Task("adjust", tuple(args), expect), result)  # type: ignore[arg-type]
    assert (flagged is None and run.result.failures == []) or (flagged is not None and flagged in run.result.failures[0])


def test_the_workload_generates_what_the_new_invariants_need():
    tasks = [step for seed in range(40) for task in generate(seed).tasks for step in (task.args if task.kind == "sequence" else (task,))]
    setup = [task for seed in range(40) for task in generate(seed).setup]
    assert any(task.kind == "reserve" and task.args[3] == 0 and task.expect == "invalid" for task in tasks)
    assert any(task.kind == "adjust" and task.args[1] == 0 and task.expect == "refused" for task in tasks)
    assert any(task.kind == "audit-fix" and len(task.args) == 3 for task in tasks)  # a fix raced by another
    assert any(task.kind == "legacy-settled" and task.args[3] == 0 for task in setup)  # settled before records, unheld
    sequences = [task.args for seed in range(40) for task in generate(seed).tasks if task.kind == "sequence"]
    assert any([step.kind for step in steps][:3] == ["reserve", "release", "event"] for steps in sequences)


def test_a_run_reads_the_simulated_clock_so_no_verdict_depends_on_the_date():
    from datetime import UTC, datetime

    from reconciler.domain.ledger import iso_timestamp
    from reconciler.service import balance_event_publishing, timer_scan
    from simulator.clock import START, simulated_time
    from simulator.oracle import CUT_OFF
    from simulator.world import hours_ago

    with simulated_time():
        # Every clock the product reads, and the world's, is the run's: after the cut-off, strictly increasing
        readings = [iso_timestamp(), timer_scan.datetime.now(UTC).isoformat(), iso_timestamp()]
        assert readings[0] == "2026-12-14T00:00:00.001Z" and readings[2] == "2026-12-14T00:00:00.003Z"
        assert balance_event_publishing.datetime.now(UTC) > START and hours_ago(1) > CUT_OFF
    with simulated_time():
        assert iso_timestamp() == "2026-12-14T00:00:00.001Z"  # each run starts from the same moment
    assert timer_scan.datetime is datetime and balance_event_publishing.datetime is datetime  # the machine's clock again
