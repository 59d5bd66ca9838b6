"""Outcomes and scan reports as the settlement service produces them, for the alert tests."""

from __future__ import annotations

from decimal import Decimal

from reconciler.domain.errors import InvalidEvent
from reconciler.domain.events import VideoFailed, VideoRendered
from reconciler.domain.settlement import Conflict, JobRecord
from reconciler.service.event_settlement import CONFLICT, REJECTED, Outcome
from reconciler.service.timer_scan import ScanReport


def invalid_outcome(n: int = 1, field: str = "seconds", reason: str = "must be positive, got -5") -> tuple[Outcome, dict]:
    raw = {
        "id": f"evt-bad-{n}",
        "source": "video.generation",
        "detail-type": "video.rendered",
        "detail": {"jobId": f"job-{n}", "userId": f"user-{n % 7}", "seconds": -5, "model": "hd-v1"},
    }
    return Outcome(REJECTED, error=InvalidEvent(field, reason), dead_letter_id=f"dlq-msg-{n}"), raw


def conflict_outcome() -> Outcome:
    event = VideoRendered(event_id="evt-late-render", job_id="job-77", user_id="user-42", seconds=Decimal("12"), model="hd-v1")
    job = JobRecord(
        job_id="job-77",
        user_id="user-42",
        status="failed",
        model="hd-v1",
        seconds=None,
        reserved_credits=30,
        settled_as="failed",
        settled_by_event="evt-first-failure",
    )
    return Outcome(CONFLICT, event=event, decision=Conflict(event, job, "2026-11-28T10:00:00.000Z"))


def failed_conflict_outcome() -> Outcome:
    event = VideoFailed(event_id="evt-late-fail", job_id="job-78", user_id="user-43", reason="gpu lost")
    job = JobRecord(
        job_id="job-78",
        user_id="user-43",
        status="rendered",
        model="hd-v1",
        seconds=Decimal("10"),
        settled_as="rendered",
        settled_by_event="evt-render",
    )
    return Outcome(CONFLICT, event=event, decision=Conflict(event, job, "2026-11-28T10:00:00.000Z"))


def scan_report() -> ScanReport:
    report = ScanReport(examined=5)
    report.stuck = [
        JobRecord(job_id="job-s1", user_id="user-1", status="rendering", model="hd-v1", reserved_credits=40, created_at="2026-11-28T01:00:00.000Z"),
        JobRecord(job_id="job-s2", user_id="user-2", status="submitted", reserved_credits=10, created_at="2026-11-28T02:00:00.000Z"),
    ]
    report.unsettleable = [
        (
            JobRecord(job_id="job-u1", user_id="user-3", status="rendered", model="mystery-model", seconds=Decimal("3"), reserved_credits=5),
            "model: unknown model 'mystery-model'",
        ),
    ]
    return report


SECRET_NAME = "meta-agents/openai"
API_KEY = "sk-test-DO-NOT-LEAK-7c1f9e2b"
STAGE = "prod"
