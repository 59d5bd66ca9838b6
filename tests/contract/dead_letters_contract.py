"""THE SHARED CONTRACT of the DeadLetters port (reconciler/service/ports.py).

Every test runs twice, through the `queue` fixture: against InMemoryDeadLetters (tests/fakes.py) in
tests/unit/contract, and against SqsDeadLetters on the moto stage's DLQ in tests/integration/contract, read back the way the CLI reads it
(ops/dead_letter_replay.py). The promise is what a reader gets back: the message id `send` returned, the
original as it arrived, and why it was refused.

When the two disagree, the fake is wrong, unless the adapter breaks AWS's own semantics.
"""

from __future__ import annotations

import pytest

from tests.events import rendered


def test_each_message_gets_its_own_id_and_is_read_back_under_it(queue):
    ids = [queue.port.send(rendered(f"j{n}", "u"), error_type="InvalidEvent", field="seconds", reason="is missing") for n in range(3)]
    assert len(set(ids)) == 3 and all(isinstance(message_id, str) and message_id for message_id in ids)
    assert sorted(letter.message_id for letter in queue.read_back()) == sorted(ids)


def test_an_event_comes_back_as_it_was_sent_with_why_it_was_refused(queue):
    event = rendered("j", "u", seconds=-1)
    message_id = queue.port.send(event, error_type="InvalidEvent", field="seconds", reason="must be positive", event_id=event["id"])
    (letter,) = queue.read_back()
    assert (letter.message_id, letter.original) == (message_id, event)
    assert (letter.error_type, letter.field, letter.reason, letter.event_id) == ("InvalidEvent", "seconds", "must be positive", event["id"])


def test_a_message_without_an_event_id_has_none(queue):
    queue.port.send({"detail": "no id"}, error_type="InvalidEvent", field="id", reason="the EventBridge event id is missing")
    (letter,) = queue.read_back()
    assert letter.event_id is None and letter.original == {"detail": "no id"}


@pytest.mark.parametrize(
    ("original", "read_back"),
    [
        ("not json at all", "not json at all"),
        ("\x07 a bell SQS refuses", "\x07 a bell SQS refuses"),
        (b'{"truncated": ', '{"truncated": '),
    ],
    ids=["text", "text-sqs-refuses", "bytes"],
)
def test_text_that_is_not_an_event_comes_back_as_the_same_text(queue, original, read_back):
    queue.port.send(original, error_type="InvalidEvent", field="event", reason="is not JSON")
    (letter,) = queue.read_back()
    assert letter.original == read_back and letter.field == "event"


def test_the_original_is_kept_as_it_was_when_sent(queue):
    event = rendered("j", "u")
    queue.port.send(event, error_type="InvalidEvent", field="model", reason="unknown model")
    event["detail"]["jobId"] = "changed after sending"
    (letter,) = queue.read_back()
    assert letter.original["detail"]["jobId"] == "j"
