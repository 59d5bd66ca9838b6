"""`python -m infra.predeploy STAGE [--first-deploy] [--mode shadow]`: what must hold before any deploy of a stage
(`make deploy` runs it, and `make deploy-shadow` with `--mode shadow`).

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
The deployed shadow (`--mode shadow`) is checked for the account, the region and the Powertools parameter, for v1's
tables (it decides against them: they must exist), and for its own retained resources left by an earlier shadow
outside its stack (its create would fail "already exists"); the rest concerns v2's own stacks and function.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from infra.adoption import adopted
from infra.config import MODES, POWERTOOLS_LAYER_PARAMETER, StageConfig, config_for, for_mode
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


SERVICES = ("sts", "lambda", "ssm", "cloudformation", "dynamodb", "sqs", "logs")


def problems_with(config: StageConfig, clients: Mapping[str, Any], first_deploy: bool) -> list[str]:
    """Every problem with deploying `config` (its mode: the stage, or its deployed shadow), one client per service of
    SERVICES, by service name."""
    found = _environment_problems(config, clients)
    if config.mode == "shadow":
        return found + _shadow_problems(config, clients)
    return found + _stage_problems(config, clients, first_deploy)


def _environment_problems(config: StageConfig, clients: Mapping[str, Any]) -> list[str]:
    """The account, the region and the Powertools layer: every deploy, the stage's and the shadow's."""
    found = []
    account = clients["sts"].get_caller_identity()["Account"]
    if account != config.account:
        found.append(f"these credentials are for account {account}; {config.stage} deploys to {config.account} (infra/config.py)")
    for service in SERVICES[1:]:
        if clients[service].meta.region_name != config.region:
            found.append(f"the {service} client is in {clients[service].meta.region_name}; {config.stage} deploys to {config.region}")
            break
    try:
        clients["ssm"].get_parameter(Name=POWERTOOLS_LAYER_PARAMETER)
    except ClientError as error:
        if _code(error) != "ParameterNotFound":
            raise
        found.append(f"{POWERTOOLS_LAYER_PARAMETER} does not exist in {config.region}: pin a Powertools version whose layer AWS publishes there")
    return found


def _stage_problems(config: StageConfig, clients: Mapping[str, Any], first_deploy: bool) -> list[str]:
    found = []
    names, lambda_client = config.names, clients["lambda"]
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
    stacks = {name: _stack_exists(clients["cloudformation"], name) for name in (names.data_stack, names.compute_stack, names.monitoring_stack)}
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
        dynamodb = clients["dynamodb"]
        existing = [name for name, (kind, _) in adopted(config).items() if kind == "AWS::DynamoDB::Table" and _table_exists(dynamodb, name)]
        if existing:
            found.append(
                f"v1's tables {', '.join(existing)} exist and {names.data_stack} does not: import them first "
                f"(`python -m infra.adoption {config.stage}`, docs/migration.md, 'Adopt v1's resources')"
            )
    return found


def _shadow_problems(config: StageConfig, clients: Mapping[str, Any]) -> list[str]:
    """The deployed shadow (`--context mode=shadow`, beside a live v1): v1's tables are meant to exist (it decides
    against them), and nothing of its own may exist outside its stack. It reserves no concurrency and protects nothing."""
    names, dynamodb = config.names, clients["dynamodb"]
    found = []
    missing = [table for table in (names.jobs_table, names.credits_table, names.ledger_table) if not _table_exists(dynamodb, table)]
    if missing:
        found.append(
            f"v1's tables {', '.join(missing)} do not exist in {config.account} {config.region}: the shadow decides against "
            "v1's live tables; deploy it where v1 runs"
        )
    if not _stack_exists(clients["cloudformation"], names.shadow_stack):
        kept = _kept_shadow_resources(config, clients)
        if kept:
            found.append(
                f"{', '.join(kept)} exist outside {names.shadow_stack} (kept by an earlier shadow's `make destroy-shadow`: retained "
                "in staging and prod), so its create would fail 'already exists': read what you need, delete them "
                "(docs/migration.md, step 1b), then deploy"
            )
    return found


def _kept_shadow_resources(config: StageConfig, clients: Mapping[str, Any]) -> list[str]:
    """The shadow's retained, fixed-name resources that exist: its decisions table, its DLQ, its log group."""
    names = config.names
    kept = [names.shadow_table] if _table_exists(clients["dynamodb"], names.shadow_table) else []
    try:
        clients["sqs"].get_queue_url(QueueName=names.shadow_dead_letter_queue)
        kept.append(names.shadow_dead_letter_queue)
    except ClientError as error:
        if _code(error) not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise
    log_group = f"/aws/lambda/{names.shadow_function}"
    groups = clients["logs"].describe_log_groups(logGroupNamePrefix=log_group)["logGroups"]
    kept += [log_group] if any(group["logGroupName"] == log_group for group in groups) else []
    return kept


def main(argv: list[str], clients: dict[str, Any] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.predeploy", description="Checks before deploying a stage.")
    parser.add_argument("stage")
    parser.add_argument("--first-deploy", action="store_true", help="the deploy creates stacks: protection stays off until it succeeded")
    parser.add_argument("--mode", choices=MODES, default="full", help="shadow: the deployed shadow beside a live v1 (`make deploy-shadow`)")
    args = parser.parse_args(argv)
    config = for_mode(config_for(args.stage), args.mode)
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
