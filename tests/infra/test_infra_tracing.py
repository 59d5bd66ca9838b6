"""The per-stage tracing switch (StageConfig.tracing, issue #12): every function, its role, and what the runtime reads."""

from __future__ import annotations

import pytest
from aws_lambda_powertools import Tracer
from infra_helpers import STACK_KINDS, as_list

from reconciler.observability import tracing_enabled

XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
# What Powertools' rule and tracing_enabled() read besides the switch; Lambda sets LAMBDA_TASK_ROOT itself.
LAMBDA_ONLY = ("LAMBDA_TASK_ROOT", "AWS_SAM_LOCAL", "AWS_CHALICE_CLI_MODE")


def functions(synthesized) -> dict[str, dict]:
    """Every Lambda function of the stage's stacks by name, found by type: a function added later is covered too."""
    found = {
        properties["FunctionName"]: properties
        for kind in STACK_KINDS
        for properties in (r["Properties"] for r in synthesized.template(kind).find_resources("AWS::Lambda::Function").values())
    }
    names = synthesized.config.names
    assert {names.function, names.balance_events_function} <= set(found), f"functions found: {sorted(found)}"
    return found


def lambda_environment(function: dict) -> dict[str, str]:
    """The function's environment as Lambda hands it over: references resolved (to stand-ins), LAMBDA_TASK_ROOT set."""
    variables = function["Environment"]["Variables"]
    resolved = {name: value if isinstance(value, str) else f"resolved-{name}" for name, value in variables.items()}
    return {**resolved, "LAMBDA_TASK_ROOT": "/var/task"}


def test_every_function_traces_exactly_where_the_stage_config_says(synthesized):
    tracing = synthesized.config.tracing
    for name, function in functions(synthesized).items():
        # Off: no TracingConfig (Lambda's PassThrough: no segment of its own), not "PassThrough" spelled out.
        assert function.get("TracingConfig") == ({"Mode": "Active"} if tracing else None), f"{name}: {function.get('TracingConfig')}"
        # Written either way, so the template says which.
        assert function["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == ("false" if tracing else "true"), name


def test_roles_may_send_to_x_ray_only_where_the_stage_traces(synthesized):
    with_xray = set()
    for kind in STACK_KINDS:
        template = synthesized.template(kind)
        policies = {**template.find_resources("AWS::IAM::Policy"), **template.find_resources("AWS::IAM::ManagedPolicy")}
        for logical_id, policy in policies.items():
            for statement in as_list(policy["Properties"]["PolicyDocument"]["Statement"]):
                actions = set(as_list(statement["Action"]))
                if any(action.startswith("xray:") for action in actions):
                    # X-Ray has no resource-level permissions: its two actions, on "*" (CDK may merge other "*" actions in).
                    assert {a for a in actions if a.startswith("xray:")} == XRAY_ACTIONS, f"{logical_id}: {statement}"
                    assert as_list(statement["Resource"]) == ["*"], f"{logical_id}: {statement}"
                    with_xray.add(logical_id.split("Role")[0])
    # Both function roles where the stage traces; no policy at all where it does not (prod).
    assert with_xray == ({"BalanceEvents", "Holds", "Reconciler"} if synthesized.config.tracing else set())


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_runtime_reads_the_switch_the_template_sets(synthesize, monkeypatch, stage):
    # Given each function's environment from the stage's synthesized template, as Lambda would set it
    built = synthesize(stage)
    for name, function in functions(built).items():
        environment = lambda_environment(function)
        # When the runtime decides whether to trace (runtime/reconciler/observability.py), and Powertools too
        enabled = tracing_enabled(environment)
        for variable in (*LAMBDA_ONLY, "POWERTOOLS_TRACE_DISABLED"):
            monkeypatch.delenv(variable, raising=False)
        for variable in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED"):
            monkeypatch.setenv(variable, environment[variable])
        powertools_enabled = not Tracer._is_tracer_disabled()
        # Then both follow the stage's config: the X-Ray SDK is imported only where the stage traces
        assert enabled is built.config.tracing, f"{stage} {name}: tracing_enabled() is {enabled}"
        assert powertools_enabled is built.config.tracing, f"{stage} {name}: Powertools' Tracer disabled is {not powertools_enabled}"
