"""Creates the reconciler's resources on the local endpoint from the synthesized CloudFormation templates.

The schema is the template's, not a second hand-written one: table keys and indexes, queue and topic
names, the event rule's pattern and the function's environment all come from what `cdk synth` produced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from reconciler.config import (
    ENV_CREDITS_TABLE,
    ENV_DLQ_URL,
    ENV_JOBS_TABLE,
    ENV_LEDGER_TABLE,
    ENV_OPS_TOPIC_ARN,
)

# EventBridge cannot invoke an in-process handler, so the rule targets this queue and a poller invokes.
INVOKE_QUEUE = "cc-reconciler-local-invocations"


@dataclass
class LocalResources:
    stage: str
    tables: dict[str, str] = field(default_factory=dict)  # logical role (Jobs/Credits/Ledger) -> name
    queues: dict[str, str] = field(default_factory=dict)  # queue name -> URL
    topics: dict[str, str] = field(default_factory=dict)  # topic name -> ARN
    rules: dict[str, dict] = field(default_factory=dict)  # rule name -> event pattern
    function_name: str = ""
    function_environment: dict[str, str] = field(default_factory=dict)
    invoke_queue_url: str = ""

    @property
    def dlq_url(self) -> str:
        return self.queues[f"cc-reconciler-dlq-{self.stage}"]

    @property
    def ops_topic_arn(self) -> str:
        return self.topics[f"ops-alerts-{self.stage}"]

    def runtime_environment(self) -> dict[str, str]:
        """The function's environment as the template sets it, with references resolved locally."""
        env = dict(self.function_environment)
        env.update(
            {
                ENV_JOBS_TABLE: self.tables["Jobs"],
                ENV_CREDITS_TABLE: self.tables["Credits"],
                ENV_LEDGER_TABLE: self.tables["Ledger"],
                ENV_DLQ_URL: self.dlq_url,
                ENV_OPS_TOPIC_ARN: self.ops_topic_arn,
                # No X-Ray daemon locally.
                "POWERTOOLS_TRACE_DISABLED": "true",
            }
        )
        return env


def resources_of(templates: Mapping[str, dict], *types: str) -> Iterable[tuple[str, dict]]:
    for template in templates.values():
        for logical_id, resource in template.get("Resources", {}).items():
            if resource.get("Type") in types:
                yield logical_id, resource.get("Properties", {})


def provision(templates: Mapping[str, dict], stage: str, session: Any) -> LocalResources:
    local = LocalResources(stage=stage)
    dynamodb, sqs, sns, events = (session.client(name) for name in ("dynamodb", "sqs", "sns", "events"))
    for _, props in resources_of(templates, "AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"):
        name = _literal(props["TableName"], "TableName")
        request = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if props.get("GlobalSecondaryIndexes"):
            request["GlobalSecondaryIndexes"] = [
                {key: index[key] for key in ("IndexName", "KeySchema", "Projection")} for index in props["GlobalSecondaryIndexes"]
            ]
        dynamodb.create_table(**request)
        local.tables[name.rsplit("-", 1)[0]] = name
    for _, props in resources_of(templates, "AWS::SQS::Queue"):
        name = _literal(props["QueueName"], "QueueName")
        attributes = {"MessageRetentionPeriod": str(props.get("MessageRetentionPeriod", 345600))}
        local.queues[name] = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    for _, props in resources_of(templates, "AWS::SNS::Topic"):
        name = _literal(props["TopicName"], "TopicName")
        local.topics[name] = sns.create_topic(Name=name)["TopicArn"]
    for _, props in resources_of(templates, "AWS::Lambda::Function"):
        local.function_name = _literal(props["FunctionName"], "FunctionName")
        variables = props.get("Environment", {}).get("Variables", {})
        local.function_environment = {key: value for key, value in variables.items() if isinstance(value, str)}
    local.invoke_queue_url = sqs.create_queue(QueueName=INVOKE_QUEUE)["QueueUrl"]
    invoke_queue_arn = sqs.get_queue_attributes(QueueUrl=local.invoke_queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for _, props in resources_of(templates, "AWS::Events::Rule"):
        if "EventPattern" not in props:
            continue  # the timer-scan schedule: run locally with `reconciler scan --local`
        name = _literal(props["Name"], "Name")
        pattern = props["EventPattern"]
        events.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
        events.put_targets(Rule=name, Targets=[{"Id": "local-invoker", "Arn": invoke_queue_arn}])
        local.rules[name] = pattern
    missing = [role for role in ("Jobs", "Credits", "Ledger") if role not in local.tables]
    if missing or f"cc-reconciler-dlq-{stage}" not in local.queues or f"ops-alerts-{stage}" not in local.topics:
        raise RuntimeError(f"the templates for {stage} lack expected resources (tables missing: {missing})")
    return local


def _literal(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise RuntimeError(f"{what} must be a literal name in the template, got {value!r}")
    return value
