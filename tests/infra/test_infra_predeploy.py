"""The pre-deploy check (infra/predeploy.py) against moto: account, region, unreserved concurrency, the Powertools
parameter, first deploys and the adoption's order."""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from infra import predeploy
from infra.config import POWERTOOLS_LAYER_PARAMETER, config_for, for_mode

MOTO_ACCOUNT = "123456789012"


class AccountSettings:
    """moto's Lambda without GetAccountSettings (not implemented in moto 5): the rest is moto's, the account's
    concurrency is what this test says AWS answers (the response shape of botocore's model)."""

    def __init__(self, client, unreserved: int) -> None:
        self._client, self._unreserved = client, unreserved

    def get_account_settings(self) -> dict:
        return {"AccountLimit": {"ConcurrentExecutions": self._unreserved, "UnreservedConcurrentExecutions": self._unreserved}}

    def __getattr__(self, name):
        return getattr(self._client, name)


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


def clients(region: str = "us-east-1", unreserved: int = 1000) -> dict:
    made = {service: boto3.client(service, region_name=region) for service in predeploy.SERVICES}
    made["lambda"] = AccountSettings(made["lambda"], unreserved)
    return made


def stage(name: str = "prod", **changes):
    return replace(config_for(name), account=MOTO_ACCOUNT, **changes)


def powertools_parameter(region: str = "us-east-1") -> None:
    """AWS's public parameter, as AWS publishes it (moto refuses a PutParameter under /aws/, as AWS does)."""
    from moto.ssm.models import Parameter, ssm_backends

    layer = f"arn:aws:lambda:{region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-arm64:1"
    published = Parameter(MOTO_ACCOUNT, POWERTOOLS_LAYER_PARAMETER, layer, "String", None, None, None, datetime.now(UTC), 1, "text")
    ssm_backends[MOTO_ACCOUNT][region]._parameters[POWERTOOLS_LAYER_PARAMETER].append(published)


def existing_stacks(config) -> None:
    cloudformation = boto3.client("cloudformation", region_name=config.region)
    for name in (config.names.data_stack, config.names.compute_stack, config.names.monitoring_stack):
        cloudformation.create_stack(StackName=name, TemplateBody='{"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}')


def check(config, made: dict, first_deploy: bool = False) -> list[str]:
    return predeploy.problems_with(config, made, first_deploy)


def test_a_first_deploy_with_everything_in_place_passes(aws):
    powertools_parameter()
    assert check(stage("dev"), clients(), first_deploy=True) == []
    assert check(stage("prod"), clients(), first_deploy=True) == []


def test_another_account_or_region_is_refused(aws):
    powertools_parameter()
    found = check(config_for("prod"), clients(), first_deploy=True)
    assert len(found) == 1 and "333333333333" in found[0] and MOTO_ACCOUNT in found[0]
    found = check(stage("prod"), clients("eu-west-1"), first_deploy=True)
    assert any("eu-west-1" in problem for problem in found)


def test_an_account_of_ten_concurrent_executions_cannot_reserve_ten(aws):
    powertools_parameter()
    found = check(stage("prod"), clients(unreserved=10), first_deploy=True)
    assert len(found) == 1 and "below Lambda's minimum of 100" in found[0] and "at least 110" in found[0]
    assert check(stage("prod"), clients(unreserved=110), first_deploy=True) == []


def deployed_function(made: dict, config, concurrency: int) -> None:
    role = boto3.client("iam", region_name="us-east-1").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    made["lambda"].create_function(
        FunctionName=config.names.function, Runtime="python3.12", Role=role, Handler="x.handler", Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18}
    )
    made["lambda"].put_function_concurrency(FunctionName=config.names.function, ReservedConcurrentExecutions=concurrency)


def test_a_function_that_holds_its_reservation_needs_no_more(aws):
    powertools_parameter()
    config = stage("prod")
    existing_stacks(config)
    made = clients(unreserved=100)  # its 10 are already out of the unreserved 100
    deployed_function(made, config, 10)
    assert check(config, made) == []


def test_a_paused_stage_is_not_deployed_by_make_deploy(aws):
    # Given a deployed stage that an operator paused (`reconciler pause`: reserved concurrency 0)
    powertools_parameter()
    config = stage("prod")
    existing_stacks(config)
    made = clients()
    deployed_function(made, config, 0)
    # Then the check refuses (the deploy would write the template's concurrency back) and says how to go on
    (found,) = check(config, made)
    assert found.startswith(f"{config.names.function} is paused (reserved concurrency 0)") and "reconciler --stage prod resume" in found
    # And once resumed, it passes
    made["lambda"].put_function_concurrency(FunctionName=config.names.function, ReservedConcurrentExecutions=10)
    assert check(config, made) == []


def test_a_missing_powertools_parameter_is_named(aws):
    found = check(stage("dev"), clients(), first_deploy=True)
    assert found == [f"{POWERTOOLS_LAYER_PARAMETER} does not exist in us-east-1: pin a Powertools version whose layer AWS publishes there"]


def test_a_protected_first_create_needs_first_deploy_and_an_existing_stage_refuses_it(aws):
    powertools_parameter()
    config = stage("prod")
    assert any("FIRST_DEPLOY=1" in problem for problem in check(config, clients()))
    assert check(stage("dev"), clients()) == []  # dev has no protection to turn on
    existing_stacks(config)
    assert check(config, clients()) == []
    assert any("would turn protection off" in problem for problem in check(config, clients(), first_deploy=True))


def test_an_adopting_stage_imports_v1s_tables_before_anything_is_deployed(aws):
    powertools_parameter()
    config = stage("prod")
    boto3.client("dynamodb", region_name="us-east-1").create_table(
        TableName="Jobs-prod", KeySchema=[{"AttributeName": "jobId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "jobId", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip
    found = check(config, clients(), first_deploy=True)
    assert len(found) == 1 and "Jobs-prod" in found[0] and "import them first" in found[0]


def test_the_command_exits_1_with_a_line_per_problem(aws, capsys):
    assert predeploy.main(["dev", "--first-deploy"], clients()) == 1
    assert "predeploy:" in capsys.readouterr().err
    powertools_parameter()
    assert predeploy.main(["dev", "--first-deploy"], clients()) == 1  # the placeholder account is not moto's


def table(name: str) -> None:
    boto3.client("dynamodb", region_name="us-east-1").create_table(
        TableName=name, KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip


def test_the_shadow_is_checked_against_v1s_tables_and_its_own_kept_resources(aws):
    # Given prod's deployed shadow, in an account without v1
    powertools_parameter()
    shadow = for_mode(stage("prod"), "shadow")
    names = shadow.names
    (found,) = check(shadow, clients(unreserved=10))
    # Then it names v1's missing tables (it decides against them), and none of the stage's own checks (concurrency: it
    # reserves none; protection, adoption: v2's stacks) apply
    assert "Jobs-prod, Credits-prod, Ledger-prod do not exist" in found and "deploy it where v1 runs" in found
    for name in (names.jobs_table, names.credits_table, names.ledger_table):
        table(name)
    assert check(shadow, clients(unreserved=10)) == []
    # When an earlier shadow was destroyed in prod: its table, DLQ and log group were retained
    table(names.shadow_table)
    boto3.client("sqs", region_name="us-east-1").create_queue(QueueName=names.shadow_dead_letter_queue)
    boto3.client("logs", region_name="us-east-1").create_log_group(logGroupName=f"/aws/lambda/{names.shadow_function}")
    # Then the check names the three before the create fails on them
    (found,) = check(shadow, clients())
    assert found.startswith(f"ShadowDecisions-prod, cc-reconciler-shadow-dlq-prod, /aws/lambda/{names.shadow_function} exist outside")
    # And with the shadow's stack deployed they are its own: an update passes
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    cloudformation.create_stack(StackName=names.shadow_stack, TemplateBody='{"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}')
    assert check(shadow, clients()) == []
    assert predeploy.main(["prod", "--mode", "shadow"], clients()) == 1  # the placeholder account is not moto's


def test_make_deploy_shadow_runs_the_check_of_its_mode_before_the_deploy():
    # `make -n` prints the recipe without running it; the installs it depends on are taken as done (-o)
    repo = Path(__file__).resolve().parents[2]
    done = ["-o", ".venv/bin/.installed", "-o", "node_modules/.installed"]
    # Under `make test` the outer make's MAKEFLAGS and MAKELEVEL would reach this one ("Entering directory" lines).
    quiet = {name: value for name, value in os.environ.items() if name not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    command = ["make", "--no-print-directory", "-n", *done, "deploy-shadow", "STAGE=prod"]
    printed = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=60, check=True, env=quiet)
    assert printed.stdout.splitlines() == [
        ".venv/bin/python -m infra.predeploy prod --mode shadow",
        "npx cdk deploy --context stage=prod --context mode=shadow --require-approval broadening",
    ]
