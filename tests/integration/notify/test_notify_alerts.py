"""Alerts explain themselves: what happened, to whom, how much money, what the reconciler did, what to run."""

from __future__ import annotations

import json

from notify_samples import conflict_outcome, failed_conflict_outcome, invalid_outcome, scan_report

from reconciler.bootstrap import build_notifier
from reconciler.config import NotifierSettings, RuntimeConfig
from reconciler.domain.pricing import PriceBook
from reconciler.notify import alerts

STAGE = "prod"


def test_invalid_event_alert_names_event_user_reason_and_dlq_commands():
    # Given an event refused for negative seconds and parked on the DLQ
    outcome, raw = invalid_outcome(3)
    # When its alert is built
    alert = alerts.from_outcome(outcome, STAGE, raw)
    # Then it says what, who, money and what the reconciler did, and suggests exact commands
    assert alert.kind == alerts.INVALID_EVENT and alert.severity == alerts.WARNING
    assert alert.group_key == "invalid-event:seconds"
    assert "evt-bad-3" in alert.text and "job-3" in alert.text and "must be positive" in alert.text
    assert "Who: user-3" in alert.text
    assert "no credits moved" in alert.text
    assert "dead-letter queue as message dlq-msg-3" in alert.text
    texts = [c.text for c in alert.commands]
    assert "reconciler --stage prod dlq show dlq-msg-3" in texts
    assert "reconciler --stage prod balance user-3" in texts
    assert "reconciler --stage prod dlq replay --dry-run" in texts


def test_conflict_alert_computes_the_money_and_the_adjustment_that_would_undo_it():
    # Given a render arriving after the job was settled as failed (refunded)
    alert = alerts.from_outcome(conflict_outcome(), STAGE, prices=PriceBook())
    # Then the alert prices the render (12 s x 4 credits/s) and suggests a guarded debit
    assert alert.severity == alerts.ERROR and alert.credits_involved == 48
    assert "settled as failed by event evt-first-failure" in alert.text
    assert "moved no credits" in alert.text
    adjust = next(c for c in alert.commands if " adjust " in c.text)
    assert adjust.text.startswith("reconciler --stage prod adjust --reason ")
    assert adjust.text.endswith("--reference conflict-job-77 -- user-42 -48")
    assert adjust.purpose.startswith("ONLY IF")


def test_failure_after_render_suggests_a_refund_of_the_charge():
    alert = alerts.from_outcome(failed_conflict_outcome(), STAGE, prices=PriceBook())
    assert alert.credits_involved == 40
    assert any(c.text.endswith("-- user-43 40") for c in alert.commands)


def test_settled_and_duplicate_outcomes_need_nobody():
    from reconciler.service.event_settlement import Outcome

    assert alerts.from_outcome(Outcome("duplicate"), STAGE) is None
    assert alerts.from_outcome(Outcome("settled"), STAGE) is None


def test_scan_report_makes_one_alert_per_kind_not_one_per_job():
    # Given a scan with two stuck jobs and one unsettleable job
    made = alerts.from_scan_report(scan_report(), STAGE)
    # Then there is one stuck alert and one unsettleable alert, with the reserved credits summed
    stuck, unsettleable = made
    assert (stuck.kind, stuck.count, stuck.credits_involved) == (alerts.STUCK_JOBS, 2, 50)
    assert "job-s1 (rendering" in stuck.text and "user-1, user-2" in stuck.text
    assert "reconciler --stage prod scan" in [c.text for c in stuck.commands]
    assert (unsettleable.kind, unsettleable.severity, unsettleable.credits_involved) == (alerts.UNSETTLEABLE_JOBS, alerts.ERROR, 5)
    assert "unknown model 'mystery-model'" in unsettleable.text


def test_subject_fits_sns_and_attributes_allow_filtering():
    # Given an event whose ids are long and carry control and non-ASCII characters
    outcome, raw = invalid_outcome(1)
    raw["detail"]["jobId"] = "jöb\n" + "x" * 300
    alert = alerts.from_outcome(outcome, STAGE, raw).with_suppressed(499)
    # Then the subject is one printable ASCII line of fewer than 100 characters (SNS refuses 100)
    assert len(alert.subject) < 100 and alert.subject.isascii() and alert.subject.isprintable()
    assert alert.subject.startswith("[prod][WARNING] Invalid event dead-lettered: seconds")
    assert alert.message_attributes() == {
        "kind": {"DataType": "String", "StringValue": "invalid-event"},
        "stage": {"DataType": "String", "StringValue": "prod"},
        "severity": {"DataType": "String", "StringValue": "warning"},
    }
    document = alert.document()
    json.dumps(document)
    assert document["suppressedBefore"] == 499 and "499 more alert(s)" in document["text"]


def test_the_notifier_module_loads_no_triage_or_parameters_code(tmp_path):
    # Given a fresh interpreter (the Lambda's cold start)
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from reconciler.bootstrap import build_notifier\n"
        "from reconciler.config import RuntimeConfig\n"
        "build_notifier(RuntimeConfig.for_stage('prod', triage_enabled=True, ops_topic_arn='arn'))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('reconciler.notify.triage', 'aws_lambda_powertools.utilities.parameters', "
        "'openai'))))\n"
    )
    # When the notifier is imported and built (triage enabled)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # Then neither the triage client nor Powertools parameters is loaded until an alert is sent
    assert out.strip() == "[]"


def test_build_notifier_reads_the_stage_switch():
    off = build_notifier(RuntimeConfig.for_stage("dev", ops_topic_arn="arn"))
    on = build_notifier(
        RuntimeConfig.for_stage("prod", ops_topic_arn="arn", triage_enabled=True, notifier=NotifierSettings(openai_base_url="http://127.0.0.1:9"))
    )
    assert off._get_triage() is None
    triage = on._get_triage()
    assert triage.base_url == "http://127.0.0.1:9" and triage.model == "gpt-4o-mini" and triage.timeout == 3.0
