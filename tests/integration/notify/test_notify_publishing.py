"""The notifier against moto SNS -> SQS and Secrets Manager, and a fake model on 127.0.0.1."""

from __future__ import annotations

import json
import time

import pytest
from notify_samples import API_KEY, STAGE, conflict_outcome, invalid_outcome, scan_report

from reconciler.bootstrap import alert_sns_client, build_notifier, secrets_provider
from reconciler.config import NotifierSettings, RuntimeConfig
from reconciler.notify.grouping import GroupingWindow
from reconciler.notify.notifier import Notifier
from reconciler.notify.triage import Triage

TIMEOUT = 3.0  # the production default
MARGIN = 2.0  # a behaviour bound, not a benchmark


def make_notifier(aws, clock=None, triage=None, **grouping) -> Notifier:
    window = GroupingWindow(clock=clock, **grouping) if clock else GroupingWindow(**grouping)
    return Notifier(STAGE, aws.topic_arn, sns_factory=alert_sns_client, grouping=window, triage=triage)


def make_triage(fake_model, secret_reads=None, timeout=TIMEOUT, max_age=300) -> Triage:
    extra = {"provider_factory": secret_reads or secrets_provider}
    return Triage(secret_name="meta-agents/openai", base_url=fake_model.url, timeout=timeout, secret_max_age=max_age, **extra)


def test_an_invalid_event_reaches_the_topic_as_json_with_text_subject_and_attributes(aws, metric_counts):
    # Given a notifier on the ops topic, triage off
    notifier = make_notifier(aws)
    outcome, raw = invalid_outcome(1)
    # When an invalid outcome is notified
    ids = notifier.notify_outcome(outcome, raw)
    # Then one message is on the topic, readable and filterable
    [message] = aws.published()
    assert len(ids) == 1
    assert message.subject == "[prod][WARNING] Invalid event dead-lettered: seconds (job-1)"
    assert message.attributes == {"kind": "invalid-event", "stage": "prod", "severity": "warning"}
    assert message.document["kind"] == "invalid-event" and message.document["count"] == 1
    assert "reconciler --stage prod dlq show dlq-msg-1" in message.document["text"]
    assert message.document["triageNote"] is None
    assert metric_counts["AlertsPublished"] == 1


def test_a_burst_of_500_invalid_events_makes_a_handful_of_messages_that_state_the_count(aws, clock, metric_counts):
    # Given one container's notifier with a 5-minute window
    notifier = make_notifier(aws, clock=clock, window_seconds=300)
    # When 500 invalid events arrive within the window (two kinds of fault)
    for n in range(500):
        field = "seconds" if n % 5 else "model"
        notifier.notify_outcome(*invalid_outcome(n, field=field))
        clock.advance(0.2)
    during = aws.published()
    # Then only the first of each group went out at once
    assert sorted(m.subject.split(": ")[1].split(" ")[0] for m in during) == ["model", "seconds"]
    assert metric_counts["AlertsGrouped"] == 498
    # When the window has ended and the container handles its next alert
    clock.advance(300)
    notifier.notify_outcome(*invalid_outcome(1000))
    notifier.flush()
    after = aws.published()
    # Then the counts arrive: carried by the next message of a group, or as a summary of the other group
    texts = {m.document["groupKey"]: m.document for m in after}
    assert texts["invalid-event:seconds"]["suppressedBefore"] == 399
    assert "399 more alert(s)" in texts["invalid-event:seconds"]["text"]
    assert texts["invalid-event:model"]["count"] == 99 and "99 more alert(s)" in texts["invalid-event:model"]["text"]
    assert len(during) + len(after) == 4  # a handful, not 500


def test_one_message_per_group_per_window_and_a_window_budget(aws, clock):
    # Given a budget of 2 messages per window
    notifier = make_notifier(aws, clock=clock, max_per_window=2)
    # When three different groups alert in one window
    notifier.notify_outcome(*invalid_outcome(1, field="seconds"))
    notifier.notify_outcome(*invalid_outcome(2, field="model"))
    notifier.notify_outcome(conflict_outcome())
    # Then the third waits and is counted, and goes out in the next window
    assert len(aws.published()) == 2
    clock.advance(300)
    notifier.flush()
    [summary] = aws.published()
    assert summary.document["groupKey"] == "conflict" and summary.document["count"] == 1


def test_scan_alerts_are_published(aws):
    notifier = make_notifier(aws)
    notifier.notify_scan(scan_report())
    kinds = sorted(m.attributes["kind"] for m in aws.published())
    assert kinds == ["stuck-jobs", "unsettleable-jobs"]


def test_the_note_is_attached_when_the_model_answers(aws, fake_model, metric_counts):
    # Given the key in Secrets Manager as JSON and a model that answers
    aws.put_secret(json.dumps({"api_key": API_KEY}))
    notifier = make_notifier(aws, triage=make_triage(fake_model))
    # When a conflict is notified
    notifier.notify_outcome(conflict_outcome())
    [message] = aws.published()
    # Then the note is in the JSON and in the text, and the model got facts and the key, nothing more
    assert message.document["triageNote"] == fake_model.answer
    assert "Triage note (generated by a language model" in message.document["text"]
    [request] = fake_model.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["authorization"] == f"Bearer {API_KEY}"
    assert request["body"]["model"] == "gpt-4o-mini"
    prompt = request["body"]["messages"][1]["content"]
    assert len(prompt) <= 1500 and "job-77" in prompt and API_KEY not in prompt
    assert metric_counts["TriageFailures"] == 0


@pytest.mark.parametrize("mode", ["hang", "error", "garbage"])
def test_the_alert_goes_out_on_time_without_a_note_when_the_model_fails(aws, fake_model, metric_counts, mode):
    # Given a model that hangs, answers 500, or answers garbage
    aws.put_secret(API_KEY)
    fake_model.mode = mode
    notifier = make_notifier(aws, triage=make_triage(fake_model, timeout=TIMEOUT if mode == "hang" else 1.0))
    # When an alert is notified
    started = time.monotonic()
    ids = notifier.notify_outcome(conflict_outcome())
    elapsed = time.monotonic() - started
    # Then it is published without a note, within the timeout, and the failure is counted
    assert len(ids) == 1 and elapsed < TIMEOUT + MARGIN
    [message] = aws.published()
    assert message.document["triageNote"] is None
    assert metric_counts["TriageFailures"] == 1


def test_the_alert_goes_out_when_the_secret_is_missing(aws, fake_model, metric_counts):
    # Given no secret at all
    notifier = make_notifier(aws, triage=make_triage(fake_model))
    # When an alert is notified
    notifier.notify_outcome(conflict_outcome())
    # Then it is published without a note, the model is never called, and the failure is counted
    [message] = aws.published()
    assert message.document["triageNote"] is None and fake_model.requests == []
    assert metric_counts["TriageFailures"] == 1


def test_the_secret_is_read_once_per_cache_period_not_once_per_alert(aws, fake_model, secret_reads, clock):
    # Given a cached key (5 minutes) and three alerts of different groups
    aws.put_secret(json.dumps({"OPENAI_API_KEY": API_KEY}))
    notifier = make_notifier(aws, clock=clock, triage=make_triage(fake_model, secret_reads))
    # When they are notified
    notifier.notify_outcome(*invalid_outcome(1, field="seconds"))
    notifier.notify_outcome(*invalid_outcome(2, field="model"))
    notifier.notify_outcome(conflict_outcome())
    # Then three notes were produced from one GetSecretValue
    assert [m.document["triageNote"] is not None for m in aws.published()] == [True, True, True]
    assert secret_reads.calls["get"] == 1


def test_without_a_cache_period_the_secret_is_read_each_time(aws, fake_model, secret_reads, clock):
    # (the counter above really counts: with max_age=0 every note reads the secret)
    aws.put_secret(API_KEY)
    notifier = make_notifier(aws, clock=clock, triage=make_triage(fake_model, secret_reads, max_age=0))
    notifier.notify_outcome(*invalid_outcome(1, field="seconds"))
    notifier.notify_outcome(*invalid_outcome(2, field="model"))
    assert secret_reads.calls["get"] == 2


def test_no_secret_value_in_logs_or_messages(aws, fake_model, ops_logs):
    # Given a model that echoes the key back, and failures in between
    aws.put_secret(json.dumps({"api_key": API_KEY}))
    fake_model.answer = f"your key is {API_KEY}; check the ledger"
    notifier = make_notifier(aws, triage=make_triage(fake_model, timeout=5.0))
    notifier.notify_outcome(conflict_outcome())
    fake_model.mode = "error"
    notifier.notify_outcome(*invalid_outcome(1))
    # When everything published and logged is collected
    published = json.dumps([m.document for m in aws.published()])
    logs = ops_logs.getvalue()
    # Then the key appears nowhere, and the echoed note is redacted
    assert API_KEY not in published and "[redacted]" in published
    assert API_KEY not in logs
    assert "ops alert sent without a triage note" in logs and "HTTP 500" in logs


def test_sns_failure_is_swallowed_logged_and_counted(aws, metric_counts, ops_logs):
    # Given a topic that does not exist (SNS answers NotFound)
    notifier = Notifier(STAGE, aws.topic_arn + "-gone", sns_factory=alert_sns_client)
    # When an alert is notified
    assert notifier.notify_outcome(conflict_outcome()) == []
    # Then nothing is raised, the failure is counted and logged
    assert metric_counts["AlertFailures"] == 1
    assert "ops alert could not be published" in ops_logs.getvalue()


def test_build_notifier_end_to_end_with_the_stage_switch(aws, fake_model, monkeypatch):
    # Given the production wiring: RuntimeConfig with triage on, base URL from the environment
    aws.put_secret(API_KEY)
    tuning = NotifierSettings.from_env({"OPENAI_BASE_URL": fake_model.url})
    notifier = build_notifier(RuntimeConfig.for_stage("prod", ops_topic_arn=aws.topic_arn, triage_enabled=True, notifier=tuning))
    notifier.notify_outcome(conflict_outcome())
    [message] = aws.published()
    assert message.document["triageNote"] == fake_model.answer
    assert message.document["creditsInvolved"] == 48  # priced with the stage's price book
