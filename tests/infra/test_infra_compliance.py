"""Whole-app checks: cdk-nag, cfn-lint, and synthesis the way the CLI and other tools run it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import Validations, cx_api
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from cfnlint.api import ManualArgs, lint
from constructs import IConstruct
from infra_helpers import as_list

from infra.app import build_app, build_ci_app, synthesize_templates
from reconciler.contract import STAGES

REPO = Path(__file__).resolve().parents[2]
IAM5 = re.compile(r"AwsSolutions::AwsSolutions-IAM5\[(?P<kind>Resource|Action)::(?P<value>.+)\]")
POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")


@dataclass(frozen=True)
class NagChecked:
    stage: str
    app: cdk.App
    assembly: cx_api.CloudAssembly | None
    findings: str  # empty when synthesis passed the pack
    fewest_acknowledgements: int  # how many the app has at least (an empty list proves nothing)


# The stage's app, and the CI roles' app (infra/ci_app.py), with the acknowledgements each holds at least.
APPS = {"app": (build_app, 10), "ci": (build_ci_app, 5)}


@pytest.fixture(scope="module", params=[(stage, app) for stage in STAGES for app in APPS], ids=lambda p: f"{p[0]}-{p[1]}")
def nag_checked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> NagChecked:
    """The stage's app (or its CI roles' app) with the AwsSolutions and ServerlessChecks packs attached (its own app:
    findings fail synthesis), synthesized."""
    (stage, kind), outdir = request.param, tmp_path_factory.mktemp(f"nag-{request.param[0]}-{request.param[1]}")
    build, fewest = APPS[kind]
    app = build(stage, outdir=str(outdir))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    try:
        return NagChecked(f"{stage} ({kind})", app, app.synth(), "", fewest)
    except Exception as error:  # noqa: BLE001 - jsii surfaces ValidationFailed as a generic error
        report = outdir / "validation-report.json"
        return NagChecked(f"{stage} ({kind})", app, None, f"{error}\n{report.read_text() if report.exists() else ''}", fewest)


def test_cdk_nag_aws_solutions_and_serverless_find_nothing_unacknowledged(nag_checked):
    # Given the stage's app with both packs, When it synthesizes, Then no finding is left unacknowledged
    assert nag_checked.assembly is not None, f"cdk-nag findings for {nag_checked.stage}:\n{nag_checked.findings}"


def acknowledgements(app: cdk.App) -> list[tuple[IConstruct, str, str]]:
    """(scope, rule, reason) of every acknowledgement in the app."""
    return [
        (construct, rule, reason)
        for construct in app.node.find_all()
        for entry in construct.node.metadata
        if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule, reason in entry.data.items()
    ]


def test_no_acknowledgement_covers_a_role_or_a_whole_stack(nag_checked):
    # An acknowledgement covers everything below its scope: on a role it would pre-approve what is added to it later.
    assert nag_checked.assembly is not None, f"cdk-nag findings for {nag_checked.stage}:\n{nag_checked.findings}"
    found = acknowledgements(nag_checked.app)
    assert len(found) >= nag_checked.fewest_acknowledgements
    for construct, rule, _ in found:
        where = f"{nag_checked.stage} {construct.node.path} {rule}"
        assert not isinstance(construct, (cdk.App, cdk.Stack)), f"{where}: acknowledged for a whole stack"
        assert not any(isinstance(c, iam.CfnRole) for c in construct.node.find_all()), f"{where}: acknowledged on a role"


def test_no_wildcard_or_managed_policy_acknowledgement_is_bare(nag_checked):
    # IAM4 and IAM5 findings name what they flag (`...-IAM5[Resource::*]`): a bare rule id would excuse any wildcard or
    # managed policy of its scope, present or added later, and the statement check below would not even read it.
    assert nag_checked.assembly is not None, f"cdk-nag findings for {nag_checked.stage}:\n{nag_checked.findings}"
    bare = [f"{c.node.path} {rule}" for c, rule, _ in acknowledgements(nag_checked.app) if re.fullmatch(r".*-IAM[45]", rule)]
    assert bare == [], f"{nag_checked.stage}: acknowledged without naming the finding: {bare}"


def test_every_iam5_acknowledgement_names_exactly_the_statements_it_excuses(nag_checked):
    # Given each IAM5 acknowledgement (its reason starts with the Sids it excuses: "Sid: why"), When its scope's one
    # policy is read as synthesized, Then the statements raising that finding are exactly the ones it names: a
    # wildcard added later to that policy, or named X-Ray where none is granted, fails here although cdk-nag passes.
    assert nag_checked.assembly is not None, f"cdk-nag findings for {nag_checked.stage}:\n{nag_checked.findings}"
    checked = 0
    for construct, rule, reason in acknowledgements(nag_checked.app):
        match = IAM5.fullmatch(rule)
        if not match:
            continue
        where = f"{nag_checked.stage} {construct.node.path} {rule}"
        policies = policy_statements_under(construct, nag_checked.assembly)
        assert len(policies) == 1, f"{where}: bound to {len(policies)} policies, not one"
        (statements,) = policies.values()
        named = set(reason.split(": ", 1)[0].split(", "))
        raising = {s.get("Sid") for s in statements if raises(s, match["kind"], match["value"])}
        assert raising and raising == named, f"{where}: names {sorted(named)}, the statements raising it are {sorted(map(str, raising))}"
        if "X-Ray" in reason:
            assert any(a.startswith("xray:") for s in statements for a in as_list(s["Action"])), f"{where}: names X-Ray, grants none"
        checked += 1
    assert checked >= 3, "the operator policies' (or the CI roles') acknowledgements at least"


def raises(statement: dict, kind: str, value: str) -> bool:
    """Whether cdk-nag's IAM5 would report `[kind::value]` for this statement (resources rendered as cdk-nag does)."""
    if kind == "Action":
        return value in as_list(statement["Action"])
    return value in (nag_rendered(resource) for resource in as_list(statement["Resource"]))


def nag_rendered(resource) -> str:
    if isinstance(resource, str):
        return resource
    if "Fn::Join" in resource:
        separator, parts = resource["Fn::Join"]
        return separator.join(part if isinstance(part, str) else f"<{part.get('Ref', 'token')}>" for part in parts)
    return "<token>"


def policy_statements_under(construct: IConstruct, assembly: cx_api.CloudAssembly) -> dict[str, list[dict]]:
    """Logical id -> synthesized statements, for the IAM policies at or below `construct`."""
    stack = cdk.Stack.of(construct)
    resources = assembly.get_stack_by_name(stack.stack_name).template["Resources"]
    logical_ids = [stack.get_logical_id(c) for c in construct.node.find_all() if cdk.CfnElement.is_cfn_element(c)]
    return {
        logical_id: as_list(resources[logical_id]["Properties"]["PolicyDocument"]["Statement"])
        for logical_id in logical_ids
        if resources.get(logical_id, {}).get("Type") in POLICY_TYPES
    }


@pytest.mark.parametrize("stage", STAGES)
def test_cfn_lint_finds_no_problem_in_the_ci_roles(stage, ci_stack):
    stack = ci_stack(stage)
    matches = lint(json.dumps(stack.template), config=ManualArgs(ignore_checks=["W3005"], regions=["us-east-1"]))
    assert not matches, f"cfn-lint on {stack.stack_name}:\n" + "\n".join(f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches)


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


@pytest.mark.long
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
