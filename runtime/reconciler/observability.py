"""The one place that creates the logger and metrics every handler shares.

Every metric carries the dimensions `service` and `stage` (the stage from the STAGE environment variable the
infrastructure sets), so stages sharing an account and region never mix their series; alarms and the dashboard
read that series. Each EMF record also declares the empty dimension set, so the v1 runbook's dimensionless
`aws cloudwatch get-metric-statistics --namespace Reconciler --metric-name Adjustments` keeps working: one
record, one value, two series (see docs/metrics.md, including the trade-off in an account shared by stages).

Tracing is Lambda's own (active tracing where the stage traces: the invocation's segment, with its initialization
and overhead), without any SDK in the function: the X-Ray SDK is in maintenance and loses AWS support on
2027-02-25, and it cost the tracing stages' cold start about 100 ms (docs/tracing.md). `tracing_enabled()` still
says where a stage traces: there, each log line carries the trace id, so a trace leads to its logs.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider
from aws_lambda_powertools.shared import constants as powertools_env
from aws_lambda_powertools.shared.functions import strtobool

from reconciler import json_text
from reconciler.contract import ENV_STAGE, METRICS_NAMESPACE, SERVICE_NAME, STAGE_DIMENSION, writes_dimensionless


class StageMetricsProvider(AmazonCloudWatchEMFProvider):
    """Powertools' EMF provider, with the stage as a dimension and the dimensionless set added on output.

    Both are read when a record is serialized, not at import: the Lambda environment is there from the start,
    but tests and the local stack set STAGE after this module is imported.
    """

    def serialize_metric_set(self, metrics: dict | None = None, dimensions: dict | None = None, metadata: dict | None = None) -> Any:
        stage = os.environ.get(ENV_STAGE, "").strip()
        if dimensions is None:
            if self.service:
                self.dimension_set.setdefault("service", self.service)
            if stage:
                self.dimension_set[STAGE_DIMENSION] = stage  # a plain write: the value may change between tests
        record = super().serialize_metric_set(metrics=metrics, dimensions=dimensions, metadata=metadata)
        if writes_dimensionless(os.environ):
            for definition in record["_aws"]["CloudWatchMetrics"]:
                if [] not in definition["Dimensions"]:
                    definition["Dimensions"].append([])
        return record


def _metrics() -> Metrics:
    # The same shared class-level stores Metrics() would use, so every Metrics instance sees one metric set.
    provider = StageMetricsProvider(
        namespace=METRICS_NAMESPACE,
        service=SERVICE_NAME,
        metric_set=Metrics._metrics,
        dimension_set=Metrics._dimensions,
        metadata_set=Metrics._metadata,
        default_dimensions=Metrics._default_dimensions,
    )
    return Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME, provider=provider)


def tracing_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this function's stage traces (POWERTOOLS_TRACE_DISABLED, which the infrastructure writes from
    StageConfig.tracing), by Powertools' rule (Tracer._is_tracer_disabled in 3.37): tracing is on in Lambda unless
    POWERTOOLS_TRACE_DISABLED is true, and off outside Lambda and under SAM local or Chalice. A test holds the
    two equal."""
    if strtobool(environ.get(powertools_env.TRACER_DISABLED_ENV, "false")):
        return False
    in_lambda = bool(environ.get(powertools_env.LAMBDA_TASK_ROOT_ENV))
    return in_lambda and not (environ.get(powertools_env.SAM_LOCAL_ENV) or environ.get(powertools_env.CHALICE_LOCAL_ENV))


class CompactFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON lines without what every line of a function's log group would repeat: the service and the
    function's name, memory and ARN (the log group says them), the code location, a timestamp (CloudWatch stamps
    every line it ingests) and, where tracing is off, an X-Ray trace id that leads to no trace. What identifies a
    line stays: the level, the message, the request id and the event id (lambda_context) and its own fields."""

    @staticmethod
    def _build_default_keys() -> dict[str, str]:
        return {"level": "%(levelname)s"}

    def _get_latest_trace_id(self) -> str | None:
        return super()._get_latest_trace_id() if tracing_enabled() else None


# ASCII JSON: an id or reason holding a lone surrogate (refused, but logged with its reason) cannot be
# written to a UTF-8 stream, and the log line would be lost; escaped, every line reaches CloudWatch.
_serializer = partial(json_text.dumps, separators=(",", ":"), default=str, ensure_ascii=True)
logger = Logger(service=SERVICE_NAME, logger_formatter=CompactFormatter(json_serializer=_serializer, log_record_order=["level", "message"]))
logger.remove_keys(["service", "sampling_rate"])
metrics = _metrics()
_cold_start = True


def lambda_context(correlation_id: Callable[[Any], Any] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """In place of Powertools' inject_lambda_context, which writes the function's name, memory and ARN on every
    line: each invocation starts from no keys and adds its request id (the key to Lambda's START, END and REPORT
    lines), `cold_start` on a container's first invocation only, and `correlation_id(event)` if given."""

    def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def wrapper(event: Any, context: Any) -> Any:
            global _cold_start
            formatter = logger.registered_formatter
            formatter.clear_state()  # the formatter's own: Logger.clear_state would put `service` back
            formatter.thread_safe_clear_keys()
            keys: dict[str, Any] = {"function_request_id": getattr(context, "aws_request_id", None)}
            if _cold_start:
                keys["cold_start"], _cold_start = True, False
            if correlation_id is not None:
                keys["correlation_id"] = correlation_id(event)
            logger.append_keys(**keys)
            return handler(event, context)

        return wrapper

    return decorate


COUNT = MetricUnit.Count
