"""The topic that pages operators: alarm transitions and the function's own alerts."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import StageConfig


class OpsTopic(Construct):
    """An SSL-only topic encrypted with its own customer-managed key.

    Not the AWS-managed alias/aws/sns key: its policy cannot be changed, so CloudWatch
    alarms could never publish to a topic encrypted with it.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
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
