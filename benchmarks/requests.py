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
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from benchmarks.baseline_powertools import REPLAYED, PowertoolsIdempotentV1, create_idempotency_table
from benchmarks.baseline_v1 import V1Baseline
from benchmarks.common import RequestCounter, failed, item_size, rendered
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

    @property
    def dynamodb_total(self) -> int:
        return sum(self.dynamodb.values())

    @property
    def sqs_total(self) -> int:
        return sum(self.sqs.values())

    def user_partition_wru(self) -> float:
        """WRU of one event on the busiest partition keyed by its user (the balance item, a per-user ledger)."""
        return max((wru for name, wru in self.partitions.items() if name.endswith(f"={self.user}")), default=0.0)


# --- capacity units on real DynamoDB (on-demand) --------------------------------------------


@dataclass(frozen=True)
class _Index:
    name: str | None  # None: the table itself
    keys: tuple[str, ...]  # partition key first
    projection: str = "ALL"  # ALL | KEYS_ONLY | INCLUDE
    included: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Shape:
    table: _Index
    indexes: tuple[_Index, ...]
    expires: bool = False  # a TTL attribute is set: what it stores goes away by itself


class UnitMeter:
    """Read and write request units of DynamoDB calls, by AWS's rules (DynamoDB Developer Guide, "DynamoDB read and
    write operations" and "Global secondary indexes: provisioned throughput considerations"):

    reads    GetItem 0.5 (eventually consistent) or 1 per 4 KB, a transactional read 2 per 4 KB, at least one
             4 KB step per item asked for; Query/Scan per page, by the bytes read.
    writes   1 per 1 KB of the larger of the item before and after (also when a condition fails), 2 in a
             transaction (ConditionCheck included); plus, per global secondary index, 1 to put an item into it,
             1 to delete it, 2 when an index key changes, 1 when only a projected attribute changes.
    The images before and after a write are read through the same client, uncounted (`busy`).
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.busy = False
        self._shapes: dict[str, _Shape] = {}

    def shape(self, table: str) -> _Shape:
        if table not in self._shapes:
            description = self._quiet(self.client.describe_table, TableName=table)["Table"]

            def keys(schema: list[dict]) -> tuple[str, ...]:
                return tuple(k["AttributeName"] for k in sorted(schema, key=lambda k: k["KeyType"] != "HASH"))

            indexes = tuple(
                _Index(
                    index["IndexName"],
                    keys(index["KeySchema"]),
                    index["Projection"].get("ProjectionType", "ALL"),
                    tuple(index["Projection"].get("NonKeyAttributes", ())),
                )
                for index in description.get("GlobalSecondaryIndexes", [])
            )
            ttl = self._quiet(self.client.describe_time_to_live, TableName=table).get("TimeToLiveDescription", {})
            self._shapes[table] = _Shape(_Index(None, keys(description["KeySchema"])), indexes, ttl.get("TimeToLiveStatus") == "ENABLED")
        return self._shapes[table]

    def _quiet(self, call: Any, **request: Any) -> Any:
        self.busy = True
        try:
            return call(**request)
        finally:
            self.busy = False

    def image(self, table: str, key: dict) -> dict | None:
        return self._quiet(self.client.get_item, TableName=table, Key=key, ConsistentRead=True).get("Item")

    def key_of(self, table: str, item: dict) -> dict:
        return {name: item[name] for name in self.shape(table).table.keys}

    # -- what a call writes, before it runs

    def writes_of(self, operation: str, params: dict) -> list[tuple[str, str, dict, dict | None]]:
        """(kind, table, key, item put) of every item the call may write."""
        if operation == "PutItem":
            return [("Put", params["TableName"], self.key_of(params["TableName"], params["Item"]), params["Item"])]
        if operation in ("UpdateItem", "DeleteItem"):
            return [(operation[:-4], params["TableName"], params["Key"], None)]
        if operation == "TransactWriteItems":
            out = []
            for part in params.get("TransactItems", []):
                ((kind, body),) = part.items()
                key = self.key_of(body["TableName"], body["Item"]) if kind == "Put" else body["Key"]
                out.append((kind, body["TableName"], key, body.get("Item")))
            return out
        if operation == "BatchWriteItem":
            out = []
            for table, requests in params.get("RequestItems", {}).items():
                for request in requests:
                    if "PutRequest" in request:
                        item = request["PutRequest"]["Item"]
                        out.append(("Put", table, self.key_of(table, item), item))
                    else:
                        out.append(("Delete", table, request["DeleteRequest"]["Key"], None))
            return out
        return []

    # -- the units, after it ran

    def units(
        self, operation: str, params: dict, parsed: dict, before: list[tuple[str, str, dict, dict | None, dict | None]]
    ) -> tuple[float, float, dict[str, float], dict[str, int]]:
        """(RRU, WRU, WRU per partition, bytes stored per table: "Table" for items, "Table/index" for index entries)."""
        rru = wru = 0.0
        stored: defaultdict[str, int] = defaultdict(int)
        partitions: defaultdict[str, float] = defaultdict(float)
        if operation == "GetItem":
            rru += _read_units(parsed.get("Item"), 1.0 if params.get("ConsistentRead") else 0.5)
        elif operation == "TransactGetItems":
            rru += sum(_read_units(response.get("Item"), 2.0) for response in parsed.get("Responses", [{}] * len(params["TransactItems"])))
        elif operation in ("Query", "Scan"):
            size = sum(item_size(item) for item in parsed.get("Items", []))
            rru += max(1, math.ceil(size / 4096)) * (1.0 if params.get("ConsistentRead") else 0.5)
        for kind, table, key, put, old in before:
            new = self.image(table, key)
            factor = 2.0 if operation == "TransactWriteItems" else 1.0
            size = max(item_size(old or {}), item_size(new or {}), item_size(put or {}))
            table_wru = factor * max(1, math.ceil(size / 1024))
            wru += table_wru
            shape = self.shape(table)
            partitions[_partition(table, None, shape.table.keys, new or old or put or key)] += table_wru
            if kind == "ConditionCheck":
                continue
            if not shape.expires:
                for name, size in _stored(table, shape, new).items():
                    stored[name] += size
                for name, size in _stored(table, shape, old).items():
                    stored[name] -= size
            for index in shape.indexes:
                index_wru = _index_writes(index, shape.table, old, new)
                if index_wru:
                    wru += index_wru
                    partitions[_partition(table, index.name, index.keys, new if new and _in_index(index, new) else old or {})] += index_wru
        return rru, wru, partitions, dict(stored)


def _stored(table: str, shape: _Shape, item: dict | None) -> dict[str, int]:
    """Billable storage of an item and its index entries: raw size + 100 bytes each (DynamoDB's item overhead)."""
    if item is None:
        return {}
    sizes = {table: item_size(item) + 100}
    for index in shape.indexes:
        if _in_index(index, item):
            keep = set(shape.table.keys) | set(index.keys) | set(index.included)
            projected = item if index.projection == "ALL" else {name: value for name, value in item.items() if name in keep}
            sizes[f"{table}/{index.name}"] = item_size(projected) + 100
    return sizes


def _read_units(item: dict | None, per_4kb: float) -> float:
    return per_4kb * max(1, math.ceil(item_size(item or {}) / 4096))


def _partition(table: str, index: str | None, keys: tuple[str, ...], item: dict) -> str:
    value = item.get(keys[0], {})
    return f"{table}{'/' + index if index else ''} {keys[0]}={next(iter(value.values()), '?') if value else '?'}"


def _in_index(index: _Index, item: dict | None) -> bool:
    return item is not None and all(name in item for name in index.keys)


def _index_writes(index: _Index, table: _Index, old: dict | None, new: dict | None) -> int:
    was, now = _in_index(index, old), _in_index(index, new)
    if not was and not now:
        return 0
    if was != now:
        return 1  # put into the index, or deleted from it
    if old is None or new is None:  # unreachable: both in the index (for mypy)
        return 0
    if any(old[name] != new[name] for name in index.keys):
        return 2  # an index key changed: delete and put
    if index.projection == "ALL":
        projected = set(old) | set(new)
    else:
        projected = set(table.keys) | set(index.keys) | set(index.included if index.projection == "INCLUDE" else ())
    return 1 if any(old.get(name) != new.get(name) for name in projected) else 0


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


def count_requests(dynamodb: Any, sqs: Any, config: RuntimeConfig, prefix: str = "rq") -> dict[str, dict[str, ScenarioCount]]:
    """Runs each scenario once per implementation; returns {scenario: {"ours"|"v1"|"powertools": count}}."""
    processor = build_processor(config, dynamodb=dynamodb, sqs=sqs)
    baseline = V1Baseline(dynamodb, config.jobs_table, config.credits_table, config.ledger_table)
    idempotent = PowertoolsIdempotentV1(dynamodb, config.jobs_table, config.credits_table, config.ledger_table, ensure_idempotency_table(dynamodb))
    reservations = bootstrap.build_reservations(bootstrap.settlement_store(config, dynamodb), config)  # as the hold function builds it
    _warm_up(dynamodb)
    ddb_counter = _Recorder(dynamodb)
    sqs_counter = RequestCounter(sqs)
    results: dict[str, dict[str, ScenarioCount]] = {name: {} for name, _ in (*SCENARIOS, RESERVATION)}

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
        )

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
        events = {
            "reserved": rendered(f"{prefix}-{who}-e1", f"{prefix}-{who}-reserved", user, seconds=10),
            "no_job": rendered(f"{prefix}-{who}-e2", f"{prefix}-{who}-fresh", user, seconds=10),
            "failed_reserved": failed(f"{prefix}-{who}-e5", f"{prefix}-{who}-reserved-2", user),
            "duplicate": rendered(f"{prefix}-{who}-e2", f"{prefix}-{who}-fresh", user, seconds=10),
            "conflict": failed(f"{prefix}-{who}-e3", f"{prefix}-{who}-fresh", user),
            "invalid": rendered(f"{prefix}-{who}-e4", f"{prefix}-{who}-bad", user),
        }
        del events["invalid"]["detail"]["userId"]
        run = {OURS: processor.process, V1: baseline.process, POWERTOOLS: idempotent.process}[who]
        for scenario, _ in SCENARIOS:
            measure(scenario, who, user, lambda e=events[scenario], run=run: _run(run, e))
    return results


def _warm_up(dynamodb: Any) -> None:
    """One uncounted write attempt on every table first: in-process, the tests' fidelity layer
    (simulator/fidelity.py) describes a table on its first put, and that look-up is not the event's request.
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


__all__ = ["OURS", "POWERTOOLS", "REPLAYED", "RESERVATION", "SCENARIOS", "V1", "WHO", "WHO_LABELS", "ScenarioCount", "count_requests"]
