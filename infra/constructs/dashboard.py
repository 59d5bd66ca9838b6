"""One dashboard for the reconciler's health and its money flow."""

from __future__ import annotations

from typing import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import StageConfig
from infra.constructs.alarms import reconciler_metric

FIVE_MINUTES = Duration.minutes(5)


def _sums(*names: str) -> list[cloudwatch.IMetric]:
    return [reconciler_metric(name, "Sum", FIVE_MINUTES) for name in names]


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
    ) -> None:
        super().__init__(scope, construct_id)
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
                title="Duration p99",
                left=[function.metric_duration(statistic="p99", period=FIVE_MINUTES)],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queue depth",
                left=[
                    dead_letter_queue.metric_approximate_number_of_messages_visible(
                        statistic="Maximum", period=FIVE_MINUTES
                    )
                ],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Adjustments", left=_sums("Adjustments"), width=8),
            cloudwatch.GraphWidget(title="Credits debited / refunded", left=_sums("CreditsDebited", "CreditsRefunded"), width=8),
            cloudwatch.GraphWidget(
                title="Duplicate / conflicting / invalid events",
                left=_sums("DuplicateEvents", "ConflictingEvents", "InvalidEvents"),
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Overdrafts", left=_sums("Overdrafts"), width=12),
            cloudwatch.GraphWidget(
                title="Stuck jobs", left=[reconciler_metric("StuckJobs", "Maximum", FIVE_MINUTES)], width=12
            ),
        )
