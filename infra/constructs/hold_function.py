"""The hold API (docs/pipeline.md): `cc-reconciler-reserve-{stage}`, invoked synchronously by the pipeline with
the AWS SDK's Invoke under IAM, and the pipeline's own managed policy.

- HoldFunction (compute stack): the function, its log group and a role that may write holds and nothing else: the
  balance (UpdateItem) and the job's settlement record (GetItem, PutItem, UpdateItem). It is the only writer of holds.
- PipelineAccess (compute stack): `cc-reconciler-pipeline-{stage}`, what the pipeline's role may do to the
  reconciler's resources: invoke the hold function, put its two events on the default bus, and update only its own
  attributes of a Jobs item (never a whole-item put or a delete, never Credits).
- HoldAlarms (monitoring stack): the hold function's errors and throttles.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import StageConfig
from infra.constructs.reconciler_function import python_function
from infra.constructs.tables import ReconcilerTables
from reconciler import contract

# A hold is one strong read and one transaction: well under a second; the caller's SDK retries a timeout.
HOLD_TIMEOUT = Duration.seconds(10)
HOLD_MEMORY_MB = 256


class HoldFunction(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, tables: ReconcilerTables, environment: dict[str, str]) -> None:
        super().__init__(scope, construct_id)
        self.log_group, self.role, self.function = python_function(
            self,
            config=config,
            function_name=config.names.hold_function,
            handler=contract.HOLDS_HANDLER,
            environment=environment,
            memory_size=HOLD_MEMORY_MB,
            timeout=HOLD_TIMEOUT,
            description="Holds credits for a job before it renders, and releases them (docs/pipeline.md)",
        )
        self.role.add_to_policy(iam.PolicyStatement(sid="HoldBalances", actions=["dynamodb:UpdateItem"], resources=[tables.credits.table_arn]))
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="HoldRecords",
                actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                resources=[tables.settlements.table_arn],
            )
        )
        self.log_group.grant_write(self.role)
        Validations.of(self.function).acknowledge(
            Acknowledgment(
                id="Serverless::Serverless-LambdaDLQ",
                reason="Invoked synchronously only (RequestResponse): the caller gets the error and retries the same hold, "
                "which is idempotent by job id; there is no asynchronous event to park.",
            )
        )


class PipelineAccess(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, tables: ReconcilerTables, hold_function: lambda_.IFunction
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        bus = stack.format_arn(service="events", resource="event-bus", resource_name=contract.DEFAULT_EVENT_BUS)
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            managed_policy_name=config.names.pipeline_policy,
            description="The render pipeline's access to the reconciler: holds through its function, its own Jobs attributes, its two events",
            statements=[
                iam.PolicyStatement(sid="PlaceHolds", actions=["lambda:InvokeFunction"], resources=[hold_function.function_arn]),
                # Reading a job is harmless (its settlement mirror included); writing is its own attributes only.
                iam.PolicyStatement(sid="ReadJobs", actions=["dynamodb:GetItem"], resources=[tables.jobs.table_arn]),
                iam.PolicyStatement(
                    sid="WriteOwnJobAttributes",
                    actions=["dynamodb:UpdateItem"],
                    resources=[tables.jobs.table_arn],
                    conditions={
                        "ForAllValues:StringEquals": {"dynamodb:Attributes": list(contract.PIPELINE_JOB_ATTRIBUTES)},
                        # No ALL_OLD/ALL_NEW: the reconciler's attributes would come back through the condition.
                        "StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE", "UPDATED_OLD", "UPDATED_NEW"]},
                    },
                ),
                iam.PolicyStatement(
                    sid="PublishRenderOutcomes",
                    actions=["events:PutEvents"],
                    resources=[bus],
                    conditions={
                        "StringEquals": {"events:source": contract.SETTLED_EVENT_SOURCE},
                        "ForAllValues:StringEquals": {"events:detail-type": list(contract.SETTLED_DETAIL_TYPES)},
                    },
                ),
            ],
        )


class HoldAlarms(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, function: lambda_.IFunction, ops_topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        notify = cloudwatch_actions.SnsAction(ops_topic)
        five_minutes = Duration.minutes(5)
        specs = {
            "holds-errors": (
                function.metric_errors(statistic="Sum", period=five_minutes),
                "The hold function failed: the pipeline's holds are retried.",
            ),
            "holds-throttles": (function.metric_throttles(statistic="Sum", period=five_minutes), "Hold calls were throttled: the pipeline waits."),
        }
        assert tuple(specs) == contract.HOLD_ALARM_CONCERNS
        self.all: list[cloudwatch.Alarm] = []
        for concern, (metric, description) in specs.items():
            alarm = metric.create_alarm(
                self,
                concern,
                alarm_name=config.names.alarm(concern),
                alarm_description=description,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(notify)
            alarm.add_ok_action(notify)
            self.all.append(alarm)
