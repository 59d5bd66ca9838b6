"""Item 1: DynamoDB and SQS requests per event, ours against the v1-style baseline, counted at botocore.

Works against any DynamoDB/SQS endpoint with the three tables (in-process moto in the tests, the moto
server in `make bench`); request counts do not depend on the backend's speed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmarks.baseline_v1 import V1Baseline
from benchmarks.common import RequestCounter, failed, rendered
from reconciler import bootstrap
from reconciler.bootstrap import build_processor
from reconciler.config import RuntimeConfig
from reconciler.repository.dynamodb import to_item
from reconciler.service.reservations import ReservationService

SCENARIOS = (
    ("reserved", "first settlement of a job with a reservation"),
    ("no_job", "first settlement, no job record"),
    ("duplicate", "duplicate (same event redelivered)"),
    ("conflict", "conflicting terminal event (failed after rendered)"),
    ("invalid", "invalid event (userId missing)"),
)


@dataclass
class ScenarioCount:
    dynamodb: dict[str, int]
    sqs: dict[str, int]
    writes: list[tuple[str, dict]] = field(default_factory=list)  # (operation, params) of DynamoDB calls
    outcome: str = ""
    attempts: int = 1

    @property
    def dynamodb_total(self) -> int:
        return sum(self.dynamodb.values())

    @property
    def sqs_total(self) -> int:
        return sum(self.sqs.values())


class _Recorder(RequestCounter):
    """A RequestCounter that also keeps the parameters of each DynamoDB call (for the capacity model)."""

    def __init__(self, *clients: Any) -> None:
        self.calls_made: list[tuple[str, dict]] = []
        super().__init__(*clients)

    def attach(self, client: Any) -> None:
        super().attach(client)
        # The API parameters as our code passed them (before-call only sees the serialized body).
        client.meta.events.register("before-parameter-build.dynamodb", self._on_params)

    def _on_params(self, model: Any = None, params: Any = None, **_: Any) -> None:
        self.calls_made.append((model.name, dict(params or {})))

    def reset(self) -> None:
        super().reset()
        self.calls_made = []


def _seed_balance(dynamodb: Any, config: RuntimeConfig, user_id: str, credits: int) -> None:
    dynamodb.put_item(TableName=config.credits_table, Item=to_item({"userId": user_id, "remaining": credits}))


def count_requests(dynamodb: Any, sqs: Any, config: RuntimeConfig, prefix: str = "rq") -> dict[str, dict[str, ScenarioCount]]:
    """Runs each scenario once for ours and once for the baseline; returns {scenario: {"ours"|"v1": count}}."""
    processor = build_processor(config, dynamodb=dynamodb, sqs=sqs)
    baseline = V1Baseline(dynamodb, config.jobs_table, config.credits_table, config.ledger_table)
    reservations = ReservationService(bootstrap.settlement_store(config, dynamodb))
    ddb_counter = _Recorder(dynamodb)
    sqs_counter = RequestCounter(sqs)
    results: dict[str, dict[str, ScenarioCount]] = {name: {} for name, _ in SCENARIOS}

    def measure(scenario: str, who: str, action) -> None:
        ddb_counter.reset()
        sqs_counter.reset()
        outcome = action()
        results[scenario][who] = ScenarioCount(
            dynamodb=ddb_counter.snapshot(),
            sqs=sqs_counter.snapshot(),
            writes=list(ddb_counter.calls_made),
            outcome=getattr(outcome, "kind", str(outcome)),
            attempts=getattr(outcome, "attempts", 1),
        )

    for who in ("ours", "v1"):
        user = f"{prefix}-{who}-user"
        _seed_balance(dynamodb, config, user, 1000)
        # A reservation made by the pipeline (not counted: it is not part of settling the event).
        reservations.reserve(f"{prefix}-{who}-reserved", user, "standard-v1", 30)
        events = {
            "reserved": rendered(f"{prefix}-{who}-e1", f"{prefix}-{who}-reserved", user, seconds=10),
            "no_job": rendered(f"{prefix}-{who}-e2", f"{prefix}-{who}-fresh", user, seconds=10),
            "duplicate": rendered(f"{prefix}-{who}-e2", f"{prefix}-{who}-fresh", user, seconds=10),
            "conflict": failed(f"{prefix}-{who}-e3", f"{prefix}-{who}-fresh", user),
            "invalid": rendered(f"{prefix}-{who}-e4", f"{prefix}-{who}-bad", user),
        }
        del events["invalid"]["detail"]["userId"]
        for scenario, _ in SCENARIOS:
            event = events[scenario]
            if who == "ours":
                measure(scenario, who, lambda e=event: processor.process(e))
            else:
                measure(scenario, who, lambda e=event: _baseline_process(baseline, e))
    return results


def _baseline_process(baseline: V1Baseline, event: dict) -> str:
    try:
        return baseline.process(event).kind
    except KeyError as error:
        return f"raised KeyError({error})"


# --- capacity units on real DynamoDB (on-demand) --------------------------------------------

# Every item these events read or write is far below 1 KB (checked by the benchmark run: max item size
# is reported), so one unit per item: writes 1 KB/WRU, reads 4 KB/RRU.


def capacity_units(calls: list[tuple[str, dict]], ledger_table: str) -> tuple[float, float]:
    """(read request units, write request units) the calls would consume, including GSI writes.

    Transactional reads and writes cost 2x; GetItem eventually consistent 0.5, consistent 1.
    GSI maintenance: every Ledger put also writes the userId-timestamp index (1 WRU); a job update that
    removes the `unsettled` marker of a reserved job deletes its entry in the sparse index (1 WRU).
    """
    rru = wru = 0.0
    for operation, params in calls:
        if operation == "TransactGetItems":
            rru += 2 * len(params.get("TransactItems", []))
        elif operation == "GetItem":
            rru += 1 if params.get("ConsistentRead") else 0.5
        elif operation == "TransactWriteItems":
            for part in params.get("TransactItems", []):
                ((kind, body),) = part.items()
                wru += 2
                wru += _gsi_writes(kind, body, ledger_table)
        elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
            wru += 1 + _gsi_writes({"PutItem": "Put", "UpdateItem": "Update", "DeleteItem": "Delete"}[operation], params, ledger_table)
    return rru, wru


def _gsi_writes(kind: str, body: dict, ledger_table: str) -> int:
    if body.get("TableName") == ledger_table and kind == "Put":
        return 1
    if kind == "Update" and "REMOVE #u" in body.get("UpdateExpression", "") and "reservedCredits = :reserved" in body.get("ConditionExpression", ""):
        return 1
    return 0
