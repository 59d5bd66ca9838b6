"""What CloudWatch does with a Lambda's stdout, locally: log lines into the function's log group, and the
Embedded Metric Format lines Powertools prints into metrics. So `reconciler logs tail` and `reconciler
metrics` show the local stack's activity, as they would a deployed stage's."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def emf_metric_data(line: str) -> tuple[str, list[dict]] | None:
    """(namespace, MetricData) of one EMF log line (one datum per metric, value and dimension set), or None."""
    try:
        document = json.loads(line)
    except ValueError:
        return None
    meta = document.get("_aws") if isinstance(document, dict) else None
    if not isinstance(meta, dict):
        return None
    moment = datetime.fromtimestamp(meta.get("Timestamp", time.time() * 1000) / 1000, UTC)
    for directive in meta.get("CloudWatchMetrics", []):
        data = []
        for dimension_names in directive.get("Dimensions") or [[]]:
            dimensions = [{"Name": name, "Value": str(document[name])} for name in dimension_names if name in document]
            for metric in directive.get("Metrics", []):
                values = document.get(metric["Name"])
                for value in values if isinstance(values, list) else [values]:
                    if isinstance(value, (int, float)):
                        data.append(
                            {
                                "MetricName": metric["Name"],
                                "Dimensions": dimensions,
                                "Value": float(value),
                                "Unit": metric.get("Unit", "None"),
                                "Timestamp": moment,
                            }
                        )
        if data:
            return directive.get("Namespace", ""), data
    return None


@dataclass
class CloudWatchSink:
    logs: Any
    cloudwatch: Any
    log_group: str
    stream: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y/%m/%d/[$LATEST]local"))
    _stream_ready: bool = False

    def ship(self, output: str) -> None:
        lines = [line for line in output.splitlines() if line.strip()]
        if not lines or not self.log_group:
            return
        if not self._stream_ready:
            self.logs.create_log_stream(logGroupName=self.log_group, logStreamName=self.stream)
            self._stream_ready = True
        now = int(time.time() * 1000)
        self.logs.put_log_events(
            logGroupName=self.log_group, logStreamName=self.stream, logEvents=[{"timestamp": now, "message": line} for line in lines]
        )
        for line in lines:
            metrics = emf_metric_data(line)
            if metrics:
                namespace, data = metrics
                self.cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)


def lambda_metrics(function_name: str, invocations: int, errors: int) -> list[dict]:
    """AWS/Lambda's own Invocations and Errors for a batch of local invocations."""
    moment = datetime.now(UTC)
    dimensions = [{"Name": "FunctionName", "Value": function_name}]
    return [
        {"MetricName": name, "Dimensions": dimensions, "Value": float(value), "Unit": "Count", "Timestamp": moment}
        for name, value in (("Invocations", invocations), ("Errors", errors))
        if value
    ]
