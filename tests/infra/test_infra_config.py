"""The stage table in infra/config.py and how the app picks a stage."""

from __future__ import annotations

import json
import re
from dataclasses import FrozenInstanceError
from decimal import Decimal
from pathlib import Path

import pytest
from aws_cdk import Duration, RemovalPolicy

from infra.app import build_app
from infra.config import POWERTOOLS_VERSION, config_for
from reconciler.contract import STAGES, UnknownStageError

REPO = Path(__file__).resolve().parents[2]


def test_every_stage_of_the_contract_has_a_configuration():
    assert [config_for(stage).stage for stage in STAGES] == list(STAGES)


def test_powertools_layer_version_matches_the_requirements_pin():
    # Given the pin the runtime is tested with
    pins = dict(re.findall(r"^([\w-]+)==(\S+)", (REPO / "requirements.txt").read_text(), re.MULTILINE))
    # Then the deployed layer is the same version
    assert pins["aws-lambda-powertools"] == POWERTOOLS_VERSION, (
        f"requirements.txt pins aws-lambda-powertools {pins['aws-lambda-powertools']} but the function "
        f"gets the {POWERTOOLS_VERSION} layer; change both together"
    )


def test_stage_config_is_immutable():
    config = config_for("dev")
    with pytest.raises(FrozenInstanceError):
        config.tracing = not config.tracing  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        config.limits.reserved_concurrency = 100  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.price_overrides["new-model"] = "1"  # type: ignore[index]


@pytest.mark.parametrize("stage", STAGES)
def test_invariants_hold_in_every_stage(stage):
    config = config_for(stage)
    assert config.point_in_time_recovery, f"{stage}: PITR must be on everywhere"
    assert config.limits.reserved_concurrency == 10, f"{stage}: reserved concurrency {config.limits.reserved_concurrency}"
    assert config.async_invoke_max_retries == 2
    assert all(Decimal(price) > 0 for price in config.price_overrides.values())
    # The stuck-jobs alarm period (1 h) must span several timer scans.
    assert config.timer_scan_rate.to_minutes() <= 15


def test_stage_differences():
    dev, staging, prod = (config_for(stage) for stage in ("dev", "staging", "prod"))
    assert (dev.removal_policy, dev.deletion_protection) == (RemovalPolicy.DESTROY, False)
    # Kept on update and delete, not after a failed create (so a failed first deploy can be retried).
    assert (staging.removal_policy, staging.deletion_protection) == (RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE, False)
    assert (prod.removal_policy, prod.deletion_protection) == (RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE, True)
    assert (dev.termination_protection, staging.termination_protection, prod.termination_protection) == (False, False, True)
    assert not dev.triage_enabled and staging.triage_enabled and prod.triage_enabled
    assert not dev.alarm_actions_enabled and prod.alarm_actions_enabled
    assert dict(prod.price_overrides) == {}, "prod charges published prices only"
    assert prod.timer_scan_rate.to_seconds() == Duration.minutes(5).to_seconds()
    # Traced where latency is investigated; prod keeps its cold-start and memory targets (issue #12).
    assert (dev.tracing, staging.tracing, prod.tracing) == (True, True, False)


def test_unknown_stage_fails_with_the_valid_stages_listed():
    with pytest.raises(UnknownStageError, match=r"unknown stage 'qa'; valid stages: dev, staging, prod"):
        build_app("qa")


def test_unknown_stage_from_cli_context_fails_too(monkeypatch):
    # Given the CLI passed --context stage=qa (it does so through CDK_CONTEXT_JSON)
    monkeypatch.setenv("CDK_CONTEXT_JSON", json.dumps({"stage": "qa"}))
    # Then building the app names the valid stages
    with pytest.raises(UnknownStageError, match="valid stages: dev, staging, prod"):
        build_app()


@pytest.mark.parametrize(("context", "expected"), [({}, "dev"), ({"stage": "staging"}, "staging")])
def test_stage_comes_from_cli_context_else_dev(monkeypatch, context, expected):
    monkeypatch.setenv("CDK_CONTEXT_JSON", json.dumps(context))
    app = build_app()
    assert sorted(child.node.id for child in app.node.children) == sorted(
        f"cc-reconciler-{kind}-{expected}" for kind in ("data", "compute", "monitoring")
    )


def test_no_stage_is_retained_with_plain_retain():
    # A retained fixed-name resource survives a rolled-back create and the retry fails "already exists".
    assert all(config_for(stage).removal_policy != RemovalPolicy.RETAIN for stage in STAGES)


def test_every_stage_names_its_account_and_region():
    for stage in STAGES:
        config = config_for(stage)
        assert re.fullmatch(r"\d{12}", config.account) and re.fullmatch(r"[a-z]{2}-[a-z]+-\d", config.region), stage


def test_stages_sharing_an_account_and_region_do_not_both_write_the_dimensionless_series():
    # The runbook's dimensionless Adjustments series would mix their counts (docs/metrics.md).
    writers: dict[tuple[str, str], list[str]] = {}
    for stage in STAGES:
        config = config_for(stage)
        if config.dimensionless_metrics:
            writers.setdefault((config.account, config.region), []).append(stage)
    assert all(len(stages) == 1 for stages in writers.values()), writers


def test_alert_subscriptions_are_validated():
    from infra.config import AlertSubscription

    AlertSubscription("sqs", "arn:aws:sqs:us-east-1:123456789012:chat-alerts")
    for protocol, endpoint in (("email", "not-an-address"), ("https", "http://plain.example.com"), ("sms", "+15555550100")):
        with pytest.raises(ValueError, match=f"not a valid {protocol} endpoint|unsupported alert subscription protocol '{protocol}'"):
            AlertSubscription(protocol, endpoint)  # type: ignore[arg-type]


@pytest.mark.parametrize("stage", STAGES)
def test_stacks_deploy_to_the_stage_account_and_region_with_its_termination_protection(synthesize, stage):
    built = synthesize(stage)
    config = built.config
    assert set(built.deployment) == {config.names.data_stack, config.names.compute_stack, config.names.monitoring_stack}
    assert set(built.deployment.values()) == {(config.termination_protection, config.account, config.region)}
