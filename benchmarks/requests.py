"""Item 1: DynamoDB and SQS requests and capacity units per event: ours, the v1-style baseline, and that
baseline made idempotent with Powertools' idempotency utility, counted at botocore.

Works against any DynamoDB/SQS endpoint with the tables (in-process moto in the tests, the moto server in
`make bench`); request counts do not depend on the backend's speed. Capacity units are not moto's (its
ConsumedCapacity is a constant): `UnitMeter` computes them with DynamoDB's published rules from what each call
did, the tables' own key schemas and global secondary indexes (DescribeTable) and the item before and after the
call, so they follow any change of design without a rule here to update.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from benchmarks.balance_function import BalanceFunction
from benchmarks.baseline_powertools import REPLAYED, PowertoolsIdempotentV1, create_idempotency_table
from benchmarks.baseline_v1 import V1Baseline
from benchmarks.common import RequestCounter, failed, rendered
from benchmarks.units import UnitMeter
from reconciler import bootstrap
from reconciler.bootstrap import build_processor
from reconciler.config import RuntimeConfig
from reconciler.domain.ledger import iso_timestamp
from reconciler.repository.dynamodb import to_item

OURS, V1, POWERTOOLS = "ours", "v1", "powertools"
WHO = (OURS, V1, POWERTOOLS)
WHO_LABELS = {OURS: "ours", V1: "v1-style baseline", POWERTOOLS: "v1-style + Powertools idempotency"}
IDEMPOTENCY_TABLE = "BenchIdempotency"  # the Powertools baseline's own table, created by the bench

SCENARIOS = (
    ("reserved", "first settlement of a job with a reservation"),
    ("no_job", "first settlement, no job record"),
    ("failed_reserved", "failure of a job with a reservation"),
    ("duplicate", "duplicate (same event redelivered)"),
    ("conflict", "conflicting terminal event (failed after rendered)"),
    ("invalid", "invalid event (userId missing)"),
)
# Not an event: the pipeline's reservation call (ours only; the baselines have no reservation path).
RESERVATION = ("reservation", "a reservation itself (the pipeline's call, not an event)")
# Ours only: a render that takes its user below the low threshold, so the balance-events function publishes.
LOW_BALANCE = ("low_balance", "a render that takes its user below the low threshold")


@dataclass
class ScenarioCount:
    dynamodb: dict[str, int]
    sqs: dict[str, int]
    outcome: str = ""
    attempts: int = 1
    units: tuple[float, float] = (0.0, 0.0)  # (RRU, WRU) on real on-demand DynamoDB
    # WRU per partition written, "Table[/index] key=value": a hot user's ceiling is set by its busiest partition.
    partitions: dict[str, float] = field(default_factory=dict)
    user: str = ""
    # Bytes the event leaves stored (items and index entries, with AWS's 100 bytes per item), tables with a TTL aside.
    stored_bytes: int = 0
    stored_by_table: dict[str, int] = field(default_factory=dict)  # the items alone, per table
    stream_records: dict[str, list[dict]] = field(default_factory=dict)  # per table with a stream: the records written
    # The balance-events function run on each Credits record of `stream_records`, in order (benchmarks.balance_function).
    balance_runs: list[dict] = field(default_factory=list)

    @property
    def dynamodb_total(self) -> int:
        return sum(self.dynamodb.values())

    @property
    def sqs_total(self) -> int:
        return sum(self.sqs.values())

    def user_partition_wru(self) -> float:
        """WRU of one event on the busiest partition keyed by its user (the balance item, a per-user ledger)."""
        return max((wru for name, wru in self.partitions.items() if name.endswith(f"={self.user}")), default=0.0)


class _Recorder(RequestCounter):
    """A RequestCounter that also meters the capacity units of each DynamoDB call (UnitMeter)."""

    def __init__(self, dynamodb: Any) -> None:
        self.meter = UnitMeter(dynamodb)
        self.rru = self.wru = 0.0
        self.stored: defaultdict[str, int] = defaultdict(int)
        self.partitions: defaultdict[str, float] = defaultdict(float)
        self._pending: list[tuple[str, dict, list]] = []
        super().__init__(dynamodb)
        dynamodb.meta.events.register("before-parameter-build.dynamodb", self._before)
        dynamodb.meta.events.register("after-call.dynamodb", self._after)

    def _on_call(self, model: Any = None, **kwargs: Any) -> None:
        if not self.meter.busy:
            super()._on_call(model=model, **kwargs)

    def _on_send(self, **kwargs: Any) -> None:
        if not self.meter.busy:
            super()._on_send(**kwargs)

    def _before(self, model: Any = None, params: Any = None, **_: Any) -> None:
        if self.meter.busy:
            return
        params = dict(params or {})
        before = [(kind, table, key, put, self.meter.image(table, key)) for kind, table, key, put in self.meter.writes_of(model.name, params)]
        self._pending.append((model.name, params, before))

    def _after(self, model: Any = None, parsed: Any = None, **_: Any) -> None:
        if self.meter.busy or not self._pending:
            return
        operation, params, before = self._pending.pop()
        rru, wru, partitions, stored = self.meter.units(operation, params, parsed or {}, before)
        self.rru += rru
        self.wru += wru
        for name, size in stored.items():
            self.stored[name] += size
        for name, units in partitions.items():
            self.partitions[name] += units

    def reset(self) -> None:
        super().reset()
        self.rru = self.wru = 0.0
        self.stored = defaultdict(int)
        self.partitions = defaultdict(float)
        self._pending = []
        self.meter.stream_records.clear()


# --- the scenarios -----------------------------------------------------------------------------


def _seed_balance(dynamodb: Any, config: RuntimeConfig, user_id: str, credits: int) -> None:
    dynamodb.put_item(TableName=config.credits_table, Item=to_item({"userId": user_id, "remaining": credits}))


def _pipeline_job(dynamodb: Any, config: RuntimeConfig, job_id: str, user_id: str, reserved: int | None) -> None:
    """A job as the pipeline creates it: in the unsettled index; with a reservation on the item for the baselines."""
    item = {"jobId": job_id, "userId": user_id, "model": "standard-v1", "status": "submitted", "createdAt": iso_timestamp(), "unsettled": "PENDING"}
    dynamodb.put_item(TableName=config.jobs_table, Item=to_item({**item, "reservedCredits": reserved}))


def ensure_idempotency_table(dynamodb: Any, name: str = IDEMPOTENCY_TABLE) -> str:
    if name not in dynamodb.list_tables().get("TableNames", []):
        create_idempotency_table(dynamodb, name)
    return name


def count_requests(dynamodb: Any, sqs: Any, config: RuntimeConfig, prefix: str = "rq", events: Any = None) -> dict[str, dict[str, ScenarioCount]]:
    """Runs each scenario once per implementation; returns {scenario: {"ours"|"v1"|"powertools": count}}. With an
    EventBridge client, the balance-events function also runs on the Credits records each of ours writes."""
    processor = build_processor(config, dynamodb=dynamodb, sqs=sqs)
    baseline = V1Baseline(dynamodb, config.jobs_table, config.credits_table, config.ledger_table)
    idempotent = PowertoolsIdempotentV1(dynamodb, config.jobs_table, config.credits_table, config.ledger_table, ensure_idempotency_table(dynamodb))
    reservations = bootstrap.build_reservations(bootstrap.settlement_store(config, dynamodb), config)  # as the hold function builds it
    _warm_up(dynamodb)
    ddb_counter = _Recorder(dynamodb)
    sqs_counter = RequestCounter(sqs)
    results: dict[str, dict[str, ScenarioCount]] = {name: {} for name, _ in (*SCENARIOS, RESERVATION)}
    balance = BalanceFunction(dynamodb, events, ddb_counter, config.stage) if events is not None else None

    def measure(scenario: str, who: str, user: str, action) -> None:
        ddb_counter.reset()
        sqs_counter.reset()
        outcome = action()
        results[scenario][who] = ScenarioCount(
            dynamodb=ddb_counter.snapshot(),
            sqs=sqs_counter.snapshot(),
            outcome=getattr(outcome, "kind", str(outcome)),
            attempts=getattr(outcome, "attempts", 1),
            units=(ddb_counter.rru, ddb_counter.wru),
            partitions=dict(ddb_counter.partitions),
            user=user,
            stored_bytes=sum(ddb_counter.stored.values()),
            stored_by_table={name: size for name, size in ddb_counter.stored.items() if "/" not in name},
            stream_records={table: list(found) for table, found in ddb_counter.meter.stream_records.items()},
        )
        if balance is not None and who == OURS:
            runs = balance.run(results[scenario][who].stream_records.get(config.credits_table, []))
            results[scenario][who].balance_runs = [run.as_dict() for run in runs]

    for who in WHO:
        user = f"{prefix}-{who}-user"
        _seed_balance(dynamodb, config, user, 1000)
        # The pipeline creates its jobs (with the unsettled marker), then holds credits for them: ours through the
        # hold (measured once, a path of its own); the baselines know only a reservation on the Jobs item.
        for job_id in (f"{prefix}-{who}-reserved", f"{prefix}-{who}-reserved-2"):
            _pipeline_job(dynamodb, config, job_id, user, reserved=None if who == OURS else 30)
        if who == OURS:
            first = (f"{prefix}-{who}-reserved", user, "standard-v1", 30)
            measure("reservation", who, user, lambda first=first: "reserved" if reservations.reserve(*first) else "already reserved")
            reservations.reserve(f"{prefix}-{who}-reserved-2", user, "standard-v1", 30)
        events_of = {
            "reserved": rendered(f"{prefix}-{who}-e1", f"{prefix}-{who}-reserved", user, seconds=10),
            "no_job": rendered(f"{prefix}-{who}-e2", f"{prefix}-{who}-fresh", user, seconds=10),
            "failed_reserved": failed(f"{prefix}-{who}-e5", f"{prefix}-{who}-reserved-2", user),
            "duplicate": rendered(f"{prefix}-{who}-e2", f"{prefix}-{who}-fresh", user, seconds=10),
            "conflict": failed(f"{prefix}-{who}-e3", f"{prefix}-{who}-fresh", user),
            "invalid": rendered(f"{prefix}-{who}-e4", f"{prefix}-{who}-bad", user),
        }
        del events_of["invalid"]["detail"]["userId"]
        run = {OURS: processor.process, V1: baseline.process, POWERTOOLS: idempotent.process}[who]
        for scenario, _ in SCENARIOS:
            measure(scenario, who, user, lambda e=events_of[scenario], run=run: _run(run, e))
    if balance is not None:
        # A balance that the render's charge takes from just above the low threshold to below it.
        user = f"{prefix}-low-user"
        _seed_balance(dynamodb, config, user, balance.config.thresholds.low + 1)
        results[LOW_BALANCE[0]] = {}
        measure(LOW_BALANCE[0], OURS, user, lambda: processor.process(rendered(f"{prefix}-low-e1", f"{prefix}-low-job", user, seconds=10)))
    return results


def _warm_up(dynamodb: Any) -> None:
    """One uncounted write attempt on every table first: in-process, the tests' fidelity layer
    (emulator/fidelity.py) describes a table on its first put, and that look-up is not the event's request.
    The put's condition fails on a key that does not exist, so nothing is written."""
    for table in dynamodb.list_tables().get("TableNames", []):
        description = dynamodb.describe_table(TableName=table)["Table"]
        types = {d["AttributeName"]: d["AttributeType"] for d in description["AttributeDefinitions"]}
        key = {
            k["AttributeName"]: {types[k["AttributeName"]]: "0" if types[k["AttributeName"]] == "N" else "warm-up"} for k in description["KeySchema"]
        }
        with contextlib.suppress(dynamodb.exceptions.ConditionalCheckFailedException):
            dynamodb.put_item(TableName=table, Item=key, ConditionExpression="attribute_exists(#k)", ExpressionAttributeNames={"#k": next(iter(key))})


def _run(process: Any, event: dict) -> Any:
    """Ours answers every event; the baselines raise on an invalid one (Lambda's retries and DLQ take it)."""
    try:
        return process(event)
    except KeyError as error:
        return f"raised KeyError({error})"


__all__ = ["LOW_BALANCE", "OURS", "POWERTOOLS", "REPLAYED", "RESERVATION", "SCENARIOS", "V1", "WHO", "WHO_LABELS", "ScenarioCount", "count_requests"]
