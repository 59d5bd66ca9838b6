"""The reconciler function, its triggers, archive and least-privilege role."""

from __future__ import annotations

import fnmatch
import json
from decimal import Decimal

from infra_helpers import as_list, only_resource, refers_to, resource_named

from infra.config import POWERTOOLS_VERSION
from reconciler import config as runtime_config
from reconciler import contract

RENDER_EVENTS = {"source": ["video.generation"], "detail-type": ["video.rendered", "video.failed"]}
# The rule also settles the smoke test's synthetic renders (their own source); the archive keeps the pipeline's only.
SETTLED_EVENTS = {"source": ["video.generation", "reconciler.smoke-test"], "detail-type": ["video.rendered", "video.failed"]}
RETENTION_DAYS = {"dev": 7, "staging": 30, "prod": 90}


def function_of(synthesized) -> dict:
    name = f"cc-agent-reconciler-{synthesized.config.stage}"
    return resource_named(synthesized.compute, "AWS::Lambda::Function", "FunctionName", name)["Properties"]


def test_function_shape(synthesized):
    # Given the stage's compute stack, When we read the function, Then it matches the runbook.
    function = function_of(synthesized)
    assert function["Runtime"] == "python3.12"
    assert function["Architectures"] == ["arm64"]
    assert function["MemorySize"] == 512
    assert function["Timeout"] == 30
    assert function["ReservedConcurrentExecutions"] == 10
    # Active X-Ray where the stage traces; otherwise no TracingConfig at all (Lambda's PassThrough).
    assert function.get("TracingConfig") == ({"Mode": "Active"} if synthesized.config.tracing else None)
    assert function["Handler"] == "reconciler.handlers.entry.handler"


def test_function_uses_aws_published_powertools_layer(synthesized):
    assert function_of(synthesized)["Layers"] == [f"{{{{resolve:ssm:/aws/service/powertools/python/arm64/python3.12/{POWERTOOLS_VERSION}}}}}"], (
        "the layer ARN must be resolved by CloudFormation from AWS's public SSM parameter"
    )


def test_function_logs_to_its_own_log_group_with_stage_retention(synthesized):
    stage = synthesized.config.stage
    log_group = resource_named(synthesized.compute, "AWS::Logs::LogGroup", "LogGroupName", f"/aws/lambda/cc-agent-reconciler-{stage}")
    assert log_group["Properties"]["RetentionInDays"] == RETENTION_DAYS[stage]
    assert log_group["DeletionPolicy"] == ("Delete" if stage == "dev" else "RetainExceptOnCreate")
    assert "Ref" in function_of(synthesized)["LoggingConfig"]["LogGroup"], "the function must log to that group"


def test_function_environment_is_the_runtime_contract(synthesized):
    config = synthesized.config
    env = function_of(synthesized)["Environment"]["Variables"]
    expected_literals = {
        contract.ENV_STAGE: config.stage,
        contract.ENV_OPENAI_SECRET_NAME: "meta-agents/openai",
        contract.ENV_PRICE_OVERRIDES: json.dumps(dict(config.price_overrides), sort_keys=True),
        contract.ENV_SCAN_GRACE_MINUTES: "15",
        contract.ENV_STUCK_JOB_HOURS: "6",
        contract.ENV_HOLD_EXPIRY_MINUTES: "360",
        contract.ENV_HOLD_EXPIRY_MAX_MINUTES: "1440",
        contract.ENV_TRIAGE_ENABLED: "false" if config.stage == "dev" else "true",
        "POWERTOOLS_SERVICE_NAME": "credit-reconciler",
        "POWERTOOLS_METRICS_NAMESPACE": "Reconciler",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_LOGGER_LOG_EVENT": "false",
        "POWERTOOLS_TRACE_DISABLED": "false" if config.tracing else "true",
        "METRICS_DIMENSIONLESS": "true" if config.dimensionless_metrics else "false",
        contract.ENV_LEGACY_RESERVATIONS_BEFORE: config.names.limits.legacy_reservations_before,
    }
    references = {
        contract.ENV_JOBS_TABLE: "TablesJobs",
        contract.ENV_CREDITS_TABLE: "TablesCredits",
        contract.ENV_LEDGER_TABLE: "TablesLedger",
        contract.ENV_USER_LEDGER_TABLE: "TablesUserLedger",
        contract.ENV_SETTLEMENTS_TABLE: "TablesSettlements",
        contract.ENV_DLQ_URL: "DeadLetterQueue",
        contract.ENV_OPS_TOPIC_ARN: "OpsTopic",
        contract.ENV_BALANCE_EVENTS_TABLE: "BalanceEventsTable",  # the liability snapshot's
    }
    assert set(env) == set(expected_literals) | set(references), f"unexpected variables: {sorted(env)}"
    for name, value in expected_literals.items():
        assert env[name] == value, f"{name}={env[name]!r}, expected {value!r}"
    for name, resource in references.items():
        assert refers_to(env[name], resource), f"{name} should reference the data stack's {resource}: {env[name]}"


def test_price_overrides_are_a_json_object(synthesized):
    # Given the value the function receives
    raw = function_of(synthesized)["Environment"]["Variables"][contract.ENV_PRICE_OVERRIDES]
    # When the runtime parses it
    environment = {
        "STAGE": "x",
        "JOBS_TABLE_NAME": "j",
        "CREDITS_TABLE_NAME": "c",
        "LEDGER_TABLE_NAME": "l",
        "USER_LEDGER_TABLE_NAME": "u",
        "SETTLEMENTS_TABLE_NAME": "s",
        "DLQ_URL": "q",
    }
    parsed = runtime_config.RuntimeConfig.from_env({**environment, contract.ENV_PRICE_OVERRIDES: raw})
    # Then it gets the stage's overrides as decimals
    assert parsed.price_overrides == {model: Decimal(price) for model, price in synthesized.config.price_overrides.items()}


def test_async_invocations_retry_twice_then_go_to_the_dead_letter_queue(synthesized):
    invoke_config = only_resource(synthesized.compute, "AWS::Lambda::EventInvokeConfig")["Properties"]
    assert invoke_config["MaximumRetryAttempts"] == 2
    assert invoke_config["MaximumEventAgeInSeconds"] == 6 * 3600
    assert refers_to(invoke_config["DestinationConfig"]["OnFailure"]["Destination"], "DeadLetterQueue")


def test_render_events_rule_targets_the_function_with_retries_and_dead_letters(synthesized):
    stage = synthesized.config.stage
    rule = resource_named(synthesized.compute, "AWS::Events::Rule", "Name", f"cc-reconciler-events-{stage}")
    properties = rule["Properties"]
    assert properties["EventPattern"] == SETTLED_EVENTS
    assert "EventBusName" not in properties, "the rule must be on the default bus"
    (target,) = properties["Targets"]
    assert refers_to(target["Arn"], "ReconcilerFunction")
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 7200}
    assert refers_to(target["DeadLetterConfig"]["Arn"], "DeadLetterQueue")


def test_timer_scan_schedule_targets_the_function(synthesized):
    config = synthesized.config
    rule = resource_named(synthesized.compute, "AWS::Events::Rule", "Name", f"cc-reconciler-timer-scan-{config.stage}")
    minutes = int(config.timer_scan_rate.to_minutes())
    assert rule["Properties"]["ScheduleExpression"] == f"rate({minutes} minutes)"
    (target,) = rule["Properties"]["Targets"]
    assert refers_to(target["Arn"], "ReconcilerFunction")


def test_eventbridge_may_invoke_the_function_from_its_four_rules_only(synthesized):
    permissions = list(synthesized.compute.find_resources("AWS::Lambda::Permission").values())
    assert all(p["Properties"]["Principal"] == "events.amazonaws.com" for p in permissions)
    source_rules = sorted(p["Properties"]["SourceArn"]["Fn::GetAtt"][0] for p in permissions)
    assert len(source_rules) == 4, f"expected the four rules, got {source_rules}"
    assert source_rules[0].startswith("CreditsInRule") and source_rules[1].startswith("LiabilitySnapshotSchedule")
    assert source_rules[2].startswith("ReconcilerEventsRule") and source_rules[3].startswith("ReconcilerTimerScanRule")


def test_archive_keeps_render_events_and_credits_in_for_the_stage_retention(synthesized):
    config = synthesized.config
    archive = resource_named(synthesized.compute, "AWS::Events::Archive", "ArchiveName", f"cc-reconciler-archive-{config.stage}")
    pattern = archive["Properties"]["EventPattern"]
    assert pattern["source"] == [*RENDER_EVENTS["source"], "credits.billing"]
    assert pattern["detail-type"] == [*RENDER_EVENTS["detail-type"], "credits.purchased", "credits.granted", "credits.revoked"]
    assert archive["Properties"]["RetentionDays"] == config.event_archive_retention_days
    assert archive["Properties"]["SourceArn"]["Fn::Join"][1][-1].endswith(":event-bus/default")
    # aws-cdk issue 37847: an empty KmsKeyIdentifier is rejected in some regions; absent means an AWS-owned key.
    assert "KmsKeyIdentifier" not in archive["Properties"]


# --- IAM: the function role ----------------------------------------------------------------
# Exactly what the function's code calls (tests/least_privilege proves it against the calls the whole test suite
# records). Here: the same statements, read from the template, in plain terms.

ACTIONS_ALLOWED_ON_ANY_RESOURCE = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}  # where the stage traces
FUNCTION_TABLE_GRANTS = {
    # The Jobs item is the pipeline's: read, and its settlement mirror updated, never written whole
    "TablesJobs": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
    # A settlement reads no balance: a failed guard returns it. A credit's expiry reads the version it decides on. The
    # liability snapshot's Scan sees the money figures only.
    "TablesCredits": {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Scan"},
    "TablesUserLedger": {"dynamodb:PutItem", "dynamodb:Query"},  # append-only; a user's postings read for a credit's expiry
    # Credits in: an entry put once per reference (attribute_not_exists), and read by id to tell a redelivery; a credit
    # with an expiry updated to leave the expiring-credits index (and to mark its notice)
    "TablesLedger": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
    "TablesSettlements": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},  # the first read is the record's
    "BalanceEventsTable": {"dynamodb:PutItem"},  # the liability snapshot's one item
}


def role_statements(synthesized) -> list[dict]:
    return [
        statement
        for lid, policy in synthesized.compute.find_resources("AWS::IAM::Policy").items()
        if lid.startswith("ReconcilerRole")
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def statements_with_action_prefix(synthesized, prefix: str) -> list[dict]:
    return [s for s in role_statements(synthesized) if any(a.startswith(prefix) for a in as_list(s["Action"]))]


def granted_pairs(statements: list[dict]) -> set[tuple[str, str]]:
    """(action, resource) pairs, the resource as the JSON of its (intrinsic) value."""
    return {(a, json.dumps(r, sort_keys=True)) for s in statements for a in as_list(s["Action"]) for r in as_list(s["Resource"])}


def test_role_has_no_managed_policies(synthesized):
    role = resource_named(
        synthesized.compute, "AWS::IAM::Role", "Description", f"Least-privilege role of cc-agent-reconciler-{synthesized.config.stage}"
    )
    assert "ManagedPolicyArns" not in role["Properties"], "AWSLambdaBasicExecutionRole grants logs on every group"


def test_only_actions_without_resource_level_permissions_get_a_wildcard(synthesized):
    for statement in role_statements(synthesized):
        # Two conditions narrow grants: the liability snapshot's Scan sees the money figures of Credits only, and the
        # expired holds' PutEvents is held to its source and detail-type.
        narrowed = ("LiabilitySnapshotScan", "PublishExpiredHolds")
        assert statement["Effect"] == "Allow" and ("Condition" not in statement or statement.get("Sid") in narrowed)
        if "*" in as_list(statement["Resource"]):
            assert set(as_list(statement["Action"])) <= ACTIONS_ALLOWED_ON_ANY_RESOURCE, f"wildcard resource for {statement['Action']}"
        for action in as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), f"wildcard action {action}"


def test_metrics_go_through_logs_so_the_role_cannot_put_metric_data(synthesized):
    assert statements_with_action_prefix(synthesized, "cloudwatch:") == []


def test_dynamodb_access_is_exactly_the_calls_per_table_and_index(synthesized):
    statements = statements_with_action_prefix(synthesized, "dynamodb:")
    per_resource: dict[str, set[str]] = {}
    for statement in statements:
        for resource in as_list(statement["Resource"]):
            per_resource.setdefault(json.dumps(resource, sort_keys=True), set()).update(as_list(statement["Action"]))
    tables = {key: actions for key, actions in per_resource.items() if "/index/" not in key}
    indexes = {key: actions for key, actions in per_resource.items() if "/index/" in key}
    by_table = {name: actions for key, actions in tables.items() for name in FUNCTION_TABLE_GRANTS if name in key}
    assert by_table == FUNCTION_TABLE_GRANTS, f"per table: {by_table}"
    assert len(tables) == 6, f"one entry per table, no wildcard: {sorted(tables)}"
    # The timer scan's indexes: unsettled jobs (Query), open holds (Scan, for the expired ones), expiring credits
    # (Query) and, for a credit's expiry, the user's entries in the Ledger's by-user index (Query).
    assert len(indexes) == 4, sorted(indexes)
    (jobs_index,) = [index for index in indexes if "TablesJobs" in index]
    (holds_index,) = [index for index in indexes if "TablesSettlements" in index]
    ledger_indexes = sorted(index for index in indexes if "TablesLedger" in index)
    assert indexes[jobs_index] == {"dynamodb:Query"} and jobs_index.endswith(f'/index/{contract.JOBS_UNSETTLED_INDEX}"]]}}')
    assert indexes[holds_index] == {"dynamodb:Scan"} and holds_index.endswith(f'/index/{contract.OPEN_HOLDS_INDEX}"]]}}')
    assert [indexes[index] for index in ledger_indexes] == [{"dynamodb:Query"}] * 2
    assert sorted(index.rsplit("/index/", 1)[1].split('"')[0] for index in ledger_indexes) == sorted(
        [contract.EXPIRING_CREDITS_INDEX, contract.LEDGER_BY_USER_INDEX]
    )


def test_the_liability_snapshot_scans_only_the_money_figures_of_credits_on_its_own_schedule(synthesized):
    # (the other Scan is the timer scan's, of the open holds' index)
    scans = [s for s in statements_with_action_prefix(synthesized, "dynamodb:") if "dynamodb:Scan" in as_list(s["Action"])]
    (scan,) = [s for s in scans if refers_to(s["Resource"], "TablesCredits")]
    assert len(scans) == 2 and all(refers_to(s["Resource"], "TablesSettlements") for s in scans if s is not scan)
    attributes = scan["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]
    assert set(attributes) == {contract.USER_ID_ATTRIBUTE, *contract.MONEY_ATTRIBUTES}
    assert scan["Condition"]["StringEqualsIfExists"] == {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"}
    config = synthesized.config
    rule = resource_named(synthesized.compute, "AWS::Events::Rule", "Name", config.names.liability_snapshot_rule)["Properties"]
    minutes = config.liability_snapshot_minutes
    hours = f"rate({minutes // 60} hour{'s' if minutes > 60 else ''})"  # CDK writes whole hours as hours
    assert rule["ScheduleExpression"] == (hours if minutes % 60 == 0 else f"rate({minutes} minutes)")
    (target,) = rule["Targets"]
    assert refers_to(target["Arn"], "ReconcilerFunction") and json.loads(target["Input"]) == {"job": contract.LIABILITY_SNAPSHOT_JOB}


def test_the_ledger_is_append_only_for_the_function(synthesized):
    def actions_on(table: str) -> set[str]:
        return {a for s in statements_with_action_prefix(synthesized, "dynamodb:") if refers_to(s["Resource"], table) for a in as_list(s["Action"])}

    # The job postings: no UpdateItem/DeleteItem (rewriting the audit trail); read by user for a credit's expiry
    assert actions_on("TablesUserLedger") == {"dynamodb:PutItem", "dynamodb:Query"}
    # The operators' entries, credits in and the history before UserLedger: put once per id, read by id, never
    # deleted; UpdateItem only for a credit's expiry markers (expiryPending removed, expiringNoticeAt, expiredBy:
    # repository/credit_expiry_store.py), never its amount
    # (and Query: its by-user and expiring-credits indexes)
    assert actions_on("TablesLedger") == {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"}


def test_sqs_sns_kms_and_logs_are_scoped_to_their_one_resource(synthesized):
    expectations = {
        # SendMessage: invalid events parked by the code; the Get* two come with CDK's grant for the async
        # on-failure destination (Lambda's service side), kept as CDK makes it.
        "sqs:": ("DeadLetterQueue", {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}),
        "sns:": ("OpsTopic", {"sns:Publish"}),
        "kms:": ("OpsTopicKey", {"kms:Decrypt", "kms:GenerateDataKey*"}),
        "logs:": ("ReconcilerLogGroup", {"logs:CreateLogStream", "logs:PutLogEvents"}),
    }
    for prefix, (resource, actions) in expectations.items():
        (statement,) = statements_with_action_prefix(synthesized, prefix)
        assert set(as_list(statement["Action"])) == actions, f"{prefix} actions: {statement['Action']}"
        assert len(as_list(statement["Resource"])) == 1 and refers_to(statement["Resource"], resource), (
            f"{prefix} must be scoped to {resource}: {statement['Resource']}"
        )


def test_openai_secret_is_readable_only_where_triage_runs(synthesized):
    statements = statements_with_action_prefix(synthesized, "secretsmanager:")
    if not synthesized.config.triage_enabled:
        assert statements == [], "without triage the function has no reason to read the OpenAI key"
        return
    (statement,) = statements
    assert statement["Action"] == "secretsmanager:GetSecretValue"
    assert statement["Resource"]["Fn::Join"][1][-1].endswith(":secret:meta-agents/openai-??????")


def test_the_role_has_no_other_service(synthesized):
    services = {a.split(":")[0] for s in role_statements(synthesized) for a in as_list(s["Action"])}
    config = synthesized.config
    expected = {"dynamodb", "sqs", "sns", "kms", "logs", "events"} | ({"secretsmanager"} if config.triage_enabled else set())
    assert services == expected | ({"xray"} if config.tracing else set())


# --- IAM: operator policies ------------------------------------------------------------------

READ_ONLY = {
    "dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan",
    "sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:GetQueueUrl",
    "lambda:GetFunctionConfiguration", "lambda:GetFunctionConcurrency", "lambda:GetFunctionEventInvokeConfig",
    "events:DescribeArchive", "events:DescribeRule", "cloudwatch:DescribeAlarms", "cloudwatch:DescribeAlarmHistory",
    "cloudwatch:GetMetricStatistics", "logs:FilterLogEvents",
}  # fmt: skip
BREAK_GLASS_WRITES = {
    "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:ConditionCheckItem", "dynamodb:CreateBackup",
    "sqs:DeleteMessage", "sqs:PurgeQueue", "lambda:InvokeFunction", "lambda:PutFunctionConcurrency",
    "cloudwatch:EnableAlarmActions", "cloudwatch:DisableAlarmActions", "events:StartReplay",
    "cloudwatch:PutMetricData",  # Adjustments counts operators' changes to the books (docs/metrics.md)
}  # fmt: skip
# Watching the replay break-glass started: the `aws events describe-replay` command `events replay` prints.
BREAK_GLASS_READS = {"events:DescribeReplay"}


def operator_policy(synthesized, variant: str) -> dict:
    name = f"cc-reconciler-operator-{variant}-{synthesized.config.stage}"
    return resource_named(synthesized.compute, "AWS::IAM::ManagedPolicy", "ManagedPolicyName", name)["Properties"]


def test_operator_policies_are_managed_policies_attached_to_nobody(synthesized):
    for variant in ("read-only", "break-glass"):
        policy = operator_policy(synthesized, variant)
        assert not {"Roles", "Users", "Groups"} & set(policy), "admins attach them to the on-call role"


def test_read_only_operator_policy_only_reads(synthesized):
    statements = operator_policy(synthesized, "read-only")["PolicyDocument"]["Statement"]
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert actions == READ_ONLY


def test_break_glass_adds_exactly_the_clis_writes_and_never_rewrites_the_ledger(synthesized):
    read_only = operator_policy(synthesized, "read-only")["PolicyDocument"]["Statement"]
    break_glass = operator_policy(synthesized, "break-glass")["PolicyDocument"]["Statement"]
    assert granted_pairs(read_only) <= granted_pairs(break_glass), "break-glass includes every read"
    assert {a for s in break_glass for a in as_list(s["Action"])} == READ_ONLY | BREAK_GLASS_WRITES | BREAK_GLASS_READS
    ledger_writes = {
        a
        for s in break_glass
        if refers_to(s["Resource"], "TablesLedger") and "/index/" not in json.dumps(s["Resource"])
        for a in as_list(s["Action"])
        if a not in READ_ONLY
    }
    assert ledger_writes == {"dynamodb:PutItem", "dynamodb:ConditionCheckItem", "dynamodb:CreateBackup"}, ledger_writes
    # UserLedger: the timer scan's postings (PutItem) and backups; never an update or delete either
    user_ledger_writes = {a for s in break_glass if refers_to(s["Resource"], "TablesUserLedger") for a in as_list(s["Action"]) if a not in READ_ONLY}
    assert user_ledger_writes == {"dynamodb:PutItem", "dynamodb:CreateBackup"}, user_ledger_writes


def test_operator_policies_use_a_wildcard_only_where_iam_has_no_resource_level_permission(synthesized):
    stage = synthesized.config.stage
    for variant in ("read-only", "break-glass"):
        for statement in operator_policy(synthesized, variant)["PolicyDocument"]["Statement"]:
            for resource in as_list(statement["Resource"]):
                text = json.dumps(resource)
                if resource == "*" and as_list(statement["Action"]) == ["cloudwatch:PutMetricData"]:
                    # No resource-level permission for PutMetricData (Service Authorization Reference, CloudWatch):
                    # its condition key holds it to the reconciler's namespace.
                    assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Reconciler"}}
                elif resource == "*":
                    assert {a.split(":")[0] for a in as_list(statement["Action"])} == {"cloudwatch"}
                    assert all(a.startswith(("cloudwatch:Describe", "cloudwatch:Get")) for a in as_list(statement["Action"]))
                elif "*" in text:
                    assert (
                        text.endswith(f':alarm:cc-reconciler-*-{stage}"]]}}')
                        or text.endswith(f':replay/cc-reconciler-{stage}-*"]]}}')
                        or refers_to(resource, "ReconcilerLogGroup")
                    ), f"wildcard in {text}"


def test_break_glass_may_watch_the_stages_own_replays(synthesized):
    stage, config = synthesized.config.stage, synthesized.config
    (statement,) = [s for s in operator_policy(synthesized, "break-glass")["PolicyDocument"]["Statement"] if s.get("Sid") == "WatchReplay"]
    assert statement["Action"] == "events:DescribeReplay"
    _, parts = statement["Resource"]["Fn::Join"]
    assert parts[-1] == f":events:{config.region}:{config.account}:replay/cc-reconciler-{stage}-*"
    # The names `events replay` gives its replays match it
    from datetime import UTC, datetime

    from reconciler.ops.control import replay_name

    assert fnmatch.fnmatchcase(replay_name(stage, datetime.now(UTC)), f"cc-reconciler-{stage}-*")
    assert fnmatch.fnmatchcase(replay_name("prod" if stage != "prod" else "dev", datetime.now(UTC)), f"cc-reconciler-{stage}-*") is False


def test_compute_stack_holds_no_state(synthesized):
    resources = synthesized.compute.to_json()["Resources"].values()
    stateful = {"AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::SNS::Topic", "AWS::CloudWatch::Alarm"}
    assert not stateful & {r["Type"] for r in resources}


def test_the_function_publishes_only_expired_holds_on_the_default_bus(synthesized):
    (statement,) = statements_with_action_prefix(synthesized, "events:")
    assert statement["Action"] == "events:PutEvents"
    assert statement["Resource"]["Fn::Join"][1][-1].endswith(":event-bus/default")
    assert statement["Condition"] == {
        "StringEquals": {"events:source": contract.BALANCE_EVENT_SOURCE},
        "ForAllValues:StringEquals": {
            "events:detail-type": [contract.HOLD_EXPIRED_DETAIL_TYPE, contract.CREDITS_EXPIRED_DETAIL_TYPE, contract.CREDITS_EXPIRING_DETAIL_TYPE]
        },
    }
