"""The hold function and the pipeline's policy, as synthesized: the only writer of holds, and a pipeline that may
write only its own attributes of a job."""

from __future__ import annotations

import json

from reconciler import contract
from reconciler.contract import PIPELINE_JOB_ATTRIBUTES
from tests.infra.infra_helpers import as_list, refers_to, resource_named


def test_the_hold_function_runs_the_hold_handler_with_the_runtime_contract(synthesized):
    config = synthesized.config
    function = resource_named(synthesized.compute, "AWS::Lambda::Function", "FunctionName", config.names.hold_function)["Properties"]
    assert function["Handler"] == contract.HOLDS_HANDLER and function["Runtime"] == "python3.12"
    assert function["Timeout"] == 10 and function["MemorySize"] == 256
    assert "ReservedConcurrentExecutions" not in function  # holds scale with the pipeline
    env = function["Environment"]["Variables"]
    assert env[contract.ENV_STAGE] == config.stage and refers_to(env[contract.ENV_SETTLEMENTS_TABLE], "TablesSettlements")
    assert env[contract.ENV_LEGACY_RESERVATIONS_BEFORE] == config.names.limits.legacy_reservations_before


def role_statements(synthesized, role_fragment: str) -> list[dict]:
    policies = synthesized.compute.find_resources("AWS::IAM::Policy").values()
    return [
        s
        for p in policies
        if any(role_fragment in json.dumps(r) for r in p["Properties"]["Roles"])
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_the_hold_functions_role_writes_holds_and_nothing_else(synthesized):
    dynamodb = [s for s in role_statements(synthesized, "HoldsRole") if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
    granted = {
        (action, table)
        for s in dynamodb
        for action in as_list(s["Action"])
        for table in ("Credits", "Settlements", "Jobs", "Ledger")
        if refers_to(s["Resource"], f"Tables{table}")
    }
    assert granted == {
        ("dynamodb:UpdateItem", "Credits"),
        ("dynamodb:GetItem", "Settlements"),
        ("dynamodb:PutItem", "Settlements"),
        ("dynamodb:UpdateItem", "Settlements"),
    }


def pipeline_statements(synthesized) -> dict[str, dict]:
    policy = resource_named(synthesized.compute, "AWS::IAM::ManagedPolicy", "ManagedPolicyName", synthesized.config.names.pipeline_policy)
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def test_the_pipeline_may_hold_only_through_the_hold_function_and_never_write_a_whole_job_or_a_balance(synthesized):
    statements = pipeline_statements(synthesized)
    actions = {action for s in statements.values() for action in as_list(s["Action"])}
    assert actions == {"lambda:InvokeFunction", "dynamodb:GetItem", "dynamodb:UpdateItem", "events:PutEvents"}
    assert not any(refers_to(s["Resource"], "TablesCredits") or refers_to(s["Resource"], "TablesSettlements") for s in statements.values())
    assert refers_to(statements["PlaceHolds"]["Resource"], "HoldsFunction")


def test_the_pipeline_updates_only_its_own_attributes_of_a_job(synthesized):
    write = pipeline_statements(synthesized)["WriteOwnJobAttributes"]
    assert as_list(write["Action"]) == ["dynamodb:UpdateItem"] and refers_to(write["Resource"], "TablesJobs")
    allowed = set(write["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"])
    assert allowed == set(PIPELINE_JOB_ATTRIBUTES)
    # None of the reconciler's own attributes: the settlement's mirror, reservations, conflicts
    reconcilers = {
        "settledAs",
        "settledByEvent",
        "settledByRequest",
        "chargedCredits",
        "reservedCredits",
        contract.RESERVED_AS_ATTRIBUTE,
        "conflictEventIds",
    }
    assert not allowed & reconcilers


def test_the_pipeline_may_put_only_its_two_events(synthesized):
    publish = pipeline_statements(synthesized)["PublishRenderOutcomes"]
    assert publish["Condition"]["StringEquals"]["events:source"] == contract.SETTLED_EVENT_SOURCE
    assert sorted(publish["Condition"]["ForAllValues:StringEquals"]["events:detail-type"]) == sorted(contract.SETTLED_DETAIL_TYPES)


def test_every_event_is_registered_in_the_stages_schema_registry_as_its_json_schema_says(synthesized):
    import jsonschema

    from infra.constructs.event_schemas import REGISTERED_EVENTS, SCHEMA_DIR

    stage = synthesized.config.stage
    (registry,) = synthesized.compute.find_resources("AWS::EventSchemas::Registry").values()
    assert registry["Properties"]["RegistryName"] == f"cc-reconciler-{stage}"
    schemas = {s["Properties"]["SchemaName"]: s["Properties"] for s in synthesized.compute.find_resources("AWS::EventSchemas::Schema").values()}
    assert set(schemas) == {f"{source}@{kind}" for source, kind in REGISTERED_EVENTS} and len(schemas) == 12
    for source, kind in REGISTERED_EVENTS:
        registered = schemas[f"{source}@{kind}"]
        content = json.loads(registered["Content"])
        jsonschema.Draft4Validator.check_schema(content)  # what EventBridge's JSONSchemaDraft4 type reads
        written = json.loads((SCHEMA_DIR / f"{kind}.json").read_text())
        assert {k: v for k, v in content.items() if k not in ("$schema", "id")} == {k: v for k, v in written.items() if k not in ("$schema", "$id")}
        assert registered["Type"] == "JSONSchemaDraft4" and registered["RegistryName"] == f"cc-reconciler-{stage}"
