"""Whole-app checks: cdk-nag, cfn-lint, and synthesis the way the CLI and other tools run it."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import Validations, cx_api
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint
from constructs import IConstruct
from infra_helpers import as_list

from infra.app import build_app, synthesize_templates
from reconciler.contract import STAGES

REPO = Path(__file__).resolve().parents[2]
WILDCARD_RESOURCE = "AwsSolutions::AwsSolutions-IAM5[Resource::*]"


@dataclass(frozen=True)
class NagChecked:
    stage: str
    app: cdk.App
    assembly: cx_api.CloudAssembly | None
    findings: str  # empty when synthesis passed the pack


@pytest.fixture(scope="module", params=STAGES)
def nag_checked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> NagChecked:
    """The stage's app with the AwsSolutions pack attached (its own app: findings fail synthesis), synthesized."""
    stage, outdir = request.param, tmp_path_factory.mktemp(f"nag-{request.param}")
    app = build_app(stage, outdir=str(outdir))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    try:
        return NagChecked(stage, app, app.synth(), "")
    except Exception as error:  # noqa: BLE001 - jsii surfaces ValidationFailed as a generic error
        report = outdir / "validation-report.json"
        return NagChecked(stage, app, None, f"{error}\n{report.read_text() if report.exists() else ''}")


def test_cdk_nag_aws_solutions_finds_nothing_unacknowledged(nag_checked):
    # Given the stage's app with the AwsSolutions pack, When it synthesizes, Then no finding is left unacknowledged
    assert nag_checked.assembly is not None, f"cdk-nag findings for {nag_checked.stage}:\n{nag_checked.findings}"


def test_every_wildcard_acknowledgement_has_a_wildcard_to_acknowledge(nag_checked):
    # cdk-nag does not report an acknowledgement nothing needs: the X-Ray one must go with tracing (issue #12).
    assert nag_checked.assembly is not None, f"cdk-nag findings for {nag_checked.stage}:\n{nag_checked.findings}"
    checked = 0
    for construct in nag_checked.app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type != Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                continue
            for rule, reason in entry.data.items():
                if rule != WILDCARD_RESOURCE and "X-Ray" not in reason:
                    continue
                statements = policy_statements_under(construct, nag_checked.assembly)
                where = f"{nag_checked.stage} {construct.node.path} {rule}"
                if rule == WILDCARD_RESOURCE:
                    assert any("*" in as_list(s["Resource"]) for s in statements), f"{where}: no wildcard resource to acknowledge"
                if "X-Ray" in reason:
                    assert any(a.startswith("xray:") for s in statements for a in as_list(s["Action"])), f"{where}: names X-Ray, grants none"
                checked += 1
    assert checked >= 2, "the operator policies' acknowledgements at least"


def policy_statements_under(construct: IConstruct, assembly: cx_api.CloudAssembly) -> list[dict]:
    """The synthesized statements of the IAM policies at or below `construct` (a role's DefaultPolicy is its child)."""
    stack = cdk.Stack.of(construct)
    resources = assembly.get_stack_by_name(stack.stack_name).template["Resources"]
    logical_ids = [stack.get_logical_id(c) for c in construct.node.find_all() if cdk.CfnElement.is_cfn_element(c)]
    return [
        statement
        for logical_id in logical_ids
        if resources.get(logical_id, {}).get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
        for statement in as_list(resources[logical_id]["Properties"]["PolicyDocument"]["Statement"])
    ]


@pytest.mark.parametrize("stage", STAGES)
def test_cfn_lint_finds_no_problem(stage, synthesize):
    # W3005 (redundant DependsOn) is how CDK writes dependencies; everything else counts.
    settings = ManualArgs(ignore_checks=["W3005"], regions=["us-east-1"])
    built = synthesize(stage)
    for kind in ("data", "compute", "monitoring"):
        matches = lint(json.dumps(built.template(kind).to_json()), config=settings)
        assert not matches, f"cfn-lint on the {stage} {kind} stack:\n" + "\n".join(f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches)


def test_synthesize_templates_returns_every_stack_by_display_name():
    templates = synthesize_templates("staging")
    assert sorted(templates) == sorted(f"cc-reconciler-{kind}-staging" for kind in ("compute", "data", "monitoring"))
    assert all("Resources" in template for template in templates.values())


def test_cdk_cli_synthesizes_prod_without_credentials(clean_cdk_env, tmp_path):
    # Given no AWS credentials, profile or region anywhere in the environment
    env = {**clean_cdk_env, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "CDK_DISABLE_CLI_TELEMETRY": "true"}
    # When the pinned CLI synthesizes prod
    result = subprocess.run(
        ["npx", "--no-install", "cdk", "synth", "--context", "stage=prod", "--quiet", "--no-notices", "--output", str(tmp_path / "out")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Then it succeeds and writes the three prod templates: app.py took the stage from the context the CLI passes it
    # (CDK_CONTEXT_JSON), not its dev default
    assert result.returncode == 0, f"cdk synth failed:\n{result.stdout}\n{result.stderr}"
    written = sorted(p.name for p in (tmp_path / "out").glob("*.template.json"))
    assert written == [f"cc-reconciler-{kind}-prod.template.json" for kind in ("compute", "data", "monitoring")]


def test_app_py_rejects_an_unknown_stage_in_one_line(clean_cdk_env):
    env = {**clean_cdk_env, "CDK_CONTEXT_JSON": json.dumps({"stage": "qa"}), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    result = subprocess.run([sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == "error: unknown stage 'qa'; valid stages: dev, staging, prod"
    assert "Traceback" not in result.stderr
