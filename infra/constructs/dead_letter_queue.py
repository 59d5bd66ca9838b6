"""The queue where events the reconciler could not settle wait for an operator."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import StageConfig


class DeadLetterQueue(Construct):
    """Receives EventBridge delivery failures, Lambda async on-failure records and the
    invalid events the function parks itself."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, queue_name: str | None = None, rule_name: str | None = None
    ) -> None:
        """The stage's DLQ (`cc-reconciler-dlq-{stage}`, for the events rule), or another (the deployed shadow's) by name."""
        super().__init__(scope, construct_id)
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=queue_name or config.names.dead_letter_queue,
            retention_period=Duration.days(14),  # the SQS maximum: time for an operator to replay
            # SQS's largest (1 MiB), set explicitly: a queue created before SQS raised its default (v1's, adopted)
            # keeps 256 KiB, and an invalid event of EventBridge's full 256 KB must fit whole with its reasons.
            max_message_size_bytes=1024 * 1024,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            removal_policy=config.removal_policy,
        )
        # EventBridge's delivery-failure messages need the queue's permission. The rule lives in the
        # compute stack, which already depends on this one, so the grant names the rule by its contract
        # name instead of by reference (a reference would make the two stacks depend on each other).
        # The compute stack hands the rule an imported view of this queue so CDK adds no second grant.
        # The stage's credits-in rule (purchases, grants, revocations) parks its undeliverable events here too; the
        # deployed shadow's queue takes only its own rule's.
        rule_names = [rule_name] if rule_name else [config.names.events_rule, config.names.credits_in_rule]
        rule_arns = [Stack.of(self).format_arn(service="events", resource="rule", resource_name=name) for name in rule_names]
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowReconcilerEventRuleDeadLetters",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": rule_arns}},
            )
        )
        reason = (
            "This queue is itself the dead-letter queue of the reconciler's EventBridge target and async invocations; "
            "a dead-letter queue of a dead-letter queue would only hide messages."
        )
        Validations.of(self.queue).acknowledge(
            Acknowledgment(id="AwsSolutions::AwsSolutions-SQS3", reason=reason),
            Acknowledgment(id="Serverless::Serverless-SQSRedrivePolicy", reason=reason),
        )
