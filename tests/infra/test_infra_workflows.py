"""The GitHub workflows: OIDC only, actions pinned by SHA, one synthesized assembly deployed stage by stage,
each stage smoke-tested before the next, prod's diff of that exact assembly before its approval."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
PINS = yaml.safe_load((REPO / ".github" / "action-pins.yml").read_text())
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<comment>.*)$")


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def steps(job: dict) -> list[dict]:
    return job["steps"]


def index_of(job: dict, predicate, what: str) -> int:
    found = [i for i, step in enumerate(steps(job)) if predicate(step)]
    assert len(found) == 1, f"expected one step that {what}, found {len(found)}"
    return found[0]


def runs(fragment: str):
    return lambda step: fragment in str(step.get("run", ""))


def uses(action: str):
    return lambda step: str(step.get("uses", "")).startswith(action + "@")


def test_no_workflow_mentions_long_lived_keys():
    for path in WORKFLOWS.glob("*.yml"):
        text = path.read_text()
        assert "AWS_ACCESS_KEY_ID" not in text and "aws-secret-access-key" not in text, f"{path.name} uses static keys"


def test_every_action_is_pinned_by_full_sha_with_its_tag_from_the_pins_file():
    count = 0
    for path in WORKFLOWS.glob("*.yml"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = USES_LINE.match(line)
            if not match or match["ref"].startswith("./"):  # a local reusable workflow
                continue
            count += 1
            action, _, sha = match["ref"].partition("@")
            where = f"{path.name}:{number}"
            assert re.fullmatch(r"[0-9a-f]{40}", sha), f"{where}: {match['ref']} is not pinned by a full commit SHA"
            assert action in PINS, f"{where}: {action} is not in .github/action-pins.yml"
            assert sha == PINS[action]["sha"], f"{where}: {action} pinned to {sha}, the pins file says {PINS[action]['sha']}"
            assert match["comment"].strip() == f"# {PINS[action]['tag']}", f"{where}: the tag comment must be # {PINS[action]['tag']}"
    assert count >= 20
    for action, pin in PINS.items():
        assert re.fullmatch(r"[0-9a-f]{40}", pin["sha"]) and re.fullmatch(r"v\d+\.\d+\.\d+", pin["tag"]), action


def test_pull_request_tests_then_diffs_every_stage_with_that_stages_role_and_region():
    diff = load("pull-request.yml")["jobs"]["diff"]
    assert diff["needs"] == "test"
    assert diff["permissions"]["id-token"] == "write"
    assert diff["strategy"]["matrix"]["stage"] == ["dev", "staging", "prod"]
    settings = index_of(diff, runs("python -m infra.ci_stage ${{ matrix.stage }}"), "reads the stage settings")
    credentials = index_of(diff, uses("aws-actions/configure-aws-credentials"), "assumes the role")
    assert settings < credentials
    step = steps(diff)[credentials]
    assert step["with"]["role-to-assume"] == "${{ steps.stage.outputs.diff_role }}"
    assert step["with"]["aws-region"] == "${{ steps.stage.outputs.region }}"
    index_of(diff, runs("cdk diff --context stage=${{ matrix.stage }}"), "diffs the stage")


def test_ci_stage_settings_come_from_the_stage_config(capsys):
    # Given the command CI runs (`python -m infra.ci_stage prod`), When it prints prod's settings,
    # Then they are infra/config.py's, one GitHub output per line.
    from infra.ci_stage import main
    from infra.config import POWERTOOLS_LAYER_PARAMETER, config_for

    assert main(["prod"]) == 0
    outputs = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    prod = config_for("prod")
    assert outputs == {
        "stage": "prod",
        "account": prod.account,
        "region": prod.region,
        "diff_role": f"arn:aws:iam::{prod.account}:role/cc-reconciler-ci-diff",
        "deploy_role": f"arn:aws:iam::{prod.account}:role/cc-reconciler-ci-deploy",
        "powertools_parameter": POWERTOOLS_LAYER_PARAMETER,
    }
    assert main(["qa"]) == 2 and "unknown stage 'qa'" in capsys.readouterr().err


def test_the_assembly_is_synthesized_once_and_uploaded_as_one_artifact():
    jobs = load("deploy.yml")["jobs"]
    build = jobs["build"]
    assert build["needs"] == "test"
    synth = steps(build)[index_of(build, runs("cdk synth"), "synthesizes")]["run"]
    assert "for stage in dev staging prod" in synth and "--output cdk.out/$stage" in synth
    upload = steps(build)[index_of(build, uses("actions/upload-artifact"), "uploads")]
    assert upload["with"]["path"] == "cdk.out/" and upload["with"]["name"] == "${{ steps.name.outputs.assembly }}"
    assert build["outputs"]["assembly"] == "${{ steps.name.outputs.assembly }}"
    # Nothing else synthesizes: every later job works from that artifact.
    for name, job in jobs.items():
        if name != "build" and "steps" in job:
            assert not any("cdk synth" in str(s.get("run", "")) for s in steps(job)), f"{name} re-synthesizes"
    assert "cdk synth" not in (WORKFLOWS / "deploy-stage.yml").read_text()


def test_stages_deploy_in_order_each_from_the_same_artifact():
    jobs = load("deploy.yml")["jobs"]
    order = {"dev": ["build"], "staging": ["build", "dev"], "prod-diff": ["build", "staging"], "prod": ["build", "prod-diff"]}
    for job, needs in order.items():
        assert jobs[job]["needs"] == needs, f"{job} needs {jobs[job]['needs']}"
    for stage in ("dev", "staging", "prod"):
        assert jobs[stage]["uses"] == "./.github/workflows/deploy-stage.yml"
        assert jobs[stage]["with"] == {"stage": stage, "assembly": "${{ needs.build.outputs.assembly }}"}


def test_each_stage_deploys_the_downloaded_assembly_then_must_pass_its_smoke_test():
    deploy = load("deploy-stage.yml")["jobs"]["deploy"]
    assert deploy["environment"] == "${{ inputs.stage }}", "prod approval is the `prod` environment's protection rule"
    assert deploy["permissions"]["id-token"] == "write"
    download = index_of(deploy, uses("actions/download-artifact"), "downloads the assembly")
    assert steps(deploy)[download]["with"] == {"name": "${{ inputs.assembly }}", "path": "cdk.out/"}
    credentials = index_of(deploy, uses("aws-actions/configure-aws-credentials"), "assumes the role")
    assert steps(deploy)[credentials]["with"]["role-to-assume"] == "${{ steps.stage.outputs.deploy_role }}"
    assert steps(deploy)[credentials]["with"]["aws-region"] == "${{ steps.stage.outputs.region }}"
    account = index_of(deploy, runs("aws sts get-caller-identity"), "checks the account")
    layer = index_of(deploy, runs("aws ssm get-parameter --name"), "checks the Powertools parameter")
    checksum = index_of(deploy, runs("sha256sum --check"), "checks the assembly")
    cdk_deploy = index_of(deploy, runs("cdk deploy"), "deploys")
    smoke = index_of(deploy, runs("scripts/smoke-test.py"), "smoke-tests")
    assert download < credentials < account < layer < cdk_deploy < smoke and checksum < cdk_deploy
    assert smoke == len(steps(deploy)) - 1, "the smoke test is the job's last step: its failure fails the stage"
    deploy_run = steps(deploy)[cdk_deploy]["run"]
    assert "--app cdk.out/${{ inputs.stage }}" in deploy_run and "--context" not in deploy_run
    assert steps(deploy)[smoke]["run"].split("scripts/smoke-test.py", 1)[1].strip() == "--env ${{ inputs.stage }}"
    assert not any(step.get("continue-on-error") or step.get("if") for step in steps(deploy)), "no step may be skipped or ignored"
    layer_run = steps(deploy)[layer]["run"]
    assert "::error::" in layer_run and "exit 1" in layer_run and "${{ steps.stage.outputs.powertools_parameter }}" in layer_run


def test_the_prod_approval_follows_a_diff_of_the_exact_prod_assembly():
    jobs = load("deploy.yml")["jobs"]
    prod_diff = jobs["prod-diff"]
    assert prod_diff["environment"] == "prod-diff", "not `prod`: the diff must be readable before the approval"
    download = index_of(prod_diff, uses("actions/download-artifact"), "downloads the assembly")
    assert steps(prod_diff)[download]["with"]["name"] == "${{ needs.build.outputs.assembly }}"
    credentials = steps(prod_diff)[index_of(prod_diff, uses("aws-actions/configure-aws-credentials"), "assumes a role")]
    assert credentials["with"]["role-to-assume"] == "${{ steps.stage.outputs.diff_role }}"
    diff = steps(prod_diff)[index_of(prod_diff, runs("cdk diff"), "diffs")]["run"]
    assert "--app cdk.out/prod" in diff and "GITHUB_STEP_SUMMARY" in diff
    assert jobs["prod"]["needs"] == ["build", "prod-diff"]


@pytest.mark.parametrize("name", ["pull-request.yml", "deploy.yml", "deploy-stage.yml"])
def test_workflows_point_at_the_pins_file(name):
    assert ".github/action-pins.yml" in (WORKFLOWS / name).read_text()


def test_ci_runs_one_node_lts_that_is_not_20():
    # Node 20 reached end-of-life on 2026-04-30. Every job sets up the same even (LTS) major, 22 or later, and no
    # workflow silences jsii's end-of-life banner any more (only the local run on node 20 does: .ci/run, Makefile).
    versions = set()
    for path in WORKFLOWS.glob("*.yml"):
        assert "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION" not in path.read_text(), path.name
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            versions |= {str(s["with"]["node-version"]) for s in job.get("steps", []) if uses("actions/setup-node")(s)}
    assert len(versions) == 1, f"jobs set up different node versions: {sorted(versions)}"
    major = int(versions.pop())
    assert major >= 22 and major % 2 == 0, f"node {major} is not a supported LTS line"
