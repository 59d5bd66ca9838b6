"""The liability snapshot (docs/events.md, "The liability"): the reconciler function's scheduled job that sums every
Credits item's allocation by category and writes the book's totals to one BalanceEvents item.

- its own schedule (`cc-reconciler-liability-snapshot-{stage}`, StageConfig.liability_snapshot_minutes) with its own
  input ({"job": LIABILITY_SNAPSHOT_JOB}: handlers/entry.py), so it never rides on a timer-scan tick;
- the function's grants for it: Scan of Credits for the money figures only (dynamodb:Attributes, SPECIFIC_ATTRIBUTES:
  the settlement function still cannot read a whole Credits item), PutItem of BalanceEvents;
- the BalanceEvents table's name in the function's environment.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.config import StageConfig
from reconciler import contract


class LiabilitySnapshot(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        function: lambda_.Function,
        role: iam.IRole,
        credits: dynamodb.ITable,
        balance_events: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        rate = Duration.minutes(config.liability_snapshot_minutes)
        function.add_environment(contract.ENV_BALANCE_EVENTS_TABLE, balance_events.table_name)
        self.rule = events.Rule(
            self,
            "Schedule",
            rule_name=config.names.liability_snapshot_rule,
            description="Snapshot of the book's outstanding credits by category (one Scan of Credits)",
            schedule=events.Schedule.rate(rate),
            # A run that could not be delivered before the next is superseded by it.
            targets=[
                targets.LambdaFunction(
                    function,
                    event=events.RuleTargetInput.from_object({"job": contract.LIABILITY_SNAPSHOT_JOB}),
                    max_event_age=rate,
                )
            ],
        )
        Validations.of(self.rule).acknowledge(
            Acknowledgment(
                id="Serverless::Serverless-EventBusDLQ",
                reason="A snapshot run that cannot be delivered is superseded by the next; `liability` shows the snapshot's age.",
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="LiabilitySnapshotScan",
                actions=["dynamodb:Scan"],
                resources=[credits.table_arn],
                conditions={
                    "ForAllValues:StringEquals": {"dynamodb:Attributes": [contract.USER_ID_ATTRIBUTE, *contract.MONEY_ATTRIBUTES]},
                    "StringEqualsIfExists": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
                },
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="LiabilitySnapshotPut", actions=["dynamodb:PutItem"], resources=[balance_events.table_arn])
        )
