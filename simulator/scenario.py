"""The workload: a seed's scenario (set-up, tasks, workers, fault rate, stream delivery), and nothing else.

Every draw comes from generators seeded by the seed alone (one per concern, so adding a concern leaves the
others' draws as they were): one seed, one scenario, on any machine.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

USERS = ("ann", "bob", "cy#1", "d:ü")
MODELS = ("test", "standard-v1", "hd-v2")


@dataclass(frozen=True)
class Task:
    # event | reserve | release | adjust | scan | sequence (of tasks, one worker) | discrepancy, the world's set-up (damage,
    # seed-job, override, legacy-*, unfunded-hold), the pipeline's writes (simulator.pipeline.PIPELINE_KINDS), ...
    kind: str
    args: tuple = ()
    expect: str = ""  # for events: "valid" or "invalid"

    def describe(self) -> str:
        if self.kind in ("sequence", "step"):
            return f"{self.kind}(" + "; ".join(step.describe()[:160] for step in self.args) + ")"
        return f"{self.kind}{json.dumps(_printable(self.args), default=str, ensure_ascii=True)}{' expect=' + self.expect if self.expect else ''}"


def _printable(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 1000:
        return f"<an integer of about {int(value.bit_length() * 0.30103)} digits>"
    if isinstance(value, dict):
        return {key: _printable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_printable(item) for item in value]
    return value


@dataclass(frozen=True)
class StreamDelivery:
    """How this run's event source mapping delivers the Credits stream (chosen by the seed)."""

    batch_sizes: tuple[int, ...] = (100,)  # each invocation's batch size is drawn from these
    max_retry_attempts: int | None = None  # None: the template's MaximumRetryAttempts
    fault_rate: float = 0.0  # of the balance-events function's AWS calls

    def describe(self) -> str:
        retries = "the template's" if self.max_retry_attempts is None else self.max_retry_attempts
        return f"stream batches {list(self.batch_sizes)}, retry limit {retries}, stream fault rate {self.fault_rate}"


@dataclass
class Scenario:
    seed: int
    setup: list[Task]
    tasks: list[Task]
    workers: int
    fault_rate: float
    stream: StreamDelivery = field(default_factory=StreamDelivery)
    discrepancies: list[Task] = field(default_factory=list)  # damages to the books after the run (simulator.discrepancies)
    threshold_deploys: bool = False  # thresholds deployed between a stream record's attempts (simulator.config_changes)
    # The expiry phase's tasks, run after the others on workers of their own (simulator.expiries): holds that expire.
    expiries: list[Task] = field(default_factory=list)
    expiry_workers: int = 1
    # The credits-in phase's tasks, run after the expiry phase on workers of their own (simulator.credits_in).
    credits_in: list[Task] = field(default_factory=list)
    credits_in_workers: int = 1


def envelope(detail_type: str, detail: Any, event_id: Any) -> dict:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": "video.generation",
        "account": "123456789012",
        "time": "2026-11-29T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


# Numbers at the edges: (value, valid?) — valid ones are settleable durations.
EDGE_SECONDS: list[tuple[Any, bool]] = [
    (5, True),
    (Decimal("0.001"), True),
    (14400, True),
    (Decimal("1.00000000000000000000000000001"), True),
    (2.5, True),
    (0, False),
    (-3, False),
    (14401, False),
    (True, False),
    ("7", False),
    (float("nan"), False),
    (float("inf"), False),
    (Decimal("1e-200"), False),
    (10**5000, False),
    (Decimal("1." + "1" * 40), False),
    (None, False),
]
# Crafted ids: (value, valid?)
EDGE_IDS: list[tuple[Any, bool]] = [
    ("job#1", True),
    ("adjustment#charge", True),
    ("a:b#c", True),
    ("ü-ñ-✓", True),
    ("x" * 256, True),
    ("\U0001d4a5ob", True),
    ("x" * 257, False),
    ("bad\nid", False),
    ("nul\x00", False),
    ("lone\ud800", False),
    ("", False),
    ("   ", False),
    (7, False),
]


def generate(seed: int) -> Scenario:
    rng = random.Random(seed)
    setup: list[Task] = []
    tasks: list[Task] = []
    users = rng.sample(USERS, rng.randint(2, 3))
    for user in users:
        setup.append(Task("adjust", (user, rng.choice([0, 5, 50, 200]), f"opening-{user}")))
    job_count = rng.randint(2, 5)
    for index in range(job_count):
        job_id = rng.choice([f"j{index}", f"j{index}#charge", "adjustment" if index == 0 else f"j:{index}"])
        user = rng.choice(users)
        reserved = rng.random() < 0.5
        if reserved:
            tasks.append(Task("reserve", (job_id, user, rng.choice(MODELS), rng.choice([1, 10, 40]))))
        outcome = rng.choice(["rendered", "failed"])
        event_id = f"e-{index}"
        event = terminal_event(outcome, job_id, user, event_id, rng)
        deliveries = 1 + (rng.random() < 0.4) + (rng.random() < 0.2)
        tasks.extend(Task("event", (event,), "valid") for _ in range(deliveries))
        if rng.random() < 0.3:  # the contradicting terminal event
            other = "failed" if outcome == "rendered" else "rendered"
            tasks.append(Task("event", (terminal_event(other, job_id, user, f"e-{index}-other", rng),), "valid"))
    if rng.random() < 0.5:  # a render of a job never seen
        tasks.append(
            Task("event", (envelope("video.rendered", {"jobId": "ghost", "userId": users[0], "seconds": 3, "model": "test"}, "e-ghost"),), "valid")
        )
    if rng.random() < 0.4:  # the ledger-id collision case: a job named "adjustment" and a reference "charge"
        tasks.append(Task("adjust", (users[0], 7, "charge")))
    for number in range(rng.randint(0, 3)):  # numbers and ids at the edges
        tasks.append(_edge_event(rng, users[-1], f"e-edge-{number}"))
    if rng.random() < 0.3:  # a reservation settlement would refuse: it must hold nothing
        job_id, _ = rng.choice([item for item in EDGE_IDS if not item[1]] + [("fine-job", True)])
        model = "no-such-model" if job_id == "fine-job" else "test"
        tasks.append(Task("reserve", (job_id, users[0], model, 5), "invalid"))
    if rng.random() < 0.3:
        bad_id = rng.choice([None, "", "bad\x07id", "x" * 300])
        tasks.append(Task("event", (envelope("video.failed", {"jobId": "j0", "userId": users[0]}, bad_id),), "invalid"))
    if rng.random() < 0.4:  # a job whose stored item is damaged, and an event for it
        damage = rng.choice(
            [
                {"reservedCredits": {"S": "abc"}},
                {"reservedCredits": {"N": "-5"}},
                {"reservedCredits": {"N": "1.5"}},
                {"updatedAt": {"N": "1"}},
                {"userId": {"N": "3"}},
                {"conflictEventIds": {"S": "e"}},
            ]
        )
        setup.append(Task("damage", ("broken", users[0], json.dumps(damage), rng.random() < 0.5)))  # from before the cut-off?
        # The event is valid; the job it names is damaged (simulator.world says when settlement must refuse it).
        tasks.append(Task("event", (envelope("video.failed", {"jobId": "broken", "userId": users[0]}, "e-broken"),), "valid"))
    for number in range(rng.randint(0, 2)):  # finished jobs whose events were lost, for the timer scan
        setup.append(
            Task("seed-job", (f"lost-{number}", rng.choice(users), rng.choice(["rendered", "failed"]), rng.choice([0, 4]), rng.choice([3, "bad"])))
        )
        if rng.random() < 0.5:
            tasks.append(Task("pipeline", (f"lost-{number}", rng.choice(["rendered", "failed"]))))
    for _ in range(rng.randint(0, 2)):
        tasks.append(Task("scan"))
    rng.shuffle(tasks)  # reorders: deliveries, reservations and scans in any order
    workers, fault_rate = rng.randint(1, 4), rng.choice([0.0, 0.05, 0.15, 0.3])
    stream = _balance_event_tasks(random.Random(f"{seed}-balance-events"), setup, tasks)
    _legacy_tasks(random.Random(f"{seed}-legacy"), setup, tasks)
    _open_hold_tasks(random.Random(f"{seed}-holds"), setup, tasks)
    threshold_deploys = _issue_classes(seed, setup, tasks)
    discrepancies = _discrepancy_tasks(random.Random(f"{seed}-discrepancies"), setup)
    from simulator.credits_in import credits_in_tasks
    from simulator.expiries import expiry_tasks  # it imports this module

    expiries, expiry_workers = expiry_tasks(random.Random(f"{seed}-expiries"), setup)
    credits_in, credits_in_workers = credits_in_tasks(random.Random(f"{seed}-credits-in"), setup)
    return Scenario(
        seed, setup, tasks, workers, fault_rate, stream, discrepancies, threshold_deploys, expiries, expiry_workers, credits_in, credits_in_workers
    )


def _issue_classes(seed: int, setup: list[Task], tasks: list[Task]) -> bool:
    """Issues #20 and #21's classes, each from its module's generator and a stream of its own; returns whether the run's
    balance-event thresholds are deployed between a record's attempts."""
    from simulator.config_changes import config_tasks  # these modules import this one
    from simulator.edges import edge_tasks
    from simulator.operators import operator_tasks
    from simulator.pipeline import pipeline_tasks
    from simulator.sequences import sequence_tasks

    pipeline_tasks(random.Random(f"{seed}-pipeline"), setup, tasks)
    operator_tasks(random.Random(f"{seed}-operators"), setup, tasks)
    edge_tasks(random.Random(f"{seed}-edges"), setup, tasks)
    deploys = config_tasks(random.Random(f"{seed}-config"), setup, tasks)
    sequence_tasks(random.Random(f"{seed}-sequences"), setup, tasks)
    return deploys


def _edge_event(rng: random.Random, user: str, event_id: str) -> Task:
    """A render with a duration and a job id drawn from the edges, sometimes with its detail as JSON text."""
    seconds, ok_seconds = rng.choice(EDGE_SECONDS)
    job_id, ok_id = rng.choice(EDGE_IDS)
    detail: Any = {"jobId": job_id, "userId": user, "seconds": seconds, "model": "test"}
    if (
        rng.random() < 0.3
        and ok_id
        and isinstance(seconds, (int, Decimal))
        and not isinstance(seconds, bool)
        and abs(Decimal(seconds)).adjusted() < 4000
    ):
        detail = json.dumps(detail, default=str).replace(f'"{seconds}"', str(seconds))  # the detail as JSON text
    elif isinstance(seconds, int) and seconds.bit_length() > 13_000:
        # Only as JSON text can it arrive: Lambda's runtime parses an event with Python's json, which refuses an
        # integer of more than 4,300 digits, so the function never sees one in a parsed event.
        detail = (
            '{"jobId": ' + json.dumps(job_id) + ', "userId": ' + json.dumps(user) + ', "seconds": ' + str(Decimal(seconds)) + ', "model": "test"}'
        )
    return Task("event", (envelope("video.rendered", detail, event_id),), "valid" if ok_seconds and ok_id else "invalid")


DISCREPANCY_KINDS = ("balance", "held", "delete-entry", "extra-entry")


def _discrepancy_tasks(rng: random.Random, setup: list[Task]) -> list[Task]:
    """In half of the runs, one or two users (with an opening balance, so with an item and an entry) damaged once
    each: (kind, user, amount); a deleted entry's amount says where it falls in the user's entries (0..1)."""
    opened = sorted({task.args[0] for task in setup if task.kind == "adjust" and task.args[1]})
    if not opened or rng.random() < 0.5:
        return []
    damaged = rng.sample(opened, min(len(opened), rng.choice([1, 1, 2])))
    kinds = [(user, rng.choice(DISCREPANCY_KINDS)) for user in damaged]
    return [Task("discrepancy", (kind, user, rng.random() if kind == "delete-entry" else rng.choice([1, 3, 17, -2, -40]))) for user, kind in kinds]


# Job ids of the data the v2 code wrote (a '#reserve' inside an id, a space: ids are length-prefixed in ledger ids).
LEGACY_JOB_IDS = ("v2-{n}", "v2:{n}#reserve", "old job {n}")


def _open_hold_tasks(rng: random.Random, setup: list[Task], tasks: list[Task]) -> None:
    """Held jobs whose events come after the reservation in the task list (workers may still reorder them), and
    reservations whose jobs get no event in the run, so holds are still open at the end (held must equal them):
    sometimes called twice (the pipeline retrying), sometimes for another user's job (refused)."""
    users = sorted({task.args[0] for task in setup if task.kind == "adjust"})
    opened = [(task.args[0], task.args[1]) for task in setup if task.kind == "adjust" and task.args[1]]
    for number in range(rng.choice([0, 1, 1, 2]) if opened else 0):
        user, opening = rng.choice(opened)
        job_id = f"held-{number}"
        at = rng.randint(0, len(tasks))
        tasks.insert(at, Task("reserve", (job_id, user, rng.choice(MODELS), rng.choice([1, 5, min(opening, 20)]))))
        event = terminal_event(rng.choice(["rendered", "failed"]), job_id, user, f"e-held-{number}", rng)
        for _ in range(1 + (rng.random() < 0.3)):
            tasks.insert(rng.randint(at + 1, len(tasks)), Task("event", (event,), "valid"))
    for number in range(rng.choice([0, 0, 1, 2])):
        user = rng.choice(users)
        call = Task("reserve", (f"pending-{number}", user, rng.choice(MODELS), rng.choice([1, 5, 20])))
        again = [call] if rng.random() < 0.3 else []
        if rng.random() < 0.2:
            again.append(Task("reserve", (f"pending-{number}", rng.choice(users), "test", 1)))
        for task in [call, *again]:
            tasks.insert(rng.randint(0, len(tasks)), task)


def _legacy_tasks(rng: random.Random, setup: list[Task], tasks: list[Task]) -> None:
    """Data written by the v2 code (reservations posted to the Ledger, no reservedAs), straight into the tables:
    open reservations, which the run then renders, fails, re-reserves or leaves to the timer scan, and settled
    jobs whose late or contradicting events arrive. Its own generator: the other tasks stay as they were."""
    opened = [(task.args[0], task.args[1]) for task in setup if task.kind == "adjust" and task.args[1]]
    if not opened or rng.random() < 0.35:
        return
    for number in range(rng.randint(1, 3)):
        user, opening = rng.choice(opened)
        job_id = rng.choice(LEGACY_JOB_IDS).format(n=number)
        credits = rng.choice([1, 4, 10, 40, opening])  # at most the opening, mostly: v2 refused a reservation it could not cover
        model = rng.choice(MODELS)
        if rng.random() < 0.25:  # settled by v2: a late copy of its event, or the contradicting one
            outcome = rng.choice(["rendered", "failed"])
            seconds = rng.choice([1, 7, 30])
            setup.append(Task("legacy-settled", (job_id, user, model, credits, outcome, seconds, f"e-v2-{number}")))
            late = outcome if rng.random() < 0.5 else ("failed" if outcome == "rendered" else "rendered")
            event_id = f"e-v2-{number}" if late == outcome else f"e-v2-{number}-other"
            detail: dict = {"jobId": job_id, "userId": user}
            if late == "rendered":
                detail.update(seconds=seconds, model=model)
            tasks.insert(rng.randint(0, len(tasks)), Task("event", (envelope(f"video.{late}", detail, event_id),), "valid"))
            continue
        status = rng.choice(["submitted", "rendering", "rendering", "rendered", "failed"])
        length = rng.choice([1, 7, 30, 2.5])
        setup.append(Task("legacy-reserve", (job_id, user, model, credits, status, length)))
        outcome = status if status in ("rendered", "failed") else rng.choice(["rendered", "failed"])
        # A job the pipeline finished without an event is the timer scan's; the others get their events.
        deliveries = 0 if status in ("rendered", "failed") and rng.random() < 0.5 else 1 + (rng.random() < 0.4)
        event = terminal_event(outcome, job_id, user, f"e-v2-{number}", rng)
        if outcome == "rendered" and status == "rendered":
            event["detail"].update(seconds=length, model=model)
        new_tasks = [Task("event", (event,), "valid") for _ in range(deliveries)]
        if rng.random() < 0.3:
            other = "failed" if outcome == "rendered" else "rendered"
            new_tasks.append(Task("event", (terminal_event(other, job_id, user, f"e-v2-{number}-other", rng),), "valid"))
        if rng.random() < 0.35:  # the pipeline retries its reservation call (same credits: in place) or asks for more
            new_tasks.append(Task("reserve", (job_id, user, model, rng.choice([credits, credits + 1]))))
        if deliveries == 0 or rng.random() < 0.3:
            new_tasks.append(Task("scan"))
        for task in new_tasks:
            tasks.insert(rng.randint(0, len(tasks)), task)


# Per-user threshold overrides on Credits items (docs/events.md), as DynamoDB values: (attribute, value).
GOOD_OVERRIDES = [
    ("lowBalanceThreshold", {"N": "1"}),
    ("lowBalanceThreshold", {"N": "25"}),
    ("lowBalanceThreshold", {"N": "120"}),
    ("overdraftAlertLevel", {"N": "0"}),
    ("overdraftAlertLevel", {"N": "-5"}),
    ("overdraftAlertLevel", {"N": "-40"}),
]
BAD_OVERRIDES = [
    ("lowBalanceThreshold", {"N": "0"}),
    ("lowBalanceThreshold", {"N": "-3"}),
    ("lowBalanceThreshold", {"N": "7.5"}),
    ("lowBalanceThreshold", {"S": "lots"}),
    ("overdraftAlertLevel", {"N": "3"}),
    ("overdraftAlertLevel", {"N": "-1.5"}),
    ("overdraftAlertLevel", {"S": "none"}),
    ("lowBalanceThreshold", {"BOOL": True}),
]


def _balance_event_tasks(rng: random.Random, setup: list[Task], tasks: list[Task]) -> StreamDelivery:
    """Makes crossings likely: overrides on the opening items, top-ups through the CLI's Adjuster that restore
    low balances, debits that make them low. Its own generator: the money-path tasks above stay as they were."""
    opened = [task.args[0] for task in setup if task.kind == "adjust" and task.args[1]]
    for user in opened:
        for _ in range(rng.choice([0, 0, 1, 2])):
            attribute, value = rng.choice(GOOD_OVERRIDES + BAD_OVERRIDES)
            setup.append(Task("override", (user, attribute, json.dumps(value))))
    users = sorted({task.args[0] for task in setup if task.kind == "adjust"})
    for number in range(rng.randint(1, 3)):
        amount = rng.choice([3, 12, 30, 150]) if rng.random() < 0.7 else -rng.choice([4, 9, 45])
        tasks.insert(rng.randint(0, len(tasks)), Task("adjust", (rng.choice(users), amount, f"top-up-{number}" if amount > 0 else f"debit-{number}")))
    return StreamDelivery(
        batch_sizes=rng.choice([(100,), (100,), (1,), (2, 3), (1, 4, 100), (5,)]),
        max_retry_attempts=rng.choice([None, None, None, 0, 1, 2]),
        fault_rate=rng.choice([0.0, 0.1, 0.25, 0.5]),
    )


def terminal_event(kind: str, job_id: str, user: str, event_id: str, rng: random.Random) -> dict:
    if kind == "rendered":
        return envelope(
            "video.rendered", {"jobId": job_id, "userId": user, "seconds": rng.choice([1, 7, 30, 2.5]), "model": rng.choice(MODELS)}, event_id
        )
    return envelope("video.failed", {"jobId": job_id, "userId": user, "reason": rng.choice([None, "gpu", "bad\x07reason"])}, event_id)


def describe(scenario: Scenario) -> str:
    lines = [f"seed {scenario.seed}: {scenario.workers} worker(s), fault rate {scenario.fault_rate}, {scenario.stream.describe()}"]
    lines += [f"  setup  {task.describe()[:240]}" for task in scenario.setup]
    lines += [f"  task   {task.describe()[:240]}" for task in scenario.tasks]
    lines += [f"  damage {task.describe()[:240]}" for task in scenario.discrepancies]
    if scenario.expiries:
        lines += [f"  expiry phase: {scenario.expiry_workers} worker(s)"] + [f"  expiry {task.describe()[:2000]}" for task in scenario.expiries]
    if scenario.credits_in:
        lines += [f"  credits-in phase: {scenario.credits_in_workers} worker(s)"]
        lines += [f"  credits {task.describe()[:240]}" for step in scenario.credits_in for task in step.args]
    return "\n".join(lines)
