"""The deployed shadow (`--context mode=shadow`, docs/migration.md step 1) beside a live v1: its own names, v1's
event pattern, v1's tables imported by name and never writable, and cdk-nag clean."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Validations
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from cfnlint.api import ManualArgs, lint
from infra_helpers import as_list, identity_policy_statements, joined, only_resource, refers_to

from infra.app import build_app
from infra.config import UnknownModeError, config_for, for_mode
from reconciler.contract import SETTLED_DETAIL_TYPES, SETTLED_EVENT_SOURCE, SHADOW_ALARM_CONCERNS, SHADOW_HANDLER, STAGES

REPO = Path(__file__).resolve().parents[2]
# Reads: anything else on one of v1's tables is a write (or could become one, as a wildcard).
READ_ACTIONS = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:DescribeTable"}
NAME_PROPERTIES = ("TableName", "QueueName", "FunctionName", "TopicName", "AlarmName", "Name", "LogGroupName", "RoleName", "ArchiveName")


def v1_names(stage: str) -> set[str]:
    """What v1 owns in a stage (its runbook), and the names v2 keeps for it."""
    names = config_for(stage).names
    return {
        names.jobs_table,
        names.credits_table,
        names.ledger_table,
        names.function,
        names.dead_letter_queue,
        names.ops_topic,
        names.alarm("errors"),
        names.alarm("adjustments"),
        names.log_group,
        names.events_rule,
        names.event_archive,
    }


def v1_tables(stage: str) -> tuple[str, ...]:
    names = config_for(stage).names
    return names.jobs_table, names.credits_table, names.ledger_table


def touches(resource: Any, table: str) -> bool:
    """Whether a statement's resource (possibly an intrinsic) can match the table: by name, or by a wildcard."""
    text = json.dumps(resource)
    return f"table/{table}" in text or resource == "*" or "table/*" in text


@pytest.mark.parametrize("stage", STAGES)
def test_the_shadow_deploys_under_names_of_its_own(synthesize_shadow, stage):
    template = synthesize_shadow(stage).to_json()
    names = config_for(stage).names
    found = {
        props[key]
        for resource in template["Resources"].values()
        for key, props in [(k, resource.get("Properties", {})) for k in NAME_PROPERTIES]
        if isinstance(props.get(key), str)
    }
    assert found == {
        names.shadow_table,
        names.shadow_dead_letter_queue,
        names.shadow_function,
        names.shadow_rule,
        f"/aws/lambda/{names.shadow_function}",
        names.alarm("shadow-dlq-depth"),
    }
    assert not found & v1_names(stage)
    types = {resource["Type"] for resource in template["Resources"].values()}
    assert not types & {"AWS::SNS::Topic", "AWS::Events::Archive"}, "v1 owns its topic and archive"
    assert [t for t in types if t.startswith("AWS::DynamoDB::")] == ["AWS::DynamoDB::Table"]  # its decisions table only
    assert for_mode(config_for(stage), "shadow").termination_protection is False


@pytest.mark.parametrize("stage", STAGES)
def test_the_shadow_stack_is_deployed_without_termination_protection_to_the_stages_account(synthesize, stage):
    # Temporary: destroyed after the cutover (docs/migration.md), whatever the stage's own stacks have
    config = config_for(stage)
    assert synthesize(stage).shadow_deployment == (False, config.account, config.region)


@pytest.mark.parametrize("stage", STAGES)
def test_a_second_rule_sends_v1s_events_to_the_shadow_function(synthesize_shadow, stage):
    template = synthesize_shadow(stage)
    rule = only_resource(template, "AWS::Events::Rule")["Properties"]
    assert rule["EventPattern"] == {"source": [SETTLED_EVENT_SOURCE], "detail-type": list(SETTLED_DETAIL_TYPES)}
    assert "EventBusName" not in rule  # the default bus, as v1's
    (target,) = rule["Targets"]
    assert "ShadowFunction" in json.dumps(target["Arn"]) and "ShadowDeadLetterQueue" in json.dumps(target["DeadLetterConfig"])
    function = only_resource(template, "AWS::Lambda::Function")["Properties"]
    assert function["Handler"] == SHADOW_HANDLER
    variables = function["Environment"]["Variables"]
    names = config_for(stage).names
    decisions_table = next(iter(template.find_resources("AWS::DynamoDB::Table")))
    assert (variables["JOBS_TABLE_NAME"], variables["SHADOW_DECISIONS_TABLE_NAME"]) == (names.jobs_table, {"Ref": decisions_table})
    assert "ReservedConcurrentExecutions" not in function  # v1 keeps the account's reserved concurrency


@pytest.mark.parametrize("stage", STAGES)
def test_the_shadow_role_may_write_nothing_to_v1s_tables(synthesize_shadow, stage):
    statements = identity_policy_statements(synthesize_shadow(stage))
    assert statements, "the shadow's role has a policy"
    on_v1 = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for resource in as_list(statement["Resource"]):
            for table in v1_tables(stage):
                if touches(resource, table):
                    # Any action that can reach DynamoDB (X-Ray's on "*" cannot)
                    reaching = [a for a in as_list(statement["Action"]) if a.startswith(("dynamodb:", "*"))]
                    on_v1.setdefault(table, set()).update(reaching)
    assert all(action in READ_ACTIONS for actions in on_v1.values() for action in actions), on_v1
    # What the shadow store reads (load_job); nothing at all on Credits and Ledger
    assert {table: actions for table, actions in on_v1.items() if actions} == {config_for(stage).names.jobs_table: {"dynamodb:GetItem"}}


@pytest.mark.parametrize("stage", STAGES)
def test_an_event_in_the_shadows_dlq_pages_on_the_stages_ops_topic(synthesize, stage):
    # Given the shadow's one alarm
    config, synthesized = config_for(stage), synthesize(stage)
    (concern,) = SHADOW_ALARM_CONCERNS
    alarm = only_resource(synthesized.shadow, "AWS::CloudWatch::Alarm")["Properties"]
    # Then it watches the shadow's DLQ and fires on its first message, as the stage's dlq-depth does
    (queue,) = alarm["Dimensions"]
    assert queue["Name"] == "QueueName" and refers_to(queue["Value"], "ShadowDeadLetterQueue")
    watched = (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"], alarm["Period"])
    assert watched == ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", 300)
    assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["TreatMissingData"]) == ("GreaterThanThreshold", 0, "notBreaching")
    # And it pages `ops-alerts-{stage}` (the topic v1 has, imported by name) on ALARM and on OK, as the stage's alarms do
    assert alarm["AlarmName"] == config.names.alarm(concern)
    topic = f"arn:aws:sns:{config.region}:{config.account}:{config.names.ops_topic}"
    assert [joined(action) for action in alarm["AlarmActions"]] == [topic] == [joined(action) for action in alarm["OKActions"]]
    assert alarm["ActionsEnabled"] is config.alarm_actions_enabled
    # And once v2 adopts the topic (step 2c: its policy replaces v1's, its key encrypts it) both still admit the alarm
    alarm_arn = f"arn:aws:cloudwatch:{config.region}:{config.account}:alarm:{config.names.alarm(concern)}"
    topic_policy = only_resource(synthesized.data, "AWS::SNS::TopicPolicy")["Properties"]["PolicyDocument"]["Statement"]
    key_policy = only_resource(synthesized.data, "AWS::KMS::Key")["Properties"]["KeyPolicy"]["Statement"]
    for statements in (topic_policy, key_policy):
        (cloudwatch,) = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
        assert alarm_arn in {joined(arn) for arn in as_list(cloudwatch["Condition"]["ArnLike"]["aws:SourceArn"])}


def test_v1s_tables_are_imported_not_created(synthesize_shadow):
    tables = synthesize_shadow("prod").find_resources("AWS::DynamoDB::Table")
    assert [t["Properties"]["TableName"] for t in tables.values()] == ["ShadowDecisions-prod"]


@pytest.mark.parametrize("stage", STAGES)
def test_cdk_nag_finds_nothing_unacknowledged_in_the_shadow(stage, tmp_path):
    app = build_app(stage, outdir=str(tmp_path), mode="shadow")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    try:
        app.synth()
    except Exception as error:  # noqa: BLE001 - jsii surfaces ValidationFailed as a generic error
        report = tmp_path / "validation-report.json"
        pytest.fail(f"cdk-nag findings for the {stage} shadow: {error}\n{report.read_text() if report.exists() else ''}")


@pytest.mark.parametrize("stage", STAGES)
def test_cfn_lint_finds_no_problem_in_the_shadow(synthesize_shadow, stage):
    # W3005 (redundant DependsOn) is how CDK writes dependencies; everything else counts.
    matches = lint(json.dumps(synthesize_shadow(stage).to_json()), config=ManualArgs(ignore_checks=["W3005"], regions=["us-east-1"]))
    assert not matches, "\n".join(f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches)


def test_the_documented_command_synthesizes_the_shadow_alone(clean_cdk_env, tmp_path):
    # `make deploy-shadow STAGE=prod` runs the pinned CLI with these contexts (docs/migration.md step 1b)
    env = {**clean_cdk_env, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "CDK_DISABLE_CLI_TELEMETRY": "true"}
    command = ["npx", "--no-install", "cdk", "synth", "--context", "stage=prod", "--context", "mode=shadow", "--quiet", "--no-notices"]
    result = subprocess.run([*command, "--output", str(tmp_path / "out")], cwd=REPO, env=env, capture_output=True, text=True, timeout=420)
    assert result.returncode == 0, f"cdk synth failed:\n{result.stdout}\n{result.stderr}"
    assert sorted(p.name for p in (tmp_path / "out").glob("*.template.json")) == ["cc-reconciler-shadow-prod.template.json"]


def test_an_unknown_mode_is_refused_in_one_line(clean_cdk_env):
    with pytest.raises(UnknownModeError, match="unknown mode 'shadw'"):
        for_mode(config_for("prod"), "shadw")
    env = {**clean_cdk_env, "CDK_CONTEXT_JSON": json.dumps({"stage": "prod", "mode": "shadw"}), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    result = subprocess.run([sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=420)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == "error: unknown mode 'shadw'; valid modes: full, shadow"
