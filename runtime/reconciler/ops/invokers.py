"""The two ways replay reaches the reconciler: the deployed function, or its code in this process."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from reconciler.config import RuntimeConfig
from reconciler.ops.dead_letter_replay import InvokeResult
from reconciler.bootstrap import build_processor
from reconciler.service.event_settlement import REJECTED, EventProcessor


def _rejection(summary: dict) -> str:
    return f"rejected: {summary.get('field')}: {summary.get('reason')}"


@dataclass
class LambdaInvoker:
    """Synchronous invoke of the deployed function; a FunctionError or a rejection is a failure.

    A rejected event has been dead-lettered again by the function (deadLetterId in its result); the
    replay deletes the old copy only because that new one is in place.
    """

    client: Any
    function_name: str

    def __call__(self, event: dict) -> InvokeResult:
        response = self.client.invoke(FunctionName=self.function_name, InvocationType="RequestResponse", Payload=json.dumps(event))
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            message = payload.get("errorMessage") if isinstance(payload, dict) else payload
            return InvokeResult(False, f"function error: {message}")
        if not isinstance(payload, dict):
            return InvokeResult(False, f"unexpected function result: {payload!r}")
        if payload.get("outcome") == REJECTED:
            return InvokeResult(False, _rejection(payload), replaced_by=payload.get("deadLetterId"))
        return InvokeResult(True, str(payload.get("outcome")))


@dataclass
class RecordingDeadLetters:
    """A dead-letter sink that keeps what it is given: a replay must not add copies to the queue it drains."""

    sent: list[dict] = field(default_factory=list)

    def send(self, original: Any, *, error_type: str, field: str, reason: str, event_id: str | None = None) -> str:
        self.sent.append({"errorType": error_type, "field": field, "reason": reason, "eventId": event_id})
        return f"not-sent-{len(self.sent)}"


@dataclass
class InProcessInvoker:
    """The handler's own use case (EventProcessor), built as the container builds it, but with a
    recording dead-letter sink: a rejected event stays as the one copy already in the queue."""

    processor: EventProcessor

    @classmethod
    def build(cls, dynamodb: Any, config: RuntimeConfig) -> "InProcessInvoker":
        return cls(build_processor(config, dynamodb=dynamodb, dead_letters=RecordingDeadLetters()))

    def __call__(self, event: dict) -> InvokeResult:
        try:
            outcome = self.processor.process(event)
        except Exception as error:  # noqa: BLE001 - what the function would report as a FunctionError
            return InvokeResult(False, f"function error: {type(error).__name__}: {error}")
        if outcome.kind == REJECTED:
            return InvokeResult(False, _rejection(outcome.summary()))
        return InvokeResult(True, outcome.kind)
