"""The topic that pages operators: alarm transitions and the function's own alerts."""

from __future__ import annotations

from aws_cdk import Acknowledgment, ArnFormat, Duration, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import StageConfig
from reconciler.contract import EVERY_ALARM_CONCERN

SUBSCRIPTION_PROTOCOLS = {
    "email": sns.SubscriptionProtocol.EMAIL,
    "https": sns.SubscriptionProtocol.HTTPS,
    "sqs": sns.SubscriptionProtocol.SQS,
}


def alarm_arns(scope: Construct, config: StageConfig) -> list[str]:
    """The ARNs of the stage's alarms, built from their contract names: the alarms live in the monitoring
    stack, which depends on this one, so a reference would be a cycle."""
    stack = Stack.of(scope)
    return [
        stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=config.names.alarm(concern),
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        for concern in EVERY_ALARM_CONCERN
    ]


class OpsTopic(Construct):
    """An SSL-only topic encrypted with its own customer-managed key, that the stage's alarms may publish to.

    Not the AWS-managed alias/aws/sns key: its policy cannot be changed, so CloudWatch alarms could never
    publish to a topic encrypted with it. A CloudFormation topic policy replaces SNS's default policy, so the
    CloudWatch grant must be in it explicitly (with only the SSL-only deny, no alarm notification arrives).
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # Confused-deputy protection: CloudWatch acts for this account's alarms of this stage only.
        from_this_stages_alarms = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {"aws:SourceArn": alarm_arns(self, config)},
        }
        self.key = kms.Key(
            self,
            "Key",
            description=f"Encrypts the {config.names.ops_topic} SNS topic",
            enable_key_rotation=True,
            removal_policy=config.removal_policy,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],  # in a key policy "*" means this key
                conditions=from_this_stages_alarms,
            )
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=config.names.ops_topic,
            master_key=self.key,
            enforce_ssl=True,
        )
        self.topic.apply_removal_policy(config.removal_policy)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=from_this_stages_alarms,
            )
        )
        self.dead_letter_queue = self._dead_letter_queue(config)
        # Subscribers come from the stage's configuration only; e-mail and HTTPS ones must be confirmed. An alert
        # SNS cannot deliver after its retries goes to the dead-letter queue instead of being dropped (CDK adds
        # the queue policy admitting this topic only). Source: Amazon SNS Developer Guide, "Amazon SNS dead-letter
        # queues (DLQs)" (a subscription's RedrivePolicy {"deadLetterTargetArn": ...}, a standard SQS queue in the
        # topic's account and region); AWS::SNS::Subscription RedrivePolicy in the CloudFormation reference.
        for number, subscription in enumerate(config.alert_subscriptions, 1):
            sns.Subscription(
                self,
                f"Subscription{number}",
                topic=self.topic,
                protocol=SUBSCRIPTION_PROTOCOLS[subscription.protocol],
                endpoint=subscription.endpoint,
                dead_letter_queue=self.dead_letter_queue,
            )

    def _dead_letter_queue(self, config: StageConfig) -> sqs.Queue:
        """In every stage, subscribed or not, so the alarm on it exists in all three (dev has no subscriber)."""
        queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=config.names.alerts_dead_letter_queue,
            retention_period=Duration.days(14),  # the SQS maximum
            # SQS-managed keys: SNS can deliver to it without a grant on a customer key.
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            removal_policy=config.removal_policy,
        )
        reason = "This queue is itself the dead-letter queue of the ops topic's subscriptions; a queue behind it would only hide alerts."
        Validations.of(queue).acknowledge(
            Acknowledgment(id="AwsSolutions::AwsSolutions-SQS3", reason=reason),
            Acknowledgment(id="Serverless::Serverless-SQSRedrivePolicy", reason=reason),
        )
        return queue
