"""The two events the video pipeline publishes, and the rules that make one settleable."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from reconciler.domain.errors import InvalidEvent
from reconciler.domain.validation import identifier, printable_text, storable_decimal

EVENT_SOURCE = "video.generation"
# The post-deploy smoke test's synthetic events (scripts/smoke-test.py, docs/operations.md): settled like the
# pipeline's, through the same rule and code, but under a source of their own, so no consumer of the pipeline's
# events (source video.generation) sees them, and for the smoke test's own user only.
SMOKE_TEST_SOURCE = "reconciler.smoke-test"
SMOKE_TEST_USER = "smoke-test-user"
RENDERED = "video.rendered"
FAILED = "video.failed"
DETAIL_TYPES = (RENDERED, FAILED)

# EventBridge adds this field to every event it replays from an archive (moto's replay does the same).
REPLAY_NAME_FIELD = "replay-name"


# A replay so named dead-letters the events it refuses, as on their first arrival (`events replay --refused
# dead-letter`: after events-dropped, when the archive holds events the function never received).
DEAD_LETTER_REFUSED_SUFFIX = "-dead-letter-refused"


def archive_replay(raw: Any) -> str | None:
    """The name of the archive replay this envelope comes from, None for an event as it first arrived."""
    name = raw.get(REPLAY_NAME_FIELD) if isinstance(raw, Mapping) else None
    return name if isinstance(name, str) and name else None


def skips_refused(replay_name: str | None) -> bool:
    """Whether a replayed event refused as invalid is skipped (it was refused and dead-lettered when it first arrived)."""
    return replay_name is not None and not replay_name.endswith(DEAD_LETTER_REFUSED_SUFFIX)


def as_first_delivery(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event without its replay name: a dead letter replayed by an operator is decided afresh, never skipped as
    already handled (its message is deleted only once the function settled it or dead-lettered it again)."""
    return {key: value for key, value in event.items() if key != REPLAY_NAME_FIELD}


# Longer than any render the pipeline allows (4 h); a bigger number is a unit or encoding bug upstream.
MAX_RENDER_SECONDS = Decimal(4 * 3600)
MAX_REASON_LENGTH = 1000


@dataclass(frozen=True)
class VideoRendered:
    event_id: str
    job_id: str
    user_id: str
    seconds: Decimal
    model: str

    kind = "rendered"


@dataclass(frozen=True)
class VideoFailed:
    event_id: str
    job_id: str
    user_id: str
    reason: str | None = None

    kind = "failed"


VideoEvent = VideoRendered | VideoFailed


def parse_envelope(raw: str | bytes | Mapping[str, Any]) -> VideoEvent:
    """Validates an EventBridge envelope (dict, or its JSON text) and returns the event it carries."""
    envelope = _as_object(raw, "event")
    if envelope.get("id") in (None, ""):
        raise InvalidEvent("id", "the EventBridge event id is missing")
    event_id = identifier("id", envelope.get("id"))
    source = envelope.get("source")
    if source not in (EVENT_SOURCE, SMOKE_TEST_SOURCE):
        raise InvalidEvent("source", f"expected {EVENT_SOURCE!r}, got {source!r}")
    detail_type = envelope.get("detail-type")
    if detail_type not in DETAIL_TYPES:
        raise InvalidEvent("detail-type", f"unknown detail-type {detail_type!r}; expected one of {', '.join(DETAIL_TYPES)}")
    detail = _as_object(envelope.get("detail"), "detail")
    event = parse_detail(detail_type, detail, event_id)
    if source == SMOKE_TEST_SOURCE and event.user_id != SMOKE_TEST_USER:
        raise InvalidEvent("userId", f"{SMOKE_TEST_SOURCE} events settle {SMOKE_TEST_USER!r} only, not {event.user_id!r}")
    return event


def parse_detail(detail_type: str, detail: Mapping[str, Any], event_id: str) -> VideoEvent:
    job_id = _identifier(detail, "jobId")
    user_id = _identifier(detail, "userId")
    if detail_type == RENDERED:
        return VideoRendered(
            event_id=event_id,
            job_id=job_id,
            user_id=user_id,
            seconds=render_seconds(detail.get("seconds")),
            model=_identifier(detail, "model"),
        )
    if detail_type == FAILED:
        reason = detail.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise InvalidEvent("reason", f"must be a string when present, got {type(reason).__name__}")
        return VideoFailed(event_id=event_id, job_id=job_id, user_id=user_id, reason=printable_text(reason, MAX_REASON_LENGTH) if reason else None)
    raise InvalidEvent("detail-type", f"unknown detail-type {detail_type!r}")


def _as_object(value: Any, field: str) -> Mapping[str, Any]:
    if isinstance(value, (str, bytes)):
        try:
            # Decimal for every number: exact, and no int conversion to hit Python's 4,300-digit limit.
            value = json.loads(value, parse_float=Decimal, parse_int=Decimal)
        except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise InvalidEvent(field, "is not JSON") from None
    if not isinstance(value, Mapping):
        raise InvalidEvent(field, f"must be a JSON object, got {type(value).__name__}")
    return value


def _identifier(detail: Mapping[str, Any], field: str) -> str:
    return identifier(field, detail.get(field))


def render_seconds(value: Any, field: str = "seconds") -> Decimal:
    """A render's duration as events and the hold API give it: positive, finite, at most 4 h, storable exactly."""
    if value is None:
        raise InvalidEvent(field, "is missing")
    # bool is an int in Python; a JSON true is still not a duration.
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise InvalidEvent(field, f"must be a number, got {type(value).__name__}")
    try:
        # Floats via str(): the Lambda runtime hands us floats, and Decimal(float) would keep binary noise.
        # Ints directly: str() of an int over 4,300 digits raises in Python 3.11.
        seconds = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError):
        raise InvalidEvent(field, "is not a number") from None
    if not seconds.is_finite():
        raise InvalidEvent(field, "must be finite")
    if seconds <= 0:
        raise InvalidEvent(field, "must be positive")
    if seconds > MAX_RENDER_SECONDS:
        raise InvalidEvent(field, f"is implausibly large (limit {MAX_RENDER_SECONDS})")
    # Stored on the job as given: refuse here what DynamoDB would refuse later (1e-200, 39 digits).
    return storable_decimal(field, seconds)
