"""The GitHub workflows authenticate to AWS through OIDC only and deploy the stages in order."""

from __future__ import annotations

from pathlib import Path

import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def test_no_workflow_mentions_long_lived_keys():
    for path in WORKFLOWS.glob("*.yml"):
        text = path.read_text()
        assert "AWS_ACCESS_KEY_ID" not in text and "aws-secret-access-key" not in text, f"{path.name} uses static keys"


def test_pull_request_tests_then_diffs_every_stage_with_the_diff_role():
    diff = load("pull-request.yml")["jobs"]["diff"]
    assert diff["needs"] == "test"
    assert diff["permissions"]["id-token"] == "write"
    assert diff["strategy"]["matrix"]["stage"] == ["dev", "staging", "prod"]
    credentials = next(s for s in diff["steps"] if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials"))
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DIFF_ROLE_ARN }}"
    assert any("cdk diff --context stage=${{ matrix.stage }}" in str(s.get("run", "")) for s in diff["steps"])


def test_deploy_goes_dev_then_staging_then_prod_behind_its_environment():
    jobs = load("deploy.yml")["jobs"]
    assert [jobs[stage]["needs"] for stage in ("dev", "staging", "prod")] == ["test", "dev", "staging"]
    assert all(jobs[stage]["with"]["stage"] == stage for stage in ("dev", "staging", "prod"))
    deploy = load("deploy-stage.yml")["jobs"]["deploy"]
    assert deploy["environment"] == "${{ inputs.stage }}", "prod approval is the `prod` environment's protection rule"
    assert deploy["permissions"]["id-token"] == "write"
    credentials = next(s for s in deploy["steps"] if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials"))
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
