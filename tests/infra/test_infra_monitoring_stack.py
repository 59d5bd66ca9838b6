"""Alarms (thresholds, periods, actions, missing data) and the dashboard."""

from __future__ import annotations

import json

import pytest

from infra_helpers import only_resource, refers_to, resource_named

# concern -> (namespace, metric, statistic, period seconds, operator, threshold)
ALARMS = {
    "errors": ("AWS/Lambda", "Errors", "Sum", 300, "GreaterThanOrEqualToThreshold", 1),
    "adjustments": ("Reconciler", "Adjustments", "Sum", 3600, "GreaterThanThreshold", 100),
    "dlq-depth": ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", 300, "GreaterThanThreshold", 0),
    "throttles": ("AWS/Lambda", "Throttles", "Sum", 300, "GreaterThanOrEqualToThreshold", 1),
    "conflicts": ("Reconciler", "ConflictingEvents", "Sum", 300, "GreaterThanOrEqualToThreshold", 1),
    "stuck-jobs": ("Reconciler", "StuckJobs", "Maximum", 3600, "GreaterThanOrEqualToThreshold", 1),
    "invalid-events": ("Reconciler", "InvalidEvents", "Sum", 300, "GreaterThanOrEqualToThreshold", 1),
}


def alarm(synthesized, concern: str) -> dict:
    name = f"cc-reconciler-{concern}-{synthesized.config.stage}"
    return resource_named(synthesized.monitoring, "AWS::CloudWatch::Alarm", "AlarmName", name)["Properties"]


def test_exactly_the_runbook_alarms_exist(synthesized):
    stage = synthesized.config.stage
    names = {a["Properties"]["AlarmName"] for a in synthesized.monitoring.find_resources("AWS::CloudWatch::Alarm").values()}
    assert names == {f"cc-reconciler-{concern}-{stage}" for concern in ALARMS}


@pytest.mark.parametrize("concern", sorted(ALARMS))
def test_alarm_watches_the_right_metric_with_the_right_threshold(synthesized, concern):
    namespace, metric, statistic, period, operator, threshold = ALARMS[concern]
    properties = alarm(synthesized, concern)
    observed = (
        properties["Namespace"],
        properties["MetricName"],
        properties["Statistic"],
        properties["Period"],
        properties["ComparisonOperator"],
        properties["Threshold"],
    )
    assert observed == ALARMS[concern], f"{concern}: got {observed}, expected {ALARMS[concern]}"
    assert properties["EvaluationPeriods"] == 1


@pytest.mark.parametrize("concern", sorted(ALARMS))
def test_alarm_notifies_ops_on_alarm_and_on_recovery(synthesized, concern):
    properties = alarm(synthesized, concern)
    for actions in ("AlarmActions", "OKActions"):
        assert len(properties[actions]) == 1 and refers_to(properties[actions][0], "OpsTopic"), (
            f"{concern}: {actions} must be the ops topic, got {properties.get(actions)}"
        )
    assert properties["ActionsEnabled"] is synthesized.config.alarm_actions_enabled


@pytest.mark.parametrize("concern", sorted(ALARMS))
def test_missing_data_treatment(synthesized, concern):
    # Every timer scan reports StuckJobs, so its silence is an outage; the other metrics are
    # published only when their event occurs (reasons in infra/constructs/alarms.py).
    expected = "breaching" if concern == "stuck-jobs" else "notBreaching"
    assert alarm(synthesized, concern)["TreatMissingData"] == expected, f"{concern}: missing data"


def test_alarm_dimensions_point_at_this_stage(synthesized):
    stage = synthesized.config.stage
    assert refers_to(alarm(synthesized, "errors")["Dimensions"], "ReconcilerFunction")
    assert refers_to(alarm(synthesized, "dlq-depth")["Dimensions"], "DeadLetterQueue")
    for concern in ("adjustments", "conflicts", "stuck-jobs", "invalid-events"):
        assert alarm(synthesized, concern)["Dimensions"] == [{"Name": "service", "Value": "credit-reconciler"}], (
            f"{concern}: Powertools' EMF default dimension is service=credit-reconciler ({stage})"
        )


def test_dashboard_shows_health_money_and_alarms(synthesized):
    dashboard = resource_named(
        synthesized.monitoring, "AWS::CloudWatch::Dashboard", "DashboardName", f"cc-reconciler-{synthesized.config.stage}"
    )
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in (
        "Invocations", "Errors", "Throttles", "p99", "ApproximateNumberOfMessagesVisible", "Adjustments",
        "CreditsDebited", "CreditsRefunded", "DuplicateEvents", "ConflictingEvents", "InvalidEvents",
        "Overdrafts", "StuckJobs",
    ):  # fmt: skip
        assert metric in body, f"dashboard lacks {metric}"
    assert '\\"alarms\\":[' in body, "dashboard lacks the alarm status widget"


def test_monitoring_stack_is_a_leaf(synthesized):
    # Nothing imports from monitoring, so alarms can change without touching data or compute.
    assert "Outputs" not in synthesized.monitoring.to_json()
    only_resource(synthesized.monitoring, "AWS::CloudWatch::Dashboard")
