"""Alarms (thresholds, periods, actions, missing data) and the dashboard."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from infra_helpers import only_resource, refers_to, resource_named

from reconciler.contract import ALARM_CONCERNS, BALANCE_EVENT_ALARM_CONCERNS, EVERY_ALARM_CONCERN, HOLD_ALARM_CONCERNS

# concern -> (namespace, metric, statistic, period seconds, operator, threshold); metric-math alarms separately.
ALARMS = {
    "errors": ("AWS/Lambda", "Errors", "Sum", 300, "GreaterThanOrEqualToThreshold", 1),
    "adjustments": ("Reconciler", "Adjustments", "Sum", 3600, "GreaterThanThreshold", 100),
    "dlq-depth": ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", 300, "GreaterThanThreshold", 0),
    "dlq-age": ("AWS/SQS", "ApproximateAgeOfOldestMessage", "Maximum", 3600, "GreaterThanOrEqualToThreshold", 10 * 86400),
    "conflicts": ("Reconciler", "ConflictingEvents", "Sum", 300, "GreaterThanOrEqualToThreshold", 1),
    "stuck-jobs": ("Reconciler", "StuckJobs", "Maximum", 3600, "GreaterThanOrEqualToThreshold", 1),
    "invalid-events": ("Reconciler", "InvalidEvents", "Sum", 300, "GreaterThanOrEqualToThreshold", 1),
    "alert-failures": ("Reconciler", "AlertFailures", "Sum", 300, "GreaterThanOrEqualToThreshold", 1),
    "unsettleable-jobs": ("Reconciler", "UnsettleableJobs", "Maximum", 300, "GreaterThanThreshold", 0),
    "contention": ("Reconciler", "SettlementRetries", "Sum", 300, "GreaterThanOrEqualToThreshold", 50),
    "events-failed": ("AWS/Events", "FailedInvocations", "Sum", 300, "GreaterThanOrEqualToThreshold", 1),
    "events-dropped": ("AWS/Events", "InvocationsFailedToBeSentToDlq", "Sum", 300, "GreaterThanOrEqualToThreshold", 1),
    "events-dead-lettered": ("AWS/Events", "DeadLetterInvocations", "Sum", 300, "GreaterThanOrEqualToThreshold", 1),
    "duration": ("AWS/Lambda", "Duration", "p99", 300, "GreaterThanOrEqualToThreshold", 24000),
    "dlq-delivery-failures": ("AWS/Lambda", "DestinationDeliveryFailures", "Sum", 300, "GreaterThanOrEqualToThreshold", 1),
    "async-events-dropped": ("AWS/Lambda", "AsyncEventsDropped", "Sum", 300, "GreaterThanOrEqualToThreshold", 1),
    "async-event-age": ("AWS/Lambda", "AsyncEventAge", "Maximum", 300, "GreaterThanOrEqualToThreshold", 3600 * 1000),
    "alert-dead-letters": ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", 300, "GreaterThanThreshold", 0),
    "alert-dead-letters-age": ("AWS/SQS", "ApproximateAgeOfOldestMessage", "Maximum", 3600, "GreaterThanOrEqualToThreshold", 10 * 86400),
}
MATH_ALARMS = {"throttles", "dynamodb-throttles"}
# Alarms that need two consecutive breaching periods (reasons in infra/constructs/alarms.py).
TWO_PERIODS = {"throttles", "dynamodb-throttles", "duration"}


def alarm(synthesized, concern: str) -> dict:
    name = f"cc-reconciler-{concern}-{synthesized.config.stage}"
    return resource_named(synthesized.monitoring, "AWS::CloudWatch::Alarm", "AlarmName", name)["Properties"]


def test_exactly_the_runbook_alarms_exist(synthesized):
    stage = synthesized.config.stage
    names = {a["Properties"]["AlarmName"] for a in synthesized.monitoring.find_resources("AWS::CloudWatch::Alarm").values()}
    expected = set(ALARMS) | MATH_ALARMS | set(BALANCE_EVENT_ALARM_CONCERNS + HOLD_ALARM_CONCERNS)
    assert names == {f"cc-reconciler-{concern}-{stage}" for concern in expected}
    assert set(ALARMS) | MATH_ALARMS == set(ALARM_CONCERNS)


@pytest.mark.parametrize("concern", sorted(ALARMS))
def test_alarm_watches_the_right_metric_with_the_right_threshold(synthesized, concern):
    properties = alarm(synthesized, concern)
    observed = (
        properties["Namespace"],
        properties["MetricName"],
        properties.get("Statistic") or properties.get("ExtendedStatistic"),  # p99 is an extended statistic
        properties["Period"],
        properties["ComparisonOperator"],
        properties["Threshold"],
    )
    assert observed == ALARMS[concern], f"{concern}: got {observed}, expected {ALARMS[concern]}"
    periods = 2 if concern in TWO_PERIODS else 1
    assert properties["EvaluationPeriods"] == periods
    assert properties.get("DatapointsToAlarm", 1) == periods


def test_lambda_throttles_are_counted_only_while_the_function_runs_so_a_pause_does_not_page(synthesized):
    # A pause sets reserved concurrency 0: every delivery is throttled but nothing runs (Invocations = 0).
    properties = alarm(synthesized, "throttles")
    queries = {q["Id"]: q for q in properties["Metrics"]}
    assert queries["expr_1"]["Expression"] == "IF(invocations > 0, throttles, 0)" and queries["expr_1"].get("ReturnData", True)
    for name in ("invocations", "throttles"):
        stat = queries[name]["MetricStat"]
        assert stat["Metric"]["Namespace"] == "AWS/Lambda" and stat["Metric"]["MetricName"] == name.capitalize()
        assert refers_to(stat["Metric"]["Dimensions"], "ReconcilerFunction") and stat["Stat"] == "Sum"
        assert queries[name]["ReturnData"] is False
    assert (properties["Threshold"], properties["EvaluationPeriods"], properties["DatapointsToAlarm"]) == (1, 2, 2)


def test_dynamodb_throttling_sums_read_and_write_throttle_events_of_the_five_tables(synthesized):
    stage = synthesized.config.stage
    properties = alarm(synthesized, "dynamodb-throttles")
    inputs = [q for q in properties["Metrics"] if "MetricStat" in q]
    seen = {(q["MetricStat"]["Metric"]["MetricName"], json.dumps(q["MetricStat"]["Metric"]["Dimensions"])) for q in inputs}
    assert {name for name, _ in seen} == {"ReadThrottleEvents", "WriteThrottleEvents"} and len(seen) == 10
    # An alarm's math may reference at most 10 metrics (a hard CloudWatch limit): a fifth table needs another shape
    assert len(inputs) <= 10
    for table in ("Jobs", "Credits", "Ledger", "UserLedger"):
        assert sum(f"Tables{table}" in dims for _, dims in seen) == 2, f"{table}-{stage} read and write throttles"
    (expression,) = [q for q in properties["Metrics"] if "Expression" in q]
    assert expression["Expression"].startswith("SUM([FILL(") and expression["Expression"].count("FILL(") == 10
    assert (properties["Threshold"], properties["ComparisonOperator"]) == (5, "GreaterThanOrEqualToThreshold")


def test_eventbridge_alarms_watch_the_render_events_rule(synthesized):
    stage = synthesized.config.stage
    for concern in ("events-failed", "events-dropped", "events-dead-lettered"):
        dimensions = alarm(synthesized, concern)["Dimensions"]
        assert len(dimensions) == 1 and dimensions[0]["Name"] == "RuleName" and refers_to(dimensions[0]["Value"], "EventsRule"), (
            f"{concern} ({stage}): {dimensions}"
        )


@pytest.mark.parametrize("concern", ALARM_CONCERNS)
def test_alarm_has_a_description_for_the_person_it_pages(synthesized, concern):
    assert len(alarm(synthesized, concern)["AlarmDescription"]) > 30


@pytest.mark.parametrize("concern", ALARM_CONCERNS)
def test_alarm_notifies_ops_on_alarm_and_on_recovery(synthesized, concern):
    properties = alarm(synthesized, concern)
    for actions in ("AlarmActions", "OKActions"):
        assert len(properties[actions]) == 1 and refers_to(properties[actions][0], "OpsTopic"), (
            f"{concern}: {actions} must be the ops topic, got {properties.get(actions)}"
        )
    assert properties["ActionsEnabled"] is synthesized.config.alarm_actions_enabled


@pytest.mark.parametrize("concern", EVERY_ALARM_CONCERN)
def test_missing_data_treatment(synthesized, concern):
    # No alarm pages on silence: stuck-jobs has no data before the first scan after the first deploy and during a
    # pause; the other metrics are published only when their event occurs (reasons in infra/constructs/alarms.py).
    assert alarm(synthesized, concern)["TreatMissingData"] == "notBreaching", f"{concern}: missing data"


def test_alarm_dimensions_point_at_this_stage(synthesized):
    stage = synthesized.config.stage
    assert refers_to(alarm(synthesized, "errors")["Dimensions"], "ReconcilerFunction")
    assert refers_to(alarm(synthesized, "dlq-depth")["Dimensions"], "DeadLetterQueue")
    assert refers_to(alarm(synthesized, "dlq-age")["Dimensions"], "DeadLetterQueue")
    assert refers_to(alarm(synthesized, "duration")["Dimensions"], "ReconcilerFunction")
    for concern in ("dlq-delivery-failures", "async-events-dropped", "async-event-age"):
        dimensions = alarm(synthesized, concern)["Dimensions"]
        assert [d["Name"] for d in dimensions] == ["FunctionName"] and refers_to(dimensions, "ReconcilerFunction"), concern
    for concern in ("alert-dead-letters", "alert-dead-letters-age"):
        (queue,) = alarm(synthesized, concern)["Dimensions"]
        assert queue["Name"] == "QueueName" and refers_to(queue["Value"], "OpsTopicDeadLetterQueue"), concern
    reconciler_alarms = [concern for concern, spec in ALARMS.items() if spec[0] == "Reconciler"]
    assert len(reconciler_alarms) == 7
    for concern in reconciler_alarms:
        # The stage's own series: never the dimensionless one, which stages sharing an account would mix.
        assert alarm(synthesized, concern)["Dimensions"] == [
            {"Name": "service", "Value": "credit-reconciler"},
            {"Name": "stage", "Value": stage},
        ], f"{concern} ({stage})"


def test_dashboard_shows_health_money_and_alarms(synthesized):
    dashboard = resource_named(synthesized.monitoring, "AWS::CloudWatch::Dashboard", "DashboardName", f"cc-reconciler-{synthesized.config.stage}")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in (
        "Invocations", "Errors", "Throttles", "p99", "ApproximateNumberOfMessagesVisible", "Adjustments",
        "CreditsDebited", "CreditsRefunded", "DuplicateEvents", "ConflictingEvents", "InvalidEvents",
        "Overdrafts", "StuckJobs", "UnsettleableJobs", "AlertFailures", "SettlementRetries",
        "ApproximateAgeOfOldestMessage", "ReadThrottleEvents", "WriteThrottleEvents", "FailedInvocations",
        "DeadLetterInvocations", "InvocationsFailedToBeSentToDlq",
    ):  # fmt: skip
        assert metric in body, f"dashboard lacks {metric}"
    # Every Reconciler metric on it is the stage's series.
    reconciler_series = body.count('\\"Reconciler\\"')
    stage_series = body.count(f'\\"stage\\",\\"{synthesized.config.stage}\\"')
    assert reconciler_series > 0 and reconciler_series == stage_series, (reconciler_series, stage_series)
    assert '\\"alarms\\":[' in body, "dashboard lacks the alarm status widget"


def test_every_alarm_is_on_the_dashboard_and_so_are_the_lost_message_metrics(synthesized):
    dashboard = only_resource(synthesized.monitoring, "AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    alarms = synthesized.monitoring.find_resources("AWS::CloudWatch::Alarm")
    assert len(alarms) == len(EVERY_ALARM_CONCERN)
    missing = [a["Properties"]["AlarmName"] for logical_id, a in alarms.items() if json.dumps({"Fn::GetAtt": [logical_id, "Arn"]}) not in body]
    assert not missing, f"alarms missing from the dashboard's alarm widget: {missing}"
    for metric in ("DestinationDeliveryFailures", "AsyncEventsDropped", "AsyncEventAge", "IteratorAge"):
        assert metric in body, f"dashboard lacks {metric}"
    assert "OpsTopicDeadLetterQueue" in body and "BalanceEventsFailureQueue" in body


def test_monitoring_stack_is_a_leaf(synthesized):
    # Nothing imports from monitoring, so alarms can change without touching data or compute.
    assert "Outputs" not in synthesized.monitoring.to_json()
    only_resource(synthesized.monitoring, "AWS::CloudWatch::Dashboard")


def runbook_alarm_rows() -> dict[str, str]:
    """docs/operations.md, "Alarms: what to run": alarm concern -> its "run first" cell."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    section = text.split("## Alarms: what to run", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| ") and not line.startswith("| alarm |")]
    return {cells[0].strip("| "): cells[-1] for cells in rows if not set(cells[0]) <= {"|", "-", " "}}


def test_every_alarm_has_a_runbook_line_with_a_command():
    rows = runbook_alarm_rows()
    assert sorted(rows) == sorted(EVERY_ALARM_CONCERN)
    for concern, command in rows.items():
        assert re.search(r"`(r|aws) [a-z]", command) or command.startswith("as "), f"{concern}: no command to run in {command!r}"
