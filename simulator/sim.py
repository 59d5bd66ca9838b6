"""A deterministic simulator of the money path, in the spirit of TigerBeetle's VOPR: one seed, one run.

A run drives the real code (the Lambda handler as deployed, the timer scan through the same handler,
`reserve()`, the CLI's `Adjuster`) with several workers against in-process moto, made faithful by
`simulator.fidelity`. Workers are threads, but only one runs at a time: they hand over at every DynamoDB
call, to a worker the seed's random generator picks, so every interleaving is reproducible. Faults are
injected at the botocore boundary in AWS's shapes (fidelity.py), Lambda's retries of a failed or timed-out
invocation are modelled (same request id, up to 2 retries, then the on-failure destination), and after the
run the invariants below are checked. An independent oracle of the books (`Books`: holds, postings, v2
reservations) follows every commit in commit order and is compared with the tables after each one. The seeded
world includes data the v2 code wrote (reservations posted to the Ledger, settled jobs), written into the tables
as that code wrote them; an operator's adjustment may commit to a balance just before a guarded write,
across its threshold or not; and an eventually consistent read of a job may answer an earlier version of it, or
none where it was created since (fidelity.py, 7.). Then the Credits table's DynamoDB stream is drained through the real
balance-events handler, as Lambda's event source mapping would deliver it (batches, partial batch responses,
retries from the first failed record, give-ups after the retry limit), with faults injected into that
function's EventBridge and DynamoDB calls, and the events it put on the bus are checked against an independent
oracle of docs/events.md (BALANCE_EVENT_INVARIANTS). A failing run is shrunk to the shortest task list that
still fails.

    python -m simulator.sim --seeds 10000        # make sim
    python -m simulator.sim --seed 1234 -v       # replay one run, printing its tasks
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import os
import random
import sys
import threading
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from decimal import Decimal
from functools import partial
from typing import Any

from reconciler.contract import METRICS_NAMESPACE

INVARIANTS = (
    "for each user, remaining + held = the sum of both ledgers (Ledger + UserLedger; opening balances are entries, so initial 0)",
    "held = the sum of the user's open hold reservations; a settled job holds nothing",
    "after every commit, in commit order, the user's remaining and held are the oracle's (holds move remaining -> held and post "
    "nothing; a held render posts one charge, a held failure nothing; a v2 reservation settles with release + charge or a refund)",
    "every settlement's overdraft flag is exact: the oracle's balance after it, in commit order, is below 0 and it debited",
    "every job is settled at most once, with exactly the postings its settlement implies, each once, in the table and amount the oracle says",
    "every reservation is released, charged or refunded exactly once when its job settles, and never before",
    "no posting for a hold or a hold's failure; no ledger or balance write outside a transaction",
    "UserLedger: each posting keyed {timestamp}#{ledgerId} at its job's settlement time; a user's Query returns them in time order",
    "a change of the balance that keeps it on its side of a guard's threshold never cancels the guarded write (no lock, no serialising)",
    "no ledger entry without its job state",
    "the operator's audit (all users, and one user's merged history) finds the books clean, v2's data included",
    "every delivered event ends settled, duplicate, conflict or dead-lettered with its reason",
    "nothing raises out of the handler except what Lambda should retry",
    "the metrics equal the ground truth (Settlements, CreditsDebited, CreditsRefunded, Overdrafts, ConflictingEvents, InvalidEvents)",
    "every conflict and dead-lettered event produced an alert attempt; AlertFailures only for injected SNS faults",
    "every SQS and SNS message obeys the services' limits (fidelity refusals: none)",
    "the timer scan never settles on a status the pipeline replaced before the settlement",
)
BALANCE_EVENT_INVARIANTS = (
    "every crossing of the ground truth (an oracle of docs/events.md over the Credits stream) is on the bus with its crossingId "
    "and values, unless its record was given up",
    "no event on the bus without a ground-truth crossing",
    "no crossingId on the bus twice, except once per injected fault in the documented window (PutEvents succeeded, its marker not written)",
    "per user, the events on the bus are in balance order (stream sequence, then the crossing's place in the change)",
    "the BalanceEvents table holds exactly one marker per published crossing, and no marker without its event on the bus",
    "the stream function fails a record (or an invocation) only when a fault was injected into that invocation; so every give-up is explained",
    "each event's ledgerEntries are the user's entries at changedAt in both ledgers; ledgerEntriesExact iff their net is the change "
    "of the posted balance (remaining + held)",
)
HOLDS_SUMMARY = (
    ("holds made", "holds:made"),
    ("held renders", "holds:settled-hold-rendered"),
    ("held failures (released, nothing posted)", "holds:settled-hold-failed"),
    ("refused by the hold condition", "holds:refused-by-the-hold-condition"),
    ("holds open at the end (credits)", "holds:open-at-the-end"),
    ("v2 reservations seeded", "legacy:open-reservations-seeded"),
    ("v2 reservations rendered", "holds:settled-legacy-rendered"),
    ("v2 reservations failed (refunded)", "holds:settled-legacy-failed"),
    ("v2 settled jobs seeded", "legacy:settled-jobs-seeded"),
    ("balance re-decisions", "holds:balance-re-decisions"),
    ("of them on the balance returned (ALL_OLD)", "holds:re-decisions-on-the-returned-balance"),
    ("of them for a user with no Credits item", "holds:re-decisions-without-a-balance-item"),
    ("overdrafts", "holds:overdrafts"),
    ("settled past a concurrent change of the balance", "holds:settled-past-a-concurrent-balance-change"),
    ("races across a threshold", "race:crossing"),
    ("races on one side of it", "race:same-side"),
    ("UserLedger postings", "user-ledger-entries"),
)

STAGE = "dev"
IN_PROCESS_STREAMS = "https://streams.dynamodb.us-east-1.amazonaws.com"  # botocore would pick an account endpoint moto lacks
BALANCE_FUNCTION = f"cc-reconciler-balance-events-{STAGE}"
ALERT_CLOCK = 1_800_000_000.0  # seconds since the epoch: the alert grouping's time in every run
USERS = ("ann", "bob", "cy#1", "d:ü")
MODELS = ("test", "standard-v1", "hd-v2")


class SimulatedTimeout(BaseException):
    """Lambda stops the invocation (its timeout): nothing after this point of the handler runs.

    A BaseException, so no `except Exception` in the code under test can swallow it, as none can in Lambda."""


@dataclass(frozen=True)
class Task:
    kind: str  # event | reserve | adjust | scan | pipeline | damage | seed-job | override | legacy-reserve | legacy-settled
    args: tuple = ()
    expect: str = ""  # for events: "valid" or "invalid"

    def describe(self) -> str:
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


# --- scenario generation -------------------------------------------------------------------------------------


def _envelope(detail_type: str, detail: Any, event_id: Any) -> dict:
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
        event = _terminal_event(outcome, job_id, user, event_id, rng)
        deliveries = 1 + (rng.random() < 0.4) + (rng.random() < 0.2)
        tasks.extend(Task("event", (event,), "valid") for _ in range(deliveries))
        if rng.random() < 0.3:  # the contradicting terminal event
            other = "failed" if outcome == "rendered" else "rendered"
            tasks.append(Task("event", (_terminal_event(other, job_id, user, f"e-{index}-other", rng),), "valid"))
    if rng.random() < 0.5:  # a render of a job never seen
        tasks.append(
            Task("event", (_envelope("video.rendered", {"jobId": "ghost", "userId": users[0], "seconds": 3, "model": "test"}, "e-ghost"),), "valid")
        )
    if rng.random() < 0.4:  # the ledger-id collision case: a job named "adjustment" and a reference "charge"
        tasks.append(Task("adjust", (users[0], 7, "charge")))
    for number in range(rng.randint(0, 3)):  # numbers and ids at the edges
        seconds, ok_seconds = rng.choice(EDGE_SECONDS)
        job_id, ok_id = rng.choice(EDGE_IDS)
        detail: Any = {"jobId": job_id, "userId": users[-1], "seconds": seconds, "model": "test"}
        if (
            rng.random() < 0.3
            and ok_id
            and isinstance(seconds, (int, Decimal))
            and not isinstance(seconds, bool)
            and abs(Decimal(seconds)).adjusted() < 4000
        ):
            detail = json.dumps(detail, default=str).replace(f'"{seconds}"', str(seconds))  # the detail as JSON text
        tasks.append(Task("event", (_envelope("video.rendered", detail, f"e-edge-{number}"),), "valid" if ok_seconds and ok_id else "invalid"))
    if rng.random() < 0.3:  # a reservation settlement would refuse: it must hold nothing
        job_id, _ = rng.choice([item for item in EDGE_IDS if not item[1]] + [("fine-job", True)])
        model = "no-such-model" if job_id == "fine-job" else "test"
        tasks.append(Task("reserve", (job_id, users[0], model, 5), "invalid"))
    if rng.random() < 0.3:
        bad_id = rng.choice([None, "", "bad\x07id", "x" * 300])
        tasks.append(Task("event", (_envelope("video.failed", {"jobId": "j0", "userId": users[0]}, bad_id),), "invalid"))
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
        setup.append(Task("damage", ("broken", users[0], json.dumps(damage))))
        tasks.append(Task("event", (_envelope("video.failed", {"jobId": "broken", "userId": users[0]}, "e-broken"),), "invalid"))
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
    return Scenario(seed, setup, tasks, workers=workers, fault_rate=fault_rate, stream=stream)


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
        event = _terminal_event(rng.choice(["rendered", "failed"]), job_id, user, f"e-held-{number}", rng)
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
            tasks.insert(rng.randint(0, len(tasks)), Task("event", (_envelope(f"video.{late}", detail, event_id),), "valid"))
            continue
        status = rng.choice(["submitted", "rendering", "rendering", "rendered", "failed"])
        length = rng.choice([1, 7, 30, 2.5])
        setup.append(Task("legacy-reserve", (job_id, user, model, credits, status, length)))
        outcome = status if status in ("rendered", "failed") else rng.choice(["rendered", "failed"])
        # A job the pipeline finished without an event is the timer scan's; the others get their events.
        deliveries = 0 if status in ("rendered", "failed") and rng.random() < 0.5 else 1 + (rng.random() < 0.4)
        event = _terminal_event(outcome, job_id, user, f"e-v2-{number}", rng)
        if outcome == "rendered" and status == "rendered":
            event["detail"].update(seconds=length, model=model)
        new_tasks = [Task("event", (event,), "valid") for _ in range(deliveries)]
        if rng.random() < 0.3:
            other = "failed" if outcome == "rendered" else "rendered"
            new_tasks.append(Task("event", (_terminal_event(other, job_id, user, f"e-v2-{number}-other", rng),), "valid"))
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


def _terminal_event(kind: str, job_id: str, user: str, event_id: str, rng: random.Random) -> dict:
    if kind == "rendered":
        return _envelope(
            "video.rendered", {"jobId": job_id, "userId": user, "seconds": rng.choice([1, 7, 30, 2.5]), "model": rng.choice(MODELS)}, event_id
        )
    return _envelope("video.failed", {"jobId": job_id, "userId": user, "reason": rng.choice([None, "gpu", "bad\x07reason"])}, event_id)


# --- the harness: one in-process AWS for the process, emptied between runs ------------------------------------


class Harness:
    def __init__(self, templates: dict | None = None) -> None:
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        os.environ.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_REGION="us-east-1",
            POWERTOOLS_TRACE_DISABLED="true",
            POWERTOOLS_METRICS_NAMESPACE=METRICS_NAMESPACE,
        )
        os.environ.pop("AWS_ENDPOINT_URL", None)
        import boto3
        from moto import mock_aws

        from reconciler.local.resources import provision
        from reconciler.local.stack import templates_for
        from reconciler.local.stream_poller import balance_function_environment, mapping_settings
        from simulator import fidelity

        fidelity.install()
        self.fidelity = fidelity
        self.mock = mock_aws()
        self.mock.start()
        self.session = boto3.session.Session(region_name="us-east-1")
        templates = templates or templates_for(STAGE)
        self.resources = provision(templates, STAGE, self.session)
        os.environ.update(self.resources.runtime_environment())
        # The balance-events function's environment too (the variables the two functions share are equal).
        os.environ.update(balance_function_environment(templates, self.resources.tables))
        self.mapping = mapping_settings(templates)
        self.streams = self.session.client("dynamodbstreams", endpoint_url=IN_PROCESS_STREAMS)
        self.bus: list[dict] = []  # every event EventBridge accepted, in the order it accepted them
        self.stop_observing = fidelity.observe_results(self._on_result)
        self.dynamodb = self.session.client("dynamodb")
        self.sqs = self.session.client("sqs")
        self.log_sink = io.StringIO()
        from reconciler import bootstrap
        from reconciler.config import RuntimeConfig
        from reconciler.observability import logger

        # One warm container for all runs (the tables are emptied between runs, their names stay): a Lambda
        # container lives across invocations too, and building clients per run would cost most of the time.
        bootstrap.reset_container()
        config = RuntimeConfig.from_env()
        self.store = bootstrap.operations_store(config)  # the CLI's Adjuster needs its reads
        from reconciler.domain.pricing import PriceBook

        self.prices = PriceBook.with_overrides(config.price_overrides)  # the stage's prices, as the function has them
        self.key_names = {
            name: [k["AttributeName"] for k in self.dynamodb.describe_table(TableName=name)["Table"]["KeySchema"]]
            for name in self.resources.tables.values()
        }
        self.stream_arn = self.dynamodb.describe_table(TableName=self.resources.tables["Credits"])["Table"]["LatestStreamArn"]
        self.shard_id = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
        self.stream_iterator: str | None = None

        self.log_streams = [
            (handler, handler.setStream(self.log_sink))
            for handler in logging.getLogger(logger.name).handlers
            if isinstance(handler, logging.StreamHandler)
        ]

    def close(self) -> None:
        self.stop_observing()
        self.mock.stop()
        for handler, stream in self.log_streams:
            handler.setStream(stream)

    def reset(self) -> None:
        """Empties the tables and queues (cheaper than creating them again for every run)."""
        for name, keys in self.key_names.items():
            items = self.dynamodb.scan(
                TableName=name,
                ProjectionExpression=", ".join(f"#k{i}" for i in range(len(keys))),
                ExpressionAttributeNames={f"#k{i}": key for i, key in enumerate(keys)},
            )["Items"]
            for start in range(0, len(items), 25):
                self.dynamodb.batch_write_item(RequestItems={name: [{"DeleteRequest": {"Key": item}} for item in items[start : start + 25]]})
        while True:  # PurgeQueue is allowed once a minute: receive and delete instead
            messages = self.sqs.receive_message(QueueUrl=self.resources.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
            if not messages:
                break
            self.sqs.delete_message_batch(
                QueueUrl=self.resources.dlq_url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            )
        self.log_sink.seek(0)
        self.log_sink.truncate()
        self._forget_stream()
        self.stream_iterator = self.streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=self.shard_id, ShardIteratorType="LATEST")[
            "ShardIterator"
        ]
        self.bus.clear()
        self._fresh_alert_grouping()

    def _fresh_alert_grouping(self) -> None:
        """A new grouping of the container's alerts for each run, on a clock that stands still: which alerts the
        notifier publishes (so which SNS calls may take a fault from the run's one fault budget, shared with
        DynamoDB) is the seed's alone, not the wall clock's nor the earlier runs' in this process."""
        from reconciler import bootstrap
        from reconciler.notify.grouping import GroupingWindow

        notifier = bootstrap.shared_notifier()
        notifier.grouping = GroupingWindow(notifier.grouping.window_seconds, notifier.grouping.max_per_window, clock=lambda: ALERT_CLOCK)

    def thresholds(self) -> tuple[int, int]:
        """The stage's low threshold and overdraft alert level, as the function's environment gives them."""
        return int(os.environ["LOW_BALANCE_THRESHOLD"]), int(os.environ.get("OVERDRAFT_ALERT_LEVEL") or 0)

    def event_bus(self) -> str:
        return os.environ.get("BALANCE_EVENT_BUS") or "default"

    def _forget_stream(self) -> None:
        """Drops the records of earlier runs (the emptying's REMOVE records too) from moto's shard, as the stream's
        retention would: moto keeps every record in memory, and 10,000 runs would hold about half a million.
        Sequence numbers go on increasing. (moto's internals: there is no API for it.)"""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends
        from moto.dynamodbstreams.models import dynamodbstreams_backends

        shard = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[self.resources.tables["Credits"]].stream_shard
        shard.starting_sequence_number += len(shard.items)
        shard.items = []
        dynamodbstreams_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].shard_iterators.clear()

    def read_stream(self) -> list[dict]:
        """The Credits stream records written since the last reset, as Lambda hands them to the function
        (moto's key-only INSERT of an UpdateItem that creates an item dropped, docs/emulator-fidelity.md)."""
        from reconciler.local.stream_poller import drop_key_only_inserts, lambda_record

        records: list[dict] = []
        while self.stream_iterator:
            response = self.streams.get_records(ShardIterator=self.stream_iterator, Limit=1000)
            records.extend(response.get("Records", []))
            self.stream_iterator = response.get("NextShardIterator")
            if len(response.get("Records", [])) < 1000:
                break
        return [lambda_record(record, self.stream_arn) for record in drop_key_only_inserts({"Records": records})["Records"]]

    def _on_result(self, service: str, operation: str, params: dict, response: Any) -> None:
        """Records what EventBridge accepted (the request reached it and its entry has an event id)."""
        if service != "events" or operation != "PutEvents":
            return
        for entry, result in zip(params.get("Entries", []), response.get("Entries", []), strict=False):
            if result.get("EventId") and not result.get("ErrorCode"):
                self.bus.append(
                    {
                        "source": entry.get("Source"),
                        "detail-type": entry.get("DetailType"),
                        "detail": json.loads(entry.get("Detail", "{}")),
                        "bus": entry.get("EventBusName"),
                    }
                )


# --- the oracle: the books as the design says they must move, replayed in commit order --------------------------

HOLD, LEGACY = "hold", "legacy"  # how a job's reservation was made: a hold (no posting), or posted by v2


@dataclass
class OracleJob:
    user: str
    reserved: int = 0
    kind: str = ""  # HOLD, LEGACY, or "" (no reservation)
    settled: str | None = None
    before_the_run: bool = False  # settled by the v2 code in the seeded world


@dataclass
class Books:
    """An independent model of the money path (no runtime code): each user's `remaining` and `held`, each job's
    reservation and settlement, and every posting each must leave, applied one commit at a time.

    A reservation moves credits remaining -> held and posts nothing. Rendering a held job releases the hold and
    posts one charge; failing it releases the hold and posts nothing. A v2 reservation (posted as a `reserve`
    debit) is undone by postings: a release and a charge, or a refund. A job without a reservation posts its
    charge, or nothing when it fails. Opening balances and adjustments are Ledger entries, so each user's
    initial balance is 0 and remaining + held = the sum of both ledgers, always."""

    remaining: Counter = field(default_factory=Counter)
    held: Counter = field(default_factory=Counter)
    users: set[str] = field(default_factory=set)  # users with a Credits item
    jobs: dict[str, OracleJob] = field(default_factory=dict)
    # Job postings: ledgerId -> (table, user, type, amount); the run's go to UserLedger, v2's are in Ledger.
    postings: dict[str, tuple[str, str, str, int]] = field(default_factory=dict)

    def adjust(self, user: str, amount: int) -> None:
        self.users.add(user)
        self.remaining[user] += amount

    def covers(self, user: str, credits: int) -> bool:
        return user in self.users and self.remaining[user] >= credits

    def post(self, job_id: str, user: str, posting: str, kind: str, amount: int, table: str) -> None:
        self.postings[_job_ledger_id(job_id, posting)] = (table, user, kind, amount)

    def v2_reservation(self, job_id: str, user: str, credits: int) -> None:
        self.adjust(user, -credits)
        self.jobs[job_id] = OracleJob(user, credits, LEGACY)
        self.post(job_id, user, "reserve", "debit", credits, "Ledger")

    def hold(self, job_id: str, user: str, credits: int) -> list[str]:
        problems = []
        if not self.covers(user, credits):
            have = self.remaining[user] if user in self.users else "no balance"
            problems.append(f"a hold of {credits} for job {job_id!r} was made while {user!r} had {have} to spend")
        job = self.jobs.get(job_id)
        if job is not None and (job.reserved or job.settled):
            problems.append(f"job {job_id!r} was reserved again (it held {job.reserved}, settled {job.settled})")
        self.adjust(user, -credits)
        self.held[user] += credits
        self.jobs[job_id] = OracleJob(user, credits, HOLD)
        return problems

    def settle(self, job_id: str, user: str, outcome: str, cost: int, table: str = "UserLedger") -> tuple[int, bool]:
        """Applies a settlement; returns (its change to remaining, whether it settles into an overdraft)."""
        job = self.jobs.setdefault(job_id, OracleJob(user))
        reserved, kind = job.reserved, job.kind
        if outcome == "rendered":
            if kind == LEGACY and reserved:
                self.post(job_id, user, "release", "credit", reserved, table)
            self.post(job_id, user, "charge", "debit", cost, table)
            change = (reserved if kind else 0) - cost
        else:
            if kind == LEGACY and reserved:
                self.post(job_id, user, "refund", "credit", reserved, table)
            change = reserved if kind else 0
        if kind == HOLD:
            self.held[user] -= reserved
        if outcome == "rendered" or kind:  # a settlement that moves anything writes (or creates) the Credits item
            self.adjust(user, change)
        job.settled = outcome
        return change, change < 0 and self.remaining[user] < 0

    def open_holds(self) -> Counter:
        held: Counter = Counter()
        for job in self.jobs.values():
            if job.kind == HOLD and not job.settled:
                held[job.user] += job.reserved
        return held


def _job_ledger_id(job_id: str, posting: str) -> str:
    """docs/ledger.md's job ledger id, restated: `job:{len}:{jobId}:{posting}`."""
    return f"job:{len(job_id)}:{job_id}:{posting}"


# --- one run -------------------------------------------------------------------------------------------------


class Scheduler:
    """Only one worker runs at a time; at each switch point the seed's generator picks who runs next."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.cond = threading.Condition()
        self.turn: int | None = None
        self.alive: set[int] = set()
        self.local = threading.local()
        self.handovers: list[int] = []  # every worker picked, in order: the run's schedule (--digest)

    def run(self, bodies: list[Callable[[], None]]) -> bool:
        self.alive = set(range(len(bodies)))

        def main(index: int) -> None:
            self.local.index = index
            with self.cond:
                while self.turn != index:
                    self.cond.wait()
            try:
                bodies[index]()
            finally:
                with self.cond:
                    self.alive.discard(index)
                    self._pick()
                    self.cond.notify_all()

        threads = [threading.Thread(target=main, args=(i,), daemon=True) for i in range(len(bodies))]
        for thread in threads:
            thread.start()
        with self.cond:
            self._pick()
            self.cond.notify_all()
        for thread in threads:
            thread.join(timeout=120)
        return not any(thread.is_alive() for thread in threads)

    def _pick(self) -> None:
        self.turn = self.rng.choice(sorted(self.alive)) if self.alive else None
        if self.turn is not None:
            self.handovers.append(self.turn)

    def switch_point(self) -> None:
        me = getattr(self.local, "index", None)
        if me is None:
            return
        with self.cond:
            self._pick()
            self.cond.notify_all()
            while self.turn != me:
                self.cond.wait()


MAX_RACES, RACE_RATE = 4, 0.2  # concurrent balance changes injected before guarded writes, per run and per write

RETRYABLE_CODES = {
    "InternalServerError",
    "InternalError",
    "ServiceUnavailable",
    "ThrottlingException",
    "RequestThrottled",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "Throttling",
}


def _lambda_should_retry(error: BaseException) -> bool:
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    from reconciler.service.ports import AmbiguousWrite, Contention, RetriesExhausted, StaleState

    if isinstance(error, (RetriesExhausted, Contention, AmbiguousWrite, StaleState, ConnectionError, HTTPClientError)):
        return True
    return isinstance(error, ClientError) and (
        error.response.get("Error", {}).get("Code") in RETRYABLE_CODES or error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
    )


@dataclass
class RunResult:
    seed: int
    failures: list[str] = field(default_factory=list)
    covered: Counter = field(default_factory=Counter)
    handovers: list[int] = field(default_factory=list)  # the scheduler's picks, in order


class Run:
    def __init__(self, harness: Harness, scenario: Scenario) -> None:
        self.h = harness
        self.s = scenario
        self.rng = random.Random(scenario.seed * 7919 + 1)
        # One stream per service: how many alerts the notifier publishes depends on its time windows, and
        # must not change which DynamoDB calls fail.
        self.fault_rngs = {service: random.Random(f"{scenario.seed}-{service}") for service in ("dynamodb", "sqs", "sns")}
        self.scheduler = Scheduler(self.rng)
        self.result = RunResult(scenario.seed)
        self.outcomes: list[tuple[Task, dict]] = []
        self.lambda_dead_letters: list[Task] = []
        self.faults_left = 10
        self.sns_faults = 0
        self.alert_attempts: list[str] = []
        self.pipeline_writes: dict[str, tuple[str, bool]] = {}
        self.request_numbers = iter(range(1, 10**6))
        self.killed_scans: set[str] = set()
        self.failed_requests: set[str] = set()  # invocations whose every attempt failed: Lambda's on-failure destination
        self.retried: list[tuple[str, str, str]] = []
        self.books = Books()
        self.local = threading.local()  # per worker: its task, its last job read, the race injected before its write
        self.commit_number = 0  # commits that changed a Credits item, in commit order
        self.balance_commits: dict[str, list[tuple[int, int]]] = {}  # user -> (commit number, worker)
        self.races = 0
        self.books_found: list[tuple[str, dict]] = []  # (table, entry) of both ledgers, as the check read them
        self.race_rng = random.Random(f"{scenario.seed}-races")  # its own stream: the faults stay as they were
        # Eventually consistent reads of a job answer an earlier version (fidelity.py, 7.) at this run's rate; its
        # own stream too. A third of the runs read only current versions, as moto would.
        self.stale_rng = random.Random(f"{scenario.seed}-stale")
        self.stale_rate = self.stale_rng.choice((0.0, 0.3, 0.7))

    # --- faults, at the botocore boundary ---------------------------------------------------------------
    def stale_read_plan(self, table: str, available: int) -> int:
        """How many versions back a worker's eventually consistent read of a job goes (0: the current one)."""
        if getattr(self.scheduler.local, "index", None) is None or self.stale_rng.random() >= self.stale_rate:
            return 0
        self.result.covered["stale:reads-served"] += 1
        self.local.stale_read = True
        return self.stale_rng.randint(1, available)

    def plan(self, service: str, operation: str, params: dict) -> Any:
        fidelity = self.h.fidelity
        if getattr(self.scheduler.local, "index", None) is None:
            return None  # set-up, checks, and the concurrent writer below: not a worker, no switch, no fault
        self.local.race = None
        if service == "dynamodb":
            self.scheduler.switch_point()
            if operation == "TransactWriteItems" and self.races < MAX_RACES and self.race_rng.random() < RACE_RATE:
                # Another writer (an operator's adjustment) commits to the same balance just before this
                # transaction: across its threshold (AWS then cancels it on the balance alone and returns the
                # item), or keeping it on its side (a threshold guard, unlike a lock, must let it commit).
                race = self._race_plan(params)
                if race is not None:
                    self._race(race, same_side=self.race_rng.random() < 0.5)
        rng = self.fault_rng = self.fault_rngs.get(service)
        if rng is None or getattr(self.scheduler.local, "index", None) is None or self.faults_left <= 0 or rng.random() >= self.s.fault_rate:
            return None
        self.faults_left -= 1
        items = len(params.get("TransactItems", [])) or 1
        if service == "dynamodb":
            choices: list[tuple[str, Callable[[], Any]]] = [
                (
                    "throttle-single",
                    lambda: fidelity.Fault(
                        fidelity.single_request_throttle(
                            operation, rng.choice(["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"])
                        )
                    ),
                ),
                ("5xx-before", lambda: fidelity.Fault(fidelity.internal_server_error(operation))),
                ("5xx-after", lambda: fidelity.Fault(fidelity.internal_server_error(operation), after_call=True)),
                ("read-timeout-after", lambda: fidelity.Fault(fidelity.read_timeout(), after_call=True)),
                ("connect-timeout", lambda: fidelity.Fault(fidelity.connect_timeout())),
                ("lambda-timeout-before", lambda: fidelity.Fault(SimulatedTimeout("before"))),
                ("lambda-timeout-after", lambda: fidelity.Fault(SimulatedTimeout("after"), after_call=True)),
            ]
            if operation.startswith("Transact"):
                for label, (code, message) in (
                    ("cancel-throttling", fidelity.THROTTLING_REASON),
                    ("cancel-provisioned", fidelity.PROVISIONED_REASON),
                    ("cancel-conflict", fidelity.CONFLICT_REASON),
                ):
                    index = rng.randrange(items)
                    choices.append(
                        (
                            label,
                            lambda code=code, message=message, index=index: fidelity.Fault(  # type: ignore[misc]  # default args
                                fidelity.transaction_cancelled(operation, items, code, message, index)
                            ),
                        )
                    )
        elif service == "sqs":
            choices = [
                ("sqs-5xx", lambda: fidelity.Fault(fidelity.client_error(operation, "InternalError", "We encountered an internal error.", 500))),
                ("lambda-timeout-after-sqs", lambda: fidelity.Fault(SimulatedTimeout("after-sqs"), after_call=True)),
            ]
        elif service == "sns":
            self.sns_faults += 1
            choices = [
                ("sns-throttled", lambda: fidelity.Fault(fidelity.client_error(operation, "Throttling", "Rate exceeded"))),
                ("sns-5xx", lambda: fidelity.Fault(fidelity.client_error(operation, "InternalError", "Internal error", 500))),
            ]
        else:
            return None
        label, make = rng.choice(choices)
        self.result.covered[f"fault:{label}"] += 1
        return make()

    # --- concurrent balance changes, injected --------------------------------------------------------------
    def _race_plan(self, params: dict) -> tuple[dict, int] | None:
        """(the balance's transaction item, the change to `remaining` the oracle expects of this transaction) for a
        guarded balance write of a reservation or an event's settlement; None for anything else."""
        credits = self.h.resources.tables["Credits"]
        guarded = [
            op
            for entry in params.get("TransactItems", [])
            for op in entry.values()
            if op.get("TableName") == credits and op.get("ConditionExpression")
        ]
        task = getattr(self.local, "task", None)
        if not guarded or task is None:
            return None
        change = self._expected_change(task)
        return None if change is None else (guarded[0], change)

    def _expected_change(self, task: Task) -> int | None:
        from reconciler.domain.events import VideoRendered, parse_envelope

        if task.kind == "reserve":
            return -int(task.args[3])
        if task.kind != "event":
            return None
        try:
            event = parse_envelope(task.args[0])
        except ValueError:
            return None
        job = self.books.jobs.get(event.job_id)
        if job is not None and job.settled:
            return None
        given_back = job.reserved if job is not None and job.kind else 0
        return given_back - self.h.prices.cost(event.model, event.seconds) if isinstance(event, VideoRendered) else given_back

    def _race(self, race: tuple[dict, int], same_side: bool) -> None:
        from reconciler.ops.adjustments import Adjuster

        operation, change = race
        fidelity, rng = self.h.fidelity, self.race_rng
        item = fidelity.read_item(self.h.dynamodb, self.h.resources.tables["Credits"], operation["Key"])
        user = operation["Key"]["userId"]["S"]
        balance = int(item["remaining"]["N"]) if item and "remaining" in item else 0
        covered = balance + change >= 0
        # Same side: a few credits more when covered, fewer when short. Across: to one credit short of covered,
        # or from short to exactly covered.
        across = -(balance + change) - 1 if covered else -(balance + change)
        amount = rng.randint(1, 5) * (1 if covered else -1) if same_side else across
        self.local.race = {"same_side": same_side, "passed": fidelity.condition_holds(operation, item), "user": user}
        self.races += 1
        self.result.covered[f"race:{'same-side' if same_side else 'crossing'}"] += 1
        # The operator's CLI, in a thread of its own (as its own process would be: the AWS-call recorder charges
        # its calls to the operator, not to the function whose call is on hold meanwhile).
        failed: list[BaseException] = []

        def operator() -> None:
            try:
                Adjuster(self.h.store).adjust(user, amount, "simulated concurrent change", f"race-{self.races}", "sim-race")
            except BaseException as error:  # noqa: BLE001 - reported below, in the worker
                failed.append(error)

        thread = threading.Thread(target=operator)
        thread.start()
        thread.join()
        if failed:
            self.result.failures.append(f"the simulated concurrent adjustment of {user!r} by {amount} failed: {failed[0]!r}")
            return
        self.books.adjust(user, amount)
        self._balance_committed(user)

    # --- the oracle, fed with every commit in commit order --------------------------------------------------
    def _on_result(self, service: str, operation: str, params: dict, response: Any) -> None:
        """Every call AWS answered (also those whose answer a fault then loses): the commits, in commit order (one
        worker runs at a time and hands over only at its next DynamoDB call)."""
        if service != "dynamodb" or getattr(self.scheduler.local, "index", None) is None:
            return
        tables = self.h.resources.tables
        task: Task = self.local.task
        table = params.get("TableName")
        if operation == "GetItem" and table == tables["Jobs"]:
            self.local.loaded_at = self.commit_number  # a settlement's (or reservation's) one read
        elif operation == "TransactWriteItems":
            race, self.local.race = self.local.race, None
            if race is not None:
                self.result.covered[f"race:{'same-side' if race['same_side'] else 'crossing'}:committed"] += 1
            self._on_commit(task, params)
        elif operation in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem") and (
            table in (tables["Credits"], tables["Ledger"], tables["UserLedger"]) or operation == "BatchWriteItem"
        ):
            self.result.failures.append(f"{operation} on {table} outside a transaction, by {task.describe()[:200]}")

    def _on_error(self, service: str, operation: str, params: dict, error: Any) -> None:
        if service != "dynamodb" or operation != "TransactWriteItems" or getattr(self.scheduler.local, "index", None) is None:
            return
        credits = self.h.resources.tables["Credits"]
        reasons = error.response.get("CancellationReasons") or []
        items = [op for entry in params.get("TransactItems", []) for op in entry.values()]
        failed = [(op, reason) for op, reason in zip(items, reasons, strict=False) if reason.get("Code") == "ConditionalCheckFailed"]
        on_balance = [reason for op, reason in failed if op["TableName"] == credits]
        race, self.local.race = self.local.race, None
        if on_balance and len(failed) == 1:
            task: Task = self.local.task
            if task.kind == "reserve":
                self.result.covered["holds:refused-by-the-hold-condition"] += 1
            else:
                self.result.covered["holds:balance-re-decisions"] += 1
                self.result.covered[
                    "holds:re-decisions-on-the-returned-balance" if "Item" in on_balance[0] else "holds:re-decisions-without-a-balance-item"
                ] += 1
        if race is not None:
            self.result.covered[f"race:{'same-side' if race['same_side'] else 'crossing'}:{'cancelled' if on_balance else 'committed'}"] += 1
            if race["same_side"] and race["passed"] and on_balance:
                self.result.failures.append(
                    f"a change of {race['user']!r}'s balance that kept it on the side of the threshold cancelled a guarded write "
                    f"(its settlements serialise on the balance, not on a threshold): {self.local.task.describe()[:200]}"
                )

    def _balance_committed(self, user: str) -> None:
        self.commit_number += 1
        self.balance_commits.setdefault(user, []).append((self.commit_number, self.scheduler.local.index))

    def _on_commit(self, task: Task, params: dict) -> None:
        from reconciler.repository.dynamodb import from_item

        tables = self.h.resources.tables
        fail = self.result.failures.append
        ops = [op for entry in params.get("TransactItems", []) for op in entry.values()]
        balance_op = next((op for op in ops if op["TableName"] == tables["Credits"]), None)
        job_op = next((op for op in ops if op["TableName"] == tables["Jobs"]), None)
        user = balance_op["Key"]["userId"]["S"] if balance_op else None
        if task.kind == "adjust":
            self.books.adjust(task.args[0], task.args[1])
        elif task.kind == "reserve" and job_op is not None:
            job_id, owner, _, credits = task.args
            for problem in self.books.hold(job_id, owner, credits):
                fail(problem)
            job = from_item(self.h.fidelity.read_item(self.h.dynamodb, tables["Jobs"], {"jobId": {"S": job_id}}) or {})
            if job.get("reservedAs") != HOLD or job.get("reservedCredits") != credits:
                stored = f"reservedAs={job.get('reservedAs')!r}, reservedCredits={job.get('reservedCredits')}"
                fail(f"reservation of {job_id!r} committed but the job says {stored}")
            self.result.covered["holds:made"] += 1
        elif task.kind in ("event", "scan") and job_op is not None:
            job_key = job_op.get("Key") or {"jobId": job_op["Item"]["jobId"]}
            self._settled(task, job_key, user)
        else:
            fail(f"an unexpected transaction during {task.describe()[:200]}: {[op['TableName'] for op in ops]}")
        if user is not None and balance_op is not None:
            if user != (task.args[0] if task.kind == "adjust" else user):
                fail(f"an adjustment of {task.args[0]!r} wrote the balance of {user!r}")
            self._balance_committed(user)
            item = from_item(self.h.fidelity.read_item(self.h.dynamodb, tables["Credits"], balance_op["Key"]) or {})
            found, expected = (int(item.get("remaining", 0)), int(item.get("held", 0))), (self.books.remaining[user], self.books.held[user])
            if found != expected:
                fail(f"after {task.describe()[:160]}: {user!r} has remaining, held = {found}; the oracle says {expected}")

    def _settled(self, task: Task, job_key: dict, user: str | None) -> None:
        """A settlement committed: what the oracle says it must have done, against the job it left."""
        from reconciler.domain.events import VideoRendered, parse_envelope
        from reconciler.repository.dynamodb import from_item

        fail = self.result.failures.append
        job = from_item(self.h.fidelity.read_item(self.h.dynamodb, self.h.resources.tables["Jobs"], job_key) or {})
        job_id, owner, outcome = str(job.get("jobId")), job.get("userId"), job.get("settledAs")
        if not isinstance(owner, str) or outcome not in ("rendered", "failed") or (user is not None and user != owner):
            fail(f"a settlement of {job_id!r} committed, leaving settledAs={outcome!r} on a job of {owner!r} and a balance write of {user!r}")
            return
        known = self.books.jobs.get(job_id) or OracleJob(owner)
        if known.settled:
            fail(f"job {job_id!r} settled twice: {known.settled}, then {outcome} by {task.describe()[:160]}")
        stored_kind = HOLD if job.get("reservedAs") == HOLD else LEGACY if job.get("reservedCredits") else ""
        if (int(job.get("reservedCredits") or 0), stored_kind) != (known.reserved, known.kind):
            stored = f"{job.get('reservedCredits')} ({stored_kind or 'none'})"
            fail(f"job {job_id!r} settled with reservation {stored}; the oracle has {known.reserved} ({known.kind or 'none'})")
        if task.kind == "event":
            event = parse_envelope(task.args[0])
            if job.get("settledByEvent") != event.event_id:
                fail(f"job {job_id!r} settled by {job.get('settledByEvent')!r} during the delivery of {event.event_id!r}")
            priced: tuple[Any, Any] | None = (event.model, event.seconds) if isinstance(event, VideoRendered) else None
        else:
            priced = (job.get("model"), job.get("seconds"))
        cost = self.h.prices.cost(*priced) if outcome == "rendered" and priced else 0
        if outcome == "rendered" and job.get("chargedCredits") != cost:
            fail(f"job {job_id!r} charged {job.get('chargedCredits')}, the price of {priced} is {cost}")
        reserved = known.reserved if known.kind else 0
        released, refunded = (reserved, 0) if outcome == "rendered" else (0, reserved)
        if (job.get("releasedCredits", 0), job.get("refundedCredits", 0)) != (released, refunded):
            stored = f"released {job.get('releasedCredits')}, refunded {job.get('refundedCredits')}"
            fail(f"job {job_id!r} ({known.kind or 'unreserved'}, {outcome}) records {stored}; expected {released}, {refunded}")
        _, overdraft = self.books.settle(job_id, owner, outcome, cost)
        if bool(job.get("settledIntoOverdraft")) != overdraft:
            fail(
                f"job {job_id!r} settledIntoOverdraft={job.get('settledIntoOverdraft')} but the oracle's balance of {owner!r} after it is "
                f"{self.books.remaining[owner]} (overdraft: {overdraft}), by {task.describe()[:160]}"
            )
        self.result.covered[f"holds:settled-{known.kind or 'unreserved'}-{outcome}"] += 1
        if overdraft:
            self.result.covered["holds:overdrafts"] += 1
        # Unserialised: another worker changed this user's balance between this settlement's read and its commit.
        loaded_at, me = getattr(self.local, "loaded_at", 0), self.scheduler.local.index
        if any(number > loaded_at and worker != me for number, worker in self.balance_commits.get(owner, [])):
            self.result.covered["holds:settled-past-a-concurrent-balance-change"] += 1

    # --- tasks ------------------------------------------------------------------------------------------
    def context(self, request_id: str) -> Any:
        class Context:
            function_name = f"cc-agent-reconciler-{STAGE}"
            function_version = "$LATEST"
            memory_limit_in_mb = 512
            invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:cc-agent-reconciler-{STAGE}"
            aws_request_id = request_id

            def get_remaining_time_in_millis(self) -> int:
                return 30_000

        return Context()

    def invoke(self, task: Task, event: Any) -> None:
        """Lambda's asynchronous invocation: up to 3 attempts with one request id, then the on-failure destination."""
        from reconciler.handlers.entry import handler
        from reconciler.observability import metrics

        request_id = f"req-{self.s.seed}-{next(self.request_numbers)}"
        self.local.stale_read = False  # not carried over from an invocation whose every attempt failed
        for _attempt in range(3):
            try:
                summary = handler(event, self.context(request_id))
                self.outcomes.append((task, summary))
                self.result.covered[f"outcome:{summary.get('outcome', 'scan')}"] += 1
                if getattr(self.local, "stale_read", False):  # decided after a read of an earlier version
                    self.result.covered[f"stale:outcome:{summary.get('outcome', 'scan')}:attempts-{min(summary.get('attempts', 1), 3)}"] += 1
                self.local.stale_read = False
                return
            except SimulatedTimeout:
                metrics.clear_metrics()  # the killed invocation never flushed
                if task.kind == "scan":
                    self.killed_scans.add(request_id)
                self.result.covered["lambda-retry-after-timeout"] += 1
            except Exception as error:  # noqa: BLE001 - judged below: a bug unless Lambda retries it
                metrics.clear_metrics()
                if not _lambda_should_retry(error):
                    where = traceback.extract_tb(error.__traceback__)[-1]
                    self.result.failures.append(
                        f"the handler raised {type(error).__name__}: {str(error)[:200]} (at {where.filename}:{where.lineno}) for "
                        f"{task.describe()[:300]}"
                    )
                    return
                self.result.covered["lambda-retry-after-error"] += 1
                self.retried.append((task.kind, request_id, f"{type(error).__name__}: {error}"[:300]))
        self.lambda_dead_letters.append(task)
        self.failed_requests.add(request_id)
        self.result.covered["lambda-on-failure-destination"] += 1

    def execute_queue(self, queue: list[Task]) -> None:
        for task in queue:
            self.execute(task)

    def execute(self, task: Task) -> None:
        self.result.covered[f"task:{task.kind}"] += 1
        self.local.task = task
        try:
            self._execute(task)
        except Exception as error:  # noqa: BLE001 - the task's own caller would see this: a bug unless Lambda/pipeline retries it
            if not _lambda_should_retry(error):
                where = traceback.extract_tb(error.__traceback__)[-1]
                self.result.failures.append(
                    f"{task.kind} raised {type(error).__name__}: {str(error)[:200]} (at {where.filename}:{where.lineno}) for {task.describe()[:200]}"
                )

    def _execute(self, task: Task) -> None:
        from reconciler.domain.errors import InsufficientCredits, InvalidEvent, ReservationRefused
        from reconciler.ops.adjustments import Adjuster
        from reconciler.ops.operator_error import OpsError
        from reconciler.service.ports import AmbiguousWrite, Contention, RetriesExhausted
        from reconciler.service.reservations import ReservationService

        store = self._store()
        if task.kind == "event":
            self.invoke(task, task.args[0])
        elif task.kind == "scan":
            self.invoke(task, {"source": "aws.events", "detail-type": "Scheduled Event", "id": "tick", "detail": {}})
        elif task.kind == "reserve":
            try:
                ReservationService(store, backoff=self._backoff).reserve(*task.args)
                if task.expect == "invalid":
                    self.result.failures.append(f"reserve() accepted what settlement refuses: {task.describe()[:200]}")
            except InvalidEvent:
                pass  # refused with the field named; nothing held (the invariants check the books)
            except (InsufficientCredits, ReservationRefused, RetriesExhausted, Contention, AmbiguousWrite):
                pass  # the pipeline is told; nothing moved (the invariants check it)
            except SimulatedTimeout:
                pass  # the pipeline's process died mid-call: the write landed or not, the books must balance either way
        elif task.kind == "adjust":
            user, amount, reference = task.args
            if amount:
                with contextlib.suppress(OpsError, InvalidEvent, RetriesExhausted, Contention, AmbiguousWrite, SimulatedTimeout):
                    Adjuster(store, backoff=self._backoff).adjust(user, amount, "simulated", reference, "sim")
        elif task.kind == "pipeline":
            job_id, status = task.args
            try:
                old = self.h.dynamodb.update_item(
                    TableName=self.h.resources.tables["Jobs"],
                    Key={"jobId": {"S": job_id}},
                    ReturnValues="ALL_OLD",
                    UpdateExpression="SET #s = :s, updatedAt = :now",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":s": {"S": status}, ":now": {"S": _iso(0)}},
                ).get("Attributes", {})
                self.pipeline_writes[job_id] = (status, "settledAs" in old)
            except (Exception, SimulatedTimeout):  # noqa: BLE001 - an injected fault: the pipeline's write may or may not have happened
                self.pipeline_writes.pop(job_id, None)
                self.pipeline_writes[job_id + "?"] = (status, True)

    def _store(self) -> Any:
        return self.h.store

    def _backoff(self, *_: Any) -> Any:
        from reconciler.service.retrying import Backoff

        return Backoff(sleep=lambda _: None, random_fraction=self.rng.random)

    def arrange(self, task: Task) -> None:
        jobs = self.h.resources.tables["Jobs"]
        if task.kind == "adjust" and task.args[1]:
            # Opening balances, written as an adjustment is (balance and ledger in one transaction); the
            # CLI's Adjuster itself runs in the concurrent part of the run.
            from reconciler.domain.ledger import adjustment_entry

            user, amount, reference = task.args
            self.h.store.commit_adjustment(adjustment_entry(user, amount, "opening balance", reference, "sim", _iso(4)))
            self.books.adjust(user, amount)
        elif task.kind == "override":  # a per-user threshold override on an existing Credits item
            user, attribute, value = task.args
            self.h.dynamodb.update_item(
                TableName=self.h.resources.tables["Credits"],
                Key={"userId": {"S": user}},
                UpdateExpression="SET #a = :v",
                ConditionExpression="attribute_exists(userId)",
                ExpressionAttributeNames={"#a": attribute},
                ExpressionAttributeValues={":v": json.loads(value)},
            )
        elif task.kind == "damage":
            job_id, user, damage = task.args
            item = {
                "jobId": {"S": job_id},
                "userId": {"S": user},
                "status": {"S": "failed"},
                "createdAt": {"S": _iso(3)},
                "updatedAt": {"S": _iso(3)},
                "unsettled": {"S": "PENDING"},
                **json.loads(damage),
            }
            self.h.dynamodb.put_item(TableName=jobs, Item=item)
            self.books.jobs[job_id] = OracleJob(user)
        elif task.kind == "seed-job":
            job_id, user, status, reserved, seconds = task.args
            item = {
                "jobId": {"S": job_id},
                "userId": {"S": user},
                "status": {"S": status},
                "model": {"S": "test"},
                "createdAt": {"S": _iso(3)},
                "updatedAt": {"S": _iso(2)},
                "unsettled": {"S": "PENDING"},
                "seconds": {"N": str(seconds)} if isinstance(seconds, int) else {"S": seconds},
            }
            self.h.dynamodb.put_item(TableName=jobs, Item=item)
            self.books.jobs[job_id] = OracleJob(user)
            if reserved:
                from reconciler.domain.ledger import job_ledger_id

                self.books.v2_reservation(job_id, user, reserved)
                self.h.dynamodb.update_item(
                    TableName=self.h.resources.tables["Credits"],
                    Key={"userId": {"S": user}},
                    UpdateExpression="ADD remaining :d",
                    ExpressionAttributeValues={":d": {"N": str(-reserved)}},
                )
                self.h.dynamodb.put_item(
                    TableName=self.h.resources.tables["Ledger"],
                    Item={
                        "ledgerId": {"S": job_ledger_id(job_id, "reserve")},
                        "userId": {"S": user},
                        "timestamp": {"S": _iso(3)},
                        "type": {"S": "debit"},
                        "amount": {"N": str(reserved)},
                        "description": {"S": "reserve"},
                        "reference": {"S": job_id},
                    },
                )
                self.h.dynamodb.update_item(
                    TableName=jobs,
                    Key={"jobId": {"S": job_id}},
                    UpdateExpression="SET reservedCredits = :r",
                    ExpressionAttributeValues={":r": {"N": str(reserved)}},
                )
        elif task.kind == "legacy-reserve":
            job_id, user, model, credits, status, seconds = task.args
            if self._v2_reservation(job_id, user, model, credits, _iso(3.5)) and status != "submitted":
                # The pipeline's progress (its own write, as before the redesign): status, and the render's length.
                values = {":s": {"S": status}, ":now": {"S": _iso(3)}, ":sec": {"N": str(seconds)}}
                self.h.dynamodb.update_item(
                    TableName=jobs,
                    Key={"jobId": {"S": job_id}},
                    UpdateExpression="SET #s = :s, updatedAt = :now" + (", seconds = :sec" if status == "rendered" else ""),
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues=values if status == "rendered" else {k: v for k, v in values.items() if k != ":sec"},
                )
        elif task.kind == "legacy-settled":
            job_id, user, model, credits, outcome, seconds, event_id = task.args
            if self._v2_reservation(job_id, user, model, credits, _iso(3.9)):
                self._v2_settlement(job_id, user, model, credits, outcome, seconds, event_id, _iso(3.8))

    def _v2_reservation(self, job_id: str, user: str, model: str, credits: int, at: str) -> bool:
        """A reservation as the v2 code wrote it (git show 66bde68:runtime/reconciler/repository/dynamodb.py,
        commit_reservation): remaining debited under `remaining >= credits`, a `reserve` debit in Ledger, the job
        with reservedCredits and no reservedAs, in one transaction. False when v2 would have refused it."""
        from reconciler.repository.dynamodb import to_item

        tables = self.h.resources.tables
        entry = {
            "ledgerId": _job_ledger_id(job_id, "reserve"),
            "userId": user,
            "timestamp": at,
            "type": "debit",
            "amount": credits,
            "description": f"Reservation for job {job_id} on {model}",
            "reference": job_id,
        }
        job = {
            "jobId": job_id,
            "userId": user,
            "model": model,
            "status": "submitted",
            "createdAt": at,
            "reservedCredits": credits,
            "unsettled": "PENDING",
        }
        try:
            self.h.dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": tables["Credits"],
                            "Key": to_item({"userId": user}),
                            "UpdateExpression": "SET remaining = if_not_exists(remaining, :zero) + :delta, updatedAt = :now",
                            "ConditionExpression": "remaining >= :amount",
                            "ExpressionAttributeValues": to_item({":delta": -credits, ":now": at, ":zero": 0, ":amount": credits}),
                        }
                    },
                    {"Put": {"TableName": tables["Ledger"], "Item": to_item(entry), "ConditionExpression": "attribute_not_exists(ledgerId)"}},
                    {"Put": {"TableName": tables["Jobs"], "Item": to_item(job), "ConditionExpression": "attribute_not_exists(jobId)"}},
                ]
            )
        except self.h.dynamodb.exceptions.TransactionCanceledException:
            return False
        self.books.v2_reservation(job_id, user, credits)
        self.result.covered["legacy:open-reservations-seeded"] += 1
        return True

    def _v2_settlement(self, job_id: str, user: str, model: str, credits: int, outcome: str, seconds: int, event_id: str, at: str) -> None:
        """The v2 code's settlement of such a job (release + charge, or a refund, all in Ledger), as it wrote it."""
        from reconciler.repository.dynamodb import to_item

        tables = self.h.resources.tables
        cost = self.h.prices.cost(model, Decimal(seconds)) if outcome == "rendered" else 0
        postings = (
            [("release", "credit", credits, f"Release of {credits} reserved credits"), ("charge", "debit", cost, f"Render of {seconds}s on {model}")]
            if outcome == "rendered"
            else [("refund", "credit", credits, "Refund of failed render")]
        )
        change = credits - cost
        self.books.jobs[job_id].before_the_run = True
        _, overdraft = self.books.settle(job_id, user, outcome, cost, table="Ledger")
        settled = {
            ":settledAs": outcome,
            ":settledAt": at,
            ":settledByEvent": event_id,
            ":chargedCredits": cost,
            ":releasedCredits": credits if outcome == "rendered" else 0,
            ":refundedCredits": credits if outcome == "failed" else 0,
            ":settledIntoOverdraft": overdraft,
            ":settledByRequest": "req-v2",
        }
        items: list[Any] = [
            {
                "Update": {
                    "TableName": tables["Credits"],
                    "Key": to_item({"userId": user}),
                    "UpdateExpression": "SET remaining = if_not_exists(remaining, :zero) + :delta, updatedAt = :now",
                    "ExpressionAttributeValues": to_item({":delta": change, ":now": at, ":zero": 0}),
                }
            },
            {
                "Update": {
                    "TableName": tables["Jobs"],
                    "Key": to_item({"jobId": job_id}),
                    "UpdateExpression": "SET "
                    + ", ".join(f"{name[1:]} = {name}" for name in settled)
                    + ", #status = :settledAs"
                    + (", seconds = :seconds" if outcome == "rendered" else "")
                    + " REMOVE #u",
                    "ExpressionAttributeNames": {"#status": "status", "#u": "unsettled"},
                    "ExpressionAttributeValues": to_item({**settled, **({":seconds": seconds} if outcome == "rendered" else {})}),
                }
            },
        ]
        for posting, kind, amount, description in postings:
            entry = {
                "ledgerId": _job_ledger_id(job_id, posting),
                "userId": user,
                "timestamp": at,
                "type": kind,
                "amount": amount,
                "description": description,
                "reference": job_id,
                "eventId": event_id,
            }
            items.append({"Put": {"TableName": tables["Ledger"], "Item": to_item(entry), "ConditionExpression": "attribute_not_exists(ledgerId)"}})
        self.h.dynamodb.transact_write_items(TransactItems=items)
        self.result.covered["legacy:settled-jobs-seeded"] += 1

    def execute_all(self) -> None:
        from reconciler.notify.notifier import Notifier

        for task in self.s.setup:
            self.arrange(task)
        original_notify = Notifier.notify_outcome

        def spied(notifier: Any, outcome: Any, *args: Any, **kwargs: Any) -> Any:
            self.alert_attempts.append(outcome.kind)
            return original_notify(notifier, outcome, *args, **kwargs)

        Notifier.notify_outcome = spied  # type: ignore[method-assign,assignment]  # the import path stays the real one; only the attempt is counted
        queues: list[list[Task]] = [[] for _ in range(self.s.workers)]
        for task in self.s.tasks:
            queues[self.rng.randrange(self.s.workers)].append(task)
        stdout = sys.stdout
        self.emitted = io.StringIO()
        sys.stdout = self.emitted  # Powertools prints its EMF metrics here
        self.h.fidelity.violations.clear()
        self.h.fidelity.item_corrections.clear()
        self.h.fidelity.set_fault_plan(self.plan)
        self.h.fidelity.set_stale_reads(self.stale_read_plan, frozenset({self.h.resources.tables["Jobs"]}))
        stop_observing = (self.h.fidelity.observe_results(self._on_result), self.h.fidelity.observe_errors(self._on_error))
        try:
            finished = self.scheduler.run([partial(self.execute_queue, queue) for queue in queues])
        finally:
            for stop in stop_observing:
                stop()
            self.h.fidelity.set_fault_plan(None)
            self.h.fidelity.set_stale_reads(None)
            sys.stdout = stdout
            Notifier.notify_outcome = original_notify  # type: ignore[method-assign]
            self.result.handovers = self.scheduler.handovers
        if not finished:
            self.result.failures.append("a worker never finished (deadlock or livelock)")

    # --- the invariants ---------------------------------------------------------------------------------
    def check(self) -> None:
        from reconciler.repository.dynamodb import from_item

        fail = self.result.failures.append
        tables = self.h.resources.tables
        jobs = {item["jobId"]: item for item in map(from_item, self.h.dynamodb.scan(TableName=tables["Jobs"])["Items"])}
        credit_items = {item["userId"]: item for item in map(from_item, self.h.dynamodb.scan(TableName=tables["Credits"])["Items"])}
        ledger = list(map(from_item, self.h.dynamodb.scan(TableName=tables["Ledger"])["Items"]))
        user_ledger = list(map(from_item, self.h.dynamodb.scan(TableName=tables["UserLedger"])["Items"]))
        books = [("Ledger", entry) for entry in ledger] + [("UserLedger", entry) for entry in user_ledger]
        self.books_found = books  # the balance events' causes are checked against them (the stream function writes none)
        # Each balance: remaining + held = its two ledgers' sum (opening balances are entries: initial 0); held = the
        # user's open holds, by the jobs as stored; both as the oracle replayed them.
        sums: Counter = Counter()
        for _, entry in books:
            sums[entry["userId"]] += int(entry["amount"]) * (1 if entry["type"] == "credit" else -1)
        open_holds: Counter = Counter()
        for job in jobs.values():
            if job.get("reservedAs") == HOLD and not job.get("settledAs") and isinstance(job.get("userId"), str):
                open_holds[job["userId"]] += int(job.get("reservedCredits") or 0)
        oracle_holds = self.books.open_holds()
        for user in set(credit_items) | set(sums) | set(open_holds) | self.books.users:
            item = credit_items.get(user, {})
            remaining, held = int(item.get("remaining", 0)), int(item.get("held", 0))
            if remaining + held != sums.get(user, 0):
                fail(f"{user!r}: remaining {remaining} + held {held} = {remaining + held}, but its two ledgers sum to {sums.get(user, 0)}")
            if held != open_holds[user] or held != oracle_holds[user]:
                fail(f"{user!r} holds {held}; its open hold reservations sum to {open_holds[user]} (the oracle's: {oracle_holds[user]})")
            if (remaining, held) != (self.books.remaining[user], self.books.held[user]) or (user in credit_items) != (user in self.books.users):
                fail(
                    f"{user!r} has remaining, held = {remaining}, {held} ({'an item' if item else 'no item'}); the oracle says "
                    f"{self.books.remaining[user]}, {self.books.held[user]} ({'an item' if user in self.books.users else 'no item'})"
                )
        # Every job posting exactly once, in the table and with the amount the oracle says; none for a hold or its failure.
        found: dict[str, list[tuple[str, str, str, int]]] = {}
        for table, entry in books:
            if entry["ledgerId"].startswith("job:"):
                found.setdefault(entry["ledgerId"], []).append((table, entry["userId"], entry["type"], int(entry["amount"])))
        for ledger_id, copies in found.items():
            if len(copies) > 1:
                fail(f"posting {ledger_id} is in the books {len(copies)} times: {copies}")
            if ledger_id.endswith(":reserve") and copies[0][0] == "UserLedger":
                fail(f"a reservation was posted ({ledger_id}): a hold posts nothing")
            if ledger_id not in self.books.postings:
                fail(f"posting {ledger_id} {copies[0]} is one the oracle does not expect")
            elif copies[0] != self.books.postings[ledger_id]:
                fail(f"posting {ledger_id} is {copies[0]} (table, user, type, amount); the oracle expects {self.books.postings[ledger_id]}")
        for ledger_id, oracle_posting in self.books.postings.items():
            if ledger_id not in found:
                fail(f"posting {ledger_id} {oracle_posting} is missing from the books")
        # The same from the jobs as stored (no oracle): the postings each job's reservation and outcome imply.
        postings: dict[str, Counter] = {}
        for _, entry in books:
            if entry["ledgerId"].startswith("job:"):
                postings.setdefault(entry["reference"], Counter())[entry["ledgerId"].rsplit(":", 1)[1]] += 1
        for job_id, counts in postings.items():
            stored = jobs.get(job_id)
            if stored is None:
                fail(f"ledger entries {dict(counts)} for job {job_id!r}, which does not exist")
                continue
            job = stored
            as_hold = job.get("reservedAs") == HOLD
            posted_reservation = bool(job.get("reservedCredits")) and not as_hold
            expected = {"reserve"} if posted_reservation else set()
            if job.get("settledAs") == "rendered":
                expected |= {"charge"} | ({"release"} if posted_reservation else set())
            elif job.get("settledAs") == "failed":
                expected |= {"refund"} if posted_reservation else set()
            if set(counts) != expected:
                what = "a hold" if as_hold else "a posted (v2) reservation" if posted_reservation else "no reservation"
                fail(f"job {job_id!r} ({what}) settled as {job.get('settledAs')} has postings {sorted(counts)}, expected {sorted(expected)}")
        for job_id, job in jobs.items():
            if job.get("settledAs") and job.get("unsettled"):
                fail(f"job {job_id!r} is settled but still in the unsettled index")
            if (
                job.get("settledAs")
                and job.get("settledAs") != "failed"
                and job.get("chargedCredits", 0)
                and "charge" not in postings.get(job_id, {})
            ):
                fail(f"job {job_id!r} records a charge with no ledger entry")
            if job.get("settledAs") and job.get("reservedAs") == HOLD:
                given_back = job.get("releasedCredits", 0) if job["settledAs"] == "rendered" else job.get("refundedCredits", 0)
                if given_back != job.get("reservedCredits"):
                    fail(f"settled job {job_id!r} still holds credits: reserved {job.get('reservedCredits')}, gave back {given_back}")
        self._check_user_ledger_order(user_ledger, jobs)
        self._check_the_operators_audit(set(credit_items) | set(sums))
        # Every delivered event ended somewhere, and as its construction says.
        ended = {id(task) for task, _ in self.outcomes} | {id(task) for task in self.lambda_dead_letters}
        for task in self.s.tasks:
            if task.kind in ("event", "scan") and id(task) not in ended and not any("raised" in f for f in self.result.failures):
                fail(f"{task.describe()[:200]} ended nowhere")
        for task, summary in self.outcomes:
            if task.kind != "event":
                continue
            kind = summary.get("outcome")
            if kind not in ("settled", "duplicate", "conflict", "rejected"):
                fail(f"event ended as {kind!r}: {task.describe()[:200]}")
            if task.expect == "invalid" and kind != "rejected":
                fail(f"an invalid event was {kind}: {task.describe()[:200]}")
            if task.expect == "valid" and kind == "rejected" and summary.get("field") not in ("ledgerId", "job"):
                fail(f"a valid event was rejected ({summary.get('field')}: {summary.get('reason')}): {task.describe()[:200]}")
        dead = self.h.sqs.receive_message(
            QueueUrl=self.h.resources.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
        ).get("Messages", [])
        rejected = [summary for _, summary in self.outcomes if summary.get("outcome") == "rejected"]
        if rejected and not dead:
            fail(f"{len(rejected)} event(s) rejected but the DLQ is empty")
        for message in dead:
            attributes = {name: value.get("StringValue") for name, value in message.get("MessageAttributes", {}).items()}
            if not attributes.get("reason") or not attributes.get("errorType") or not attributes.get("field"):
                fail(f"a dead letter lacks its reason: {attributes}")
        # Metrics against the ground truth.
        emitted = emitted_metrics(self.emitted.getvalue())
        settled_jobs = [job for job in jobs.values() if job.get("settledAs")]
        # The two documented gaps (README, "Proving it"): metrics of a write committed by an invocation that never
        # completed, because (1) it was a timer-scan tick killed after the commit, whose retry no longer finds the
        # job in the unsettled index, or (2) every Lambda attempt of it failed, so the event went to the on-failure
        # destination (a later replay is a new request, a duplicate). The books are right in both; only exactly
        # those writes are left out of the metrics' ground truth, and counted.
        reported = {job_id for _, summary in self.outcomes for job_id in summary.get("settled", []) if "examined" in summary}
        unreported = [
            job
            for job in settled_jobs
            if (
                str(job.get("settledByEvent", "")).startswith("timer-scan:")
                and job.get("settledByRequest") in self.killed_scans
                and job["jobId"] not in reported
            )
            or job.get("settledByRequest") in self.failed_requests
        ]
        unreported_conflicts = sum(
            len(job["conflictRequestIds"] & self.failed_requests) for job in jobs.values() if isinstance(job.get("conflictRequestIds"), set)
        )
        self.result.covered["metrics-lost-with-an-unfinished-invocation"] += len(unreported) + unreported_conflicts
        unreported_ids = {job["jobId"] for job in unreported}
        settled_jobs = [job for job in settled_jobs if job["jobId"] not in unreported_ids]
        # The run's postings are UserLedger's (Ledger's job postings were written by v2 before the run); a failed
        # hold's release is a refund too, though nothing is posted for it (Settlement.credited).
        settled_jobs = [job for job in settled_jobs if not self.books.jobs.get(job["jobId"], OracleJob("")).before_the_run]
        postings_for_truth = [entry for entry in user_ledger if entry.get("reference") not in unreported_ids]
        released_holds = sum(
            int(job.get("refundedCredits", 0)) for job in settled_jobs if job.get("reservedAs") == HOLD and job.get("settledAs") == "failed"
        )
        truth = {
            "Settlements": len(settled_jobs),
            "CreditsDebited": sum(int(e["amount"]) for e in postings_for_truth if _posting(e) == "charge"),
            "CreditsRefunded": sum(int(e["amount"]) for e in postings_for_truth if _posting(e) in ("release", "refund")) + released_holds,
            "Overdrafts": sum(1 for job in settled_jobs if job.get("settledIntoOverdraft")),
            "ConflictingEvents": sum(len(job["conflictEventIds"]) for job in jobs.values() if isinstance(job.get("conflictEventIds"), set))
            - unreported_conflicts,
            "InvalidEvents": len(rejected),
        }
        for name, true_value in truth.items():
            if emitted.get(name, 0) != true_value:
                fail(f"metric {name} is {emitted.get(name, 0)}, ground truth {true_value}")
        needs_person = sum(1 for _, summary in self.outcomes if summary.get("outcome") in ("conflict", "rejected"))
        needs_person += sum(len(summary.get("conflicts", [])) for _, summary in self.outcomes if "examined" in summary)
        if len([kind for kind in self.alert_attempts if kind in ("conflict", "rejected")]) < needs_person:
            fail(f"{needs_person} outcome(s) needed a person but only {len(self.alert_attempts)} alert attempt(s) were made")
        if emitted.get("AlertFailures", 0) > self.sns_faults:
            fail(f"AlertFailures is {emitted.get('AlertFailures')} with only {self.sns_faults} injected SNS fault(s)")
        for violation in self.h.fidelity.violations:
            fail(f"AWS would refuse: {violation}")
        for job_id, (status, after_settlement) in self.pipeline_writes.items():
            job = jobs.get(job_id, {})
            if not after_settlement and job.get("settledAs") and job.get("settledAs") != status:
                fail(f"job {job_id!r} settled as {job.get('settledAs')} though the pipeline had set {status} before")
        for correction in self.h.fidelity.item_corrections:
            fail(f"moto's cancellation reason differs from AWS's (corrected): {correction}")
        self.result.covered["ledger-entries"] += len(ledger)
        self.result.covered["user-ledger-entries"] += len(user_ledger)
        self.result.covered["holds:open-at-the-end"] += sum(open_holds.values())

    def _check_the_operators_audit(self, users: set[str]) -> None:
        """The CLI's audit (whole tables, and one user's history: both ledgers merged, holds against open
        reservations) finds the books clean, v2's data and the run's alike: no migration needed. One user per run,
        the seed's: each user's audit costs a Query of each ledger and of the unsettled jobs."""
        from reconciler.ops.audit import Auditor

        auditor = Auditor(self.h.store)
        for discrepancy in auditor.audit_all():
            self.result.failures.append(f"the operator's audit (all users) reports {discrepancy.as_dict()}")
        if users:
            user = random.Random(f"{self.s.seed}-audit").choice(sorted(users))
            found = auditor.audit_user(user)
            if found is not None:
                self.result.failures.append(f"the operator's audit of {user!r} reports {found.as_dict()}")
        self.result.covered["audits-clean"] += 1

    def _check_user_ledger_order(self, user_ledger: list[dict], jobs: dict[str, dict]) -> None:
        """A user's postings come back from a Query of UserLedger in time order, keyed `{timestamp}#{ledgerId}`,
        each at its job's settlement time."""
        from reconciler.repository.dynamodb import from_item

        fail = self.result.failures.append
        for entry in user_ledger:
            if entry.get("entryKey") != f"{entry['timestamp']}#{entry['ledgerId']}":
                fail(f"UserLedger entry {entry['ledgerId']} of {entry['userId']!r} is keyed {entry.get('entryKey')!r}")
            job = jobs.get(str(entry.get("reference")), {})
            if entry["timestamp"] != job.get("settledAt"):
                fail(f"posting {entry['ledgerId']} at {entry['timestamp']}, but its job was settled at {job.get('settledAt')}")
        for user in sorted({entry["userId"] for entry in user_ledger}):
            items = self.h.dynamodb.query(
                TableName=self.h.resources.tables["UserLedger"],
                KeyConditionExpression="userId = :u",
                ExpressionAttributeValues={":u": {"S": user}},
                ConsistentRead=True,
            )["Items"]
            history = [(entry["timestamp"], entry["ledgerId"]) for entry in map(from_item, items)]
            if history != sorted(history):
                fail(f"{user!r}'s UserLedger history is not in time order: {history}")
            self.result.covered["user-ledger-histories-in-order"] += 1


# --- balance events: the Credits stream through the real stream function, and its invariants -----------------

BALANCE_EVENT_SUMMARY = (
    ("crossings", "balance:crossings"),
    ("events published", "balance:events-on-the-bus"),
    ("failed entries injected", "balance:failed-entries-injected"),
    ("faults injected", "balance:faults-injected"),
    ("retries", "balance:retries"),
    ("give-ups", "balance:given-up-batches"),
    ("crossings given up", "balance:crossings-given-up"),
    ("duplicates in the documented window", "balance:duplicates-in-window"),
    ("window faults", "balance:window-faults"),
    ("records", "balance:records"),
    ("invocations", "balance:invocations"),
)
# The balance-events function's calls a fault may hit, and the faults (label, in the documented duplicate window?).
PUT_EVENTS_FAULTS: tuple[tuple[str, bool], ...] = (
    ("failed-entry-throttling", False),
    ("failed-entry-internal", False),
    ("put-events-500", False),
    ("put-events-read-timeout-after", True),
    ("lambda-timeout-after-put-events", True),
)
MARKER_READ_FAULTS: tuple[tuple[str, bool], ...] = (("marker-get-throttled", False), ("lambda-timeout-before-marker-get", False))
MARKER_WRITE_FAULTS: tuple[tuple[str, bool], ...] = (
    ("marker-put-throttled", True),
    ("lambda-timeout-before-marker-put", True),
    ("marker-put-500-after", False),
)
LEDGER_QUERY_FAULTS: tuple[tuple[str, bool], ...] = (("ledger-query-throttled", False),)
MAX_STREAM_FAULTS = 12
MAX_STREAM_INVOCATIONS = 5000


class BalanceEventRun:
    """After a run's money-path tasks: Lambda's DynamoDB Streams event source mapping for the Credits stream,
    with the real handler, then the invariants of docs/events.md against an independent oracle."""

    def __init__(self, run: Run) -> None:
        self.run, self.h, self.plan_of = run, run.h, run.s.stream
        self.covered = run.result.covered
        self.fail = run.result.failures.append
        self.rng = random.Random(f"{run.s.seed}-stream-batches")
        self.fault_rng = random.Random(f"{run.s.seed}-stream-faults")
        self.faults_left = MAX_STREAM_FAULTS
        self.invocation_faults: list[str] = []
        self.window_faults: Counter = Counter()  # crossingId -> injected faults in the documented window
        self.records: list[dict] = []
        self.given_up: set[str] = set()  # sequence numbers of given-up records
        self.max_retries = self.h.mapping["max_retry_attempts"] if self.plan_of.max_retry_attempts is None else self.plan_of.max_retry_attempts

    def deliver_and_check(self) -> None:
        self.records = self.h.read_stream()
        self.covered["balance:records"] += len(self.records)
        self._check_stream_is_whole()
        self.deliver()
        self.check()

    def _check_stream_is_whole(self) -> None:
        """The Credits stream holds every change of the run: per user, each record's OldImage is the previous
        record's NewImage, and the last NewImage is the item as it is (else the oracle below would judge a part)."""
        last: dict[str, dict | None] = {}
        for record in self.records:
            data = record["dynamodb"]
            user = data["Keys"]["userId"]["S"]
            if data.get("OldImage") != last.get(user):
                self.fail(f"the Credits stream skips a change of {user!r}: a record's OldImage {data.get('OldImage')} follows {last.get(user)}")
            last[user] = data.get("NewImage")
        for item in self.h.dynamodb.scan(TableName=self.h.resources.tables["Credits"])["Items"]:
            if last.get(item["userId"]["S"]) != item:
                self.fail(f"the Credits stream ends at {last.get(item['userId']['S'])} for {item['userId']['S']!r}, but the item is {item}")

    # --- Lambda's event source mapping ------------------------------------------------------------------
    def deliver(self) -> None:
        """Batches in stream order (sizes drawn by the seed); a batch whose response reports failures is retried
        from the first reported record (Lambda checkpoints there); an invocation that fails as a whole (a
        timeout) is retried halved (bisectBatchOnFunctionError); after the retry limit the failing records are
        given up (their description goes to the on-failure destination) and the stream goes on."""
        from reconciler.handlers.balance_stream import handler
        from reconciler.local.invoker import LocalContext
        from reconciler.observability import metrics

        pending, attempts, bisect, invocations = list(self.records), 0, 0, 0
        stdout, sys.stdout = sys.stdout, io.StringIO()  # Powertools prints its EMF metrics here
        try:
            while pending:
                invocations += 1
                if invocations > MAX_STREAM_INVOCATIONS:
                    self.fail(f"the stream did not drain after {MAX_STREAM_INVOCATIONS} invocations")
                    return
                size = self.rng.choice(self.plan_of.batch_sizes)
                batch = pending[: min(size, bisect) if bisect else size]
                self.invocation_faults = []
                failed_at, whole = None, False
                self.h.fidelity.set_fault_plan(self.fault_plan)
                try:
                    response = handler({"Records": batch}, LocalContext(BALANCE_FUNCTION, 60_000)) or {}
                    reported = {item.get("itemIdentifier") for item in response.get("batchItemFailures", [])}
                    indexes = [i for i, record in enumerate(batch) if record["dynamodb"]["SequenceNumber"] in reported]
                    if reported and len(indexes) != len(reported):
                        self.fail(f"the stream function reported failures of records not in its batch: {sorted(map(str, reported))[:5]}")
                    if indexes and indexes != list(range(min(indexes), len(batch))):
                        self.fail(f"the stream function reported {len(indexes)} failed record(s) but not every record after the first failure")
                    failed_at = min(indexes) if indexes else None
                except SimulatedTimeout:
                    metrics.clear_metrics()  # the killed invocation never flushed
                    whole = True
                except Exception as error:  # noqa: BLE001 - docs/events.md: every failed record is reported, the handler never raises
                    metrics.clear_metrics()
                    where = traceback.extract_tb(error.__traceback__)[-1]
                    self.fail(f"the stream handler raised {type(error).__name__}: {str(error)[:200]} (at {where.filename}:{where.lineno})")
                    whole = True
                finally:
                    self.h.fidelity.set_fault_plan(None)
                self.covered["balance:invocations"] += 1
                if failed_at is None and not whole:
                    del pending[: len(batch)]
                    attempts, bisect = 0, 0
                    continue
                if not self.invocation_faults:
                    first = batch[failed_at or 0]["dynamodb"]["SequenceNumber"]
                    self.fail(f"the stream function failed record {first} ({'the whole invocation' if whole else 'reported'}) with no injected fault")
                if whole:
                    failed_at, bisect = 0, max(1, len(batch) // 2)
                    self.covered["balance:function-errors"] += 1
                else:
                    self.covered["balance:partial-batch-failures"] += 1
                del pending[:failed_at]  # Lambda checkpoints at the first failed record
                attempts = attempts + 1 if failed_at == 0 else 1
                if attempts > self.max_retries:
                    given_up = batch[failed_at:]
                    del pending[: len(given_up)]
                    self.given_up.update(record["dynamodb"]["SequenceNumber"] for record in given_up)
                    self.covered["balance:given-up-batches"] += 1
                    attempts, bisect = 0, 0
                else:
                    self.covered["balance:retries"] += 1
        finally:
            sys.stdout = stdout

    def fault_plan(self, service: str, operation: str, params: dict) -> Any:
        """Faults in AWS's shapes on the stream function's calls; the ones in the documented duplicate window
        (PutEvents went through, its marker is not written) are counted per crossingId."""
        fidelity = self.h.fidelity
        table = params.get("TableName")
        if service == "events" and operation == "PutEvents":
            choices, crossing = PUT_EVENTS_FAULTS, json.loads(params["Entries"][0]["Detail"]).get("crossingId")
        elif service == "dynamodb" and table == self.h.resources.tables["BalanceEvents"] and operation == "GetItem":
            choices, crossing = MARKER_READ_FAULTS, None
        elif service == "dynamodb" and table == self.h.resources.tables["BalanceEvents"] and operation == "PutItem":
            choices, crossing = MARKER_WRITE_FAULTS, params.get("Item", {}).get("crossingId", {}).get("S")
        elif service == "dynamodb" and table in (self.h.resources.tables["Ledger"], self.h.resources.tables["UserLedger"]) and operation == "Query":
            choices, crossing = LEDGER_QUERY_FAULTS, None
        else:
            return None
        if self.fault_rng.random() >= self.plan_of.fault_rate or self.faults_left <= 0:
            return None
        self.faults_left -= 1
        label, in_window = self.fault_rng.choice(choices)
        self.invocation_faults.append(label)
        self.covered["balance:faults-injected"] += 1
        self.covered[f"fault:stream:{label}"] += 1
        if in_window:
            self.window_faults[crossing] += 1
            self.covered["balance:window-faults"] += 1
        if label.startswith("failed-entry-"):
            self.covered["balance:failed-entries-injected"] += 1
            code = "ThrottlingException" if label == "failed-entry-throttling" else "InternalFailure"
            return fidelity.Fault(response=fidelity.put_events_failed_entry(code))
        if label == "put-events-500":
            return fidelity.Fault(fidelity.client_error(operation, "InternalException", "Internal service error.", 500))
        if label == "put-events-read-timeout-after":
            return fidelity.Fault(fidelity.read_timeout("https://events.us-east-1.amazonaws.com/"), after_call=True)
        if label == "lambda-timeout-after-put-events":
            return fidelity.Fault(SimulatedTimeout(label), after_call=True)
        if label.startswith("lambda-timeout-before"):
            return fidelity.Fault(SimulatedTimeout(label))
        if label == "marker-put-500-after":
            return fidelity.Fault(fidelity.internal_server_error(operation), after_call=True)
        return fidelity.Fault(
            fidelity.single_request_throttle(
                operation, self.fault_rng.choice(["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"])
            )
        )

    # --- the invariants ---------------------------------------------------------------------------------
    def check(self) -> None:
        from reconciler.repository.dynamodb import from_item

        truth = ground_truth(self.records, self.h.thresholds())
        self.covered["balance:crossings"] += len(truth)
        bus = [event for event in self.h.bus if event["source"] == BALANCE_SOURCE]
        self.covered["balance:events-on-the-bus"] += len(bus)
        published = Counter(event["detail"].get("crossingId") for event in bus)
        for cid, crossing in truth.items():
            if published[cid]:
                continue
            if crossing["sequence"] in self.given_up:
                self.covered["balance:crossings-given-up"] += 1
            else:
                self.fail(
                    f"crossing {crossing['detail-type']} of {crossing['userId']!r} ({crossing['balanceBefore']} -> {crossing['balanceAfter']}, "
                    f"record {crossing['sequence']}) is not on the bus (crossingId {cid})"
                )
        last: dict[str, tuple[int, int, str]] = {}
        for event in bus:
            detail = event["detail"]
            event_cid = detail.get("crossingId")
            expected = truth.get(event_cid)
            if expected is None:
                self.fail(f"event on the bus without a ground-truth expected: {event['detail-type']} {json.dumps(detail, default=str)[:300]}")
                continue
            wrong = {
                name: (detail.get(name), value)
                for name, value in expected.items()
                if name not in ("position",) and (event["detail-type"] if name == "detail-type" else detail.get(name)) != value
            }
            if wrong or event["bus"] != self.h.event_bus():
                self.fail(f"event {event_cid} differs from its ground truth (got, expected): {wrong} on bus {event['bus']!r}")
            place = (int(expected["sequence"]), expected["position"], expected["detail-type"])
            latest = last.get(expected["userId"], (0, 0, ""))
            if place[:2] < latest[:2]:
                self.fail(
                    f"events of {expected['userId']!r} out of balance order: {place[2]} of record {place[0]} "
                    f"published after {latest[2]} of record {latest[0]}"
                )
            last[expected["userId"]] = max(place, latest)
        for cid, count in published.items():
            if count > 1:
                if count - 1 > self.window_faults[cid]:
                    self.fail(
                        f"crossingId {cid} is on the bus {count} times, "
                        f"with only {self.window_faults[cid]} injected fault(s) in the documented window"
                    )
                else:
                    self.covered["balance:duplicates-in-window"] += count - 1
        markers = Counter(
            item.get("crossingId") for item in map(from_item, self.h.dynamodb.scan(TableName=self.h.resources.tables["BalanceEvents"])["Items"])
        )
        for cid in published:
            found = truth.get(cid)
            if markers[cid] != 1 and not (markers[cid] == 0 and found is not None and found["sequence"] in self.given_up):
                self.fail(f"crossing {cid} is on the bus but has {markers[cid]} marker(s) in BalanceEvents")
        for marked, count in markers.items():
            if marked not in published:
                self.fail(f"BalanceEvents holds {count} marker(s) of {marked}, which is not on the bus (a lost event)")
        self._check_causes(bus)

    def _check_causes(self, bus: list[dict]) -> None:
        """docs/events.md: `ledgerEntries` are the user's entries written at `changedAt`, from both ledgers (job
        postings are in UserLedger, operator entries and v2's history in Ledger)."""

        held = {
            record["dynamodb"]["SequenceNumber"]: tuple(
                _whole(record["dynamodb"].get(image, {}).get("held")) or 0 for image in ("OldImage", "NewImage")
            )
            for record in self.records
        }
        written: dict[tuple[str, str], list[tuple]] = {}
        for _, entry in self.run.books_found:
            key = (entry["userId"], entry["timestamp"])
            written.setdefault(key, []).append((entry["ledgerId"], entry["type"], int(entry["amount"]), entry.get("reference", "")))
        for event in bus:
            detail = event["detail"]
            if not detail.get("changedAt") or "ledgerEntries" not in detail:
                continue
            expected = sorted(written.get((detail.get("userId"), detail["changedAt"]), []))
            got = sorted((e.get("ledgerId"), e.get("type"), e.get("amount"), e.get("reference")) for e in detail["ledgerEntries"])
            # Exact: the entries explain this change of the posted balance, remaining + held (a held render's charge
            # is exact, a hold is not; nor are two changes of one user in the same millisecond).
            net = sum(amount if kind == "credit" else -amount for _, kind, amount, _ in expected)
            held_before, held_after = held.get(str(detail.get("sequence")), (0, 0))
            posted_change = detail.get("balanceAfter", 0) + held_after - (detail.get("balanceBefore") or 0) - held_before
            exact = bool(expected) and net == posted_change
            if got != expected or detail.get("ledgerEntriesExact") is not exact:
                self.fail(
                    f"{event['detail-type']} of {detail.get('userId')!r} at {detail['changedAt']} names ledgerEntries {got} "
                    f"(exact: {detail.get('ledgerEntriesExact')}); both ledgers hold {expected} at that time (exact: {exact})"
                )
            else:
                self.covered["balance:causes-checked"] += 1


BALANCE_SOURCE = "credits.reconciler"


def ground_truth(records: list[dict], defaults: tuple[int, int]) -> dict[str, dict]:
    """crossingId -> the crossing, from the stream records in stream order: docs/events.md re-stated, without
    the runtime's code. A balance is in `low` (balance < low), `exhausted` (<= 0), `overdrawn` (< alert level);
    a change emits each condition it enters and `credits.restored` when it leaves low, in balance order
    (restored first: it is the only upward crossing); the NewImage's overrides judge both sides; a new item was
    in no condition; REMOVE records and damaged ones (a remaining that is not a whole number) emit nothing."""
    truth: dict[str, dict] = {}
    for record in records:
        data = record["dynamodb"]
        if record["eventName"] == "REMOVE" or "NewImage" not in data:
            continue
        new, old = data["NewImage"], data.get("OldImage")
        after, before = _whole(new.get("remaining", {"N": "0"})), None if old is None else _whole(old.get("remaining", {"N": "0"}))
        if after is None or (old is not None and before is None):
            continue
        low = _whole(new.get("lowBalanceThreshold"))
        low = low if low is not None and low >= 1 else defaults[0]
        level = _whole(new.get("overdraftAlertLevel"))
        level = level if level is not None and level <= 0 else defaults[1]
        levels = (("credits.low", low), ("credits.exhausted", 0), ("credits.overdrawn", level))

        def inside(balance: int | None, low: int = low, level: int = level) -> list[bool]:
            if balance is None:
                return [False, False, False]
            return [balance < low, balance <= 0, balance < level]

        was, now = inside(before), inside(after)
        found = [("credits.restored", low)] if was[0] and not now[0] else []
        found += [levels[i] for i in range(3) if now[i] and not was[i]]
        user, sequence = data["Keys"]["userId"]["S"], data["SequenceNumber"]
        for position, (detail_type, threshold) in enumerate(found):
            truth[_crossing_id(user, sequence, detail_type)] = {
                "detail-type": detail_type,
                "userId": user,
                "sequence": sequence,
                "position": position,
                "balanceBefore": before,
                "balanceAfter": after,
                "threshold": threshold,
            }
    return truth


def _whole(value: dict | None) -> int | None:
    """A DynamoDB number attribute that is a whole number, else None (text, a fraction, anything else)."""
    if not isinstance(value, dict) or "N" not in value:
        return None
    number = Decimal(value["N"])
    return int(number) if number == number.to_integral_value() else None


def _crossing_id(user: str, sequence: str, detail_type: str) -> str:
    """docs/events.md: the first 32 hex digits of the SHA-256 of the length-prefixed user, sequence number and detail-type."""
    text = f"crossing:v1:{len(user)}:{user}:{len(sequence)}:{sequence}:{detail_type}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _posting(entry: dict) -> str | None:
    ledger_id = entry["ledgerId"]
    return ledger_id.rsplit(":", 1)[1] if ledger_id.startswith("job:") else None


def _iso(hours_ago: float) -> str:
    from datetime import datetime, timedelta

    from reconciler.domain.ledger import iso_timestamp

    return iso_timestamp(datetime.now(UTC) - timedelta(hours=hours_ago))


def emitted_metrics(printed: str) -> dict[str, float]:
    """Sums the EMF metrics Powertools printed, by name (whatever dimension sets each record declares)."""
    totals: Counter = Counter()
    for line in printed.splitlines():
        if '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for definition in blob["_aws"]["CloudWatchMetrics"]:
            for metric in definition["Metrics"]:
                values = blob[metric["Name"]]
                totals[metric["Name"]] += sum(values if isinstance(values, list) else [values])
    return dict(totals)


def run_scenario(harness: Harness, scenario: Scenario) -> RunResult:
    harness.reset()
    run = Run(harness, scenario)
    run.execute_all()
    run.check()
    BalanceEventRun(run).deliver_and_check()
    return run.result


def shrink(harness: Harness, scenario: Scenario) -> Scenario:
    """The shortest task list (removing one task at a time) that still fails with the same seed."""
    current = scenario
    changed = True
    while changed:
        changed = False
        for index in range(len(current.tasks)):
            candidate = dataclasses.replace(current, tasks=current.tasks[:index] + current.tasks[index + 1 :])
            if run_scenario(harness, candidate).failures:
                current, changed = candidate, True
                break
    return current


def describe(scenario: Scenario) -> str:
    lines = [f"seed {scenario.seed}: {scenario.workers} worker(s), fault rate {scenario.fault_rate}, {scenario.stream.describe()}"]
    lines += [f"  setup  {task.describe()[:240]}" for task in scenario.setup]
    lines += [f"  task   {task.describe()[:240]}" for task in scenario.tasks]
    return "\n".join(lines)


def digest(scenario: Scenario, result: RunResult) -> str:
    """One line of what a seed's run did: its set-up and tasks, its workers' hand-overs, its counters and its
    verdict (each part hashed, with its size), so two versions of the simulator can be compared seed by seed."""

    def sha(parts: list[str]) -> str:
        return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:16]

    tasks = [describe(dataclasses.replace(scenario, setup=[], tasks=[]))] + [task.describe() for task in scenario.setup + scenario.tasks]
    counters = [f"{name}={count}" for name, count in sorted(result.covered.items())]
    verdict = f"failed {len(result.failures)} {sha(result.failures)}" if result.failures else "ok"
    return (
        f"seed {scenario.seed}: {verdict}; tasks {len(tasks) - 1} {sha(tasks)}; hand-overs {len(result.handovers)} "
        f"{sha([str(turn) for turn in result.handovers])}; counters {len(counters)} {sha(counters)}"
    )


def simulate(
    seeds: list[int],
    *,
    verbose: bool = False,
    shrink_failures: bool = True,
    templates: dict | None = None,
    progress: bool = False,
    report: Callable[[Scenario, RunResult], None] | None = None,
) -> tuple[list[RunResult], Counter]:
    harness = Harness(templates)
    covered: Counter = Counter()
    failed: list[RunResult] = []
    try:
        for number, seed in enumerate(seeds, 1):
            scenario = generate(seed)
            if progress and number % 250 == 0:
                print(f"{number}/{len(seeds)} runs, {len(failed)} failed", file=sys.stderr, flush=True)
            result = run_scenario(harness, scenario)
            if report is not None:
                report(scenario, result)
            covered.update(result.covered)
            covered[f"workers:{scenario.workers}"] += 1
            if verbose:
                print(describe(scenario), file=sys.stderr)
            if result.failures:
                failed.append(result)
                smallest = shrink(harness, scenario) if shrink_failures else scenario
                print(f"FAILED {describe(smallest)}\n  " + "\n  ".join(result.failures[:10]), file=sys.stderr)
    finally:
        harness.close()
    return failed, covered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator.sim", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=int(os.environ.get("SEEDS", "10000")), help="runs, seeds 0..N-1 (env SEEDS)")
    parser.add_argument("--seed", type=int, default=int(os.environ["SEED"]) if os.environ.get("SEED") else None, help="replay one seed (env SEED)")
    parser.add_argument("--first", type=int, default=0, help="first seed of the range")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--digest", action="store_true", help="print each run's digest on stdout (no shrinking): compare two versions")
    args = parser.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else list(range(args.first, args.first + args.seeds))
    started = time.monotonic()
    report = (lambda scenario, result: print(digest(scenario, result), flush=True)) if args.digest else None
    failed, covered = simulate(seeds, verbose=args.verbose, progress=True, shrink_failures=not args.digest, report=report)
    elapsed = time.monotonic() - started
    print(f"{len(seeds)} run(s) in {elapsed:.0f} s ({len(seeds) / elapsed:.1f} runs/s), {len(failed)} failed", file=sys.stderr)
    print("covered: " + ", ".join(f"{name}={count}" for name, count in sorted(covered.items())), file=sys.stderr)
    print("balance events: " + ", ".join(f"{name}={covered[key]}" for name, key in BALANCE_EVENT_SUMMARY), file=sys.stderr)
    print("holds and v2 data: " + ", ".join(f"{name}={covered[key]}" for name, key in HOLDS_SUMMARY), file=sys.stderr)
    print("invariants checked after every run:\n  - " + "\n  - ".join(INVARIANTS + BALANCE_EVENT_INVARIANTS), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
