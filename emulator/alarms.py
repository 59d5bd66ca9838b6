"""CloudWatch's evaluation of the stage's alarms on the reconciler's own metrics, locally: moto stores alarms and
metric data but never evaluates an alarm, so nothing would ever page on the local stack.

Only the alarms on the namespace the handlers publish to (`Reconciler`, shipped by emulator/telemetry_sink.py from
their embedded-metric-format output) are evaluated, as CloudWatch does for a metric alarm (AWS CloudWatch User
Guide, "Evaluating an alarm"): the statistic over the last EvaluationPeriods periods, at least DatapointsToAlarm of
them breaching the threshold (missing data not breaching: TreatMissingData notBreaching, which the stage's alarms
set); on a change of state, the state is set and, where actions are enabled, the alarm's actions for that state are
notified on SNS with the alarm's message (its name, new and old state, reason and time).
"""

from __future__ import annotations

import json
import operator
from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.contract import METRICS_NAMESPACE

_COMPARISONS = {
    "GreaterThanOrEqualToThreshold": operator.ge,
    "GreaterThanThreshold": operator.gt,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}


class AlarmEvaluator:
    def __init__(self, cloudwatch: Any, sns: Any) -> None:
        self.cloudwatch = cloudwatch
        self.sns = sns

    def evaluate(self, now: datetime | None = None) -> list[str]:
        """Evaluates every alarm on the reconciler's metrics once; returns the names of those that changed state."""
        now = now or datetime.now(UTC)
        changed = []
        for alarm in self.cloudwatch.describe_alarms(AlarmTypes=["MetricAlarm"]).get("MetricAlarms", []):
            if alarm.get("Namespace") != METRICS_NAMESPACE or alarm.get("ComparisonOperator") not in _COMPARISONS:
                continue
            state = "ALARM" if self._breaching(alarm, now) else "OK"
            if state != alarm.get("StateValue"):
                self._transition(alarm, state, now)
                changed.append(alarm["AlarmName"])
        return changed

    def _breaching(self, alarm: dict, now: datetime) -> bool:
        period, periods = int(alarm["Period"]), int(alarm.get("EvaluationPeriods", 1))
        statistic = alarm.get("Statistic", "Sum")
        found = self.cloudwatch.get_metric_statistics(
            Namespace=alarm["Namespace"],
            MetricName=alarm["MetricName"],
            Dimensions=alarm.get("Dimensions", []),
            StartTime=now - timedelta(seconds=period * periods),
            EndTime=now,
            Period=period,
            Statistics=[statistic],
        ).get("Datapoints", [])
        compare = _COMPARISONS[alarm["ComparisonOperator"]]
        breaching = sum(1 for point in found if compare(point.get(statistic, 0), alarm["Threshold"]))
        return breaching >= int(alarm.get("DatapointsToAlarm") or periods)

    def _transition(self, alarm: dict, state: str, now: datetime) -> None:
        crossed = "crossed" if state == "ALARM" else "no longer crossed"
        reason = f"Threshold {crossed}: {alarm['MetricName']} {alarm['ComparisonOperator']} {alarm['Threshold']}"
        self.cloudwatch.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue=state, StateReason=reason)
        # A stage's first evaluation moves every alarm from INSUFFICIENT_DATA to OK: CloudWatch would notify the OK
        # actions of each; locally that is only noise on the ops topic, so it is not sent.
        if not alarm.get("ActionsEnabled", True) or (state == "OK" and alarm.get("StateValue") == "INSUFFICIENT_DATA"):
            return
        message = {
            "AlarmName": alarm["AlarmName"],
            "AlarmDescription": alarm.get("AlarmDescription"),
            "NewStateValue": state,
            "OldStateValue": alarm.get("StateValue"),
            "NewStateReason": reason,
            "StateChangeTime": now.isoformat(),
            "Trigger": {"MetricName": alarm["MetricName"], "Namespace": alarm["Namespace"], "Threshold": alarm["Threshold"]},
        }
        for topic in alarm.get("AlarmActions" if state == "ALARM" else "OKActions", []):
            self.sns.publish(TopicArn=topic, Subject=f'{state}: "{alarm["AlarmName"]}"'[:100], Message=json.dumps(message))
