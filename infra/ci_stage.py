"""What CI needs to know about a stage, from infra/config.py (the one place stages differ), as GitHub step
outputs: `python -m infra.ci_stage STAGE >> "$GITHUB_OUTPUT"`.

    account, region          where the stage deploys (StageConfig)
    diff_role, deploy_role   the CI roles in that account, by convention (docs/infrastructure.md, OIDC set-up)
    powertools_parameter     AWS's public SSM parameter of the pinned Powertools layer the function resolves

Imports only the configuration (no synthesis), so it runs in a second.
"""

from __future__ import annotations

import sys

from infra.config import POWERTOOLS_LAYER_PARAMETER, config_for

DIFF_ROLE_NAME = "cc-reconciler-ci-diff"
DEPLOY_ROLE_NAME = "cc-reconciler-ci-deploy"


def stage_outputs(stage: str) -> dict[str, str]:
    config = config_for(stage)
    return {
        "stage": config.stage,
        "account": config.account,
        "region": config.region,
        "diff_role": f"arn:aws:iam::{config.account}:role/{DIFF_ROLE_NAME}",
        "deploy_role": f"arn:aws:iam::{config.account}:role/{DEPLOY_ROLE_NAME}",
        "powertools_parameter": POWERTOOLS_LAYER_PARAMETER,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m infra.ci_stage STAGE", file=sys.stderr)
        return 2
    try:
        outputs = stage_outputs(argv[0])
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name, value in outputs.items():
        print(f"{name}={value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
