"""The alarms that page operators through the ops topic.

Every alarm is named `cc-reconciler-{concern}-{stage}` with a concern from `ALARM_CONCERNS`; the ops topic's
policy admits exactly those alarm ARNs (infra/constructs/ops_topic.py), so a new alarm is added there too.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import StageConfig
from reconciler.contract import ALARM_CONCERNS, METRICS_NAMESPACE, SERVICE_NAME, Metric

GTE = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
GT = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
NO_DATA_IS_HEALTHY = cloudwatch.TreatMissingData.NOT_BREACHING

FUNCTION_TIMEOUT = Duration.seconds(30)  # infra/constructs/reconciler_function.py
DLQ_RETENTION = Duration.days(14)  # infra/constructs/dead_letter_queue.py
# SQS deletes a message 14 days after it arrived (the SQS maximum), and a deleted failure record is lost for good.
# A queue's depth alarm pages on the first message; its age alarm escalates when nobody has acted for 10 days:
# 4 days (a long weekend plus a working day) remain before the first expiry. Hourly maximum: the age grows by an
# hour per hour, so finer periods add nothing.
OLDEST_MESSAGE_ALARM = Duration.days(10)
assert OLDEST_MESSAGE_ALARM.to_seconds() < DLQ_RETENTION.to_seconds()
# Lambda's async queue retries a failed event after 1 and 2 minutes and one throttled at the reserved concurrency for
# up to the stage's maximum event age (6 h), then sends it to the DLQ (at reserved concurrency 0, a pause, it retries
# nothing: the DLQ at once). An event that waited an hour is a backlog that has 5 hours left before it reaches the DLQ.
# Sources: AWS Lambda Developer Guide, "How Lambda handles errors and retries with asynchronous invocation".
ASYNC_EVENT_AGE_ALARM = Duration.hours(1)


def reconciler_metric(name: str, statistic: str, period: Duration, stage: str) -> cloudwatch.Metric:
    """A metric the function emits through Powertools, in the stage's own series (service and stage dimensions;
    runtime/reconciler/observability.py). The dimensionless copy exists for the v1 runbook only."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": SERVICE_NAME, "stage": stage},
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
        tables: Sequence[dynamodb.ITable],
        events_rule: events.IRule,
        alert_dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._notify = cloudwatch_actions.SnsAction(ops_topic)
        self._alarms: dict[str, cloudwatch.Alarm] = {}
        stage = config.stage
        five_minutes = Duration.minutes(5)

        def metric(name: str, statistic: str, period: Duration = five_minutes) -> cloudwatch.Metric:
            return reconciler_metric(name, statistic, period, stage)

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
            metric(Metric.ADJUSTMENTS, "Sum", Duration.hours(1)),
            threshold=100,
            comparison=GT,
            # Adjustments counts every change to the books (docs/metrics.md): the function's postings (its EMF) and the
            # operators' adjust, audit --fix and scan (the CLI's PutMetricData); no data is an hour without one.
            missing_data=NO_DATA_IS_HEALTHY,
            description=(
                "More than 100 credit adjustments in an hour (settlement postings, operators' adjust, audit --fix and scan): "
                "a pricing or event-source fault, or a runaway script, is likely."
            ),
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
        # A deleted dead letter is a settlement lost for good (OLDEST_MESSAGE_ALARM).
        self.dlq_age = self._alarm(
            "dlq-age",
            dead_letter_queue.metric_approximate_age_of_oldest_message(statistic="Maximum", period=Duration.hours(1)),
            threshold=OLDEST_MESSAGE_ALARM.to_seconds(),
            comparison=GTE,
            missing_data=NO_DATA_IS_HEALTHY,
            description="The oldest dead-lettered event is 10 days old; SQS deletes it at 14 days. Replay or "
            "archive it now (reconciler dlq list / dlq replay).",
        )
        # A pause (`reconciler pause`) sets reserved concurrency to 0: nothing runs on purpose (Lambda sends each
        # event to the DLQ unrun), and whatever Lambda counts as throttled then must not page. Throttles are counted only in
        # periods where the function also ran (Invocations > 0): a paused function runs nothing, so its
        # throttles are masked to 0, while throttling at the concurrency limit (some invocations run, others
        # wait) still shows. The period in which a pause starts can have both; two consecutive 5-minute periods
        # are required, and the second one of a pause has no invocations, so a pause never fires it.
        invocations = function.metric_invocations(statistic="Sum", period=five_minutes)
        throttles = function.metric_throttles(statistic="Sum", period=five_minutes)
        self.throttles = self._alarm(
            "throttles",
            cloudwatch.MathExpression(
                expression="IF(invocations > 0, throttles, 0)",
                using_metrics={"invocations": invocations, "throttles": throttles},
                label="Throttles while running (pauses excluded)",
                period=five_minutes,
            ),
            threshold=1,
            comparison=GTE,
            evaluation_periods=2,
            # Like Errors, both metrics exist only when something was invoked or throttled.
            missing_data=NO_DATA_IS_HEALTHY,
            description="Invocations were throttled by the reserved concurrency for 10 minutes while the function "
            "was running (not paused): events are being delayed.",
        )
        self.conflicts = self._alarm(
            "conflicts",
            metric(Metric.CONFLICTING_EVENTS, "Sum"),
            threshold=1,
            comparison=GTE,
            # Emitted only when a conflict is seen.
            missing_data=NO_DATA_IS_HEALTHY,
            description="A job received contradicting outcomes (rendered and failed): settle it by hand.",
        )
        self.stuck_jobs = self._alarm(
            "stuck-jobs",
            # An hour spans several timer scans in every stage, so one late scan neither flaps nor fires it.
            metric(Metric.STUCK_JOBS, "Maximum", Duration.hours(1)),
            threshold=1,
            comparison=GTE,
            # Every timer scan emits StuckJobs, 0 included, but an hour without it is not an outage to page on:
            # there is none before the first scan after the first deploy, and none during a pause (at reserved
            # concurrency 0 the scan's ticks go to the DLQ unrun with the events). A scan that raises pages through
            # `errors`.
            missing_data=NO_DATA_IS_HEALTHY,
            description=f"Jobs unsettled for more than {config.limits.stuck_job_hours} hours: their events never arrived.",
        )
        self.invalid_events = self._alarm(
            "invalid-events",
            metric(Metric.INVALID_EVENTS, "Sum"),
            threshold=1,
            comparison=GTE,
            # Emitted only when an event fails validation.
            missing_data=NO_DATA_IS_HEALTHY,
            description="Events failed validation and were parked in the dead-letter queue.",
        )
        # An alert that failed to publish is a page nobody received; any one matters. This alarm reaches the
        # topic through CloudWatch's own grant, not the function's, so it still arrives when the function's
        # publish is what broke (its role, the key, a throttle).
        self.alert_failures = self._alarm(
            "alert-failures",
            metric(Metric.ALERT_FAILURES, "Sum"),
            threshold=1,
            comparison=GTE,
            missing_data=NO_DATA_IS_HEALTHY,
            description="The reconciler could not publish one or more ops alerts: check its logs for the alerts "
            "that were lost and for the publish error.",
        )
        # The timer scan found a job whose stored data cannot be settled (e.g. an unknown model or no seconds):
        # it will never settle without a person, and every scan finds it again, so the alarm holds until fixed.
        self.unsettleable_jobs = self._alarm(
            "unsettleable-jobs",
            metric(Metric.UNSETTLEABLE_JOBS, "Maximum"),
            threshold=0,
            comparison=GT,
            missing_data=NO_DATA_IS_HEALTHY,
            description="The timer scan found jobs whose stored data cannot be settled: fix them by hand (reconciler scan --dry-run lists them).",
        )
        # On-demand tables throttle only on sudden bursts beyond their adapted capacity or on a hot partition
        # (one user). A throttled request is retried with backoff inside the invocation, so a few are harmless;
        # 5 or more in each of two consecutive 5-minute periods is sustained pressure that will soon turn into
        # timeouts and Lambda retries. Read and write throttle events of every table (8 metrics: an alarm's math may reference
        # at most 10, a hard limit).
        throttle_metrics: dict[str, cloudwatch.IMetric] = {}
        for index, table in enumerate(tables):
            for kind, name in (("r", "ReadThrottleEvents"), ("w", "WriteThrottleEvents")):
                throttle_metrics[f"{kind}{index}"] = cloudwatch.Metric(
                    namespace="AWS/DynamoDB",
                    metric_name=name,
                    dimensions_map={"TableName": table.table_name},
                    statistic="Sum",
                    period=five_minutes,
                )
        self.dynamodb_throttles = self._alarm(
            "dynamodb-throttles",
            cloudwatch.MathExpression(
                expression="SUM([" + ", ".join(f"FILL({key}, 0)" for key in throttle_metrics) + "])",
                using_metrics=throttle_metrics,
                label=f"DynamoDB throttle events ({len(tables)} tables)",
                period=five_minutes,
            ),
            threshold=5,
            comparison=GTE,
            evaluation_periods=2,
            missing_data=NO_DATA_IS_HEALTHY,
            description="DynamoDB throttled the reconciler's tables for 10 minutes: settlements are slowing down.",
        )
        # The reconciler's own view of contention: every refused condition, TransactionConflict or throttle
        # (including transactional throttles, which CloudWatch reports as cancelled transactions) is a retry.
        # Concurrent settlements of one user retry now and then by design (balance guards); 50 retries in
        # 5 minutes is ten times what the concurrency test of 10 workers on one user produces, i.e. a hot user,
        # a throttled table or a retry loop that stopped converging.
        self.contention = self._alarm(
            "contention",
            metric(Metric.SETTLEMENT_RETRIES, "Sum"),
            threshold=50,
            comparison=GTE,
            missing_data=NO_DATA_IS_HEALTHY,
            description="More than 50 settlement retries in 5 minutes: DynamoDB throttling or write contention.",
        )
        # EventBridge gave up on invoking the function (after 8 retries / 2 hours): Lambda refused the Invoke call
        # itself (missing function or permission, service error). Throttling does not count here: Lambda accepts a
        # throttled event into its async queue and retries it there, or at reserved concurrency 0 sends it to the DLQ
        # (async-event-age, async-events-dropped). Each
        # one is an event that reached the DLQ at best, so any one pages.
        self.events_failed = self._alarm(
            "events-failed",
            self._rule_metric(events_rule, "FailedInvocations"),
            threshold=1,
            comparison=GTE,
            missing_data=NO_DATA_IS_HEALTHY,
            description="EventBridge could not invoke the reconciler for render events (Lambda refused the call; retries "
            "exhausted): they are in the dead-letter queue (reconciler dlq list).",
        )
        # Events that could not even be put in the DLQ are lost: only the archive still has them.
        self.events_dropped = self._alarm(
            "events-dropped",
            self._rule_metric(events_rule, "InvocationsFailedToBeSentToDlq"),
            threshold=1,
            comparison=GTE,
            missing_data=NO_DATA_IS_HEALTHY,
            description="Render events failed delivery AND could not be dead-lettered: they are lost unless "
            "replayed from the archive (reconciler events replay).",
        )
        self.events_dead_lettered = self._alarm(
            "events-dead-lettered",
            self._rule_metric(events_rule, "DeadLetterInvocations"),
            threshold=1,
            comparison=GTE,
            missing_data=NO_DATA_IS_HEALTHY,
            description="EventBridge dead-lettered render events it could not deliver: replay them from the DLQ.",
        )
        # The function times out at 30 s; a settlement retries within the invocation's remaining time, so a
        # p99 at 80 % of the timeout (24 s) means retries are eating the budget and timeouts (Errors, Lambda
        # retries) are next. Two consecutive periods, so a single burst of cold starts does not page.
        duration_threshold_ms = FUNCTION_TIMEOUT.to_milliseconds() * 0.8
        self.duration = self._alarm(
            "duration",
            function.metric_duration(statistic="p99", period=five_minutes),
            threshold=duration_threshold_ms,
            comparison=GTE,
            evaluation_periods=2,
            missing_data=NO_DATA_IS_HEALTHY,
            description="Duration p99 reached 24 s of the 30 s timeout for 10 minutes: timeouts are imminent.",
        )
        self._lost_or_stuck_message_alarms(function, alert_dead_letter_queue)
        assert tuple(self._alarms) == ALARM_CONCERNS, "ALARM_CONCERNS (reconciler/contract.py) lists every alarm, in order"

    def _lost_or_stuck_message_alarms(self, function: lambda_.IFunction, alert_dead_letter_queue: sqs.IQueue) -> None:
        """Every way a message can still be lost or stuck after the function received it (Lambda's metrics are
        published only when their event occurs, so no data is healthy).

        Metric names, dimensions and statistics as AWS documents them: AWS Lambda Developer Guide, "Types of metrics
        for Lambda functions" (monitoring-metrics-types: DestinationDeliveryFailures, Sum, for asynchronous invocation
        and stream event source mappings; "Asynchronous invocation metrics": AsyncEventsDropped, Sum, AsyncEventAge in
        milliseconds, Maximum; all by FunctionName) and the AWS Compute Blog, "Introducing new asynchronous
        invocation metrics for AWS Lambda" (2023-02); Amazon SQS Developer Guide, "Available CloudWatch metrics for
        Amazon SQS" (ApproximateNumberOfMessagesVisible, ApproximateAgeOfOldestMessage in seconds, by QueueName).
        """
        five_minutes = Duration.minutes(5)
        # The on-failure record of an event that failed every attempt could not be put in the DLQ: the event is
        # now only in the archive.
        self._on_any(
            "dlq-delivery-failures",
            function.metric("DestinationDeliveryFailures", statistic="Sum", period=five_minutes),
            "Lambda could not deliver failed events' records to the dead-letter queue: those events are lost "
            "unless replayed from the archive (reconciler events replay --from --to).",
        )
        # Each dropped event left the async queue without a successful run (retries exhausted, the maximum event age
        # reached, or reserved concurrency 0: Lambda neither queues nor retries a paused function's events); it went to
        # the DLQ unless dlq-delivery-failures fired too. During a `reconciler pause` this fires on purpose.
        self._on_any(
            "async-events-dropped",
            function.metric("AsyncEventsDropped", statistic="Sum", period=five_minutes),
            "Lambda dropped render events from its async queue (retries, maximum age, or the function paused at "
            "reserved concurrency 0): find them in the dead-letter queue (reconciler dlq list) and replay them.",
        )
        # Published when an event is finally run, so it grows with a backlog of throttled or retried events. A pause
        # queues nothing (reserved concurrency 0 sends events to the DLQ at once), so it never fires this one.
        assert ASYNC_EVENT_AGE_ALARM.to_seconds() < self._config.async_invoke_max_event_age.to_seconds()
        self._alarm(
            "async-event-age",
            function.metric("AsyncEventAge", statistic="Maximum", period=five_minutes),
            threshold=ASYNC_EVENT_AGE_ALARM.to_milliseconds(),
            comparison=GTE,
            missing_data=NO_DATA_IS_HEALTHY,
            description="Render events waited an hour or more in Lambda's async queue (throttling or retries); at the "
            "maximum event age they go to the dead-letter queue.",
        )
        # An ops alert SNS could not deliver to a subscriber after its retries. This alarm reaches the people through
        # the same topic: another subscriber (prod has two) must still be working.
        self._alarm(
            "alert-dead-letters",
            alert_dead_letter_queue.metric_approximate_number_of_messages_visible(statistic="Maximum", period=five_minutes),
            threshold=0,
            comparison=GT,
            missing_data=NO_DATA_IS_HEALTHY,
            description="The ops topic could not deliver alerts to a subscriber (endpoint down or refusing): read them in "
            f"{self._config.names.alerts_dead_letter_queue} and check the subscriptions.",
        )
        # A dead-lettered alert is deleted after 14 days like any SQS message (OLDEST_MESSAGE_ALARM); the depth alarm
        # has paged once and stays in ALARM, so the age is what still escalates a queue nobody read.
        self._alarm(
            "alert-dead-letters-age",
            alert_dead_letter_queue.metric_approximate_age_of_oldest_message(statistic="Maximum", period=Duration.hours(1)),
            threshold=OLDEST_MESSAGE_ALARM.to_seconds(),
            comparison=GTE,
            missing_data=NO_DATA_IS_HEALTHY,
            description=f"An undelivered ops alert has waited 10 days in {self._config.names.alerts_dead_letter_queue}; "
            "SQS deletes it at 14 days. Read it and fix the subscription.",
        )

    @property
    def all(self) -> tuple[cloudwatch.Alarm, ...]:
        return tuple(self._alarms.values())

    @staticmethod
    def _rule_metric(rule: events.IRule, name: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/Events",
            metric_name=name,
            dimensions_map={"RuleName": rule.rule_name},
            statistic="Sum",
            period=Duration.minutes(5),
        )

    def _on_any(self, concern: str, metric: cloudwatch.IMetric, description: str) -> cloudwatch.Alarm:
        """Pages on a single occurrence of something published only when it happens."""
        return self._alarm(concern, metric, threshold=1, comparison=GTE, missing_data=NO_DATA_IS_HEALTHY, description=description)

    def _alarm(
        self,
        concern: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator,
        missing_data: cloudwatch.TreatMissingData,
        description: str,
        evaluation_periods: int = 1,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            concern,
            alarm_name=self._config.names.alarm(concern),
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=evaluation_periods if evaluation_periods > 1 else None,
            treat_missing_data=missing_data,
            actions_enabled=self._config.alarm_actions_enabled,
        )
        alarm.add_alarm_action(self._notify)
        alarm.add_ok_action(self._notify)
        self._alarms[concern] = alarm
        return alarm
