"""Balance events (docs/events.md): the Credits stream -> a small function -> EventBridge.

- BalanceEventsData (data stack): `BalanceEvents-{stage}`, the published markers that are also each user's event
  history, and the stream's on-failure destination queue.
- BalanceEventsFunction (compute stack): `cc-reconciler-balance-events-{stage}` with its own least-privilege role
  and the event source mapping on the Credits stream.
- BalanceEventsAlarms (monitoring stack): errors, iterator age, publish failures, failed batches.
The settlement function is untouched: it neither calls nor knows about any of this.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import StageConfig
from infra.constructs.acknowledged_statement import acknowledged_statement
from infra.constructs.alarms import OLDEST_MESSAGE_ALARM
from infra.constructs.reconciler_function import python_function
from infra.constructs.tables import ReconcilerTables
from reconciler import contract
from reconciler.contract import BALANCE_EVENT_ALARM_CONCERNS, METRICS_NAMESPACE, SERVICE_NAME, Metric

# The stream keeps records 24 h. A record still failing after this many retries or this age goes, as a
# description of the batch (shard and sequence range), to the failure queue: a person then looks (docs/events.md).
MAX_RETRY_ATTEMPTS = 50
MAX_RECORD_AGE = Duration.hours(6)
BATCH_SIZE = 100
FUNCTION_TIMEOUT = Duration.seconds(60)


class BalanceEventsData(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        names = config.names
        self.table = dynamodb.Table(
            self,
            "Table",
            table_name=names.balance_events_table,
            partition_key=dynamodb.Attribute(name=contract.USER_ID_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=contract.BALANCE_EVENT_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=config.point_in_time_recovery,
            ),
            deletion_protection=config.deletion_protection,
            removal_policy=config.removal_policy,
        )
        self.failure_queue = sqs.Queue(
            self,
            "FailureQueue",
            queue_name=names.balance_events_failure_queue,
            retention_period=Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            removal_policy=config.removal_policy,
        )
        reason = (
            "This queue is itself the on-failure destination of the balance-events stream mapping; nothing consumes "
            "it automatically, so it needs no dead-letter queue of its own."
        )
        Validations.of(self.failure_queue).acknowledge(
            Acknowledgment(id="AwsSolutions::AwsSolutions-SQS3", reason=reason),
            Acknowledgment(id="Serverless::Serverless-SQSRedrivePolicy", reason=reason),
        )


class BalanceEventsFunction(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, tables: ReconcilerTables, data: BalanceEventsData, ops_topic: sns.ITopic
    ) -> None:
        super().__init__(scope, construct_id)
        names = config.names
        settings = config.balance_events
        self.log_group, self.role, self.function = python_function(
            self,
            config=config,
            function_name=names.balance_events_function,
            handler=contract.BALANCE_EVENTS_HANDLER,
            memory_size=256,
            timeout=FUNCTION_TIMEOUT,
            environment={
                contract.ENV_STAGE: config.stage,
                contract.ENV_LEDGER_TABLE: tables.ledger.table_name,
                contract.ENV_USER_LEDGER_TABLE: tables.user_ledger.table_name,
                contract.ENV_BALANCE_EVENTS_TABLE: data.table.table_name,
                contract.ENV_EVENT_SOURCE: settings.source,
                contract.ENV_EVENT_BUS: contract.DEFAULT_EVENT_BUS,
                contract.ENV_LOW_THRESHOLD: str(settings.low_threshold),
                contract.ENV_OVERDRAFT_ALERT_LEVEL: str(settings.overdraft_alert_level),
                contract.ENV_OPS_TOPIC_ARN: ops_topic.topic_arn,
            },
        )
        # Every record reaches the function: each change of a balance is checked for its explanation (docs/events.md,
        # "Every balance change explained"), so the mapping filters nothing; its batching window amortises invocations.
        self._read_stream(config, tables, data, [])
        self._grant(config, tables, data)
        self._grant_alerts(ops_topic)
        Validations.of(self.function).acknowledge(
            Acknowledgment(
                id="Serverless::Serverless-LambdaDLQ",
                reason="Invoked by its stream mapping only, never asynchronously: a function DLQ would receive nothing. "
                "The mapping's on-failure destination (the failure queue) describes a given-up batch instead.",
            )
        )

    def _read_stream(self, config: StageConfig, tables: ReconcilerTables, data: BalanceEventsData, filters: list[dict]) -> None:
        """The mapping on the Credits stream, and the stream read Lambda's poller does with the role."""
        # One shard per item range, one batch per shard at a time (parallelization 1): a user's records are handled
        # in stream order. A failed record is retried from itself (partial batch responses); a failing batch is
        # bisected so one bad record cannot hold its neighbours beyond its own retries.
        # Only records that can carry a crossing reach the function (docs/events.md, "Which records reach the
        # function"); the same filters decide locally (emulator/stream_poller.py).
        # An EventSourceMapping rather than DynamoEventSource: that one adds dynamodb:ListStreams on "*" to the
        # role's default policy, where its acknowledgement would cover the whole role.
        assert tables.credits.table_stream_arn is not None, "the Credits table has a stream"
        mapping = self.function.add_event_source_mapping(
            "CreditsStream",
            event_source_arn=tables.credits.table_stream_arn,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=BATCH_SIZE,
            # Lambda gathers a shard's records this long before invoking (unless a batch of BATCH_SIZE fills first): one
            # invocation for the changes of a burst instead of one each (per stage: BalanceEventSettings).
            max_batching_window=Duration.seconds(config.balance_events.batching_window_seconds),
            filters=[lambda_.FilterCriteria.filter(pattern) for pattern in filters] or None,
            parallelization_factor=1,
            bisect_batch_on_error=True,
            retry_attempts=MAX_RETRY_ATTEMPTS,
            max_record_age=MAX_RECORD_AGE,
            report_batch_item_failures=True,
            on_failure=event_sources.SqsDlq(data.failure_queue),
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="CreditsStream",
                actions=["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
                resources=[tables.credits.table_stream_arn],
            )
        )
        acknowledged_statement(
            self.role,
            "StreamListing",
            iam.PolicyStatement(sid="ListStreams", actions=["dynamodb:ListStreams"], resources=["*"]),
            ["Resource::*"],
            "dynamodb:ListStreams, which Lambda's stream poller calls, has no resource-level permissions.",
        )
        # Lambda checks that the role can read the stream when it creates the mapping: after all the role's policies.
        mapping.node.add_dependency(self.role)

    def _grant_alerts(self, ops_topic: sns.ITopic) -> None:
        """An unexplained balance change is alerted on the ops topic (encrypted with its own key)."""
        self.role.add_to_policy(iam.PolicyStatement(sid="PublishAlerts", actions=["sns:Publish"], resources=[ops_topic.topic_arn]))
        assert ops_topic.master_key is not None, "the ops topic is encrypted with its own key"
        acknowledged_statement(
            self.role,
            "OpsTopicKey",
            iam.PolicyStatement(sid="OpsTopicKey", actions=["kms:Decrypt", "kms:GenerateDataKey*"], resources=[ops_topic.master_key.key_arn]),
            ["Action::kms:GenerateDataKey*"],
            "SNS publishes to the encrypted ops topic with data keys of its one key; GenerateDataKey* names both variants.",
        )

    def _grant(self, config: StageConfig, tables: ReconcilerTables, data: BalanceEventsData) -> None:
        stack = Stack.of(self)
        # Published markers and history: read one marker, write one marker (conditional put). The unexplained-change
        # check reads and writes nothing (service/balance_changes.py: the record carries its explanation).
        self.role.add_to_policy(
            iam.PolicyStatement(sid="BalanceEventsTable", actions=["dynamodb:GetItem", "dynamodb:PutItem"], resources=[data.table.table_arn])
        )
        # The ledger entries behind a crossing (only when there is one): one Query of the user's UserLedger postings
        # at the change's moment, and one of Ledger's by-user index (operators' entries).
        self.role.add_to_policy(iam.PolicyStatement(sid="UserLedgerTable", actions=["dynamodb:Query"], resources=[tables.user_ledger.table_arn]))
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="LedgerIndexUserIdTimestampIndex",
                actions=["dynamodb:Query"],
                resources=[f"{tables.ledger.table_arn}/index/{contract.LEDGER_BY_USER_INDEX}"],
            )
        )
        # The default bus, and only events of our own source.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="PublishBalanceEvents",
                actions=["events:PutEvents"],
                resources=[stack.format_arn(service="events", resource="event-bus", resource_name=contract.DEFAULT_EVENT_BUS)],
                conditions={"StringEquals": {"events:source": config.balance_events.source}},
            )
        )
        self.log_group.grant_write(self.role)
        # The mapping's on-failure destination adds the failure queue's SendMessage/GetQueueAttributes/GetQueueUrl:
        # Lambda's poller uses the role (_read_stream grants the stream read).


class BalanceEventsAlarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        function: lambda_.IFunction,
        failure_queue: sqs.IQueue,
        ops_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        notify = cloudwatch_actions.SnsAction(ops_topic)
        healthy_without_data = cloudwatch.TreatMissingData.NOT_BREACHING
        gte = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        specs = self._specs(config, function, failure_queue)
        assert tuple(spec[0] for spec in specs) == BALANCE_EVENT_ALARM_CONCERNS
        self.all: list[cloudwatch.Alarm] = []
        for concern, metric, threshold, description in specs:
            alarm = cloudwatch.Alarm(
                self,
                concern,
                alarm_name=config.names.alarm(concern),
                alarm_description=description,
                metric=metric,
                threshold=threshold,
                comparison_operator=gte,
                evaluation_periods=1,
                treat_missing_data=healthy_without_data,
                actions_enabled=config.alarm_actions_enabled,
            )
            alarm.add_alarm_action(notify)
            alarm.add_ok_action(notify)
            self.all.append(alarm)

    @staticmethod
    def _specs(config: StageConfig, function: lambda_.IFunction, failure_queue: sqs.IQueue) -> list[tuple[str, cloudwatch.IMetric, float, str]]:
        """The alarms, a table: concern, metric, threshold (greater or equal alarms), description. Metric names and
        statistics as AWS documents them (AWS Lambda Developer Guide, "Types of metrics for Lambda functions": IteratorAge,
        Maximum, in milliseconds, for stream event source mappings; DestinationDeliveryFailures, Sum, also for a stream
        mapping's on-failure destination; Amazon SQS Developer Guide, "Available CloudWatch metrics for Amazon SQS")."""
        five_minutes = Duration.minutes(5)
        return [
            (
                "balance-events-errors",
                function.metric_errors(statistic="Sum", period=five_minutes),
                1,
                "The balance-events function raised: a whole stream batch is being retried. Check its logs.",
            ),
            # Records wait: publishing fails (EventBridge, the markers table) or the function is stuck on a record.
            (
                "balance-events-iterator-age",
                function.metric("IteratorAge", statistic="Maximum", period=five_minutes),
                Duration.minutes(15).to_milliseconds(),
                "Balance events lag the Credits stream by 15 minutes or more; after 6 h records go to the failure queue.",
            ),
            (
                "balance-events-failures",
                cloudwatch.Metric(
                    namespace=METRICS_NAMESPACE,
                    metric_name=Metric.BALANCE_EVENT_FAILURES,
                    dimensions_map={"service": SERVICE_NAME, "stage": config.stage},
                    statistic="Sum",
                    period=five_minutes,
                ),
                5,
                "Balance events failed to publish 5 times in 5 minutes (EventBridge refusing or failing).",
            ),
            (
                "balance-events-failed-batches",
                failure_queue.metric_approximate_number_of_messages_visible(statistic="Maximum", period=five_minutes),
                1,
                "Stream batches were given up and described in the balance-events failure queue: their crossings "
                "may not have been published (docs/events.md, 'When records are given up').",
            ),
            # Lambda could not put a given-up batch's description in the failure queue: nothing records that batch.
            (
                "balance-events-delivery-failures",
                function.metric("DestinationDeliveryFailures", statistic="Sum", period=five_minutes),
                1,
                "Lambda could not describe given-up stream batches in the failure queue: their crossings may be unpublished "
                "and nothing records which; compare the ledger with the BalanceEvents history (docs/events.md).",
            ),
            # SQS deletes a description after 14 days, and with it the only pointer to that batch (OLDEST_MESSAGE_ALARM).
            (
                "balance-events-failed-batches-age",
                failure_queue.metric_approximate_age_of_oldest_message(statistic="Maximum", period=Duration.hours(1)),
                OLDEST_MESSAGE_ALARM.to_seconds(),
                "A given-up stream batch has waited 10 days in the balance-events failure queue; SQS deletes it at 14 days.",
            ),
            # A balance changed with no ledger entry behind it (docs/operations.md, "Unexplained balance changes"): one
            # minute, one change, so a direct write to Credits is alarmed within about a minute of its stream record.
            (
                "unexplained-balance-changes",
                cloudwatch.Metric(
                    namespace=METRICS_NAMESPACE,
                    metric_name=Metric.UNEXPLAINED_BALANCE_CHANGES,
                    dimensions_map={"service": SERVICE_NAME, "stage": config.stage},
                    statistic="Sum",
                    period=Duration.minutes(1),
                ),
                1,
                "A balance changed and no ledger entry explains it (a direct write to Credits, a hand edit): the alert names "
                "the user, the change and the commands to book or undo it.",
            ),
        ]
