"""Stands in for Lambda's DynamoDB Streams event source mapping: reads the Credits table's stream (moto emulates
DynamoDB Streams), applies the mapping's filters (as Lambda does: reconciler.domain.stream_filter), gathers each
shard's records into batches as Lambda does (its batch size, batching window and 6 MB payload: `batch_due`), hands
them to the real balance-events handler, honours its partial batch responses (retrying from the first failed
record) and, after the template's retry limit, describes the given-up batch in the failure queue as Lambda does.
Also lets the local stack show the events the function published: a rule on the balance-events source routes them
to a queue this module reads back."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from emulator.fidelity import drop_key_only_inserts
from emulator.invoker import LocalContext
from emulator.resources import resources_of
from reconciler.contract import ENV_BALANCE_EVENTS_TABLE, ENV_LEDGER_TABLE, ENV_OPS_TOPIC_ARN, ENV_USER_LEDGER_TABLE
from reconciler.domain.stream_filter import matches

CAPTURE_RULE = "cc-reconciler-local-balance-events"
CAPTURE_QUEUE = "cc-reconciler-local-balance-events"
# What the local stack uses when a template says nothing (the deployed mapping's own values are read from it).
DEFAULT_BATCH_SIZE = 100
DEFAULT_RETRY_ATTEMPTS = 50
DEFAULT_BATCHING_WINDOW_S = 0  # Lambda's default for streams (services-ddb-params: MaximumBatchingWindowInSeconds 0)
# "The payload size reaches 6 MB. You cannot modify this limit." (Lambda's synchronous invocation payload; AWS Lambda
# Developer Guide, "How Lambda processes records from stream and queue-based event sources", Batching behavior.)
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024


def balance_function_environment(templates: Mapping[str, dict], tables: Mapping[str, str], ops_topic_arn: str = "") -> dict[str, str]:
    """The balance-events function's environment as the template sets it, with table references (and the ops
    topic's, where given: its unexplained-change alerts) resolved locally."""
    for _, props in resources_of(templates, "AWS::Lambda::Function"):
        if str(props.get("FunctionName", "")).startswith("cc-reconciler-balance-events-"):
            variables = props.get("Environment", {}).get("Variables", {})
            env = {key: value for key, value in variables.items() if isinstance(value, str)}
            env.update(
                {
                    ENV_LEDGER_TABLE: tables["Ledger"],
                    ENV_USER_LEDGER_TABLE: tables["UserLedger"],
                    ENV_BALANCE_EVENTS_TABLE: tables["BalanceEvents"],
                    "POWERTOOLS_TRACE_DISABLED": "true",
                }
            )
            if ops_topic_arn:
                env[ENV_OPS_TOPIC_ARN] = ops_topic_arn
            return env
    raise RuntimeError("the templates have no balance-events function")


def mapping_settings(templates: Mapping[str, dict]) -> dict[str, int]:
    for _, props in resources_of(templates, "AWS::Lambda::EventSourceMapping"):
        return {
            "batch_size": int(props.get("BatchSize", DEFAULT_BATCH_SIZE)),
            "max_retry_attempts": int(props.get("MaximumRetryAttempts", DEFAULT_RETRY_ATTEMPTS)),
            "batching_window_s": int(props.get("MaximumBatchingWindowInSeconds", DEFAULT_BATCHING_WINDOW_S)),
        }
    raise RuntimeError("the templates have no event source mapping")


def mapping_filters(templates: Mapping[str, dict]) -> list[dict[str, Any]]:
    """The event source mapping's filter patterns as the template sets them (none: every record is delivered);
    `reconciler.domain.stream_filter.matches` applies them as Lambda does."""
    for _, props in resources_of(templates, "AWS::Lambda::EventSourceMapping"):
        return [json.loads(f["Pattern"]) for f in (props.get("FilterCriteria") or {}).get("Filters", [])]
    raise RuntimeError("the templates have no event source mapping")


def lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record in the shape Lambda hands to the function."""
    data = dict(record["dynamodb"])
    created = data.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        data["ApproximateCreationDateTime"] = int(created.timestamp())
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", "us-east-1"),
        "dynamodb": data,
        "eventSourceARN": stream_arn,
    }


@dataclass
class StreamPoller:
    """Lambda's event source mapping on one stream. Batching, per shard, as Lambda documents it for DynamoDB streams:
    it invokes the function when the batching window ends, the batch is full or its payload reaches 6 MB, and "the
    next batching window begins as soon as the previous function invocation completes" (AWS Lambda Developer Guide,
    "How Lambda processes records from stream and queue-based event sources", Batching behavior; "Using AWS Lambda
    with Amazon DynamoDB", Polling and batching streams). So a record that comes a window or more after the last
    invocation goes at the next poll, and a window of 0 sends whatever a poll read at once. Lambda polls a shard
    about four times a second; the caller chooses the cadence. `clock` (seconds) is injectable: the local stack runs
    on real time, tests and the bench on a simulated one."""

    streams: Any  # a dynamodbstreams client
    stream_arn: str
    handler: Callable[[Any, Any], Any]
    sqs: Any = None
    failure_queue_url: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    max_retry_attempts: int = DEFAULT_RETRY_ATTEMPTS
    function_name: str = "cc-reconciler-balance-events-local"
    filters: list[dict[str, Any]] = field(default_factory=list)  # the mapping's FilterCriteria (mapping_filters)
    batching_window_s: float = DEFAULT_BATCHING_WINDOW_S  # the mapping's MaximumBatchingWindowInSeconds
    clock: Callable[[], float] = time.monotonic
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    filtered: int = 0  # records the filters kept from the function
    _iterators: dict[str, str | None] = field(default_factory=dict)
    _pending: dict[str, list[dict]] = field(default_factory=dict)
    _attempts: dict[str, int] = field(default_factory=dict)
    _window_start: dict[str, float] = field(default_factory=dict)  # by shard: when its current window began
    _sizes: dict[str, int] = field(default_factory=dict)  # a pending record's bytes in the payload, by eventID
    invocations: int = 0
    given_up: list[dict] = field(default_factory=list)

    @property
    def pending(self) -> int:
        """Records read from the stream and not yet delivered, on every shard."""
        return sum(len(records) for records in self._pending.values())

    def poll(self, flush: bool = False) -> int:
        """Reads every shard once and delivers its batches that are due (`batch_due`; with `flush`, every batch, as
        if each window had ended), retrying failed records up to the limit; returns how many records were
        delivered successfully."""
        delivered = 0
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            pending = self._pending.setdefault(shard_id, [])
            pending.extend(self._read(shard_id))
            delivered += self._deliver(shard_id, pending, flush)
        return delivered

    def _read(self, shard_id: str) -> list[dict]:
        """The shard's new records that pass the filters, in the shape Lambda hands them over (the first read of a
        shard opens it, and its first window)."""
        if shard_id not in self._iterators:
            self._iterators[shard_id] = self.streams.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            self._window_start[shard_id] = self.clock()
        iterator = self._iterators[shard_id]
        if not iterator:
            return []
        response = drop_key_only_inserts(self.streams.get_records(ShardIterator=iterator, Limit=1000))
        records = [lambda_record(record, self.stream_arn) for record in response.get("Records", [])]
        kept = [record for record in records if matches(self.filters, record)]
        self.filtered += len(records) - len(kept)
        self._iterators[shard_id] = response.get("NextShardIterator")
        return kept

    def drain(self, idle_polls: int = 2) -> int:
        """Polls until nothing is pending and `idle_polls` polls found nothing new, ending every window at once (where
        Lambda is once the windows have passed); a record that keeps failing is retried until the retry limit gives
        it up."""
        delivered, idle = 0, 0
        while idle < idle_polls:
            count = self.poll(flush=True)
            idle = 0 if count or any(self._pending.values()) else idle + 1
            delivered += count
        return delivered

    def batch_due(self, shard_id: str, pending: list[dict]) -> bool:
        """Whether Lambda invokes the function with this shard's pending records now: a failed batch is retried at
        once (it was gathered already); otherwise when the batch is full, the window has ended, or the payload has
        reached its limit."""
        if not pending:
            return False
        if self._attempts.get(shard_id) or len(pending) >= self.batch_size:
            return True
        if self.clock() - self._window_start.get(shard_id, float("-inf")) >= self.batching_window_s:
            return True
        return sum(self._size(record) for record in pending) >= self.max_payload_bytes

    def _next_batch(self, pending: list[dict]) -> list[dict]:
        """The next batch: up to the batch size, fewer where one more record would take the payload past its limit
        (one record at least)."""
        batch: list[dict] = []
        size = 0
        for record in pending[: self.batch_size]:
            size += self._size(record)
            if batch and size > self.max_payload_bytes:
                break
            batch.append(record)
        return batch

    def _size(self, record: dict) -> int:
        key = record["eventID"]
        if key not in self._sizes:
            self._sizes[key] = len(json.dumps(record, default=str).encode())
        return self._sizes[key]

    def _take(self, pending: list[dict], count: int) -> list[dict]:
        """Removes the first `count` pending records (delivered or given up)."""
        taken = pending[:count]
        del pending[:count]
        for record in taken:
            self._sizes.pop(record["eventID"], None)
        return taken

    def _invoke(self, batch: list[dict]) -> set[str]:
        """One invocation; the sequence numbers it reported failed."""
        self.invocations += 1
        try:
            response = self.handler({"Records": batch}, LocalContext(self.function_name, 60_000)) or {}
            return {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        except Exception:  # noqa: BLE001 - a function error retries the whole batch, as Lambda does
            return {batch[0]["dynamodb"]["SequenceNumber"]}

    def _deliver(self, shard_id: str, pending: list[dict], flush: bool = False) -> int:
        """Delivers the shard's due batches; a failed attempt ends this poll (the next poll retries from the failed
        record), as Lambda retries a shard's batch before moving on."""
        delivered = 0
        while pending and (flush or self.batch_due(shard_id, pending)):
            batch = self._next_batch(pending)
            failures = self._invoke(batch)
            self._window_start[shard_id] = self.clock()  # the next window begins as this invocation completes
            if not failures:
                delivered += len(self._take(pending, len(batch)))
                self._attempts[shard_id] = 0
                continue
            # Lambda checkpoints at the lowest failed sequence number and retries from there.
            first = min([i for i, record in enumerate(batch) if record["dynamodb"]["SequenceNumber"] in failures] or [0])
            delivered += len(self._take(pending, first))
            self._attempts[shard_id] = 1 if first else self._attempts.get(shard_id, 0) + 1
            if self._attempts[shard_id] > self.max_retry_attempts:
                self._give_up(shard_id, self._take(pending, len(batch) - first), self._attempts[shard_id])
                self._attempts[shard_id] = 0
                continue
            return delivered
        return delivered

    def _give_up(self, shard_id: str, records: list[dict], attempts: int) -> None:
        """Lambda's on-failure record for a stream batch: where it was, not what it held."""
        description = {
            "requestContext": {
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
                "functionArn": f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}",
            },
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "streamArn": self.stream_arn,
                "batchSize": len(records),
                "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
            },
        }
        self.given_up.append(description)
        if self.sqs is not None and self.failure_queue_url:
            self.sqs.send_message(QueueUrl=self.failure_queue_url, MessageBody=json.dumps(description))


def capture_published_events(events: Any, sqs: Any, source: str) -> str:
    """A rule on the balance-events source to a queue, so the local stack can show what was published.
    Returns the queue URL."""
    queue_url = sqs.create_queue(QueueName=CAPTURE_QUEUE)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=CAPTURE_RULE, EventPattern=json.dumps({"source": [source]}), State="ENABLED")
    events.put_targets(Rule=CAPTURE_RULE, Targets=[{"Id": "local-capture", "Arn": queue_arn}])
    return queue_url


def read_captured(sqs: Any, queue_url: str) -> list[dict]:
    """Every event the capture queue holds (EventBridge envelopes), removed from it."""
    found: list[dict] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
