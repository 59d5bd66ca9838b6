"""The GitHub workflows: OIDC only, actions pinned by SHA, one synthesized assembly deployed stage by stage,
each stage smoke-tested before the next, prod's diff of that exact assembly before its approval."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import yaml
from workflow_helpers import REPO, WORKFLOWS, index_of, load, runs, steps, uses

PINS = yaml.safe_load((REPO / ".github" / "action-pins.yml").read_text())
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<comment>.*)$")


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


def test_pull_request_diffs_every_stage_against_its_bases_templates_offline():
    jobs = load("pull-request.yml")["jobs"]
    base, diff = jobs["base-templates"], jobs["diff"]
    # The base is synthesized from its own checkout (and lock), every stage
    checkout = steps(base)[index_of(base, uses("actions/checkout"), "checks out")]
    assert checkout["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    assert "for stage in dev staging prod" in steps(base)[index_of(base, runs("cdk synth"), "synthesizes")]["run"]
    # The pull request's templates are compared with those, stack by stack, without credentials
    assert diff["needs"] == ["test", "base-templates"] and "id-token" not in diff["permissions"]
    run = steps(diff)[index_of(diff, runs("cdk diff"), "diffs")]["run"]
    assert "for stage in dev staging prod" in run and "--template base/$stage/$stack.template.json" in run and "--method" not in run
    post = steps(diff)[index_of(diff, uses("actions/github-script"), "posts the diffs")]
    assert "for (const stage of ['dev', 'staging', 'prod'])" in post["with"]["script"]


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
        "smoke_role": f"arn:aws:iam::{prod.account}:role/cc-reconciler-ci-smoke",
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
    credentials = next(i for i, s in enumerate(steps(deploy)) if uses("aws-actions/configure-aws-credentials")(s))
    assert steps(deploy)[credentials]["with"]["role-to-assume"] == "${{ steps.stage.outputs.deploy_role }}"
    assert steps(deploy)[credentials]["with"]["aws-region"] == "${{ steps.stage.outputs.region }}"
    account = index_of(deploy, runs("aws sts get-caller-identity"), "checks the account")
    layer = index_of(deploy, runs("aws ssm get-parameter --name"), "checks the Powertools parameter")
    checksum = index_of(deploy, runs("sha256sum --check"), "checks the assembly")
    paused = index_of(deploy, runs("python -m infra.deploy_guard ${{ inputs.stage }}"), "refuses while paused")
    cdk_deploy = index_of(deploy, runs("cdk deploy"), "deploys")
    smoke = index_of(deploy, runs("scripts/smoke-test.py"), "smoke-tests")
    assert download < credentials < account < layer < cdk_deploy < smoke and checksum < paused < cdk_deploy
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


def step_script(workflow: str, job: str, name: str) -> str:
    (step,) = [s for s in steps(load(workflow)["jobs"][job]) if s.get("name") == name]
    return step["run"]


def run_step(script: str, cwd, **env: str) -> int:
    # As GitHub runs a `run:` step on Linux: bash -e, in the workspace
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env={"PATH": os.environ["PATH"], **env}, capture_output=True).returncode


def test_every_deployed_file_is_checksummed_and_checked_not_only_the_templates(tmp_path):
    # Given an assembly like the build job's: templates, manifests and a staged function asset per stage
    for stage in ("dev", "prod"):
        for path in (
            f"{stage}/cc-reconciler-compute-{stage}.template.json",
            f"{stage}/manifest.json",
            f"{stage}/asset.abc/reconciler/handlers/entry.py",
        ):
            (tmp_path / "cdk.out" / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "cdk.out" / path).write_text(f"{stage} {path}\n")
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    # When the build job writes the checksums
    assert run_step(step_script("deploy.yml", "build", "Checksums of every file of the assembly"), tmp_path, RUNNER_TEMP=str(temp)) == 0
    sums = (tmp_path / "cdk.out" / "SHA256SUMS").read_text()
    assert "./dev/asset.abc/reconciler/handlers/entry.py" in sums and "./prod/manifest.json" in sums
    check = step_script("deploy-stage.yml", "deploy", "Check that the assembly is the built one")
    # Then each stage's job passes on its own files as built
    assert run_step(check, tmp_path, RUNNER_TEMP=str(temp), STAGE="dev") == 0
    assert run_step(check, tmp_path, RUNNER_TEMP=str(temp), STAGE="prod") == 0
    # And fails on a changed function asset, a file added, or a file missing
    asset = tmp_path / "cdk.out" / "dev" / "asset.abc" / "reconciler" / "handlers" / "entry.py"
    asset.write_text("tampered\n")
    assert run_step(check, tmp_path, RUNNER_TEMP=str(temp), STAGE="dev") != 0
    assert run_step(check, tmp_path, RUNNER_TEMP=str(temp), STAGE="prod") == 0, "another stage's change is not this stage's"
    extra = tmp_path / "cdk.out" / "prod" / "asset.abc" / "extra.py"
    extra.write_text("added\n")
    assert run_step(check, tmp_path, RUNNER_TEMP=str(temp), STAGE="prod") != 0
    extra.unlink()
    (tmp_path / "cdk.out" / "prod" / "manifest.json").unlink()
    assert run_step(check, tmp_path, RUNNER_TEMP=str(temp), STAGE="prod") != 0
