"""The cluster: one in-process AWS (moto, made faithful by `emulator.fidelity`) for the process, with the
stage's tables, queues and functions' environment as the templates define them, emptied between runs.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import warnings
from typing import Any

from emulator.fidelity import IN_PROCESS_STREAMS
from reconciler.contract import METRICS_NAMESPACE

STAGE = "dev"
BALANCE_FUNCTION = f"cc-reconciler-balance-events-{STAGE}"
ALERT_CLOCK = 1_800_000_000.0  # seconds since the epoch: the alert grouping's time in every run


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

        from emulator import fidelity
        from emulator.resources import provision
        from emulator.stack import templates_for
        from emulator.stream_poller import balance_function_environment, mapping_settings

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
        # (user, updatedAt) of every Credits write the reconciler's own code made (simulator/balance_events.py: none
        # of them may be flagged as unexplained); the world's writes (simulator code) are not in it.
        self.reconciler_balance_writes: set[tuple[str, str]] = set()
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
        self._backoff_without_sleeping()
        config = RuntimeConfig.from_env()
        self.store = bootstrap.operations_store(config)  # the CLI's Adjuster needs its reads
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

    @staticmethod
    def _backoff_without_sleeping() -> None:
        """The function's retries (its settlements' and its timer scan's) back off without sleeping: one worker runs
        at a time, so a sleep changes no interleaving, only how long a run takes (a livelock, 50 attempts a try)."""
        from reconciler import bootstrap
        from reconciler.service.retrying import Backoff

        for service in (bootstrap.event_processor().settlement, bootstrap.timer_scan().settlement):
            service.backoff = lambda deadline: Backoff(deadline=deadline, sleep=lambda _: None)

    def close(self) -> None:
        self.stop_observing()
        self.mock.stop()
        for handler, stream in self.log_streams:
            handler.setStream(stream)

    def _note_balance_writes(self, operation: str, params: dict) -> None:
        credits = self.resources.tables["Credits"]
        updates = [op["Update"] for op in params.get("TransactItems", []) if "Update" in op] if operation == "TransactWriteItems" else [params]
        mine = [update for update in updates if update.get("TableName") == credits]
        if not mine or _innermost_writer() != "reconciler":
            return
        for update in mine:
            user, now = update["Key"]["userId"].get("S"), (update.get("ExpressionAttributeValues") or {}).get(":now", {}).get("S")
            if user and now:
                self.reconciler_balance_writes.add((user, now))

    def reset(self) -> None:
        """Empties the tables and queues (cheaper than creating them again for every run)."""
        self.reconciler_balance_writes.clear()
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
        self._forget_moto_instances()

    @staticmethod
    def _forget_moto_instances() -> None:
        """Drops moto's list of every model object it ever made (kept for its server dashboard only): each
        TransactWriteItems deep-copies its tables for a rollback, so 10,000 runs held tens of GB (4.5 GB per process
        after 1,000 runs) and each run got slower as the heap grew."""
        from moto.core.model_instances import reset_model_data

        reset_model_data()

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
        from emulator.fidelity import drop_key_only_inserts
        from emulator.stream_poller import lambda_record

        records: list[dict] = []
        while self.stream_iterator:
            response = self.streams.get_records(ShardIterator=self.stream_iterator, Limit=1000)
            records.extend(response.get("Records", []))
            self.stream_iterator = response.get("NextShardIterator")
            if len(response.get("Records", [])) < 1000:
                break
        return [lambda_record(record, self.stream_arn) for record in drop_key_only_inserts({"Records": records})["Records"]]

    def _on_result(self, service: str, operation: str, params: dict, response: Any) -> None:
        """Records what EventBridge accepted (the request reached it and its entry has an event id), and the Credits
        writes the reconciler's code made."""
        if service == "dynamodb" and operation in ("TransactWriteItems", "UpdateItem"):
            self._note_balance_writes(operation, params)
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


def _innermost_writer() -> str | None:
    """Whose code made the call on the stack: the innermost frame of the reconciler's package or of the simulator
    (a race the simulator injects runs inside a reconciler call, and is the simulator's)."""
    frame = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith("reconciler."):
            return "reconciler"
        if module.startswith("simulator.") and module != "simulator.harness":
            return "simulator"
        frame = frame.f_back  # type: ignore[assignment]
    return None
