"""The dead-letter queue, as the reconciler writes to it: the original event plus why it was refused."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from reconciler import json_text
from reconciler.contract import JSON_STRING_ENCODING, DeadLetterAttribute


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


# SQS's rules for SendMessage (botocore's sqs model, SendMessage.MessageBody; AWS SQS developer guide,
# "Amazon SQS message attributes"): bodies and string attribute values may hold only #x9, #xA, #xD,
# #x20-#xD7FF, #xE000-#xFFFD and #x10000-#x10FFFF; a string attribute value may not be empty; body and
# attributes together fit the queue's MaximumMessageSize, which may be up to 1 MiB (botocore's sqs model,
# CreateQueue.Attributes: "from 1,024 bytes (1 KiB) to 1,048,576 bytes (1 MiB)"). The dead-letter queue is
# deployed with that maximum (infra/constructs/dead_letter_queue.py): an EventBridge event is at most 256 KB,
# and only the few characters SQS refuses are escaped, so every event EventBridge accepts fits whole.
MAX_MESSAGE_BYTES = 1024 * 1024
MAX_ATTRIBUTE_VALUE_CHARS = 1024


def sqs_allowed(char: str) -> bool:
    code = ord(char)
    return code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF


def is_sqs_text(text: str) -> bool:
    return all(sqs_allowed(char) for char in text)


def escape_for_sqs(text: str) -> str:
    """Printable stand-ins for what SQS refuses, as JSON-style escapes (\u0007), the rest unchanged."""
    return "".join(char if sqs_allowed(char) else f"\\u{ord(char):04x}" for char in text)


def encode_body(original: Any) -> tuple[str, dict[str, str]]:
    """The event as it arrived, in a form SQS accepts, with the attributes that say how to read it back.

    A mapping is JSON, json.loads restores it exactly. Text that SQS accepts stays text, byte for byte; text that
    it would refuse (control characters, lone surrogates) becomes a JSON string literal, marked
    bodyEncoding=json-string. Either way only what SQS refuses is escaped (json.dumps escapes control characters
    itself; lone surrogates, U+FFFE and U+FFFF become \\uXXXX escapes, which JSON reads back): escaping every
    non-ASCII character would triple a body of CJK text and cut a large event.
    """
    if isinstance(original, bytes):
        original = original.decode("utf-8", errors="surrogateescape")
    if not isinstance(original, str):
        return escape_for_sqs(json_text.dumps(original, default=_json_default, separators=(",", ":"), ensure_ascii=False)), {}
    if original and is_sqs_text(original):
        return original, {}
    return escape_for_sqs(json.dumps(original, ensure_ascii=False)), {DeadLetterAttribute.BODY_ENCODING: JSON_STRING_ENCODING}


def attribute_value(value: str) -> str:
    """A string attribute SQS accepts: escaped, cut to a readable length, never empty."""
    value = escape_for_sqs(value)[:MAX_ATTRIBUTE_VALUE_CHARS]
    return value or "(empty)"


class SqsDeadLetters:
    def __init__(self, client: Any, queue_url: str, stage: str) -> None:
        self._client = client
        self._queue_url = queue_url
        self._stage = stage

    def send(self, original: Any, *, error_type: str, field: str, reason: str, event_id: str | None = None) -> str:
        body, encoding = encode_body(original)
        attributes: Mapping[str, str] = {
            DeadLetterAttribute.ERROR_TYPE: error_type,
            DeadLetterAttribute.FIELD: field,
            DeadLetterAttribute.REASON: reason,
            DeadLetterAttribute.STAGE: self._stage,
            **({DeadLetterAttribute.EVENT_ID: event_id} if event_id else {}),
            **encoding,
        }
        message_attributes = {name: {"DataType": "String", "StringValue": attribute_value(value)} for name, value in attributes.items()}
        body = _within_budget(body, message_attributes)
        response = self._client.send_message(QueueUrl=self._queue_url, MessageBody=body, MessageAttributes=message_attributes)
        return response["MessageId"]


def _within_budget(body: str, attributes: dict[str, dict[str, str]]) -> str:
    """The body, cut if escaping made body and attributes outgrow the budget; the cut is recorded, never silent."""
    attribute_bytes = sum(len(name.encode()) + len(value["DataType"]) + len(value["StringValue"].encode()) for name, value in attributes.items())
    budget = MAX_MESSAGE_BYTES - attribute_bytes - 200  # room for the truncation attribute itself
    encoded = body.encode("utf-8")
    if len(encoded) <= budget:
        return body
    attributes[DeadLetterAttribute.BODY_TRUNCATED] = {"DataType": "String", "StringValue": f"first {budget} of {len(encoded)} bytes kept"}
    return encoded[:budget].decode("utf-8", errors="ignore")
