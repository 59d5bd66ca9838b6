"""Whole-app checks: cdk-nag, cfn-lint, and synthesis the way the CLI and other tools run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import Validations
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint

from infra.app import build_app, synthesize_templates
from reconciler.contract import STAGES

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("stage", STAGES)
def test_cdk_nag_aws_solutions_finds_nothing_unacknowledged(stage, tmp_path):
    # Given the stage's app with the AwsSolutions pack attached (its own app: findings fail synthesis)
    app = build_app(stage, outdir=str(tmp_path))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    # When it synthesizes
    try:
        app.synth()
    except Exception as error:  # noqa: BLE001 - jsii surfaces ValidationFailed as a generic error
        report = tmp_path / "validation-report.json"
        details = report.read_text() if report.exists() else ""
        pytest.fail(f"cdk-nag findings for {stage}:\n{error}\n{details}")
    # Then no finding is left unacknowledged


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
