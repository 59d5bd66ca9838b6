"""Logs and metrics of the v1 runbook: the function's log group and the numbers its alarms watch."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from reconciler.contract import METRICS_NAMESPACE, SERVICE_DIMENSION, STAGE_DIMENSION, Metric, ResourceNames

# Powertools writes JSON with "level":"ERROR"; Lambda itself reports timeouts and crashes in plain text.
ERROR_PATTERN = '?ERROR ?"Task timed out" ?Traceback'


def log_events(logs: Any, group: str, since: datetime, until: datetime | None, errors_only: bool) -> Iterator[dict]:
    request: dict[str, Any] = {"logGroupName": group, "startTime": int(since.timestamp() * 1000), "interleaved": True}
    if until is not None:
        request["endTime"] = int(until.timestamp() * 1000)
    if errors_only:
        request["filterPattern"] = ERROR_PATTERN
    for page in logs.get_paginator("filter_log_events").paginate(**request):
        for event in page.get("events", []):
            yield {
                "timestamp": event["timestamp"],
                "stream": event.get("logStreamName"),
                "message": event.get("message", "").rstrip("\n"),
                "eventId": event.get("eventId"),
            }


@dataclass(frozen=True)
class MetricQuery:
    label: str
    namespace: str
    name: str
    dimensions: tuple[dict, ...]
    statistic: str = "Sum"


def runbook_metrics(names: ResourceNames) -> list[MetricQuery]:
    """The v1 runbook's queries: manual adjustments (its rate alarm) and the function's errors."""
    function = ({"Name": "FunctionName", "Value": names.function},)
    # The stage's own series, as the alarms read it (service and stage dimensions; observability.py).
    series = (SERVICE_DIMENSION, {"Name": STAGE_DIMENSION, "Value": names.stage})
    return [
        MetricQuery(Metric.ADJUSTMENTS, METRICS_NAMESPACE, Metric.ADJUSTMENTS, series),
        MetricQuery("Lambda Errors", "AWS/Lambda", "Errors", function),
        MetricQuery("Lambda Invocations", "AWS/Lambda", "Invocations", function),
        MetricQuery("Lambda Throttles", "AWS/Lambda", "Throttles", function),
        MetricQuery(Metric.INVALID_EVENTS, METRICS_NAMESPACE, Metric.INVALID_EVENTS, series),
    ]


def metric_series(cloudwatch: Any, query: MetricQuery, since: datetime, until: datetime, period: timedelta) -> list[dict]:
    response = cloudwatch.get_metric_statistics(
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
