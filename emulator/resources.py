"""Creates the reconciler's resources on the local endpoint from the synthesized CloudFormation templates.

The schema is the template's, not a second hand-written one: table keys and indexes, queue and topic
names, the event rule's pattern and the function's environment all come from what `cdk synth` produced.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.contract import (
    ENV_BALANCE_EVENTS_TABLE,
    ENV_CREDITS_TABLE,
    ENV_DLQ_URL,
    ENV_JOBS_TABLE,
    ENV_LEDGER_TABLE,
    ENV_OPS_TOPIC_ARN,
    ENV_SETTLEMENTS_TABLE,
    ENV_USER_LEDGER_TABLE,
    HANDLER,
    HOLDS_HANDLER,
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
    # Lambda's async invocation as the template configures it (EventInvokeConfig).
    max_retry_attempts: int = 2
    max_event_age_seconds: int = 21600
    # What `provision(..., operable=True)` also created, so the operator's commands have something to act on.
    alarms: list[str] = field(default_factory=list)
    archive: str = ""
    log_group: str = ""

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
                ENV_USER_LEDGER_TABLE: self.tables["UserLedger"],
                ENV_SETTLEMENTS_TABLE: self.tables["Settlements"],
                ENV_DLQ_URL: self.dlq_url,
                ENV_OPS_TOPIC_ARN: self.ops_topic_arn,
                **({ENV_BALANCE_EVENTS_TABLE: self.tables["BalanceEvents"]} if "BalanceEvents" in self.tables else {}),
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


def provision(templates: Mapping[str, dict], stage: str, session: Any, operable: bool = False) -> LocalResources:
    """The data resources, the rule (to the local invoke queue) and, with `operable`, what the operator's
    commands act on: the function (as configuration; it runs in-process), its log group, alarms, archive."""
    local = LocalResources(stage=stage)
    dynamodb, sqs, sns, events = (session.client(name) for name in ("dynamodb", "sqs", "sns", "events"))
    local.tables.update(create_tables(templates, dynamodb))
    local.queues.update(create_queues(templates, sqs))
    for _, props in resources_of(templates, "AWS::SNS::Topic"):
        name = _literal(props["TopicName"], "TopicName")
        local.topics[name] = sns.create_topic(Name=name)["TopicArn"]
    for _, props in _reconciler_functions(templates):
        local.function_name = _literal(props["FunctionName"], "FunctionName")
        variables = props.get("Environment", {}).get("Variables", {})
        local.function_environment = {key: value for key, value in variables.items() if isinstance(value, str)}
    local.invoke_queue_url = sqs.create_queue(QueueName=INVOKE_QUEUE)["QueueUrl"]
    local.rules.update(route_rules(templates, events, sqs, local.invoke_queue_url))
    for _, props in resources_of(templates, "AWS::Lambda::EventInvokeConfig"):
        local.max_retry_attempts = int(props.get("MaximumRetryAttempts", local.max_retry_attempts))
        local.max_event_age_seconds = int(props.get("MaximumEventAgeInSeconds", local.max_event_age_seconds))
    if operable:
        _provision_operable(templates, local, session)
    missing = [role for role in ("Jobs", "Credits", "Ledger", "UserLedger", "Settlements") if role not in local.tables]
    if missing or f"cc-reconciler-dlq-{stage}" not in local.queues or f"ops-alerts-{stage}" not in local.topics:
        raise RuntimeError(f"the templates for {stage} lack expected resources (tables missing: {missing})")
    return local


def create_tables(templates: Mapping[str, dict], dynamodb: Any) -> dict[str, str]:
    """The templates' tables, as their schema says; logical role (the name without its stage) -> name."""
    created = {}
    for _, props in resources_of(templates, "AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"):
        name = _literal(props["TableName"], "TableName")
        request = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if props.get("StreamSpecification"):  # Credits: the balance-events stream (moto emulates DynamoDB Streams)
            request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": props["StreamSpecification"]["StreamViewType"]}
        if props.get("GlobalSecondaryIndexes"):
            request["GlobalSecondaryIndexes"] = [
                {key: index[key] for key in ("IndexName", "KeySchema", "Projection")} for index in props["GlobalSecondaryIndexes"]
            ]
        dynamodb.create_table(**request)
        created[name.rsplit("-", 1)[0]] = name
    return created


def create_queues(templates: Mapping[str, dict], sqs: Any) -> dict[str, str]:
    """The templates' queues; name -> URL."""
    created = {}
    for _, props in resources_of(templates, "AWS::SQS::Queue"):
        name = _literal(props["QueueName"], "QueueName")
        attributes = {"MessageRetentionPeriod": str(props.get("MessageRetentionPeriod", 345600))}
        created[name] = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return created


def route_rules(templates: Mapping[str, dict], events: Any, sqs: Any, queue_url: str) -> dict[str, dict]:
    """The templates' event rules, each with its pattern, to the queue a local invoker polls (EventBridge cannot invoke
    an in-process handler); name -> pattern. A schedule is left out (run locally with `reconciler scan --local`)."""
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    routed = {}
    for _, props in resources_of(templates, "AWS::Events::Rule"):
        if "EventPattern" not in props:
            continue
        name = _literal(props["Name"], "Name")
        events.put_rule(Name=name, EventPattern=json.dumps(props["EventPattern"]), State="ENABLED")
        events.put_targets(Rule=name, Targets=[{"Id": "local-invoker", "Arn": queue_arn}])
        routed[name] = props["EventPattern"]
    return routed


def _reconciler_functions(templates: Mapping[str, dict]) -> Iterable[tuple[str, dict]]:
    """The settlement function (cc-agent-reconciler-{stage}); the balance-events function runs from the local
    stream poller (emulator/stream_poller.py)."""
    return (
        (lid, props)
        for lid, props in resources_of(templates, "AWS::Lambda::Function")
        if str(props.get("FunctionName", "")).startswith("cc-agent-reconciler-")
    )


def _literal(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise RuntimeError(f"{what} must be a literal name in the template, got {value!r}")
    return value


# A zip with an empty central directory: enough for moto to create the function (it is never invoked there).
_EMPTY_ZIP = b"PK\x05\x06" + b"\x00" * 18


def _provision_operable(templates: Mapping[str, dict], local: LocalResources, session: Any) -> None:
    lambda_client, iam, logs, cloudwatch, events = (session.client(n) for n in ("lambda", "iam", "logs", "cloudwatch", "events"))
    for _, props in resources_of(templates, "AWS::Logs::LogGroup"):
        name = props.get("LogGroupName")
        if isinstance(name, str) and name.startswith("/aws/lambda/"):
            logs.create_log_group(logGroupName=name)
            if name.startswith("/aws/lambda/cc-agent-reconciler-"):  # the settlement function's (the CLI's `logs tail`)
                local.log_group = name
    for _, props in _invocable_functions(templates):
        _create_function(lambda_client, iam, props, local)
    for _, props in resources_of(templates, "AWS::CloudWatch::Alarm"):
        request = _alarm_request(props, local)
        if request is not None:
            cloudwatch.put_metric_alarm(**request)
            local.alarms.append(request["AlarmName"])
    bus_arn = events.describe_event_bus(Name="default")["Arn"]
    for _, props in resources_of(templates, "AWS::Events::Archive"):
        request = {
            "ArchiveName": _literal(props["ArchiveName"], "ArchiveName"),
            "EventSourceArn": bus_arn,
            "RetentionDays": int(props.get("RetentionDays", 0)),
        }
        if "EventPattern" in props:
            request["EventPattern"] = json.dumps(props["EventPattern"])
        events.create_archive(**request)
        local.archive = request["ArchiveName"]


def _create_function(lambda_client: Any, iam: Any, props: dict, local: LocalResources) -> None:
    """A function as configuration (code runs in-process: emulator/functions.py answers its Invoke)."""
    name = _literal(props["FunctionName"], "FunctionName")
    role = iam.create_role(RoleName=f"{name}-local", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    created = lambda_client.create_function(
        FunctionName=name,
        Runtime=props.get("Runtime", "python3.12"),
        Role=role["Role"]["Arn"],
        Handler=props.get("Handler", HANDLER),
        Code={"ZipFile": _EMPTY_ZIP},
        Timeout=int(props.get("Timeout", 30)),
        MemorySize=int(props.get("MemorySize", 512)),
        Environment={"Variables": local.runtime_environment()},
        Description="local stand-in: configuration only; its handler runs in-process",
    )
    if "ReservedConcurrentExecutions" in props:
        lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=int(props["ReservedConcurrentExecutions"]))
    if name == local.function_name:
        # The template's on-failure destination too: where a paused function's asynchronous invokes go unrun.
        _, _, _, region, account, *_ = created["FunctionArn"].split(":")
        dlq_arn = f"arn:aws:sqs:{region}:{account}:cc-reconciler-dlq-{local.stage}"
        lambda_client.put_function_event_invoke_config(
            FunctionName=name,
            MaximumRetryAttempts=local.max_retry_attempts,
            MaximumEventAgeInSeconds=local.max_event_age_seconds,
            DestinationConfig={"OnFailure": {"Destination": dlq_arn}},
        )


def _invocable_functions(templates: Mapping[str, dict]) -> Iterable[tuple[str, dict]]:
    """The functions an operator or the pipeline invokes: the settlement function and the hold function."""
    return ((lid, props) for lid, props in resources_of(templates, "AWS::Lambda::Function") if props.get("Handler") in (HANDLER, HOLDS_HANDLER))


def _reference(value: Any, local: LocalResources) -> str | None:
    """A cross-stack reference in an alarm, resolved locally where its target is known (else None)."""
    if isinstance(value, str):
        return value
    text = json.dumps(value)
    if "ReconcilerFunction" in text:
        return local.function_name
    if "DeadLetterQueue" in text and "QueueName" in text:
        return f"cc-reconciler-dlq-{local.stage}"
    if "OpsTopic" in text:
        return local.ops_topic_arn
    for role, name in local.tables.items():
        if role in text:
            return name
    return None


def _alarm_request(props: dict, local: LocalResources) -> dict | None:
    keys = (
        "AlarmName",
        "AlarmDescription",
        "ActionsEnabled",
        "ComparisonOperator",
        "EvaluationPeriods",
        "DatapointsToAlarm",
        "MetricName",
        "Namespace",
        "Statistic",
        "ExtendedStatistic",
        "Period",
        "Threshold",
        "TreatMissingData",
        "Unit",
    )
    request = {key: props[key] for key in keys if key in props}
    if not isinstance(request.get("AlarmName"), str):
        return None
    for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
        resolved = [_reference(action, local) for action in props.get(key, [])]
        request[key] = [arn for arn in resolved if arn]
    dimensions = []
    for dimension in props.get("Dimensions", []):
        value = _reference(dimension.get("Value"), local)
        if value is None:
            return None
        dimensions.append({"Name": dimension["Name"], "Value": value})
    if dimensions:
        request["Dimensions"] = dimensions
    if "Metrics" in props:
        metrics = json.loads(json.dumps(props["Metrics"]))
        for query in metrics:
            stat = query.get("MetricStat", {})
            for dimension in stat.get("Metric", {}).get("Dimensions", []):
                value = _reference(dimension.get("Value"), local)
                if value is None:
                    return None
                dimension["Value"] = value
        request["Metrics"] = metrics
    for key in ("EvaluationPeriods", "DatapointsToAlarm", "Period"):
        if key in request:
            request[key] = int(request[key])
    if "Threshold" in request:
        request["Threshold"] = float(request["Threshold"])
    return request
