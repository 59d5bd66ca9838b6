"""One dashboard for the reconciler's health and its money flow, in the stage's own metric series."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import StageConfig
from infra.constructs.alarms import ASYNC_EVENT_AGE_ALARM, FUNCTION_TIMEOUT, reconciler_metric
from reconciler.contract import Metric

FIVE_MINUTES = Duration.minutes(5)


class ReconcilerDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        function: lambda_.IFunction,
        dead_letter_queue: sqs.IQueue,
        alarms: Sequence[cloudwatch.IAlarm],
        tables: Sequence[dynamodb.ITable],
        events_rule: events.IRule,
        balance_events_function: lambda_.IFunction,
        balance_events_failure_queue: sqs.IQueue,
        alert_dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        stage = config.stage

        def sums(*names: str) -> list[cloudwatch.IMetric]:
            return [reconciler_metric(name, "Sum", FIVE_MINUTES, stage) for name in names]

        def rule_metric(name: str) -> cloudwatch.IMetric:
            return cloudwatch.Metric(
                namespace="AWS/Events",
                metric_name=name,
                dimensions_map={"RuleName": events_rule.rule_name},
                statistic="Sum",
                period=FIVE_MINUTES,
            )

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=config.names.dashboard)
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Invocations, errors, throttles",
                left=[
                    function.metric_invocations(statistic="Sum", period=FIVE_MINUTES),
                    function.metric_errors(statistic="Sum", period=FIVE_MINUTES),
                    function.metric_throttles(statistic="Sum", period=FIVE_MINUTES),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Duration p99 (timeout 30 s)",
                left=[function.metric_duration(statistic="p99", period=FIVE_MINUTES)],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=FUNCTION_TIMEOUT.to_milliseconds() * 0.8, label="alarm: 80% of timeout")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queue depth and oldest message age",
                left=[dead_letter_queue.metric_approximate_number_of_messages_visible(statistic="Maximum", period=FIVE_MINUTES)],
                right=[dead_letter_queue.metric_approximate_age_of_oldest_message(statistic="Maximum", period=FIVE_MINUTES)],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Adjustments", left=sums(Metric.ADJUSTMENTS), width=8),
            cloudwatch.GraphWidget(title="Credits debited / refunded", left=sums(Metric.CREDITS_DEBITED, Metric.CREDITS_REFUNDED), width=8),
            cloudwatch.GraphWidget(
                title="Duplicate / conflicting / invalid events",
                left=sums(Metric.DUPLICATE_EVENTS, Metric.CONFLICTING_EVENTS, Metric.INVALID_EVENTS),
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Overdrafts", left=sums(Metric.OVERDRAFTS), width=8),
            cloudwatch.GraphWidget(
                title="Stuck / unsettleable jobs",
                left=[
                    reconciler_metric(Metric.STUCK_JOBS, "Maximum", FIVE_MINUTES, stage),
                    reconciler_metric(Metric.UNSETTLEABLE_JOBS, "Maximum", FIVE_MINUTES, stage),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(title="Alert failures", left=sums(Metric.ALERT_FAILURES), width=8),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="DynamoDB throttle events",
                left=[
                    cloudwatch.Metric(
                        namespace="AWS/DynamoDB",
                        metric_name=name,
                        dimensions_map={"TableName": table.table_name},
                        statistic="Sum",
                        period=FIVE_MINUTES,
                    )
                    for table in tables
                    for name in ("ReadThrottleEvents", "WriteThrottleEvents")
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(title="Settlement retries (contention)", left=sums(Metric.SETTLEMENT_RETRIES), width=8),
            cloudwatch.GraphWidget(
                title="Render events rule: failed, dead-lettered, dropped",
                left=[rule_metric(name) for name in ("FailedInvocations", "DeadLetterInvocations", "InvocationsFailedToBeSentToDlq")],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            *self._lost_or_stuck_messages(function, balance_events_function, balance_events_failure_queue, alert_dead_letter_queue)
        )

    @staticmethod
    def _lost_or_stuck_messages(
        function: lambda_.IFunction,
        balance_events_function: lambda_.IFunction,
        failure_queue: sqs.IQueue,
        alert_dead_letter_queue: sqs.IQueue,
    ) -> list[cloudwatch.IWidget]:
        """What the lost-or-stuck-message alarms watch (infra/constructs/alarms.py, balance_events.py)."""

        def lambda_metric(target: lambda_.IFunction, name: str, statistic: str = "Sum") -> cloudwatch.IMetric:
            who = "balance events" if target is balance_events_function else "reconciler"
            return target.metric(name, statistic=statistic, period=FIVE_MINUTES, label=f"{name} ({who})")

        return [
            cloudwatch.GraphWidget(
                title="Failure records not delivered; async events dropped",
                left=[
                    lambda_metric(function, "DestinationDeliveryFailures"),
                    lambda_metric(function, "AsyncEventsDropped"),
                    lambda_metric(balance_events_function, "DestinationDeliveryFailures"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Async event age (max) and balance-events iterator age (max)",
                left=[lambda_metric(function, "AsyncEventAge", "Maximum"), lambda_metric(balance_events_function, "IteratorAge", "Maximum")],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=ASYNC_EVENT_AGE_ALARM.to_milliseconds(), label="alarm: async event age")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Balance-events failure queue and undelivered alerts",
                left=[
                    failure_queue.metric_approximate_number_of_messages_visible(statistic="Maximum", period=FIVE_MINUTES),
                    alert_dead_letter_queue.metric_approximate_number_of_messages_visible(statistic="Maximum", period=FIVE_MINUTES),
                ],
                right=[
                    failure_queue.metric_approximate_age_of_oldest_message(statistic="Maximum", period=FIVE_MINUTES),
                    alert_dead_letter_queue.metric_approximate_age_of_oldest_message(statistic="Maximum", period=FIVE_MINUTES),
                ],
                width=8,
            ),
        ]
