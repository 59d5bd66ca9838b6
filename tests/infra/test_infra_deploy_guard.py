"""The deploy job's pause check (python -m infra.deploy_guard): a deploy would end a `reconciler pause`."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from infra.deploy_guard import main

STAGE = "staging"
FUNCTION = "cc-agent-reconciler-staging"


@pytest.fixture
def lambda_client(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.client("lambda", region_name="us-east-1")


def deployed(client, concurrency: int | None) -> None:
    role = boto3.client("iam", region_name="us-east-1").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    client.create_function(
        FunctionName=FUNCTION, Runtime="python3.12", Role=role, Handler="x.handler", Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18}
    )
    if concurrency is not None:
        client.put_function_concurrency(FunctionName=FUNCTION, ReservedConcurrentExecutions=concurrency)


def test_a_paused_stage_is_not_deployed(lambda_client, capsys):
    deployed(lambda_client, concurrency=0)  # what `reconciler pause` leaves
    assert main([STAGE], lambda_client) == 1
    error = capsys.readouterr().out
    assert error.startswith("::error::cc-agent-reconciler-staging is paused") and "reconciler --stage staging resume" in error


@pytest.mark.parametrize("concurrency", [10, 1, None])
def test_a_running_stage_is_deployed(lambda_client, capsys, concurrency):
    deployed(lambda_client, concurrency)
    assert main([STAGE], lambda_client) == 0
    assert "is not paused" in capsys.readouterr().out


def test_a_stage_never_deployed_has_nothing_to_pause(lambda_client):
    assert main([STAGE], lambda_client) == 0


def test_usage_and_unknown_stage(capsys):
    assert main([]) == 2
    assert main(["qa"]) == 2 and "unknown stage 'qa'" in capsys.readouterr().err
