import json
from dataclasses import dataclass, field

import pytest

from reconciler.ops.dead_letter_replay import EVENTBRIDGE, INVALID_EVENT, ON_FAILURE, UNKNOWN, parse_message, replay
from reconciler.ops.operator_ports import InvokeResult

EVENT = {"id": "e1", "source": "video.generation", "detail-type": "video.failed", "detail": {"jobId": "j1", "userId": "u"}}


def message(body: str, message_id: str = "m1", **attributes: str) -> dict:
    return {
        "MessageId": message_id,
        "ReceiptHandle": f"rh-{message_id}",
        "Body": body,
        "MessageAttributes": {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    }


def test_each_dead_letter_shape_yields_its_event_and_reason():
    raw = parse_message(message(json.dumps(EVENT), ERROR_CODE="Throttling"))
    assert (raw.kind, raw.event, raw.reason, raw.job_id) == (EVENTBRIDGE, EVENT, "Throttling", "j1")
    envelope = {"requestPayload": EVENT, "requestContext": {"condition": "RetriesExhausted"}, "responsePayload": {"errorMessage": "boom"}}
    failed = parse_message(message(json.dumps(envelope)))
    assert (failed.kind, failed.event, failed.reason) == (ON_FAILURE, EVENT, "boom")
    invalid = parse_message(message(json.dumps(EVENT), errorType="InvalidEvent", field="model", reason="unknown model"))
    assert (invalid.kind, invalid.event, invalid.reason) == (INVALID_EVENT, EVENT, "model: unknown model")
    not_json = parse_message(message("{oops", errorType="InvalidEvent", field="event", reason="is not JSON"))
    assert (not_json.kind, not_json.event) == (INVALID_EVENT, None)
    assert parse_message(message('["x"]')).kind == UNKNOWN


@dataclass
class FakeQueue:
    messages: list[dict]
    deleted: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)

    def receive(self, max_messages, visibility_seconds):
        visible = [m for m in self.messages if m["ReceiptHandle"] not in self.deleted][:max_messages]
        return visible

    def delete(self, receipt_handle):
        self.deleted.append(receipt_handle)

    def release(self, receipt_handle):
        self.released.append(receipt_handle)


def test_a_poison_message_is_tried_once_per_run_and_released_while_good_ones_are_deleted():
    queue = FakeQueue([message(json.dumps(EVENT), "good"), message(json.dumps({**EVENT, "id": "bad"}), "poison")])

    def invoke(event):
        return InvokeResult(event["id"] == "e1", "settled" if event["id"] == "e1" else "function error: boom")

    report = replay(queue, invoke, max_messages=10)
    assert report.summary() == {"replayed": 1, "failed": 1, "skipped": 0, "would-replay": 0}
    assert queue.deleted == ["rh-good"] and "rh-poison" in queue.released


def test_a_rejection_the_function_re_dead_lettered_replaces_the_old_copy_and_is_not_retried():
    queue = FakeQueue([message(json.dumps(EVENT), "old")])

    def invoke(event):
        queue.messages.append(message(json.dumps(EVENT), "new-copy"))
        return InvokeResult(False, "rejected: model: unknown", replaced_by="new-copy")

    report = replay(queue, invoke, max_messages=10)
    assert report.summary()["failed"] == 1 and len(report.items) == 1
    assert queue.deleted == ["rh-old"] and queue.released == ["rh-new-copy"]


def test_a_replay_that_stops_on_an_error_makes_the_messages_it_held_visible_again():
    queue = FakeQueue([message(json.dumps(EVENT), "first"), message(json.dumps(EVENT), "second")])

    def invoke(event):
        raise ConnectionError("the function's endpoint went away")

    with pytest.raises(ConnectionError):
        replay(queue, invoke, max_messages=10)
    assert queue.deleted == [] and sorted(queue.released) == ["rh-first", "rh-second"]


def test_a_body_sent_as_a_json_string_is_read_back_as_the_event_it_holds():
    from reconciler.ops.dead_letter_replay import INVALID_EVENT, parse_message

    event = {"id": "e\x07", "detail-type": "video.failed", "detail": {"jobId": "j\x00"}}
    message = {
        "MessageId": "m",
        "ReceiptHandle": "r",
        "Body": json.dumps(json.dumps(event)),
        "MessageAttributes": {
            "errorType": {"StringValue": "InvalidEvent"},
            "field": {"StringValue": "id"},
            "reason": {"StringValue": "bad"},
            "bodyEncoding": {"StringValue": "json-string"},
        },
    }
    letter = parse_message(message)
    assert letter.kind == INVALID_EVENT and letter.event == event
