"""The deployed shadow (`--context mode=shadow`, docs/migration.md step 1): v2's settlement code beside a live v1,
receiving the same events, writing nothing to v1's tables.

Every resource has a name of its own (ResourceNames.shadow_*), none of v1's: its function, a second rule on the
default bus with v1's event pattern, its decisions table, its DLQ and the alarm on it (to `ops-alerts-{stage}`).
v1's tables are imported by name, never created, and its role may not write to any of them: the only v1 table it
may touch is Jobs, with GetItem (the shadow store's `load_job`); its writes go to its own table.
"""

from __future__ import annotations

import json

from aws_cdk import Acknowledgment, ArnFormat, Duration, Stack, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import StageConfig
from infra.constructs.alarms import GT, NO_DATA_IS_HEALTHY
from infra.constructs.dead_letter_queue import DeadLetterQueue
from infra.constructs.reconciler_function import RENDER_EVENTS, events_rule, python_function
from reconciler import contract
from reconciler.contract import SHADOW_ALARM_CONCERNS, SHADOW_ENTRY_KEY, SHADOW_HANDLER, SHADOW_JOB_KEY

# What the shadow's code calls (tests/integration/emulator/test_deployed_shadow.py checks these against its calls):
#   ShadowDecisions: GetItem (an event decided already, a job's claim), PutItem (a decision, a claim).
#   Jobs (v1's):     GetItem only: the shadow store's one live read (load_job); nothing else on any of v1's tables.
SHADOW_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem")
V1_JOBS_ACTIONS = ("dynamodb:GetItem",)


class DeployedShadow(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        names = config.names
        self.decisions = dynamodb.Table(
            self,
            "Decisions",
            table_name=names.shadow_table,
            partition_key=dynamodb.Attribute(name=SHADOW_JOB_KEY, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=SHADOW_ENTRY_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=config.point_in_time_recovery
            ),
            removal_policy=config.removal_policy,
        )
        self.dead_letter_queue = DeadLetterQueue(
            self, "DeadLetterQueue", config=config, queue_name=names.shadow_dead_letter_queue, rule_name=names.shadow_rule
        ).queue
        # v1's tables, by name: imported views (no resource in this stack), read by the shadow store.
        self.v1_jobs = dynamodb.Table.from_table_name(self, "V1Jobs", names.jobs_table)
        self.log_group, self.role, self.function = python_function(
            self,
            config=config,
            function_name=names.shadow_function,
            handler=SHADOW_HANDLER,
            environment=shadow_environment(config, self.decisions.table_name, self.dead_letter_queue.queue_url),
            memory_size=512,
            timeout=Duration.seconds(30),
            retry_attempts=config.async_invoke_max_retries,
            max_event_age=config.async_invoke_max_event_age,
            on_failure=destinations.SqsDestination(self.dead_letter_queue),
        )
        self.rule = events_rule(
            self,
            names.shadow_rule,
            "The render events v1 settles, also to the shadow (decides, writes only its own table)",
            RENDER_EVENTS,
            self.function,
            self.dead_letter_queue,
        )
        self.dead_letter_alarm = self._dead_letter_alarm(config)
        self._grant()
        Validations.of(self.function).acknowledge(
            Acknowledgment(
                id="Serverless::Serverless-LambdaDLQ",
                reason="Its async on-failure destination is the shadow's dead-letter queue (EventInvokeConfig).",
            )
        )

    def _dead_letter_alarm(self, config: StageConfig) -> cloudwatch.Alarm:
        """Pages on `ops-alerts-{stage}` (v1's topic, then v2's once adopted: imported by name, its policy admits this
        alarm) when an event waits in the shadow's DLQ: the shadow never decided it, so its report cannot count it."""
        names = config.names
        (concern,) = SHADOW_ALARM_CONCERNS
        topic_arn = Stack.of(self).format_arn(service="sns", resource=names.ops_topic, arn_format=ArnFormat.NO_RESOURCE_NAME)
        notify = cloudwatch_actions.SnsAction(sns.Topic.from_topic_arn(self, "OpsTopic", topic_arn))
        alarm = cloudwatch.Alarm(
            self,
            "DeadLetterAlarm",
            alarm_name=names.alarm(concern),
            alarm_description=f"Events wait in {names.shadow_dead_letter_queue}: the deployed shadow did not decide them, so "
            "its report (reconciler shadow report --deployed) leaves them out. Read them and fix the cause; v1 is not affected.",
            metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(statistic="Maximum", period=Duration.minutes(5)),
            threshold=0,
            comparison_operator=GT,
            evaluation_periods=1,
            treat_missing_data=NO_DATA_IS_HEALTHY,  # SQS stops publishing only for a queue empty and idle for hours
            actions_enabled=config.alarm_actions_enabled,
        )
        alarm.add_alarm_action(notify)
        alarm.add_ok_action(notify)
        return alarm

    def _grant(self) -> None:
        self.role.add_to_policy(iam.PolicyStatement(sid="ShadowDecisions", actions=list(SHADOW_TABLE_ACTIONS), resources=[self.decisions.table_arn]))
        self.role.add_to_policy(iam.PolicyStatement(sid="ReadV1Jobs", actions=list(V1_JOBS_ACTIONS), resources=[self.v1_jobs.table_arn]))
        self.log_group.grant_write(self.role)


def shadow_environment(config: StageConfig, decisions_table: str, dlq_url: str) -> dict[str, str]:
    """What runtime/reconciler/config.py's ShadowConfig reads: v2's settlement settings, v1's table names, the shadow's
    table. UserLedger and Settlements are named because RuntimeConfig requires them; the shadow touches neither (its
    store writes nothing and reads no live settlement record: v1's stage has none before the adoption)."""
    names = config.names
    return {
        contract.ENV_STAGE: config.stage,
        contract.ENV_JOBS_TABLE: names.jobs_table,
        contract.ENV_CREDITS_TABLE: names.credits_table,
        contract.ENV_LEDGER_TABLE: names.ledger_table,
        contract.ENV_USER_LEDGER_TABLE: names.user_ledger_table,
        contract.ENV_SETTLEMENTS_TABLE: names.settlements_table,
        contract.ENV_LEGACY_RESERVATIONS_BEFORE: config.limits.legacy_reservations_before,
        contract.ENV_DLQ_URL: dlq_url,
        contract.ENV_PRICE_OVERRIDES: json.dumps(dict(config.price_overrides), sort_keys=True),
        contract.ENV_SHADOW_TABLE: decisions_table,
    }
