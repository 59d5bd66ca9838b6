"""The operators' AWS adapters: what the ports of ops/operator_ports.py ask of SQS, CloudWatch, Lambda, DynamoDB backups, the
EventBridge archive and CloudWatch Logs. The composition root (ops/target.py) builds them with its clients; no use
case imports this module. (The books' reads and repairs are repository/dynamodb_operations.py.)"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from reconciler.contract import METRICS_NAMESPACE, SERVICE_DIMENSION, STAGE_DIMENSION, Metric
from reconciler.ops.operator_ports import Alarm, AlarmChange, FunctionState, InvokeResult, MetricQuery
from reconciler.service.event_settlement import REJECTED

# Lambda's default when no event invoke config exists.
DEFAULT_MAX_EVENT_AGE_SECONDS = 6 * 3600


class SqsQueue:
    """The dead-letter queue, read and replayed by operators."""

    def __init__(self, client: Any, url: str) -> None:
        self._client = client
        self.url = url

    def receive(self, max_messages: int, visibility_seconds: int) -> list[dict]:
        return self._client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=max_messages,
            VisibilityTimeout=visibility_seconds,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        ).get("Messages", [])

    def delete(self, receipt_handle: str) -> None:
        self._client.delete_message(QueueUrl=self.url, ReceiptHandle=receipt_handle)

    def release(self, receipt_handle: str) -> None:
        self._client.change_message_visibility(QueueUrl=self.url, ReceiptHandle=receipt_handle, VisibilityTimeout=0)

    def depth(self) -> dict[str, int]:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]
        attributes = self._client.get_queue_attributes(QueueUrl=self.url, AttributeNames=names)["Attributes"]
        return {name: int(attributes.get(name, 0)) for name in names}

    def purge(self) -> None:
        self._client.purge_queue(QueueUrl=self.url)


class LambdaInvoker:
    """Synchronous invoke of the deployed function; a FunctionError or a rejection is a failure.

    A rejected event has been dead-lettered again by the function (deadLetterId in its result); the
    replay deletes the old copy only because that new one is in place.
    """

    def __init__(self, client: Any, function_name: str) -> None:
        self.client = client
        self.function_name = function_name

    def __call__(self, event: dict) -> InvokeResult:
        try:
            response = self.client.invoke(FunctionName=self.function_name, InvocationType="RequestResponse", Payload=json.dumps(event))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TooManyRequestsException":
                raise
            # Throttled (paused, or at its concurrency): this message stays in the DLQ for a later replay.
            return InvokeResult(False, f"throttled: {error.response.get('Error', {}).get('Message', '')}".rstrip(": "))
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            message = payload.get("errorMessage") if isinstance(payload, dict) else payload
            return InvokeResult(False, f"function error: {message}")
        if not isinstance(payload, dict):
            return InvokeResult(False, f"unexpected function result: {payload!r}")
        if payload.get("outcome") == REJECTED:
            return InvokeResult(False, rejection(payload), replaced_by=payload.get("deadLetterId"))
        return InvokeResult(True, str(payload.get("outcome")))


def rejection(summary: dict) -> str:
    """How a replay reports an event the function refused (its outcome's field and reason)."""
    return f"rejected: {summary.get('field')}: {summary.get('reason')}"


class CloudWatchAlarms:
    def __init__(self, cloudwatch: Any) -> None:
        self._cloudwatch = cloudwatch

    def with_prefix(self, prefix: str) -> list[Alarm]:
        alarms = []
        for page in self._cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=prefix, AlarmTypes=["MetricAlarm", "CompositeAlarm"]):
            for kind in ("MetricAlarms", "CompositeAlarms"):
                alarms += [Alarm(a["AlarmName"], a.get("StateValue"), a.get("ActionsEnabled"), a.get("StateReason")) for a in page.get(kind, [])]
        return alarms

    def set_actions(self, alarm_names: list[str], enabled: bool) -> None:
        for start in range(0, len(alarm_names), 100):  # the API's limit per call
            batch = alarm_names[start : start + 100]
            if enabled:
                self._cloudwatch.enable_alarm_actions(AlarmNames=batch)
            else:
                self._cloudwatch.disable_alarm_actions(AlarmNames=batch)

    def history(self, since: datetime, until: datetime) -> Iterator[AlarmChange]:
        """State changes and action/configuration updates of every alarm, newest first (page by page, as read)."""
        request: dict = {"StartDate": since, "EndDate": until, "ScanBy": "TimestampDescending"}
        for page in self._cloudwatch.get_paginator("describe_alarm_history").paginate(**request):
            for item in page.get("AlarmHistoryItems", []):
                yield AlarmChange(item.get("Timestamp"), item.get("AlarmName", ""), item.get("HistoryItemType"), item.get("HistorySummary"))


class LambdaFunctions:
    def __init__(self, lambda_client: Any) -> None:
        self._lambda = lambda_client

    def reserved_concurrency(self, function_name: str) -> int | None:
        concurrency = self._lambda.get_function_concurrency(FunctionName=function_name).get("ReservedConcurrentExecutions")
        return None if concurrency is None else int(concurrency)

    def state(self, function_name: str) -> FunctionState:
        concurrency = self.reserved_concurrency(function_name)
        try:
            config = self._lambda.get_function_event_invoke_config(FunctionName=function_name)
            age = int(config.get("MaximumEventAgeInSeconds") or DEFAULT_MAX_EVENT_AGE_SECONDS)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            age = DEFAULT_MAX_EVENT_AGE_SECONDS
        return FunctionState(function_name, concurrency, age)

    def set_concurrency(self, function_name: str, concurrency: int) -> None:
        self._lambda.put_function_concurrency(FunctionName=function_name, ReservedConcurrentExecutions=concurrency)


class DynamoDBBackups:
    def __init__(self, dynamodb: Any) -> None:
        self._dynamodb = dynamodb

    def create(self, table: str, backup_name: str) -> tuple[str, str]:
        details = self._dynamodb.create_backup(TableName=table, BackupName=backup_name)["BackupDetails"]
        return details["BackupName"], details["BackupArn"]


class EventBridgeArchive:
    def __init__(self, events: Any) -> None:
        self._events = events

    def arns(self, archive_name: str, rule_name: str) -> tuple[str, str, str]:
        archive = self._events.describe_archive(ArchiveName=archive_name)
        rule = self._events.describe_rule(Name=rule_name)
        return archive["ArchiveArn"], archive["EventSourceArn"], rule["Arn"]

    def start_replay(self, request: dict[str, Any]) -> None:
        self._events.start_replay(**request)


class CloudWatchTelemetry:
    """The function's log group (CloudWatch Logs) and the metrics the runbook watches (CloudWatch)."""

    def __init__(self, logs: Any, cloudwatch: Any) -> None:
        self._logs = logs
        self._cloudwatch = cloudwatch

    def log_events(self, group: str, since: datetime, until: datetime | None, pattern: str | None) -> Iterator[dict]:
        request: dict[str, Any] = {"logGroupName": group, "startTime": int(since.timestamp() * 1000), "interleaved": True}
        if until is not None:
            request["endTime"] = int(until.timestamp() * 1000)
        if pattern is not None:
            request["filterPattern"] = pattern
        for page in self._logs.get_paginator("filter_log_events").paginate(**request):
            for event in page.get("events", []):
                yield {
                    "timestamp": event["timestamp"],
                    "stream": event.get("logStreamName"),
                    "message": event.get("message", "").rstrip("\n"),
                    "eventId": event.get("eventId"),
                }

    def metric_series(self, query: MetricQuery, since: datetime, until: datetime, period: timedelta) -> list[dict]:
        response = self._cloudwatch.get_metric_statistics(
            Namespace=query.namespace,
            MetricName=query.name,
            Dimensions=list(query.dimensions),
            StartTime=since,
            EndTime=until,
            Period=max(60, int(period.total_seconds()) // 60 * 60),
            Statistics=[query.statistic],
        )
        points = sorted(response.get("Datapoints", []), key=lambda point: point["Timestamp"])
        return [{"timestamp": point["Timestamp"], "value": point.get(query.statistic)} for point in points]


class CloudWatchAdjustmentCount:
    """Operators' changes to the books counted in the function's Adjustments metric: the same series its EMF records
    write (observability.py), the stage's (which the rate alarm reads) and, where the stage's function writes it, the
    dimensionless one of the v1 runbook. PutMetricData, whose only condition key is the namespace (Reconciler)."""

    def __init__(self, cloudwatch: Any, stage: str, dimensionless: Callable[[], bool], note: Callable[[str], None]) -> None:
        self._cloudwatch = cloudwatch
        self._stage = stage
        self._dimensionless = dimensionless
        self._note = note

    def count(self, adjustments: int) -> None:
        if adjustments <= 0:
            return
        datum: dict[str, Any] = {"MetricName": Metric.ADJUSTMENTS, "Value": float(adjustments), "Unit": "Count"}
        try:
            data = [{**datum, "Dimensions": [SERVICE_DIMENSION, {"Name": STAGE_DIMENSION, "Value": self._stage}]}]
            if self._dimensionless():
                data.append(datum)
            self._cloudwatch.put_metric_data(Namespace=METRICS_NAMESPACE, MetricData=data)
        except (ClientError, BotoCoreError) as error:
            self._note(f"the change is committed, but the Adjustments metric was not counted ({error})")
