"""The balance-events function as Lambda runs it on the Credits stream records one event writes: the real handler
(reconciler.handlers.balance_stream, composed by bootstrap as in Lambda) on the stage's DynamoDB and EventBridge
clients, one record an invocation, each invocation's calls counted, its capacity units metered by DynamoDB's rules
(benchmarks/units.py) and its log lines and EMF records measured in bytes.

The cost model prices what this measured, whatever the function does (issue #27): which calls it makes, how many
units they take, how many events it puts and what it logs come from running it, not from constants here.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from typing import Any
from unittest import mock

from benchmarks.common import RequestCounter
from emulator.delivery import handler_output_to
from emulator.invoker import LocalContext
from emulator.stream_poller import lambda_record
from reconciler import bootstrap
from reconciler.config import BalanceEventsConfig
from reconciler.contract import ResourceNames


@dataclass
class FunctionRun:
    """One invocation of the balance-events function on one record."""

    dynamodb: dict[str, int]
    units: tuple[float, float]  # (RRU, WRU)
    events: dict[str, int]  # EventBridge calls
    entries: int  # events put on the bus
    log_bytes: int  # its own log lines, newline included, as Lambda ingests them
    emf_bytes: int  # its EMF records
    failed: int  # records it reported as failed (Lambda would retry them)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "units": list(self.units)}


class EntryCounter(RequestCounter):
    """Counts EventBridge calls and the entries PutEvents puts."""

    def __init__(self, events: Any) -> None:
        super().__init__(events)
        self.entries = 0
        events.meta.events.register("before-parameter-build.events.PutEvents", self._on_put)

    def _on_put(self, params: Any = None, **_: Any) -> None:
        self.entries += len((params or {}).get("Entries", []))

    def reset(self) -> None:
        super().reset()
        self.entries = 0


def lambda_records(records: list[dict], stream_arn: str, first_sequence: int = 0) -> list[dict]:
    """Stream records (benchmarks.units.stream_record) numbered as a shard would, in the shape Lambda hands them to
    the function (the local stack's poller's `lambda_record`)."""
    shaped = []
    for offset, record in enumerate(records):
        sequence = str(10**20 + first_sequence + offset)
        data = {**record["dynamodb"], "SequenceNumber": sequence, "StreamViewType": "NEW_AND_OLD_IMAGES"}
        shaped.append(lambda_record({"eventID": sequence, "eventName": record["eventName"], "dynamodb": data}, stream_arn))
    return shaped


class BalanceFunction:
    """The function for a stage, on the clients given; `recorder` is the benchmarks' DynamoDB request recorder
    (benchmarks.requests._Recorder) attached to `dynamodb`."""

    def __init__(self, dynamodb: Any, events: Any, recorder: Any, stage: str) -> None:
        self.config = BalanceEventsConfig.for_stage(stage)
        self.service = bootstrap.build_balance_event_service(self.config, dynamodb=dynamodb, events=events)
        self.recorder = recorder
        self.events = EntryCounter(events)
        self.names = ResourceNames(stage)
        self.stream_arn = f"arn:aws:dynamodb:us-east-1:000000000000:table/{self.names.credits_table}/stream/bench"
        self.sent = 0

    def run(self, records: list[dict]) -> list[FunctionRun]:
        """One invocation per record, in order (at low traffic each change is a batch of its own; a batching
        window or a busy shard puts several in one invocation)."""
        from reconciler.handlers import balance_stream

        runs = []
        for record in lambda_records(records, self.stream_arn, self.sent):
            self.sent += 1
            self.recorder.reset()
            self.events.reset()
            output = io.StringIO()
            with mock.patch.object(bootstrap, "balance_event_service", return_value=self.service), handler_output_to(output):
                answer = balance_stream.handler({"Records": [record]}, LocalContext(self.names.balance_events_function))
            lines = [line for line in output.getvalue().splitlines() if line.strip()]
            emf = [line for line in lines if line.startswith('{"_aws"')]
            runs.append(
                FunctionRun(
                    dynamodb=self.recorder.snapshot(),
                    units=(self.recorder.rru, self.recorder.wru),
                    events=self.events.snapshot(),
                    entries=self.events.entries,
                    log_bytes=sum(len(line.encode()) + 1 for line in lines if line not in emf),
                    emf_bytes=sum(len(line.encode()) + 1 for line in emf),
                    failed=len((answer or {}).get("batchItemFailures", [])),
                )
            )
        self.recorder.reset()
        return runs
