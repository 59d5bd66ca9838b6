"""The bad-input rules, one case each, at the validation layer (the handler tests repeat them end to end)."""

import json
from decimal import Decimal

import pytest

from reconciler.domain.errors import InvalidEvent
from reconciler.domain.events import VideoFailed, VideoRendered, parse_envelope
from tests.events import envelope, failed, rendered


def test_a_rendered_event_parses_with_exact_seconds():
    event = parse_envelope(rendered("j1", "u1", seconds=5.1))
    assert event == VideoRendered("evt-r-j1", "j1", "u1", Decimal("5.1"), "test")


def test_a_failed_event_without_reason_parses():
    assert parse_envelope(failed("j1", "u1", reason=None)) == VideoFailed("evt-f-j1", "j1", "u1", None)


def test_the_smoke_tests_synthetic_render_parses_as_a_render_of_its_user():
    event = parse_envelope({**rendered("smoke-test-1", "smoke-test-user"), "source": "reconciler.smoke-test"})
    assert event == VideoRendered("evt-r-smoke-test-1", "smoke-test-1", "smoke-test-user", Decimal("5"), "test")


def test_an_envelope_given_as_json_text_parses():
    assert parse_envelope(json.dumps(rendered("j1", "u1"))).job_id == "j1"


BAD_INPUTS = [
    ("not JSON", "{not json", "event"),
    ("detail not JSON", envelope("video.rendered", "{oops"), "detail"),
    ("detail not an object", envelope("video.rendered", [1, 2]), "detail"),
    ("missing jobId", envelope("video.rendered", {"userId": "u", "seconds": 1, "model": "test"}), "jobId"),
    ("missing userId", envelope("video.rendered", {"jobId": "j", "seconds": 1, "model": "test"}), "userId"),
    ("missing seconds", envelope("video.rendered", {"jobId": "j", "userId": "u", "model": "test"}), "seconds"),
    ("missing model", envelope("video.rendered", {"jobId": "j", "userId": "u", "seconds": 1}), "model"),
    ("jobId mistyped", rendered(123, "u"), "jobId"),
    ("userId empty", rendered("j", "  "), "userId"),
    ("seconds as string", rendered("j", "u", seconds="5"), "seconds"),
    ("seconds as boolean", rendered("j", "u", seconds=True), "seconds"),
    ("seconds zero", rendered("j", "u", seconds=0), "seconds"),
    ("seconds negative", rendered("j", "u", seconds=-1), "seconds"),
    ("seconds NaN", rendered("j", "u", seconds=float("nan")), "seconds"),
    ("seconds infinite", rendered("j", "u", seconds=float("inf")), "seconds"),
    ("seconds implausibly large", rendered("j", "u", seconds=10**7), "seconds"),
    ("reason mistyped", envelope("video.failed", {"jobId": "j", "userId": "u", "reason": 5}), "reason"),
    ("unknown detail-type", envelope("video.queued", {"jobId": "j", "userId": "u"}), "detail-type"),
    ("wrong source", envelope("video.rendered", {"jobId": "j", "userId": "u", "seconds": 1, "model": "test"}, source="other"), "source"),
    ("missing event id", {**rendered("j", "u"), "id": ""}, "id"),
    # The smoke test's source settles its own user only: its role cannot charge anyone else.
    ("smoke source, another user", {**rendered("j", "u"), "source": "reconciler.smoke-test"}, "userId"),
]


@pytest.mark.parametrize(("case", "raw", "field"), BAD_INPUTS, ids=[case for case, _, _ in BAD_INPUTS])
def test_bad_input_names_the_offending_field(case, raw, field):
    with pytest.raises(InvalidEvent) as raised:
        parse_envelope(raw)
    assert raised.value.field == field, raised.value
