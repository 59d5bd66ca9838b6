"""Stands in for Lambda's asynchronous invocation: polls the rule's queue and calls the real handler.

Like Lambda's async config (retry attempts from the template, 2 by default), a failing event is tried
again, and after the last attempt its on-failure record goes to the DLQ in Lambda's envelope format. While the
function's reserved concurrency is 0 (`reconciler pause`), Lambda neither runs nor retries an event: it sends it to
the on-failure destination at once (AWS's change of 2021-08-30; AWS Compute Blog, "Introducing new asynchronous
invocation metrics for AWS Lambda": "Zero reserved concurrency: No retry"), and so does this invoker.
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


# What `dlq list` shows as the reason of an event a paused function never ran. AWS documents that such an event goes to
# the on-failure destination, not the record's `condition` for it: this text is the emulator's (docs/emulator-fidelity.md).
UNRUN_WHILE_PAUSED = "reserved concurrency 0 (paused): Lambda sent the event to the on-failure destination without running it"


def unrun_record(event: Any, function_name: str) -> dict:
    """The on-failure record of an event sent while the function's reserved concurrency is 0: never invoked."""
    return {
        "version": "1.0",
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}:$LATEST",
            "condition": UNRUN_WHILE_PAUSED,
            "approximateInvokeCount": 0,
        },
        "requestPayload": event,
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

    def deliver_batch(self, may_invoke: Callable[[], bool] = lambda: True) -> tuple[int, int]:
        """Up to 10 queued events, each checked just before its invocation as Lambda throttles at invoke time:
        while `may_invoke()` says no (reserved concurrency 0, a pause), an event goes to the DLQ unrun, as Lambda
        sends it to the on-failure destination. Returns (how many were invoked, how many were sent unrun)."""
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        invoked = unrun = 0
        for message in messages:
            event = json.loads(message["Body"])
            if may_invoke():
                self.invoke(event)
                invoked += 1
            else:
                self.sqs.send_message(QueueUrl=self.dlq_url, MessageBody=json.dumps(unrun_record(event, self.function_name), default=str))
                unrun += 1
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return invoked, unrun

    def drain(self, may_invoke: Callable[[], bool] = lambda: True, idle_polls: int = 2) -> int:
        """Delivers everything the rule routed to the queue; while `may_invoke()` says no (a pause) each event goes to
        the DLQ unrun, as Lambda sends it at reserved concurrency 0. Returns how many events it invoked."""
        delivered, idle = 0, 0
        while idle < idle_polls:
            invoked, unrun = self.deliver_batch(may_invoke)
            delivered += invoked
            idle = idle + 1 if not invoked + unrun else 0
        return delivered
