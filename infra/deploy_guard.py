"""`python -m infra.deploy_guard STAGE`: the deploy job's last check before `cdk deploy`, with the deploy role.

A deploy writes the function's reserved concurrency from the template (StageConfig, 10): during a `reconciler
pause` (reserved concurrency 0) it would resume the function behind the operator's back, and new events would
settle while the operator believes the stage stopped. So a paused stage is not deployed: exit 1 with a GitHub
error line saying what to do. A function that does not exist yet (a stage's first deploy) has nothing to pause.
`make deploy` runs the same check (`pause_problem`, from infra/predeploy.py). docs/operations.md, "Emergency
stop", and docs/infrastructure.md, "CI/CD", describe it; the deploy role may read the concurrency and nothing
else of the function.
"""

from __future__ import annotations

import sys
from typing import Any

import boto3
from botocore.exceptions import ClientError

from infra.ci_stage import stage_argument


def pause_problem(lambda_client: Any, function_name: str, stage: str) -> str | None:
    """Why a deploy must not run now, or None."""
    try:
        concurrency = lambda_client.get_function_concurrency(FunctionName=function_name).get("ReservedConcurrentExecutions")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None  # not deployed yet
        raise
    if concurrency == 0:
        return (
            f"{function_name} is paused (reserved concurrency 0): a deploy would set it back and end the pause. "
            f"Resume it first (`reconciler --stage {stage} resume`) when it may run, then deploy again."
        )
    return None


def main(argv: list[str], lambda_client: Any = None) -> int:
    config = stage_argument(argv, "infra.deploy_guard")
    if config is None:
        return 2
    client = lambda_client or boto3.client("lambda", region_name=config.region)
    problem = pause_problem(client, config.names.function, config.stage)
    if problem:
        print(f"::error::{problem}")
        return 1
    print(f"{config.names.function} is not paused: deploying")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
