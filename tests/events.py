"""Events and invocations as Lambda hands them to the handlers: EventBridge envelopes of the pipeline's events, and
a Lambda context. Plain data, for every tier."""

from __future__ import annotations

import itertools
from typing import Any


def envelope(detail_type: str, detail: Any, event_id: str = "evt-1", source: str = "video.generation") -> dict:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": "2026-11-28T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def rendered(job_id: str, user_id: str, seconds: Any = 5, model: str = "test", event_id: str | None = None) -> dict:
    return envelope("video.rendered", {"jobId": job_id, "userId": user_id, "seconds": seconds, "model": model}, event_id or f"evt-r-{job_id}")


def failed(job_id: str, user_id: str, reason: str | None = "boom", event_id: str | None = None) -> dict:
    detail = {"jobId": job_id, "userId": user_id, **({"reason": reason} if reason else {})}
    return envelope("video.failed", detail, event_id or f"evt-f-{job_id}")


_request_numbers = itertools.count(1)


class LambdaContext:
    function_name = "cc-agent-reconciler-dev"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cc-agent-reconciler-dev"

    def __init__(self, aws_request_id: str | None = None) -> None:
        # Each invocation has its own id; Lambda reuses it only when it retries that invocation.
        self.aws_request_id = aws_request_id or f"request-{next(_request_numbers)}"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000
