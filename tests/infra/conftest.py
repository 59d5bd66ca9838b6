"""Shared fixtures: every stage's app is synthesized once per test session (tests/least_privilege/synthesis.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk.assertions import Template

from infra.config import StageConfig, config_for
from reconciler.contract import STAGES
from tests.least_privilege import synthesis


def _jsii_package_cache() -> str:
    """The jsii runtime's package cache as this process's kernel uses it (@jsii/kernel's defaultCacheRoot)."""
    if os.environ.get("JSII_RUNTIME_PACKAGE_CACHE_ROOT"):
        return os.environ["JSII_RUNTIME_PACKAGE_CACHE_ROOT"]
    if sys.platform == "win32":
        return str(Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "AWS" / "jsii" / "package-cache")
    if sys.platform == "darwin":
        return str(Path.home() / "Library" / "Caches" / "com.amazonaws.jsii" / "package-cache")
    return str(Path.home() / ".cache" / "aws" / "jsii" / "package-cache")


JSII_PACKAGE_CACHE = _jsii_package_cache()


@dataclass(frozen=True)
class SynthesizedStage:
    config: StageConfig
    data: Template
    compute: Template
    monitoring: Template
    # Stack name -> (termination protection, account, region), as the CLI deploys them.
    deployment: dict[str, tuple[bool, str, str]]
    # The deployed shadow (`--context mode=shadow`, its own app) and how the CLI deploys it.
    shadow: Template
    shadow_deployment: tuple[bool, str, str]

    def template(self, kind: str) -> Template:
        return getattr(self, kind)


@pytest.fixture(scope="session")
def synthesize(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], SynthesizedStage]:
    """A stage's app on first request only, so a worker pays only for the stages its tests use; from the session's
    synthesis cache, so the other worker and the controller's IAM check (recorder.py) do not synthesize it again."""
    cache = synthesis.cache_or_own(request.config, tmp_path_factory)
    built: dict[str, SynthesizedStage] = {}

    def get(stage: str) -> SynthesizedStage:
        if stage not in built:
            stacks = cache.stacks(stage)
            names = config_for(stage).names
            built[stage] = SynthesizedStage(
                config=config_for(stage),
                data=Template.from_json(stacks[names.data_stack].template),
                compute=Template.from_json(stacks[names.compute_stack].template),
                monitoring=Template.from_json(stacks[names.monitoring_stack].template),
                deployment={name: (stacks[name].termination_protection, stacks[name].account, stacks[name].region) for name in names.app_stacks},
                shadow=Template.from_json(stacks[names.shadow_stack].template),
                shadow_deployment=(
                    stacks[names.shadow_stack].termination_protection,
                    stacks[names.shadow_stack].account,
                    stacks[names.shadow_stack].region,
                ),
            )
        return built[stage]

    return get


@pytest.fixture(scope="session")
def ci_stack(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Any]:
    """A stage's synthesized CI stack (infra/app.py build_ci_app), once per stage and process: the CI roles' tests
    and cfn-lint read the same stack."""
    from infra.app import build_ci_app

    built: dict[str, Any] = {}

    def get(stage: str) -> Any:
        if stage not in built:
            (built[stage],) = build_ci_app(stage, outdir=str(tmp_path_factory.mktemp(f"ci-{stage}"))).synth().stacks
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
    # The jsii runtime unpacks aws-cdk-lib (~180 MB) into a cache under HOME: keep the one it already has, which
    # holds no AWS configuration, or each subprocess spends 10 s of CPU unpacking it again.
    monkeypatch.setenv("JSII_RUNTIME_PACKAGE_CACHE_ROOT", JSII_PACKAGE_CACHE)
    # npm's update check would ask the registry from a test: nothing leaves the machine.
    monkeypatch.setenv("npm_config_update_notifier", "false")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aws config either
    return dict(os.environ)


@pytest.fixture(scope="session")
def synthesize_shadow(synthesize: Callable[[str], SynthesizedStage]) -> Callable[[str], Template]:
    """A stage's deployed shadow (`--context mode=shadow`: its one stack), from the session's synthesis cache."""
    return lambda stage: synthesize(stage).shadow
