"""Every event EventBridge accepts fits the dead-letter queue whole and stays replayable, whatever its text."""

from __future__ import annotations

import json

from reconciler.repository.sqs_dead_letters import MAX_MESSAGE_BYTES, encode_body
from tests.events import rendered

EVENTBRIDGE_MAX_ENTRY_BYTES = 256 * 1024  # PutEvents: an entry of at most 256 KB (EventBridge quotas)


def invalid_event_of(text_bytes: int, character: str) -> dict:
    """An event EventBridge accepts (detail within its 256 KB) that the reconciler refuses (seconds < 0)."""
    event = rendered("job-1", "ann", seconds=-1, event_id="evt-big")
    width = len(character.encode())
    event["detail"]["notes"] = character * (text_bytes // width)
    return event


def test_a_full_size_invalid_event_of_cjk_text_is_dead_lettered_whole_and_replays_exactly(aws):
    event = invalid_event_of(EVENTBRIDGE_MAX_ENTRY_BYTES - 1024, "漢")
    outcome = aws.processor().process(event)
    assert outcome.kind == "rejected" and outcome.error.field == "seconds"
    [letter] = aws.dead_letters()
    assert "bodyTruncated" not in letter
    assert json.loads(letter["body"]) == event


def test_only_what_sqs_refuses_is_escaped():
    event = {"detail": {"text": "漢🎬é", "odd": "\ud800\ufffe\x07"}}
    body, attributes = encode_body(event)
    assert "漢🎬é" in body and attributes == {}
    assert json.loads(body) == event
    assert len(body.encode()) < 2 * len(json.dumps(event, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def test_the_budget_is_the_queue_maximum_the_template_sets(dev_templates):
    [queue] = [
        resource["Properties"]
        for template in dev_templates.values()
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::SQS::Queue" and resource["Properties"].get("QueueName") == "cc-reconciler-dlq-dev"
    ]
    assert queue["MaximumMessageSize"] == MAX_MESSAGE_BYTES == 1024 * 1024
