"""The reconciler Lambda and everything that invokes it or that it may touch."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import Acknowledgment, ArnFormat, Duration, Stack, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import POWERTOOLS_LAYER_PARAMETER, StageConfig
from infra.constructs.acknowledged_statement import acknowledged_statement
from infra.constructs.tables import ReconcilerTables
from infra.runtime_asset import staged_runtime
from reconciler import contract
from reconciler.contract import (
    HANDLER,
    METRICS_NAMESPACE,
    OPENAI_SECRET_NAME,
    SERVICE_NAME,
    SETTLED_DETAIL_TYPES,
    SETTLED_EVENT_SOURCE,
    SMOKE_TEST_EVENT_SOURCE,
)

RUNTIME_DIR = Path(__file__).resolve().parents[2] / "runtime"


def powertools_environment(config: StageConfig) -> dict[str, str]:
    """What Powertools and runtime/reconciler/observability.py read: the same for every function of a stage."""
    return {
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_LOGGER_LOG_EVENT": "false",  # events carry user ids; keep them out of the logs
        # Written either way, so the template says it. "false": the runtime writes the trace id on its log lines
        # (tracing itself is Lambda's: no SDK in the function, docs/tracing.md).
        "POWERTOOLS_TRACE_DISABLED": "false" if config.tracing else "true",
        # Also the dimensionless series the v1 runbook reads (docs/metrics.md).
        contract.ENV_METRICS_DIMENSIONLESS: "true" if config.dimensionless_metrics else "false",
    }


def python_function(
    scope: Construct,
    *,
    config: StageConfig,
    function_name: str,
    handler: str,
    environment: dict[str, str],
    **options: object,
) -> tuple[logs.LogGroup, iam.Role, lambda_.Function]:
    """A function of the runtime asset on arm64 Python 3.12 with AWS's Powertools layer, X-Ray where the stage
    traces (`StageConfig.tracing`), its own log group and an explicit role (no AWSLambdaBasicExecutionRole: log
    writes to every log group), as `scope`'s LogGroup, Role, Powertools and Function children. `options` are the
    function's own (memory, timeout, ...)."""
    log_group = logs.LogGroup(
        scope,
        "LogGroup",
        log_group_name=f"/aws/lambda/{function_name}",
        retention=config.log_retention,
        removal_policy=config.removal_policy,
    )
    role = iam.Role(
        scope,
        "Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"Least-privilege role of {function_name}",
    )
    # CloudFormation resolves AWS's public SSM parameter at deploy time, so synthesis needs no credentials and the
    # template names no account-specific layer ARN.
    powertools = lambda_.LayerVersion.from_layer_version_arn(scope, "Powertools", f"{{{{resolve:ssm:{POWERTOOLS_LAYER_PARAMETER}}}}}")
    function = lambda_.Function(
        scope,
        "Function",
        function_name=function_name,
        runtime=lambda_.Runtime.PYTHON_3_12,
        architecture=lambda_.Architecture.ARM_64,
        handler=handler,
        # Without the operator tooling, with bytecode for Lambda's Python 3.12 where a 3.12 is here (infra/runtime_asset.py).
        code=lambda_.Code.from_asset(str(staged_runtime(RUNTIME_DIR))),
        layers=[powertools],
        # DISABLED writes no TracingConfig (Lambda's default, PassThrough) and no X-Ray grant; where the stage traces,
        # _trace turns it on with the grant in a policy of its own (ACTIVE would add it to the role's default policy).
        tracing=lambda_.Tracing.DISABLED,
        log_group=log_group,
        role=role,
        environment={**environment, **powertools_environment(config)},
        **options,
    )
    if config.tracing:
        _trace(function, role)
    _acknowledge_runtime(function, config)
    return log_group, role, function


def _acknowledge_runtime(function: lambda_.Function, config: StageConfig) -> None:
    pinned = (
        "Pinned to python3.12: AWS publishes the Powertools layer per Python version and the runtime is tested on 3.12; "
        "upgrading is a deliberate change, not a drift."
    )
    acknowledgements = [
        Acknowledgment(id="AwsSolutions::AwsSolutions-L1", reason=pinned),
        Acknowledgment(id="Serverless::Serverless-LambdaLatestVersion", reason=pinned),
    ]
    if not config.tracing:
        acknowledgements.append(
            Acknowledgment(
                id="Serverless::Serverless-LambdaTracing",
                reason="StageConfig.tracing is off in this stage (prod): the X-Ray SDK costs the cold start its import "
                "target (docs/benchmarks.md, section 3); staging traces prod's code and settings.",
            )
        )
    Validations.of(function).acknowledge(*acknowledgements)


def _trace(function: lambda_.Function, role: iam.Role) -> None:
    """Active X-Ray tracing, as Tracing.ACTIVE sets it, with its grant bound to its cdk-nag acknowledgement."""
    resource = function.node.default_child
    assert isinstance(resource, lambda_.CfnFunction)
    resource.tracing_config = lambda_.CfnFunction.TracingConfigProperty(mode="Active")
    xray = acknowledged_statement(
        role,
        "Tracing",
        iam.PolicyStatement(sid="XRay", actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"], resources=["*"]),
        ["Resource::*"],
        "X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) have no resource-level permissions.",
    )
    function.node.add_dependency(xray)  # Lambda sends segments from the first invocation


def function_environment(config: StageConfig, tables: ReconcilerTables, dead_letter_queue: sqs.IQueue, ops_topic: sns.ITopic) -> dict[str, str]:
    """The environment runtime/reconciler/config.py reads, as the settlement function and the hold function get it."""
    return {
        contract.ENV_STAGE: config.stage,
        contract.ENV_JOBS_TABLE: tables.jobs.table_name,
        contract.ENV_CREDITS_TABLE: tables.credits.table_name,
        contract.ENV_LEDGER_TABLE: tables.ledger.table_name,
        contract.ENV_USER_LEDGER_TABLE: tables.user_ledger.table_name,
        contract.ENV_SETTLEMENTS_TABLE: tables.settlements.table_name,
        contract.ENV_LEGACY_RESERVATIONS_BEFORE: config.limits.legacy_reservations_before,
        contract.ENV_DLQ_URL: dead_letter_queue.queue_url,
        contract.ENV_OPS_TOPIC_ARN: ops_topic.topic_arn,
        contract.ENV_OPENAI_SECRET_NAME: OPENAI_SECRET_NAME,
        contract.ENV_PRICE_OVERRIDES: json.dumps(dict(config.price_overrides), sort_keys=True),
        contract.ENV_SCAN_GRACE_MINUTES: str(config.limits.scan_grace_minutes),
        contract.ENV_STUCK_JOB_HOURS: str(config.limits.stuck_job_hours),
        contract.ENV_HOLD_EXPIRY_MINUTES: str(config.limits.hold_expiry_minutes),
        contract.ENV_HOLD_EXPIRY_MAX_MINUTES: str(config.limits.hold_expiry_max_minutes),
        contract.ENV_TRIAGE_ENABLED: "true" if config.triage_enabled else "false",
    }


# The pipeline's events alone: what v1's rule matches, and so the deployed shadow's (docs/migration.md step 1).
RENDER_EVENTS = events.EventPattern(source=[SETTLED_EVENT_SOURCE], detail_type=list(SETTLED_DETAIL_TYPES))
# The pipeline's events, and billing's credits in (docs/events.md, "Credits in"): what the archive keeps for replay.
# (The two lists make a cross product: video.generation's credits.* and credits.billing's video.* are never published.)
ARCHIVED_EVENTS = events.EventPattern(
    source=[SETTLED_EVENT_SOURCE, contract.CREDITS_IN_EVENT_SOURCE], detail_type=[*SETTLED_DETAIL_TYPES, *contract.CREDITS_IN_EVENT_DETAIL_TYPES]
)
# What the function settles: those, and the smoke test's synthetic renders of its own user (docs/operations.md), so
# the smoke test goes through this rule; its source keeps them from every consumer of the pipeline's events.
SETTLED_EVENTS = events.EventPattern(source=[SETTLED_EVENT_SOURCE, SMOKE_TEST_EVENT_SOURCE], detail_type=list(SETTLED_DETAIL_TYPES))
# EventBridge invokes the function asynchronously: a delivery succeeds once Lambda has queued the event, throttled
# or not, and Lambda's async queue then retries an event throttled at the reserved concurrency for up to the
# function's maximum event age (StageConfig.async_invoke_max_event_age); at reserved concurrency 0 (a pause) it
# retries nothing and sends the event to the DLQ (the on-failure destination) at once. EventBridge retries only an Invoke call
# Lambda refused (the function missing, its permission gone, a service error) this often and this long, then
# parks the event in the dead-letter queue.
EVENT_DELIVERY_RETRIES = 8
EVENT_DELIVERY_MAX_AGE = Duration.hours(2)

# What the function's code calls, per table and index (derived from the calls the test suite records:
# tests/least_privilege, which fails when this and the observed calls differ in either direction).
# Transactions are authorised per item: TransactWriteItems by PutItem/UpdateItem (and ConditionCheckItem/
# DeleteItem, which the function never writes).
#   Jobs:       GetItem (the one read of a settlement), PutItem (settling a job the table never saw), UpdateItem
#               (settlement and conflict records); Query on the sparse unsettled index (timer scan).
#   Settlements: GetItem, PutItem, UpdateItem (records); Scan of the sparse open-holds index (the timer scan's
#               expired holds).
#   Credits:    UpdateItem (the balance ADD under its guard; a failed guard returns the balance, so no read); GetItem
#               (a credit's expiry reads the version it decides on).
#   UserLedger: PutItem: append-only, no UpdateItem; Query (a credit's expiry reads the user's ledger).
#   Ledger:     PutItem (credits in: a purchase's, grant's or revocation's entry, in its transaction, once per
#               reference; an expiry's entry), GetItem (what an earlier delivery of the same reference booked) and
#               UpdateItem (a credit leaving the expiring-credits index, its notice marked); Query of that index and
#               of the by-user index (the timer scan's credit expiries).
FUNCTION_TABLE_ACTIONS = {
    # The Jobs item is the pipeline's: the function reads it and writes its mirror of a settlement with UpdateItem,
    # never a whole item.
    "jobs": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
    "credits": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
    "user_ledger": ("dynamodb:PutItem", "dynamodb:Query"),
    "ledger": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
    "settlements": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
}
# What the timer scan publishes (the balance events' source, the default bus).
TIMER_SCAN_EVENTS = (contract.HOLD_EXPIRED_DETAIL_TYPE, contract.CREDITS_EXPIRED_DETAIL_TYPE, contract.CREDITS_EXPIRING_DETAIL_TYPE)
FUNCTION_INDEX_ACTIONS = {
    "jobs": {contract.JOBS_UNSETTLED_INDEX: ("dynamodb:Query",)},
    "settlements": {contract.OPEN_HOLDS_INDEX: ("dynamodb:Scan",)},
    "ledger": {contract.EXPIRING_CREDITS_INDEX: ("dynamodb:Query",), contract.LEDGER_BY_USER_INDEX: ("dynamodb:Query",)},
}


def events_rule(
    scope: Construct, rule_name: str, description: str, pattern: events.EventPattern, function: lambda_.IFunction, dead_letter_queue: sqs.IQueue
) -> events.Rule:
    """`scope`'s EventsRule: the events of `pattern` to `function` (EventBridge's retries, then the DLQ)."""
    return events.Rule(
        scope,
        "EventsRule",
        rule_name=rule_name,
        description=description,
        event_pattern=pattern,
        targets=[
            targets.LambdaFunction(
                function,
                retry_attempts=EVENT_DELIVERY_RETRIES,
                max_event_age=EVENT_DELIVERY_MAX_AGE,
                # An imported view: the queue's own construct grants EventBridge access (see DeadLetterQueue, by the
                # rule's name), which keeps the queue's stack free of references to the function's.
                dead_letter_queue=sqs.Queue.from_queue_arn(scope, "EventsRuleDeadLetterQueue", dead_letter_queue.queue_arn),
            )
        ],
    )


class ReconcilerFunction(Construct):
    """`cc-agent-reconciler-{stage}` with its log group, triggers, event archive and IAM role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        tables: ReconcilerTables,
        dead_letter_queue: sqs.IQueue,
        ops_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        names = config.names

        self.log_group, self.role, self.function = python_function(
            self,
            config=config,
            function_name=names.function,
            handler=HANDLER,
            environment=function_environment(config, tables, dead_letter_queue, ops_topic),
            memory_size=512,
            timeout=Duration.seconds(30),
            reserved_concurrent_executions=config.limits.reserved_concurrency,
            retry_attempts=config.async_invoke_max_retries,
            max_event_age=config.async_invoke_max_event_age,
            on_failure=destinations.SqsDestination(dead_letter_queue),
        )

        self._rules(config, dead_letter_queue)
        self._archive(config)
        self._grant_least_privilege(config, tables, dead_letter_queue, ops_topic)
        self._acknowledge()

    def _rules(self, config: StageConfig, dead_letter_queue: sqs.IQueue) -> None:
        """The render events' rule (to the function, its undeliverable events to the DLQ) and the timer scan's schedule."""
        names = config.names
        self.events_rule = events_rule(
            self, names.events_rule, "Video render outcomes to settle against credits", SETTLED_EVENTS, self.function, dead_letter_queue
        )
        self.timer_scan_rule = events.Rule(
            self,
            "TimerScanRule",
            rule_name=names.timer_scan_rule,
            description="Periodic scan that settles jobs whose render event never arrived",
            schedule=events.Schedule.rate(config.timer_scan_rate),
            # A scan that could not be delivered before the next tick is superseded by it.
            targets=[targets.LambdaFunction(self.function, max_event_age=config.timer_scan_rate)],
        )

    def _archive(self, config: StageConfig) -> None:
        """The render events and credits in, archived for replay after an incident."""
        names = config.names
        self.archive = events.Archive(
            self,
            "Archive",
            archive_name=names.event_archive,
            description="Render events and credits in, kept for replay after an incident",
            source_event_bus=events.EventBus.from_event_bus_name(self, "DefaultBus", "default"),
            event_pattern=ARCHIVED_EVENTS,
            retention=Duration.days(config.event_archive_retention_days),
        )
        # aws-cdk issue 37847: Archive synthesizes "KmsKeyIdentifier": "" (an empty key id, which some regions
        # reject). Without the property the archive uses an AWS-owned key, as intended.
        archive_resource = self.archive.node.default_child
        assert isinstance(archive_resource, events.CfnArchive)
        archive_resource.add_property_deletion_override("KmsKeyIdentifier")

    def _acknowledge(self) -> None:
        """The cdk-nag findings this construct answers, each with its reason."""
        Validations.of(self.function).acknowledge(
            Acknowledgment(
                id="Serverless::Serverless-LambdaDLQ",
                reason="Its async on-failure destination is the dead-letter queue (EventInvokeConfig), which Lambda "
                "prefers to a DLQ: the record carries the request context and the error.",
            )
        )
        Validations.of(self.timer_scan_rule).acknowledge(
            Acknowledgment(
                id="Serverless::Serverless-EventBusDLQ",
                reason="A scan tick that cannot be delivered before the next one is superseded by it; in the DLQ it "
                "would page (dlq-depth) and sit among the render events operators replay.",
            )
        )

    def _grant_tables(self, tables: ReconcilerTables) -> None:
        """FUNCTION_TABLE_ACTIONS on each table, FUNCTION_INDEX_ACTIONS on each index: one statement each."""
        by_name = {
            "jobs": tables.jobs,
            "credits": tables.credits,
            "user_ledger": tables.user_ledger,
            "ledger": tables.ledger,
            "settlements": tables.settlements,
        }
        for name, actions in FUNCTION_TABLE_ACTIONS.items():
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="".join(part.capitalize() for part in name.split("_")) + "Table",
                    actions=list(actions),
                    resources=[by_name[name].table_arn],
                )
            )
        for name, indexes in FUNCTION_INDEX_ACTIONS.items():
            for index, actions in indexes.items():
                self.role.add_to_policy(
                    iam.PolicyStatement(
                        sid=f"{name.capitalize()}Index{''.join(part.capitalize() for part in index.split('-'))}",
                        actions=list(actions),
                        resources=[f"{by_name[name].table_arn}/index/{index}"],
                    )
                )

    def _grant_least_privilege(
        self,
        config: StageConfig,
        tables: ReconcilerTables,
        dead_letter_queue: sqs.IQueue,
        ops_topic: sns.ITopic,
    ) -> None:
        self._grant_tables(tables)
        # Invalid events are parked here by the function itself (the on-failure destination adds its own grant).
        # (The on-failure destination's own grant adds GetQueueAttributes and GetQueueUrl for Lambda's service
        # side; the function's code only ever sends.)
        dead_letter_queue.grant(self.role, "sqs:SendMessage")
        self.role.add_to_policy(iam.PolicyStatement(sid="PublishAlerts", actions=["sns:Publish"], resources=[ops_topic.topic_arn]))
        # The timer scan announces each hold it released at its expiry, each credit's expiry and its notice: those events
        # only, on the default bus.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="PublishExpiredHolds",
                actions=["events:PutEvents"],
                resources=[Stack.of(self).format_arn(service="events", resource="event-bus", resource_name=contract.DEFAULT_EVENT_BUS)],
                conditions={
                    "StringEquals": {"events:source": contract.BALANCE_EVENT_SOURCE},
                    "ForAllValues:StringEquals": {"events:detail-type": list(TIMER_SCAN_EVENTS)},
                },
            )
        )
        # SNS encrypts what the function publishes with the topic's key, as the publisher.
        assert ops_topic.master_key is not None, "the ops topic is encrypted with its own key"
        key_use = acknowledged_statement(
            self.role,
            "TopicKey",
            iam.PolicyStatement(sid="OpsTopicKey", actions=["kms:Decrypt", "kms:GenerateDataKey*"], resources=[ops_topic.master_key.key_arn]),
            ["Action::kms:GenerateDataKey*"],
            "SNS needs the GenerateDataKey family to encrypt published messages; granted on the ops topic's key only.",
        )
        self.function.node.add_dependency(key_use)
        self.log_group.grant_write(self.role)
        if config.triage_enabled:  # only triage calls OpenAI
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="OpenAiSecret",
                    actions=["secretsmanager:GetSecretValue"],
                    # Secrets Manager appends six random characters to a secret's name in its ARN.
                    resources=[
                        Stack.of(self).format_arn(
                            service="secretsmanager",
                            resource="secret",
                            resource_name=f"{OPENAI_SECRET_NAME}-??????",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    ],
                )
            )
        # No cloudwatch:PutMetricData: metrics leave as EMF log lines (runtime/reconciler/observability.py).
