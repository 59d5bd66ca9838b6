"""Property: whatever the schedule (duplicates, reorderings, conflicts, racing deliveries), every balance
equals its ledger and every job is settled at most once.

It runs twice: with the full example count on the in-memory fakes (tests/fakes.py, held to the DynamoDB
adapter's behaviour by the shared contract tests in tests/contract/), and with fewer examples against the real
repository on moto, which keeps the adapter itself under the property (a moto example costs 0.4 s to 1.3 s).
"""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from reconciler.domain.errors import InsufficientCredits
from reconciler.domain.ledger import adjustment_entry, iso_timestamp
from reconciler.domain.pricing import PriceBook
from reconciler.repository.sqs_dead_letters import SqsDeadLetters
from reconciler.service.event_settlement import EventProcessor, SettlementService
from reconciler.service.reservations import ReservationService
from tests.aws import Aws
from tests.events import failed, rendered
from tests.fakes import InMemoryDeadLetters, InMemorySettlementStore

USERS = ("ann", "ben", "cid")
JOBS = 3

job_plans = st.lists(
    st.tuples(st.sampled_from(USERS), st.one_of(st.none(), st.integers(1, 30))),  # owner, reservation
    min_size=JOBS,
    max_size=JOBS,
)
steps = st.lists(
    st.tuples(
        st.integers(0, JOBS - 1),  # which job
        st.sampled_from(("rendered", "failed")),
        st.integers(1, 25),  # seconds
        st.integers(0, 2),  # which delivery of the event (same id = redelivery)
        st.booleans(),  # does the next step race this one (runs between its read and its write)?
    ),
    min_size=1,
    max_size=12,
)


class RacingStore:
    """Delegates to the real store; before a write it may run another delivery to completion, the worst
    interleaving two concurrent invocations can produce."""

    def __init__(self, store):
        self._store = store
        self.racers: list = []

    def __getattr__(self, name):
        attribute = getattr(self._store, name)
        if name not in ("commit_settlement", "record_conflict"):
            return attribute

        def write(*args, **kwargs):
            if self.racers:
                self.racers.pop()()
            return attribute(*args, **kwargs)

        return write


@pytest.fixture(scope="module")
def stage(dev_templates):
    with mock_aws():
        yield Aws.provisioned(dev_templates)


class FakeStage:
    """The part of tests/aws.py's Aws stage that the property uses, over the in-memory fakes."""

    def __init__(self) -> None:
        self.fake = InMemorySettlementStore()

    def store(self) -> InMemorySettlementStore:
        return self.fake

    def seed_balance(self, user_id: str, credits: int) -> None:
        self.fake.commit_adjustment(adjustment_entry(user_id, credits, "opening balance", f"opening-{user_id}", "test", iso_timestamp()))

    def put_job(self, **item) -> None:
        self.fake.put_job(**item)

    def balance(self, user_id: str) -> int | None:
        return self.fake.balance_of(user_id)

    def held(self, user_id: str) -> int:
        return self.fake.held_of(user_id)

    def ledger(self, user_id: str) -> list:
        return self.fake.ledger_of(user_id)

    def ledger_sum(self, user_id: str) -> int:
        return sum(entry.signed_amount for entry in self.ledger(user_id))

    def job(self, job_id: str):
        return self.fake.job(job_id)

    def record(self, job_id: str):
        return self.fake.load_record(job_id)


run_ids = itertools.count()
OPENING = st.tuples(*[st.integers(0, 60)] * len(USERS))


@settings(max_examples=200, deadline=None)
@given(opening=OPENING, jobs=job_plans, schedule=steps)
def test_books_balance_and_each_job_settles_at_most_once_on_the_fakes(opening, jobs, schedule):
    books_balance_and_each_job_settles_at_most_once(FakeStage(), InMemoryDeadLetters(), opening, jobs, schedule)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(opening=OPENING, jobs=job_plans, schedule=steps)
def test_books_balance_and_each_job_settles_at_most_once_on_moto(stage, opening, jobs, schedule):
    dead_letters = SqsDeadLetters(stage.client("sqs"), stage.resources.dlq_url, "dev")
    books_balance_and_each_job_settles_at_most_once(stage, dead_letters, opening, jobs, schedule)


def books_balance_and_each_job_settles_at_most_once(stage, dead_letters, opening, jobs, schedule):
    run = next(run_ids)
    user = {name: f"{name}-{run}" for name in USERS}
    store = RacingStore(stage.store())
    service = SettlementService(store, PriceBook(), backoff=_no_sleep_backoff)
    processor = EventProcessor(service, dead_letters)

    # Given opening balances and some reserved jobs
    for name, credits in zip(USERS, opening, strict=True):
        if credits:
            stage.seed_balance(user[name], credits)
    reserved: dict[str, int] = {}
    for index, (owner, credits) in enumerate(jobs):
        job_id = f"job-{run}-{index}"
        try:
            if credits is None:
                raise InsufficientCredits(user[owner], 0, None)
            ReservationService(store).reserve(job_id, user[owner], "test", credits)
            reserved[job_id] = credits
        except InsufficientCredits:
            # Submitted by the pipeline without a reservation (every other one), or never recorded at all.
            if index % 2 == 0:
                stage.put_job(jobId=job_id, userId=user[owner], status="submitted", createdAt="2026-01-01T00:00:00.000Z")

    # When the schedule's events are delivered, some racing each other
    def event_for(index, kind, seconds, delivery):
        job_id, owner = f"job-{run}-{index}", user[jobs[index][0]]
        event_id = f"{kind}-{job_id}-{delivery}"
        return rendered(job_id, owner, seconds, event_id=event_id) if kind == "rendered" else failed(job_id, owner, event_id=event_id)

    events = [event_for(index, kind, seconds, delivery) for index, kind, seconds, delivery, _ in schedule]
    races = [race for *_, race in schedule]
    outcomes = []
    position = 0
    while position < len(events):
        if races[position] and position + 1 < len(events):
            racer = events[position + 1]
            store.racers.append(lambda racer=racer: outcomes.append(processor.process(racer)))
            outcomes.append(processor.process(events[position]))
            store.racers.clear()
            position += 2
        else:
            outcomes.append(processor.process(events[position]))
            position += 1

    # Then every posted balance (what can be spent + what is held) is its ledger, every hold an open reservation,
    # and each job carries at most one settlement
    for name in USERS:
        held, spendable = stage.held(user[name]), stage.balance(user[name]) or 0
        assert spendable + held == stage.ledger_sum(user[name]), f"{name}'s balance is not explained by the ledger"
        open_holds = sum(credits for job_id, credits in reserved.items() if _owner(jobs, job_id) == name and not stage.record(job_id).is_settled)
        assert held == open_holds, f"{name} holds {held}, but the open reservations hold {open_holds}"
    entries = [entry for name in USERS for entry in stage.ledger(user[name])]
    assert all(count == 1 for count in Counter(e.ledger_id for e in entries).values())
    settled_kinds = Counter()
    for outcome in outcomes:
        assert outcome.kind in ("settled", "duplicate", "conflict"), outcome
        if outcome.kind == "settled":
            settled_kinds[outcome.event.job_id] += 1
    assert all(count == 1 for count in settled_kinds.values()), "a job was settled twice"
    for job_id in settled_kinds:
        job = stage.job(job_id)
        suffixes = {e.ledger_id.rsplit(":", 1)[1] for e in entries if e.reference == job_id}
        # A reservation is a hold: it posts nothing, and neither does its release; only a render posts (its charge)
        expected = {"charge"} if job.settled_as == "rendered" else set()
        assert suffixes == expected, f"{job_id} settled as {job.settled_as} has entries {suffixes}"


def _owner(jobs, job_id: str) -> str:
    return jobs[int(job_id.rsplit("-", 1)[1])][0]


def _no_sleep_backoff(deadline):
    from reconciler.service.retrying import Backoff

    return Backoff(deadline=deadline, sleep=lambda _: None)


@pytest.mark.parametrize("reservation", [None, 7])
def test_a_failure_racing_a_render_of_the_same_job_settles_it_once(stage, reservation):
    # Given a job, optionally reserved
    run = next(run_ids)
    owner, job_id = f"dan-{run}", f"job-{run}"
    stage.seed_balance(owner, 20)
    store = RacingStore(stage.store())
    if reservation:
        ReservationService(store).reserve(job_id, owner, "test", reservation)
    else:
        stage.put_job(jobId=job_id, userId=owner, status="rendering", createdAt="2026-01-01T00:00:00.000Z")
    processor = EventProcessor(
        SettlementService(store, PriceBook(), backoff=_no_sleep_backoff), SqsDeadLetters(stage.client("sqs"), stage.resources.dlq_url, "dev")
    )
    # When its failure is delivered between the render's read and the render's write
    racer_outcomes = []
    store.racers.append(lambda: racer_outcomes.append(processor.process(failed(job_id, owner))))
    render_outcome = processor.process(rendered(job_id, owner, 3))
    # Then the failure settled it, and the render, on re-reading, is a recorded conflict
    assert racer_outcomes[0].kind == "settled" and render_outcome.kind == "conflict"
    assert stage.job(job_id).settled_as == "failed"
    assert stage.balance(owner) == 20 == stage.ledger_sum(owner) and stage.held(owner) == 0
