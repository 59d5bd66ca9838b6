"""Reading and replaying the dead-letter queue (the Replayer); no boto3 here (the queue and the invoker are ports).

The DLQ receives three shapes, all handled:
  * EventBridge's own dead letters: the raw event as the body (delivery to the function failed);
  * Lambda's on-failure records: an envelope whose `requestPayload` is the event (the function kept failing);
  * the reconciler's invalid-event messages: the raw body plus attributes errorType/field/reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.contract import JSON_STRING_ENCODING, DeadLetterAttribute
from reconciler.domain.events import as_first_delivery
from reconciler.domain.validation import derived_identifier
from reconciler.ops.operator_error import InvalidInput, NotFound, Refused
from reconciler.ops.operator_ports import DeadLetterQueue, Invoke

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
        data: dict[str, Any] = {
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
        if attributes.get(DeadLetterAttribute.BODY_ENCODING) == JSON_STRING_ENCODING and isinstance(payload, str):
            # Text SQS would have refused, sent as a JSON string literal: the original is inside it.
            payload = json.loads(payload)
    except json.JSONDecodeError:
        payload = None
    if DeadLetterAttribute.ERROR_TYPE in attributes:
        reason = f"{attributes.get(DeadLetterAttribute.FIELD, '?')}: {attributes.get(DeadLetterAttribute.REASON, '')}"
        event = payload if isinstance(payload, dict) else None
        return DeadLetter(kind=INVALID_EVENT, event=event, reason=reason if event else f"{reason} (body is not a JSON object)", **common)
    if isinstance(payload, dict) and isinstance(payload.get("requestPayload"), dict):
        response = payload.get("responsePayload") or {}
        context = payload.get("requestContext") or {}
        error_message = response.get("errorMessage") if isinstance(response, dict) else None
        return DeadLetter(kind=ON_FAILURE, event=payload["requestPayload"], reason=error_message or context.get("condition", "unknown"), **common)
    if isinstance(payload, dict) and "detail-type" in payload:
        # EventBridge names the delivery failure in ERROR_CODE / ERROR_MESSAGE attributes.
        reason = ": ".join(v for v in (attributes.get("ERROR_CODE"), attributes.get("ERROR_MESSAGE")) if v) or "delivery failed"
        return DeadLetter(kind=EVENTBRIDGE, event=payload, reason=reason, **common)
    return DeadLetter(kind=UNKNOWN, event=None, reason="the body is not an event this tool can replay", **common)


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


def peek(queue: DeadLetterQueue, limit: int) -> list[DeadLetter]:
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
    queue: DeadLetterQueue,
    invoke: Invoke,
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
    unprocessed: list[str] = []  # received in this batch, not yet handled: released if the run stops (Ctrl-C, an error)
    try:
        while len(report.items) < max_messages:
            batch = queue.receive(min(10, max_messages - len(report.items)), VISIBILITY_SECONDS)
            fresh = [message for message in batch if message["MessageId"] not in tried]
            to_release.extend(message["ReceiptHandle"] for message in batch if message["MessageId"] in tried)
            if not fresh:
                break
            unprocessed = [message["ReceiptHandle"] for message in fresh]
            for message in fresh:
                tried.add(message["MessageId"])
                item = _replay_one(parse_message(message), queue, invoke, dry_run, tried, to_release)
                unprocessed.remove(message["ReceiptHandle"])
                report.items.append(item)
                on_item(item)
    finally:
        for receipt in to_release + unprocessed:
            queue.release(receipt)
    return report


def _replay_one(letter: DeadLetter, queue: DeadLetterQueue, invoke: Invoke, dry_run: bool, tried: set[str], to_release: list[str]) -> ReplayItem:
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


# --- one message: find by id or unique prefix, delete, replay (optionally a corrected payload) -------


@dataclass
class Found:
    """One message, held invisible (its receipt handle valid) until the caller deletes or releases it."""

    letter: DeadLetter
    queue: DeadLetterQueue

    def delete(self) -> None:
        self.queue.delete(self.letter.receipt_handle)

    def release(self) -> None:
        self.queue.release(self.letter.receipt_handle)


def find(queue: DeadLetterQueue, id_prefix: str, limit: int, hold_seconds: int = VISIBILITY_SECONDS) -> Found:
    """The message whose id is `id_prefix` or starts with it (unique among the first `limit`); the others are
    made visible again at once. Raises NotFound or InvalidInput (ambiguous) saying what was found otherwise."""
    prefix = id_prefix.strip()
    if not prefix:
        raise InvalidInput("give a message id (or a unique prefix of one): `reconciler dlq list` shows them")
    matches: dict[str, dict] = {}
    seen: set[str] = set()
    others: list[str] = []
    try:
        while len(seen) < limit:
            batch = queue.receive(min(10, limit - len(seen)), hold_seconds)
            fresh = [message for message in batch if message["MessageId"] not in seen]
            others.extend(message["ReceiptHandle"] for message in batch if message["MessageId"] in seen)
            if not fresh:
                break
            for message in fresh:
                seen.add(message["MessageId"])
                if message["MessageId"].startswith(prefix):
                    matches[message["MessageId"]] = message
                else:
                    others.append(message["ReceiptHandle"])
            if prefix in matches:
                break
    finally:
        for receipt in others:
            queue.release(receipt)
    exact = matches.get(prefix)
    if exact is None and len(matches) != 1:
        for message in matches.values():
            queue.release(message["ReceiptHandle"])
        if not matches:
            raise NotFound(f"no message {prefix} among the {len(seen)} visible in the DLQ (a message being replayed is invisible for a while)")
        raise InvalidInput(f"{len(matches)} messages start with {prefix!r}: give more of the id ({', '.join(sorted(matches)[:5])})")
    chosen = exact or next(iter(matches.values()))
    for message in matches.values():
        if message is not chosen:
            queue.release(message["ReceiptHandle"])
    return Found(parse_message(chosen), queue)


def corrected_event(original: DeadLetter, payload: Any) -> dict:
    """A corrected event to replay in place of a dead letter: an EventBridge envelope or a bare detail.

    Its id says what it is (`corrected:{original id}`, or `corrected:sha256:{digest}` where that would not be a
    valid id), so the job records that a corrected payload settled it, and a second correction of the same
    message is a duplicate rather than a second charge."""
    if not isinstance(payload, dict):
        raise ValueError("the payload must be a JSON object: an EventBridge event, or its `detail` alone")
    base = dict(original.event or {})
    event = dict(payload) if "detail" in payload else {**base, "detail": payload}
    if "detail-type" not in event or "source" not in event:
        raise ValueError("the payload has no detail-type/source and the dead letter holds no event to take them from")
    original_id = original.event_id or original.message_id
    event["id"] = derived_identifier("corrected:", original_id)
    return event


def replay_one(found: Found, invoke: Invoke, event: dict | None = None, dry_run: bool = False) -> ReplayItem:
    """Sends one message's event (or a corrected one) through the reconciler; deletes the message only if it
    succeeded (or the function dead-lettered it again, which leaves its new copy in its place)."""
    letter = found.letter
    event = event if event is not None else letter.event
    if event is None:
        found.release()
        return ReplayItem(letter, SKIPPED, letter.reason)
    if dry_run:
        found.release()
        return ReplayItem(letter, WOULD_REPLAY, f"would send event {event.get('id')} to the function")
    try:
        result = invoke(event)
    except BaseException:
        found.release()  # visible again at once, not after the 10-minute hold
        raise
    if result.ok:
        found.delete()
        return ReplayItem(letter, REPLAYED, result.detail)
    if result.replaced_by:
        found.delete()
        return ReplayItem(letter, FAILED, f"{result.detail} (re-dead-lettered as {result.replaced_by})")
    found.release()
    return ReplayItem(letter, FAILED, result.detail)


@dataclass
class Replayer:
    """The dead-letter queue as operators work it: list, show, delete, purge, and replay through the reconciler
    (the deployed function, or its code in this process: `invoker` builds whichever the target has)."""

    queue: DeadLetterQueue
    invoker: Callable[[], Invoke]
    function_paused: Callable[[], bool] = lambda: False

    def refuse_while_paused(self, resume_hint: str) -> None:
        """A replay invokes the function synchronously, and Lambda throttles a synchronous invoke of a function with
        reserved concurrency 0 (429 TooManyRequestsException; Lambda developer guide, "Configuring reserved
        concurrency"): every message would fail and stay. Refused before any message is touched."""
        if self.function_paused():
            raise Refused(
                "the function is paused (reserved concurrency 0): a replay would be throttled and every message stay in the DLQ; "
                f"run `{resume_hint}` first"
            )

    def peek(self, limit: int) -> list[DeadLetter]:
        return peek(self.queue, limit)

    def depth(self) -> dict[str, int]:
        return self.queue.depth()

    def find(self, message_id: str, limit: int) -> Found:
        """The message (id or unique prefix), held invisible until deleted or released; NotFound if none, InvalidInput if many."""
        return find(self.queue, message_id, limit)

    def purge(self) -> None:
        self.queue.purge()

    def replay(self, max_messages: int, dry_run: bool = False, on_item: Callable[[ReplayItem], None] = lambda item: None) -> ReplayReport:
        return replay(self.queue, self._invoke(), max_messages, dry_run=dry_run, on_item=on_item)

    def _invoke(self) -> Invoke:
        """The function, given each event as a first delivery (never skipped as an archive replay's)."""
        invoke = self.invoker()
        return lambda event: invoke(as_first_delivery(event))

    def replay_one(self, found: Found, corrected: Any = None, dry_run: bool = False, corrected_from: str = "") -> tuple[ReplayItem, dict | None]:
        """One message's event, or the corrected payload (read from `corrected_from`) in its place: its event is
        returned, to say so."""
        event = None
        if corrected is not None:
            try:
                event = corrected_event(found.letter, corrected)
            except ValueError as error:
                found.release()
                raise InvalidInput(f"{corrected_from}: {error}") from None
        return replay_one(found, self._invoke(), event, dry_run), event
