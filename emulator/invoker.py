"""Stands in for Lambda's asynchronous invocation: polls the rule's queue and calls the real handler.

Like Lambda's async config (retry attempts from the template, 2 by default), a failing event is tried
again, and after the last attempt its on-failure record goes to the DLQ in Lambda's envelope format.
"""

from __future__ import annotations

import json
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class LocalContext:
    """The parts of the Lambda context object that Powertools and the handler read."""

    def __init__(self, function_name: str, timeout_ms: int = 30_000) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._timeout_ms = timeout_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._timeout_ms


def on_failure_record(event: Any, function_name: str, error: BaseException, attempts: int) -> dict:
    """The record Lambda sends to an on-failure destination (requestPayload holds the event)."""
    return {
        "version": "1.0",
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": str(error), "errorType": type(error).__name__},
    }


@dataclass
class LocalInvoker:
    sqs: Any
    queue_url: str
    dlq_url: str
    function_name: str
    handler: Callable[[Any, Any], Any]
    max_attempts: int = 3  # 1 + the async config's 2 retries
    results: list[dict] = field(default_factory=list)

    def invoke(self, event: Any) -> Any:
        """One event through the handler with Lambda's async retry and on-failure semantics."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                result = self.handler(event, LocalContext(self.function_name))
                self.results.append({"event": event, "result": result})
                return result
            except Exception as error:  # noqa: BLE001 - any handler failure is Lambda's to retry
                if attempt == self.max_attempts:
                    record = on_failure_record(event, self.function_name, error, attempt)
                    self.sqs.send_message(QueueUrl=self.dlq_url, MessageBody=json.dumps(record, default=str))
                    self.results.append({"event": event, "error": "".join(traceback.format_exception_only(error)).strip()})
                    return None
        return None

    def deliver_batch(self, may_invoke: Callable[[], bool] = lambda: True) -> tuple[int, bool]:
        """Up to 10 queued events, each checked just before its invocation as Lambda throttles at invoke time:
        once `may_invoke()` says no (the function is paused), the rest go back to the queue, held.
        Returns (how many were invoked, whether delivery was held)."""
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        for index, message in enumerate(messages):
            if not may_invoke():
                for held in messages[index:]:
                    self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=held["ReceiptHandle"], VisibilityTimeout=0)
                return index, True
            self.invoke(json.loads(message["Body"]))
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages), False

    def drain(self, may_invoke: Callable[[], bool] = lambda: True, idle_polls: int = 2) -> int:
        """Delivers everything the rule routed to the queue while `may_invoke()` (a paused function's events stay
        queued, held as Lambda's async queue holds them); returns how many events it invoked."""
        delivered, idle = 0, 0
        while idle < idle_polls:
            invoked, held = self.deliver_batch(may_invoke)
            delivered += invoked
            if held:
                break
            idle = idle + 1 if not invoked else 0
        return delivered
