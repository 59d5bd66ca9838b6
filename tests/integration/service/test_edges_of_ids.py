"""Ids at the edges of what DynamoDB keys hold: bounded in bytes, so nothing can be held that cannot be settled,
an event with an id too wide is dead-lettered with its reason, and a corrected replay of an event whose id has the
maximum length always fits."""

from __future__ import annotations

import pytest

from reconciler.domain.errors import InvalidEvent
from reconciler.domain.validation import MAX_ID_LENGTH
from reconciler.ops.dead_letter_replay import DeadLetter, corrected_event
from reconciler.service.reservations import ReservationService
from tests.events import rendered

EMOJI_JOB = "🎬" * MAX_ID_LENGTH  # 256 characters, 1,024 bytes: valid by length, too wide for UserLedger's sort key


def test_a_job_id_too_wide_for_its_keys_cannot_be_held(aws):
    aws.seed_balance("ann", 100)
    with pytest.raises(InvalidEvent) as refused:
        ReservationService(aws.store()).reserve(EMOJI_JOB, "ann", "test", 10)
    assert refused.value.field == "jobId" and "bytes" in refused.value.reason
    assert aws.held("ann") == 0 and aws.balance("ann") == 100


def test_a_render_of_a_job_id_too_wide_goes_to_the_dlq_with_its_reason_and_writes_nothing(aws):
    aws.seed_balance("ann", 100)
    counts = aws.item_counts()
    outcome = aws.processor().process(rendered(EMOJI_JOB, "ann", event_id="evt-1"))
    assert outcome.kind == "rejected" and outcome.error.field == "jobId"
    [letter] = aws.dead_letters()
    assert letter["field"] == "jobId" and "bytes" in letter["reason"]
    assert aws.item_counts() == counts and aws.balance("ann") == 100


def test_a_corrected_replay_of_an_event_with_the_longest_id_settles(aws):
    aws.seed_balance("ann", 100)
    longest = "e" * MAX_ID_LENGTH
    letter = DeadLetter(message_id="m-1", receipt_handle="r", kind="invalid", event=rendered("job-1", "ann", event_id=longest), reason="x", body="")
    corrected = corrected_event(letter, {"jobId": "job-1", "userId": "ann", "seconds": 3, "model": "test"})
    outcome = aws.processor().process(corrected)
    assert outcome.kind == "settled"
    again = aws.processor().process(corrected_event(letter, {"jobId": "job-1", "userId": "ann", "seconds": 3, "model": "test"}))
    assert again.kind == "duplicate" and aws.balance("ann") == 97
