"""Credits in (docs/events.md, "Credits in"): the rule that brings billing's and support's events to the function,
and billing's managed policy.

- CreditsInRule (compute stack): `cc-reconciler-credits-in-{stage}`, source `credits.billing` and its three
  detail-types, to the reconciler function with the render rule's delivery retries and the same dead-letter queue
  (whose policy admits this rule by name: infra/constructs/dead_letter_queue.py).
- BillingAccess (compute stack): `cc-reconciler-billing-{stage}`, attached by an account admin to billing's and
  support's roles: `events:PutEvents` on the default bus for exactly that source and those detail-types. Nothing
  else: no table, no function, no other event.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import StageConfig
from infra.constructs.reconciler_function import EVENT_DELIVERY_MAX_AGE, EVENT_DELIVERY_RETRIES
from reconciler import contract

CREDITS_IN_EVENTS = events.EventPattern(source=[contract.CREDITS_IN_EVENT_SOURCE], detail_type=list(contract.CREDITS_IN_EVENT_DETAIL_TYPES))


class CreditsInRule(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, function: lambda_.IFunction, dead_letter_queue: sqs.IQueue
    ) -> None:
        super().__init__(scope, construct_id)
        self.rule = events.Rule(
            self,
            "Rule",
            rule_name=config.names.credits_in_rule,
            description="Credits in (purchases, grants, revocations) to apply with their ledger entries",
            event_pattern=CREDITS_IN_EVENTS,
            targets=[
                targets.LambdaFunction(
                    function,
                    retry_attempts=EVENT_DELIVERY_RETRIES,
                    max_event_age=EVENT_DELIVERY_MAX_AGE,
                    dead_letter_queue=sqs.Queue.from_queue_arn(self, "DeadLetterQueue", dead_letter_queue.queue_arn),
                )
            ],
        )


class BillingAccess(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        bus = Stack.of(self).format_arn(service="events", resource="event-bus", resource_name=contract.DEFAULT_EVENT_BUS)
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            managed_policy_name=config.names.billing_policy,
            description="Billing's and support's access to the reconciler: put credits.purchased, credits.granted and credits.revoked, nothing else",
            statements=[
                iam.PolicyStatement(
                    sid="PublishCreditsIn",
                    actions=["events:PutEvents"],
                    resources=[bus],
                    conditions={
                        "StringEquals": {"events:source": contract.CREDITS_IN_EVENT_SOURCE},
                        "ForAllValues:StringEquals": {"events:detail-type": list(contract.CREDITS_IN_EVENT_DETAIL_TYPES)},
                    },
                )
            ],
        )
