"""Logs and metrics of the v1 runbook: the function's log group and the numbers its alarms watch."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from reconciler.contract import METRICS_NAMESPACE, SERVICE_DIMENSION, STAGE_DIMENSION, Metric, ResourceNames
from reconciler.ops.operator_ports import LogsAndMetrics, MetricQuery

# Powertools writes JSON with "level":"ERROR"; Lambda itself reports timeouts and crashes in plain text.
ERROR_PATTERN = '?ERROR ?"Task timed out" ?Traceback'


def runbook_metrics(names: ResourceNames) -> list[MetricQuery]:
    """The v1 runbook's queries: the credit adjustments (every change to the books; its rate alarm) and the function's errors."""
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


@dataclass
class Telemetry:
    names: ResourceNames
    source: LogsAndMetrics

    @property
    def log_group(self) -> str:
        return self.names.log_group

    def log_events(self, since: datetime, until: datetime | None = None, errors_only: bool = False) -> Iterator[dict]:
        """The function's log events from `since` (only errors: ERROR level, timeouts, tracebacks)."""
        return self.source.log_events(self.log_group, since, until, ERROR_PATTERN if errors_only else None)

    def runbook_series(self, since: datetime, until: datetime, period: timedelta) -> list[tuple[MetricQuery, list[dict]]]:
        """Each of the runbook's metrics with its data points in the window."""
        return [(query, self.source.metric_series(query, since, until, period)) for query in runbook_metrics(self.names)]
