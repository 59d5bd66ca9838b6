"""The timer scan settles what no event settled, reports what is stuck, and never settles twice."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from reconciler.domain.ledger import iso_timestamp
from reconciler.service.timer_scan import TimerScan
from tests.events import rendered

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def ago(**delta) -> str:
    return iso_timestamp(NOW - timedelta(**delta))


@pytest.fixture
def scan(aws):
    processor = aws.processor()
    return TimerScan(aws.store(), processor.settlement, grace=timedelta(minutes=15), stuck_after=timedelta(hours=6), now=lambda: NOW)


def pipeline_job(aws, job_id, status, created, **extra):
    aws.put_job(jobId=job_id, userId="u", model="test", status=status, createdAt=created, unsettled="PENDING", **extra)


def test_a_render_whose_event_was_lost_is_charged_once_and_its_late_event_is_a_duplicate(aws, scan):
    # Given a reserved job the pipeline marked rendered an hour ago, whose event never arrived
    aws.seed_balance("u", 50)
    pipeline_job(aws, "lost", "rendered", ago(hours=1), seconds=6, reservedCredits=10)
    aws.client("dynamodb").update_item(
        TableName="Credits-dev", Key={"userId": {"S": "u"}}, UpdateExpression="SET remaining = :r", ExpressionAttributeValues={":r": {"N": "40"}}
    )
    aws.client("dynamodb").put_item(
        TableName="Ledger-dev",
        Item={
            "ledgerId": {"S": "lost#reserve"},
            "userId": {"S": "u"},
            "timestamp": {"S": ago(hours=1)},
            "type": {"S": "debit"},
            "amount": {"N": "10"},
            "description": {"S": "reserve"},
            "reference": {"S": "lost"},
        },
    )
    # When the scan runs
    report = scan.run()
    # Then the job is settled as rendered: release 10, charge 6
    assert [o.event.job_id for o in report.settled] == ["lost"]
    job = aws.job("lost")
    assert (job.settled_as, job.settled_by_event) == ("rendered", "timer-scan:lost")
    assert aws.balance("u") == 44 == aws.ledger_sum("u")
    # And the late event and a second scan change nothing
    assert aws.processor().process(rendered("lost", "u", seconds=6)).kind == "duplicate"
    assert scan.run().examined == 0
    assert aws.balance("u") == 44


def test_a_failure_whose_event_was_lost_is_settled_as_failed(aws, scan):
    pipeline_job(aws, "gone", "failed", ago(hours=2))
    report = scan.run()
    assert [o.event.job_id for o in report.settled] == ["gone"] and aws.job("gone").settled_as == "failed"


def test_jobs_within_the_grace_period_wait_for_their_event(aws, scan):
    pipeline_job(aws, "fresh", "rendered", ago(minutes=5), seconds=3)
    pipeline_job(aws, "just-changed", "rendered", ago(hours=2), seconds=3, updatedAt=ago(minutes=1))
    report = scan.run()
    assert report.settled == [] and [job.job_id for job in report.waiting] == ["just-changed"]
    assert aws.job("fresh").settled_as is None


def test_a_job_changed_within_the_grace_period_is_not_even_tried(aws, scan, monkeypatch):
    # The scan's own check of the grace period, not only the rebuilt event's: a job whose event may still be in
    # flight costs no settlement attempt (no reads, no transaction) on any tick (make mutants found it untested)
    pipeline_job(aws, "just-changed", "rendered", ago(hours=2), seconds=3, updatedAt=ago(minutes=1))
    tried = []
    monkeypatch.setattr(scan.settlement, "settle_lost_event", lambda job_id, *args, **kwargs: tried.append(job_id))
    report = scan.run()
    assert tried == [] and [job.job_id for job in report.waiting] == ["just-changed"]


def test_a_job_stuck_before_rendering_is_reported_and_never_refunded(aws, scan):
    aws.seed_balance("u", 20)
    pipeline_job(aws, "stuck", "rendering", ago(hours=7), reservedCredits=5)
    pipeline_job(aws, "slow", "rendering", ago(hours=1))
    report = scan.run()
    assert [job.job_id for job in report.stuck] == ["stuck"]
    assert [job.job_id for job in report.waiting] == ["slow"]
    assert aws.job("stuck").settled_as is None and aws.balance("u") == 20


def test_a_rendered_job_without_seconds_is_reported_not_guessed(aws, scan):
    pipeline_job(aws, "odd", "rendered", ago(hours=1))
    report = scan.run()
    assert [(job.job_id, reason) for job, reason in report.unsettleable] == [("odd", "seconds: is missing")]
    assert aws.job("odd").settled_as is None


def test_a_scan_out_of_time_stops_and_leaves_the_rest_for_the_next_tick(aws, scan):
    pipeline_job(aws, "late-1", "failed", ago(hours=2))
    pipeline_job(aws, "late-2", "failed", ago(hours=1))
    report = scan.run(deadline=time.monotonic() - 1)
    assert report.stopped_early and report.examined == 0
    assert scan.run().examined == 2
