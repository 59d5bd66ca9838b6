"""`python -m infra.predeploy STAGE [--first-deploy]`: what must hold before any deploy of a stage (`make deploy` runs it).

Each finding is a line saying what to do; exit 1 when there is any:
  * the credentials are the stage's account, and the clients its region (the stacks are environment-specific);
  * Lambda keeps at least 100 of the account's concurrency unreserved, so the function's reserved concurrency must
    fit above that (a new account may start with a total of 10);
  * AWS's public parameter holding the pinned Powertools layer exists in the region (CloudFormation resolves it);
  * the stage is not paused (`reconciler pause`: reserved concurrency 0), which the deploy would end by writing the
    template's concurrency back (infra/deploy_guard.py, the same check in CI's deploy job);
  * a stack's first create runs with `--first-deploy` (no protection until it has succeeded once: a failed create
    can then be rolled back and retried), and a deploy onto existing stacks never does (it would turn protection off);
  * where the stage adopts v1's resources and they exist, the data stack exists before anything else is deployed
    (the adoption's import comes first: docs/migration.md).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from botocore.exceptions import ClientError

from infra.adoption import adopted
from infra.config import POWERTOOLS_LAYER_PARAMETER, StageConfig, config_for
from infra.deploy_guard import pause_problem

UNRESERVED_MINIMUM = 100  # Lambda's floor of unreserved concurrency per account and region


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _stack_exists(cloudformation: Any, name: str) -> bool:
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if _code(error) == "ValidationError":  # "Stack with id ... does not exist"
            return False
        raise
    return any(stack.get("StackStatus") != "DELETE_COMPLETE" for stack in stacks)


def _reserved_now(lambda_client: Any, function_name: str) -> int:
    try:
        return lambda_client.get_function_concurrency(FunctionName=function_name).get("ReservedConcurrentExecutions") or 0
    except ClientError as error:
        if _code(error) == "ResourceNotFoundException":
            return 0
        raise


def _table_exists(dynamodb: Any, name: str) -> bool:
    try:
        dynamodb.describe_table(TableName=name)
    except ClientError as error:
        if _code(error) == "ResourceNotFoundException":
            return False
        raise
    return True


def problems(config: StageConfig, *, sts: Any, lambda_client: Any, ssm: Any, cloudformation: Any, dynamodb: Any, first_deploy: bool) -> list[str]:
    found = []
    account = sts.get_caller_identity()["Account"]
    if account != config.account:
        found.append(f"these credentials are for account {account}; {config.stage} deploys to {config.account} (infra/config.py)")
    for client in (lambda_client, ssm, cloudformation, dynamodb):
        if client.meta.region_name != config.region:
            service = client.meta.service_model.service_name
            found.append(f"the {service} client is in {client.meta.region_name}; {config.stage} deploys to {config.region}")
            break
    names = config.names
    unreserved = lambda_client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
    # A function that exists already holds its reservation out of `unreserved`; only the increase must fit.
    needed = max(config.limits.reserved_concurrency - _reserved_now(lambda_client, names.function), 0)
    if unreserved - needed < UNRESERVED_MINIMUM:
        found.append(
            f"the account has {unreserved} unreserved concurrent executions; reserving {needed} more for {names.function} would leave "
            f"{unreserved - needed}, below Lambda's minimum of {UNRESERVED_MINIMUM}: ask for a concurrency quota of at least "
            f"{UNRESERVED_MINIMUM + config.limits.reserved_concurrency} (Service Quotas, Lambda, Concurrent executions) before deploying"
        )
    paused = pause_problem(lambda_client, names.function, config.stage)
    if paused:
        found.append(paused)
    try:
        ssm.get_parameter(Name=POWERTOOLS_LAYER_PARAMETER)
    except ClientError as error:
        if _code(error) != "ParameterNotFound":
            raise
        found.append(f"{POWERTOOLS_LAYER_PARAMETER} does not exist in {config.region}: pin a Powertools version whose layer AWS publishes there")
    stacks = {name: _stack_exists(cloudformation, name) for name in (names.data_stack, names.compute_stack, names.monitoring_stack)}
    protected = config.termination_protection or config.deletion_protection
    new = [name for name, exists in stacks.items() if not exists]
    if new and protected and not first_deploy:
        found.append(
            f"{', '.join(new)} would be created with protection on, so a failed create could not be retried: deploy once with "
            "FIRST_DEPLOY=1 (no protection), then again without it (docs/migration.md, 'A first deploy that can be retried')"
        )
    if first_deploy and not new:
        found.append("every stack exists: FIRST_DEPLOY=1 would turn protection off; deploy without it")
    if config.takeover == "adopt" and not stacks[names.data_stack]:
        existing = [name for name, (kind, _) in adopted(config).items() if kind == "AWS::DynamoDB::Table" and _table_exists(dynamodb, name)]
        if existing:
            found.append(
                f"v1's tables {', '.join(existing)} exist and {names.data_stack} does not: import them first "
                f"(`python -m infra.adoption {config.stage}`, docs/migration.md, 'Adopt v1's resources')"
            )
    return found


SERVICES = ("sts", "lambda", "ssm", "cloudformation", "dynamodb")


def problems_with(config: StageConfig, clients: dict[str, Any], first_deploy: bool) -> list[str]:
    """`problems` with one client per service of SERVICES, by service name."""
    sts, lambda_client, ssm, cloudformation, dynamodb = (clients[service] for service in SERVICES)
    return problems(
        config, sts=sts, lambda_client=lambda_client, ssm=ssm, cloudformation=cloudformation, dynamodb=dynamodb, first_deploy=first_deploy
    )


def main(argv: list[str], clients: dict[str, Any] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.predeploy", description="Checks before deploying a stage.")
    parser.add_argument("stage")
    parser.add_argument("--first-deploy", action="store_true", help="the deploy creates stacks: protection stays off until it succeeded")
    args = parser.parse_args(argv)
    config = config_for(args.stage)
    if clients is None:
        import boto3

        session = boto3.session.Session(region_name=config.region)
        clients = {service: session.client(service) for service in SERVICES}  # type: ignore[call-overload]  # names from a tuple
    found = problems_with(config, clients, args.first_deploy)
    for problem in found:
        print(f"predeploy: {problem}", file=sys.stderr)
    if not found:
        print(f"predeploy: {config.stage} may be deployed to {config.account} in {config.region}")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
