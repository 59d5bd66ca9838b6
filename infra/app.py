"""Builds the reconciler's CDK app for one stage."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import aws_cdk as cdk

from infra.config import DEFAULT_STAGE, StageConfig, config_for, for_first_deploy, for_mode
from infra.stacks.ci_stack import CiStack
from infra.stacks.compute_stack import ComputeStack
from infra.stacks.data_stack import DataStack
from infra.stacks.monitoring_stack import MonitoringStack
from infra.stacks.shadow_stack import ShadowStack
from reconciler.contract import SERVICE_NAME

CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"


def _context() -> dict:
    """cdk.json's feature flags, overlaid with the CLI's context (CDK_CONTEXT_JSON).

    Read here rather than left to the App: `python app.py` and the tests must see the same flags
    as the CLI, and the jsii kernel only sees the environment of the moment it started.
    """
    context = json.loads(CDK_JSON.read_text()).get("context", {})
    context.update(json.loads(os.environ.get("CDK_CONTEXT_JSON") or "{}"))
    return context


def _stage_app(stage: str | None, outdir: str | None, mode: str | None = None) -> tuple[cdk.App, StageConfig, dict]:
    """An app, the stage it builds (`stage`, else the `stage` context, else dev), in its mode (`mode`, else the `mode`
    context, else full) and what each of its stacks takes."""
    app = cdk.App(outdir=outdir, context=_context())
    config = config_for(stage or app.node.try_get_context("stage") or DEFAULT_STAGE)
    config = for_mode(config, mode or app.node.try_get_context("mode") or "full")
    if str(app.node.try_get_context("first_deploy")).lower() == "true":  # `make deploy FIRST_DEPLOY=1`
        config = for_first_deploy(config)
    common = dict(
        tags={"project": SERVICE_NAME, "stage": config.stage},
        # Environment-specific stacks: credentials for another account make `cdk deploy` fail, not go there.
        env=cdk.Environment(account=config.account, region=config.region),
        termination_protection=config.termination_protection,
    )
    return app, config, common


def build_app(stage: str | None = None, outdir: str | None = None, mode: str | None = None) -> cdk.App:
    """The app for `stage`, else the `stage` context (`--context stage=NAME` or CDK_CONTEXT_JSON), else dev; with
    `--context mode=shadow` (or `mode`) only the deployed shadow, to run beside a live v1 (docs/migration.md step 1)."""
    app, config, common = _stage_app(stage, outdir, mode)
    names = config.names
    if config.mode == "shadow":
        ShadowStack(app, names.shadow_stack, config=config, stack_name=names.shadow_stack, **common)
        return app

    data = DataStack(app, names.data_stack, config=config, stack_name=names.data_stack, **common)
    compute = ComputeStack(app, names.compute_stack, config=config, data=data, stack_name=names.compute_stack, **common)
    MonitoringStack(
        app,
        names.monitoring_stack,
        config=config,
        data=data,
        compute=compute,
        stack_name=names.monitoring_stack,
        **common,
    )
    return app


def build_ci_app(stage: str | None = None, outdir: str | None = None) -> cdk.App:
    """The stage's CI roles (`cc-reconciler-ci-{stage}`), an app of their own: the pipeline deploys build_app's
    assembly and never this one (docs/infrastructure.md, "CI roles")."""
    app, config, common = _stage_app(stage, outdir)
    CiStack(app, config.names.ci_stack, config=config, stack_name=config.names.ci_stack, **common)
    return app


def synthesize_templates(stage: str, mode: str | None = None) -> dict[str, dict]:
    """Stack display name -> CloudFormation template, synthesized into a throw-away folder."""
    with tempfile.TemporaryDirectory(prefix="cc-reconciler-synth-") as outdir:
        assembly = build_app(stage, outdir, mode).synth()
        return {stack.display_name: stack.template for stack in assembly.stacks}
