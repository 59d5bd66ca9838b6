"""The alarms that page operators through the ops topic."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import METRICS_NAMESPACE, SERVICE_NAME, StageConfig

GTE = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
GT = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
NO_DATA_IS_HEALTHY = cloudwatch.TreatMissingData.NOT_BREACHING
NO_DATA_IS_AN_OUTAGE = cloudwatch.TreatMissingData.BREACHING


def reconciler_metric(name: str, statistic: str, period: Duration) -> cloudwatch.Metric:
    """A metric the function emits through Powertools (EMF adds the `service` dimension)."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": SERVICE_NAME},
        statistic=statistic,
        period=period,
    )


class ReconcilerAlarms(Construct):
    """Each alarm notifies the ops topic on entering ALARM and on returning to OK."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        function: lambda_.IFunction,
        dead_letter_queue: sqs.IQueue,
        ops_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._notify = cloudwatch_actions.SnsAction(ops_topic)
        five_minutes = Duration.minutes(5)

        self.errors = self._alarm(
            "errors",
            function.metric_errors(statistic="Sum", period=five_minutes),
            threshold=1,
            comparison=GTE,
            # Lambda publishes Errors only for periods with invocations: none, no errors.
            missing_data=NO_DATA_IS_HEALTHY,
            description="The reconciler raised at least one error in 5 minutes: check its logs and the DLQ.",
        )
        self.adjustments = self._alarm(
            "adjustments",
            reconciler_metric("Adjustments", "Sum", Duration.hours(1)),
            threshold=100,
            comparison=GT,
            # Powertools emits Adjustments only when a settlement adjusts credits.
            missing_data=NO_DATA_IS_HEALTHY,
            description="More than 100 credit adjustments in an hour: a pricing or event-source fault is likely.",
        )
        self.dlq_depth = self._alarm(
            "dlq-depth",
            dead_letter_queue.metric_approximate_number_of_messages_visible(statistic="Maximum", period=five_minutes),
            threshold=0,
            comparison=GT,
            # SQS stops publishing only for a queue that has been empty and idle for hours.
            missing_data=NO_DATA_IS_HEALTHY,
            description="Events wait in the dead-letter queue: inspect and replay them (see the runbook).",
        )
        self.throttles = self._alarm(
            "throttles",
            function.metric_throttles(statistic="Sum", period=five_minutes),
            threshold=1,
            comparison=GTE,
            # Like Errors, Throttles is published only when something was invoked or throttled.
            missing_data=NO_DATA_IS_HEALTHY,
            description="Invocations were throttled by the reserved concurrency: events are being delayed.",
        )
        self.conflicts = self._alarm(
            "conflicts",
            reconciler_metric("ConflictingEvents", "Sum", five_minutes),
            threshold=1,
            comparison=GTE,
            # Emitted only when a conflict is seen.
            missing_data=NO_DATA_IS_HEALTHY,
            description="A job received contradicting outcomes (rendered and failed): settle it by hand.",
        )
        self.stuck_jobs = self._alarm(
            "stuck-jobs",
            # An hour spans several timer scans in every stage, so one late scan neither flaps nor fires it.
            reconciler_metric("StuckJobs", "Maximum", Duration.hours(1)),
            threshold=1,
            comparison=GTE,
            # Every timer scan emits StuckJobs, 0 included: an hour without it means the scan stopped,
            # and unsettled jobs would pile up unseen.
            missing_data=NO_DATA_IS_AN_OUTAGE,
            description=f"Jobs unsettled for more than {config.stuck_job_hours} hours: their events never arrived.",
        )
        self.invalid_events = self._alarm(
            "invalid-events",
            reconciler_metric("InvalidEvents", "Sum", five_minutes),
            threshold=1,
            comparison=GTE,
            # Emitted only when an event fails validation.
            missing_data=NO_DATA_IS_HEALTHY,
            description="Events failed validation and were parked in the dead-letter queue.",
        )

    @property
    def all(self) -> tuple[cloudwatch.Alarm, ...]:
        return (
            self.errors,
            self.adjustments,
            self.dlq_depth,
            self.throttles,
            self.conflicts,
            self.stuck_jobs,
            self.invalid_events,
        )

    def _alarm(
        self,
        concern: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator,
        missing_data: cloudwatch.TreatMissingData,
        description: str,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            concern,
            alarm_name=self._config.names.alarm(concern),
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=1,
            treat_missing_data=missing_data,
            actions_enabled=self._config.alarm_actions_enabled,
        )
        alarm.add_alarm_action(self._notify)
        alarm.add_ok_action(self._notify)
        return alarm
