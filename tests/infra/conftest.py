"""Shared fixtures: every stage's app is synthesized once per test session (per xdist worker)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk.assertions import Template

from infra.app import build_app
from infra.config import StageConfig, config_for
from reconciler.contract import STAGES


@dataclass(frozen=True)
class SynthesizedStage:
    config: StageConfig
    data: Template
    compute: Template
    monitoring: Template
    # Stack name -> (termination protection, account, region), as the CLI deploys them.
    deployment: dict[str, tuple[bool, str, str]]

    def template(self, kind: str) -> Template:
        return getattr(self, kind)


@pytest.fixture(scope="session")
def synthesize(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], SynthesizedStage]:
    """Builds a stage's app on first request only, so a worker pays only for the stages its tests use."""
    built: dict[str, SynthesizedStage] = {}

    def get(stage: str) -> SynthesizedStage:
        if stage not in built:
            app = build_app(stage, outdir=str(tmp_path_factory.mktemp(f"cdk-{stage}")))
            stacks = {stack.node.id: stack for stack in app.node.children}
            names = config_for(stage).names
            built[stage] = SynthesizedStage(
                config=config_for(stage),
                data=Template.from_stack(stacks[names.data_stack]),
                compute=Template.from_stack(stacks[names.compute_stack]),
                monitoring=Template.from_stack(stacks[names.monitoring_stack]),
                deployment={name: (stack.termination_protection, stack.account, stack.region) for name, stack in stacks.items()},
            )
        return built[stage]

    return get


@pytest.fixture(params=STAGES)
def stage(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def synthesized(stage: str, synthesize: Callable[[str], SynthesizedStage]) -> SynthesizedStage:
    return synthesize(stage)


@pytest.fixture
def clean_cdk_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> dict[str, str]:
    """An environment with no AWS credentials or profile and no inherited CDK context."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name.startswith("CDK_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aws config either
    return dict(os.environ)
