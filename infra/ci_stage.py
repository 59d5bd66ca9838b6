"""What CI needs to know about a stage, from infra/config.py (the one place stages differ), as GitHub step
outputs: `python -m infra.ci_stage STAGE >> "$GITHUB_OUTPUT"`.

    account, region                      where the stage deploys (StageConfig)
    diff_role, deploy_role, smoke_role   the CI roles in that account (infra/constructs/ci_access.py defines them;
                                         docs/infrastructure.md, "CI roles", says what each may do and why)
    powertools_parameter                 AWS's public SSM parameter of the pinned Powertools layer the function resolves

Imports only the configuration (no synthesis), so it runs in a second.
"""

from __future__ import annotations

import sys

from infra.config import POWERTOOLS_LAYER_PARAMETER, StageConfig, config_for

# The CI roles of every stage's account (infra/constructs/ci_access.py creates them with these names).
DIFF_ROLE_NAME = "cc-reconciler-ci-diff"
DEPLOY_ROLE_NAME = "cc-reconciler-ci-deploy"
SMOKE_ROLE_NAME = "cc-reconciler-ci-smoke"


def stage_outputs(stage: str) -> dict[str, str]:
    config = config_for(stage)
    return {
        "stage": config.stage,
        "account": config.account,
        "region": config.region,
        "diff_role": f"arn:aws:iam::{config.account}:role/{DIFF_ROLE_NAME}",
        "deploy_role": f"arn:aws:iam::{config.account}:role/{DEPLOY_ROLE_NAME}",
        "smoke_role": f"arn:aws:iam::{config.account}:role/{SMOKE_ROLE_NAME}",
        "powertools_parameter": POWERTOOLS_LAYER_PARAMETER,
    }


def stage_argument(argv: list[str], command: str) -> StageConfig | None:
    """The one STAGE argument of a CI command's command line, or None once usage or the error is on stderr."""
    if len(argv) != 1:
        print(f"usage: python -m {command} STAGE", file=sys.stderr)
        return None
    try:
        return config_for(argv[0])
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return None


def main(argv: list[str]) -> int:
    config = stage_argument(argv, "infra.ci_stage")
    if config is None:
        return 2
    outputs = stage_outputs(config.stage)
    for name, value in outputs.items():
        print(f"{name}={value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
