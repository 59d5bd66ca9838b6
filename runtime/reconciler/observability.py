"""The one place that creates the logger, metrics and tracer every handler shares."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "credit-reconciler"
NAMESPACE = "Reconciler"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)

COUNT = MetricUnit.Count
