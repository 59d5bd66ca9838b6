"""Shared pieces of the benchmarks: request counting, bulk loading, events, statistics, machine description."""

from __future__ import annotations

import json
import math
import platform
import statistics
import sys
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

STAGE = "dev"


# --- request counting at the botocore level -------------------------------------------------


class RequestCounter:
    """Counts API calls (operation names) a botocore client makes, via its event system.

    `before-call` fires once per API call (what our code asks for); `before-send` fires once per HTTP
    attempt, so botocore's own retries of throttling/5xx would show up as attempts > calls.
    """

    def __init__(self, *clients: Any) -> None:
        self.calls: Counter[str] = Counter()
        self.attempts = 0
        for client in clients:
            self.attach(client)

    def attach(self, client: Any) -> None:
        service = client.meta.service_model.service_name
        client.meta.events.register(f"before-call.{service}", self._on_call)
        client.meta.events.register(f"before-send.{service}", self._on_send)

    def _on_call(self, model: Any = None, **_: Any) -> None:
        self.calls[model.name] += 1

    def _on_send(self, **_: Any) -> None:
        self.attempts += 1

    def reset(self) -> None:
        self.calls.clear()
        self.attempts = 0

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def snapshot(self) -> dict[str, int]:
        return dict(sorted(self.calls.items()))


# --- tables -----------------------------------------------------------------------------------


def batch_put(dynamodb: Any, table: str, items: Iterable[dict[str, dict]]) -> int:
    """Loads items with BatchWriteItem (25 a request); returns the number of requests made."""
    requests = 0
    batch: list[dict] = []

    def flush() -> None:
        nonlocal requests, batch
        pending = {table: [{"PutRequest": {"Item": item}} for item in batch]}
        while pending:
            requests += 1
            pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        batch = []

    for item in items:
        batch.append(item)
        if len(batch) == 25:
            flush()
    if batch:
        flush()
    return requests


# --- events ---------------------------------------------------------------------------------


def envelope(event_id: str, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """An EventBridge envelope as Lambda receives it."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": "video.generation",
        "account": "123456789012",
        "time": "2025-06-21T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def rendered(event_id: str, job_id: str, user_id: str, seconds: float = 10, model: str = "standard-v1") -> dict[str, Any]:
    return envelope(event_id, "video.rendered", {"jobId": job_id, "userId": user_id, "seconds": seconds, "model": model})


def failed(event_id: str, job_id: str, user_id: str, reason: str = "encoder crashed") -> dict[str, Any]:
    return envelope(event_id, "video.failed", {"jobId": job_id, "userId": user_id, "reason": reason})


# --- statistics and item sizes --------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def attribute_size(value: dict[str, Any]) -> int:
    """Approximate DynamoDB size of one attribute value in the wire format (AWS's published rules)."""
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        digits = len(raw.lstrip("-").replace(".", "").lstrip("0")) or 1
        return 1 + math.ceil(digits / 2) + 1
    if kind == "BOOL" or kind == "NULL":
        return 1
    if kind in ("SS", "NS"):
        return sum(attribute_size({kind[0]: member}) for member in raw)
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_size(v) + 1 for k, v in raw.items())
    if kind == "L":
        return 3 + sum(attribute_size(v) + 1 for v in raw)
    return len(json.dumps(raw))


def item_size(item: dict[str, dict]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


# --- where it ran ---------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/cpuinfo") as handle:
            cores = sum(1 for line in handle if line.startswith("processor"))
    except OSError:
        cores = 0
    import aws_lambda_powertools
    import boto3
    import botocore
    import moto

    return {
        "cpu": f"{cpu} ({cores} cores visible, shared with other jobs)",
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "platform": platform.platform(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
        "moto": moto.__version__,
        "powertools": aws_lambda_powertools.__version__ if hasattr(aws_lambda_powertools, "__version__") else "?",
    }


def as_decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))
