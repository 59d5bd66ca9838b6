"""The dead-letter queue, as the reconciler writes to it: the original event plus why it was refused."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Mapping


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def encode_body(original: Any) -> str:
    """The event as it arrived (text stays text, so a body that was not JSON is kept byte for byte)."""
    if isinstance(original, bytes):
        return original.decode("utf-8", errors="replace")
    if isinstance(original, str):
        return original
    return json.dumps(original, default=_json_default, separators=(",", ":"))


class SqsDeadLetters:
    def __init__(self, client: Any, queue_url: str, stage: str) -> None:
        self._client = client
        self._queue_url = queue_url
        self._stage = stage

    def send(self, original: Any, *, error_type: str, field: str, reason: str, event_id: str | None = None) -> str:
        attributes: Mapping[str, str] = {
            "errorType": error_type,
            "field": field,
            "reason": reason[:1024],
            "stage": self._stage,
            **({"eventId": event_id} if event_id else {}),
        }
        response = self._client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=encode_body(original),
            MessageAttributes={name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()},
        )
        return response["MessageId"]
