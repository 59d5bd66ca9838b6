"""Reading and replaying the dead-letter queue; no boto3 here (the queue and the invoker are injected).

The DLQ receives three shapes, all handled:
  * EventBridge's own dead letters: the raw event as the body (delivery to the function failed);
  * Lambda's on-failure records: an envelope whose `requestPayload` is the event (the function kept failing);
  * the reconciler's invalid-event messages: the raw body plus attributes errorType/field/reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

EVENTBRIDGE, ON_FAILURE, INVALID_EVENT, UNKNOWN = "eventbridge", "lambda-on-failure", "invalid-event", "unknown"
REPLAYED, FAILED, SKIPPED, WOULD_REPLAY = "replayed", "failed", "skipped", "would-replay"


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receipt_handle: str
    kind: str
    event: dict | None  # what to send to the function again; None when the body holds no event
    reason: str  # why it was dead-lettered, as far as the message says
    body: str
    receive_count: int = 0

    @property
    def event_id(self) -> str | None:
        return self.event.get("id") if self.event else None

    @property
    def job_id(self) -> str | None:
        detail = (self.event or {}).get("detail")
        return detail.get("jobId") if isinstance(detail, dict) else None

    def as_dict(self, with_body: bool = False) -> dict:
        data = {
            "messageId": self.message_id,
            "kind": self.kind,
            "eventId": self.event_id,
            "jobId": self.job_id,
            "reason": self.reason,
            "receiveCount": self.receive_count,
        }
        if with_body:
            data["event"] = self.event
            data["body"] = self.body
        return data


def parse_message(message: dict) -> DeadLetter:
    body = message.get("Body", "")
    attributes = {name: value.get("StringValue", "") for name, value in (message.get("MessageAttributes") or {}).items()}
    receive_count = int((message.get("Attributes") or {}).get("ApproximateReceiveCount", 0))
    common = dict(message_id=message["MessageId"], receipt_handle=message["ReceiptHandle"], body=body, receive_count=receive_count)
    try:
        payload: Any = json.loads(body)
    except json.JSONDecodeError:
        payload = None
    if "errorType" in attributes:
        reason = f"{attributes.get('field', '?')}: {attributes.get('reason', '')}"
        event = payload if isinstance(payload, dict) else None
        return DeadLetter(kind=INVALID_EVENT, event=event, reason=reason if event else f"{reason} (body is not a JSON object)", **common)
    if isinstance(payload, dict) and isinstance(payload.get("requestPayload"), dict):
        response = payload.get("responsePayload") or {}
        context = payload.get("requestContext") or {}
        reason = response.get("errorMessage") if isinstance(response, dict) else None
        return DeadLetter(kind=ON_FAILURE, event=payload["requestPayload"], reason=reason or context.get("condition", "unknown"), **common)
    if isinstance(payload, dict) and "detail-type" in payload:
        # EventBridge names the delivery failure in ERROR_CODE / ERROR_MESSAGE attributes.
        reason = ": ".join(v for v in (attributes.get("ERROR_CODE"), attributes.get("ERROR_MESSAGE")) if v) or "delivery failed"
        return DeadLetter(kind=EVENTBRIDGE, event=payload, reason=reason, **common)
    return DeadLetter(kind=UNKNOWN, event=None, reason="the body is not an event this tool can replay", **common)


@dataclass(frozen=True)
class InvokeResult:
    ok: bool
    detail: str  # the outcome ("settled", "duplicate", ...) or why it failed
    replaced_by: str | None = None  # id of the new DLQ copy the function wrote, if it wrote one


class Queue(Protocol):
    def receive(self, max_messages: int, visibility_seconds: int) -> list[dict]: ...
    def delete(self, receipt_handle: str) -> None: ...
    def release(self, receipt_handle: str) -> None: ...


# Long enough to replay a batch of 10 through a 30 s function before SQS hands the messages out again.
VISIBILITY_SECONDS = 600


@dataclass
class ReplayItem:
    letter: DeadLetter
    status: str
    detail: str

    def as_dict(self) -> dict:
        return {**self.letter.as_dict(), "status": self.status, "detail": self.detail}


@dataclass
class ReplayReport:
    items: list[ReplayItem] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for item in self.items if item.status == status)

    def summary(self) -> dict:
        return {status: self.count(status) for status in (REPLAYED, FAILED, SKIPPED, WOULD_REPLAY)}


def peek(queue: Queue, limit: int) -> list[DeadLetter]:
    """Up to `limit` messages, each once; all are made visible again before returning."""
    letters: dict[str, DeadLetter] = {}
    receipts: list[str] = []
    try:
        while len(letters) < limit:
            batch = queue.receive(min(10, limit - len(letters)), 60)
            receipts.extend(message["ReceiptHandle"] for message in batch)
            fresh = [message for message in batch if message["MessageId"] not in letters]
            if not fresh:
                break
            for message in fresh:
                letters[message["MessageId"]] = parse_message(message)
    finally:
        for receipt in receipts:
            queue.release(receipt)
    return list(letters.values())[:limit]


def replay(
    queue: Queue,
    invoke: Callable[[dict], InvokeResult],
    max_messages: int,
    dry_run: bool = False,
    on_item: Callable[[ReplayItem], None] = lambda item: None,
) -> ReplayReport:
    """Sends each dead letter through the function again; deletes a message only after it succeeded.

    Failures stay in the queue and are made visible again at the end (not sooner: this run would
    receive them again). Each message is tried once per run, so a poison message cannot loop.
    """
    report = ReplayReport()
    tried: set[str] = set()
    to_release: list[str] = []
    try:
        while len(report.items) < max_messages:
            batch = queue.receive(min(10, max_messages - len(report.items)), VISIBILITY_SECONDS)
            fresh = [message for message in batch if message["MessageId"] not in tried]
            to_release.extend(message["ReceiptHandle"] for message in batch if message["MessageId"] in tried)
            if not fresh:
                break
            for message in fresh:
                tried.add(message["MessageId"])
                item = _replay_one(parse_message(message), queue, invoke, dry_run, tried, to_release)
                report.items.append(item)
                on_item(item)
    finally:
        for receipt in to_release:
            queue.release(receipt)
    return report


def _replay_one(letter: DeadLetter, queue: Queue, invoke, dry_run: bool, tried: set[str], to_release: list[str]) -> ReplayItem:
    if letter.event is None:
        to_release.append(letter.receipt_handle)
        return ReplayItem(letter, SKIPPED, letter.reason)
    if dry_run:
        to_release.append(letter.receipt_handle)
        return ReplayItem(letter, WOULD_REPLAY, f"would send event {letter.event_id} to the function")
    result = invoke(letter.event)
    if result.ok:
        queue.delete(letter.receipt_handle)
        return ReplayItem(letter, REPLAYED, result.detail)
    if result.replaced_by:
        # The function dead-lettered it again: that new copy is in place, so this one can go, and
        # the copy is not tried again in this run.
        queue.delete(letter.receipt_handle)
        tried.add(result.replaced_by)
        return ReplayItem(letter, FAILED, f"{result.detail} (re-dead-lettered as {result.replaced_by})")
    to_release.append(letter.receipt_handle)
    return ReplayItem(letter, FAILED, result.detail)
