"""Adoption instead of creation (issue #23): each step's data stack template, for every stage in adopt mode, against
CloudFormation's import requirements (docs/migration.md cites them), and the retryable first deploy."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import pytest
from aws_cdk import RemovalPolicy

from infra.adoption import (
    ADOPTION_STEPS,
    IMPORT,
    IMPORT_PROPERTIES,
    adopted,
    data_template,
    main,
    resource_name,
    resources_to_import,
    step_template,
)
from infra.config import config_for
from reconciler.contract import EXPIRING_CREDITS_INDEX, JOBS_UNSETTLED_INDEX, LEDGER_BY_USER_INDEX, STAGES

V1_KEYS = {"Jobs": "jobId", "Credits": "userId", "Ledger": "ledgerId"}


def adopting(stage: str):
    config = config_for(stage)
    if config.takeover == "adopt":
        return config
    return replace(config, takeover="adopt", removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE)


@pytest.fixture(scope="module")
def steps() -> dict[str, dict[str, dict]]:
    """stage -> step -> template (plus "full": the regular data stack alone)."""
    built = {}
    for stage in STAGES:
        config = adopting(stage)
        full = data_template(config)
        built[stage] = {"full": full, **{step: step_template(full, config, step) for step in ADOPTION_STEPS}}
    return built


def test_staging_and_prod_adopt_v1_and_dev_is_created():
    assert {stage: config_for(stage).takeover for stage in STAGES} == {"dev": "create", "staging": "adopt", "prod": "adopt"}


def test_a_stage_that_adopts_may_not_delete_with_its_stack():
    with pytest.raises(ValueError, match="DESTROY"):
        replace(config_for("dev"), takeover="adopt")


@pytest.mark.parametrize("stage", STAGES)
def test_the_import_holds_exactly_v1s_five_resources_with_v1s_names_and_keys(steps, stage):
    config = adopting(stage)
    template = steps[stage][IMPORT]
    resources = template["Resources"]
    names = {resource_name(resource): resource for resource in resources.values()}
    assert set(names) == set(adopted(config))
    for table, key in V1_KEYS.items():
        properties = names[f"{table}-{stage}"]["Properties"]
        assert properties["KeySchema"] == [{"AttributeName": key, "KeyType": "HASH"}]
        assert properties["AttributeDefinitions"] == [{"AttributeName": key, "AttributeType": "S"}]
        assert properties["BillingMode"] == "PAY_PER_REQUEST"  # v1's runbook: on-demand
    assert names[f"cc-reconciler-dlq-{stage}"]["Properties"] == {"QueueName": f"cc-reconciler-dlq-{stage}", "MessageRetentionPeriod": 1209600}
    assert names[f"ops-alerts-{stage}"]["Properties"] == {"TopicName": f"ops-alerts-{stage}"}


@pytest.mark.parametrize("stage", STAGES)
def test_the_import_meets_cloudformations_requirements(steps, stage):
    template = steps[stage][IMPORT]
    assert "Outputs" not in template and "Conditions" not in template  # an import adds nothing but the resources
    for logical_id, resource in template["Resources"].items():
        # A static custom name, a retain policy, and no property beyond those v1's resource has
        assert isinstance(resource_name(resource), str), logical_id
        assert resource["DeletionPolicy"] == "Retain" and resource["UpdateReplacePolicy"] == "Retain"
        assert set(resource["Properties"]) <= set(IMPORT_PROPERTIES[resource["Type"]])
        assert set(resource) == {"Type", "Properties", "DeletionPolicy", "UpdateReplacePolicy"}
        assert not any(isinstance(value, dict) for value in resource["Properties"].values()), "no intrinsic functions"
    # The types are ones CloudFormation imports (the User Guide's resource type support table)
    assert {resource["Type"] for resource in template["Resources"].values()} == {"AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::SNS::Topic"}


@pytest.mark.parametrize("stage", STAGES)
def test_every_step_keeps_the_regular_data_stacks_logical_ids(steps, stage, synthesize):
    regular = synthesize(stage).data.to_json()["Resources"] if config_for(stage).takeover == "adopt" else steps[stage]["full"]["Resources"]
    ids = {resource_name(resource): logical_id for logical_id, resource in regular.items() if resource_name(resource)}
    for step in ADOPTION_STEPS:
        for logical_id, resource in steps[stage][step]["Resources"].items():
            if resource_name(resource) in adopted(adopting(stage)):
                assert ids[resource_name(resource)] == logical_id, (step, logical_id)
    # And after the last step only the regular deploy is left: the same resources, deletion protection aside
    last = steps[stage][ADOPTION_STEPS[-1]]["Resources"]
    assert set(last) == set(steps[stage]["full"]["Resources"])


def _indexes(template: dict, table: str) -> list[str]:
    resource = next(r for r in template["Resources"].values() if resource_name(r) == table)
    return [index["IndexName"] for index in resource["Properties"].get("GlobalSecondaryIndexes", [])]


@pytest.mark.parametrize("stage", STAGES)
def test_the_updates_add_one_index_at_a_time_and_protection_only_at_the_end(steps, stage):
    jobs, ledger = f"Jobs-{stage}", f"Ledger-{stage}"
    added = [(_indexes(steps[stage][step], jobs), _indexes(steps[stage][step], ledger)) for step in ADOPTION_STEPS]
    assert added == [
        ([], []),
        ([], []),
        ([JOBS_UNSETTLED_INDEX], []),
        ([JOBS_UNSETTLED_INDEX], [LEDGER_BY_USER_INDEX]),
        ([JOBS_UNSETTLED_INDEX], [LEDGER_BY_USER_INDEX, EXPIRING_CREDITS_INDEX]),
    ]
    for before, after in itertools.pairwise(ADOPTION_STEPS):
        count = sum(len(_indexes(steps[stage][after], t)) - len(_indexes(steps[stage][before], t)) for t in (jobs, ledger))
        assert count <= 1, f"{before} -> {after} creates {count} indexes in one update"
    credits = next(r for r in steps[stage]["settings"]["Resources"].values() if resource_name(r) == f"Credits-{stage}")
    assert credits["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert credits["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    for step in ADOPTION_STEPS[1:]:
        tables = [r for r in steps[stage][step]["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"]
        assert all(table["Properties"]["DeletionProtectionEnabled"] is False for table in tables)
        for name in adopted(adopting(stage)):
            resource = next(r for r in steps[stage][step]["Resources"].values() if resource_name(r) == name)
            assert resource["DeletionPolicy"] in ("Retain", "RetainExceptOnCreate")


@pytest.mark.parametrize("stage", STAGES)
def test_the_import_resources_file_names_each_resource_by_its_identifier(steps, stage):
    config = adopting(stage)
    found = {r["LogicalResourceId"]: r for r in resources_to_import(steps[stage][IMPORT], config)}
    assert set(found) == set(steps[stage][IMPORT]["Resources"])
    identifiers = {next(iter(r["ResourceIdentifier"].values())) for r in found.values()}
    assert f"Jobs-{stage}" in identifiers
    assert f"https://sqs.{config.region}.amazonaws.com/{config.account}/cc-reconciler-dlq-{stage}" in identifiers
    assert f"arn:aws:sns:{config.region}:{config.account}:ops-alerts-{stage}" in identifiers


def test_the_command_writes_every_steps_template_and_refuses_a_creating_stage(tmp_path, capsys):
    assert main(["prod", "--out", str(tmp_path)]) == 0
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == [
        "1-import.resources.json",
        "1-import.template.json",
        "2-settings.template.json",
        "3-jobs-index.template.json",
        "4-ledger-index.template.json",
        "5-expiry-index.template.json",
    ]
    assert len(json.loads((tmp_path / "1-import.template.json").read_text())["Resources"]) == 5
    assert main(["dev", "--out", str(tmp_path / "dev")]) == 2


# --- a first deploy that can be retried ----------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_a_first_deploy_turns_no_protection_on_and_the_next_one_does(stage, monkeypatch, tmp_path):
    from aws_cdk.assertions import Template

    from infra.app import build_app

    config = config_for(stage)
    monkeypatch.setenv("CDK_CONTEXT_JSON", json.dumps({"first_deploy": "true"}))
    assembly = build_app(stage, str(tmp_path / "first")).synth()
    assert {stack.termination_protection for stack in assembly.stacks} == {False}
    data = Template.from_json(assembly.get_stack_by_name(config.names.data_stack).template)
    protection = {t["Properties"]["DeletionProtectionEnabled"] for t in data.find_resources("AWS::DynamoDB::Table").values()}
    assert protection == {False}
    # Whereas the regular deploy carries the stage's protection
    monkeypatch.delenv("CDK_CONTEXT_JSON")
    regular = build_app(stage, str(tmp_path / "next")).synth()
    assert {stack.termination_protection for stack in regular.stacks} == {config.termination_protection}
    data = Template.from_json(regular.get_stack_by_name(config.names.data_stack).template)
    protection = {t["Properties"]["DeletionProtectionEnabled"] for t in data.find_resources("AWS::DynamoDB::Table").values()}
    assert protection == {config.deletion_protection}
