"""The handlers call the notifier after recording the outcome, and nothing it does can fail settlement."""

from __future__ import annotations

import pytest
from notify_samples import conflict_outcome, invalid_outcome, scan_report

from reconciler import bootstrap
from reconciler.bootstrap import alert_sns_client
from reconciler.handlers import scheduled_scan, video_events
from reconciler.notify.notifier import Notifier


class Context:
    function_name = "cc-agent-reconciler-prod"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cc-agent-reconciler-prod"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def container_notifier(aws, monkeypatch):
    """The container's cached notifier, pointed at the moto topic."""
    built = Notifier("prod", aws.topic_arn, sns_factory=alert_sns_client)
    monkeypatch.setattr(bootstrap, "shared_notifier", lambda: built)
    return built


def test_the_event_handler_alerts_after_recording_and_returns_the_same_summary(aws, container_notifier, monkeypatch, metric_counts):
    # Given a processor that refuses the event
    outcome, raw = invalid_outcome(5)

    class Processor:
        def process(self, event, deadline, request_id=None):
            return outcome

    monkeypatch.setattr(bootstrap, "event_processor", lambda: Processor())
    # When the handler runs
    summary = video_events.handler(raw, Context())
    # Then the outcome is recorded as before and an alert is on the topic
    assert summary == outcome.summary()
    assert metric_counts["InvalidEvents"] == 1
    [message] = aws.published()
    assert message.attributes["kind"] == "invalid-event" and "evt-bad-5" in message.document["text"]


def test_a_broken_notifier_never_reaches_settlement(monkeypatch, metric_counts):
    # Given a notifier that cannot even be built
    def broken():
        raise RuntimeError("no config")

    monkeypatch.setattr(bootstrap, "shared_notifier", broken)
    # When an outcome that needs a person is alerted
    video_events.alert(conflict_outcome())
    # Then nothing is raised and the failure is counted
    assert metric_counts["AlertFailures"] == 1


def test_settled_outcomes_only_flush_held_counts(container_notifier, monkeypatch):
    # Given a container whose notifier exists
    calls = []
    monkeypatch.setattr(bootstrap, "flush_due", lambda: calls.append("flush"))
    from reconciler.service.event_settlement import Outcome

    # When a settled outcome goes through alert()
    video_events.alert(Outcome("settled"))
    # Then no alert is built, only held-back counts are offered a flush
    assert calls == ["flush"]


def test_the_timer_scan_alerts_stuck_and_unsettleable_jobs(aws, container_notifier, monkeypatch):
    class Scan:
        def run(self, deadline, request_id=None):
            return scan_report()

    monkeypatch.setattr(bootstrap, "timer_scan", lambda: Scan())
    scheduled_scan.handler({"source": "aws.events", "detail-type": "Scheduled Event"}, Context())
    assert sorted(m.attributes["kind"] for m in aws.published()) == ["stuck-jobs", "unsettleable-jobs"]


def test_every_alert_of_a_container_goes_through_the_real_import_path(aws, monkeypatch, metric_counts):
    # Given a container configured like the deployed function, with nothing patched on the composition root
    monkeypatch.setenv("STAGE", "prod")
    for name, value in {
        "JOBS_TABLE_NAME": "Jobs-prod",
        "CREDITS_TABLE_NAME": "Credits-prod",
        "LEDGER_TABLE_NAME": "Ledger-prod",
        "USER_LEDGER_TABLE_NAME": "UserLedger-prod",
        "SETTLEMENTS_TABLE_NAME": "Settlements-prod",
        "DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
        "OPS_TOPIC_ARN": aws.topic_arn,
    }.items():
        monkeypatch.setenv(name, value)
    bootstrap.shared_notifier.cache_clear()
    # When three outcomes that need a person are alerted, one after the other
    for number in range(3):
        video_events.alert(invalid_outcome(number)[0])
    video_events.alert(conflict_outcome())
    # Then none of them failed (the package's function was once replaced by its submodule after the first)
    assert metric_counts["AlertFailures"] == 0
    assert callable(bootstrap.shared_notifier) and bootstrap.shared_notifier() is bootstrap.shared_notifier()
    assert aws.published(), "the first alert of each kind is published at once"
    bootstrap.shared_notifier.cache_clear()
