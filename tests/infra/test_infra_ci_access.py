"""CI least privilege (issue #25): the CI roles (infra/constructs/ci_access.py) and the workflows that assume them.

No pull-request job can reach a stage (no job of pull-request.yml holds an OIDC token or credentials, and no role
trusts a pull request's subject), no CI role can post a render event or write an adjustment, and the roles and the
jobs that assume them are what docs/infrastructure.md ("CI roles") lists.
"""

from __future__ import annotations

import re

import pytest
import yaml
from ci_roles import CiRole, ci_roles, documented_roles, subject_environment
from infra_helpers import as_list
from workflow_helpers import WORKFLOWS, load, steps, uses

from infra.config import CI_REPOSITORY, config_for
from reconciler.contract import STAGES

ROLE_OUTPUTS = {"deploy_role": "cc-reconciler-ci-deploy", "diff_role": "cc-reconciler-ci-diff", "smoke_role": "cc-reconciler-ci-smoke"}
DYNAMODB_READS = {"dynamodb:GetItem", "dynamodb:Query"}


@pytest.fixture(scope="module")
def roles_of(ci_stack) -> dict[str, dict[str, CiRole]]:
    """Stage -> role name -> role, from each stage's synthesized CI stack."""
    built = {}
    for stage in STAGES:
        stack = ci_stack(stage)
        assert stack.stack_name == f"cc-reconciler-ci-{stage}"
        config = config_for(stage)
        built[stage] = ci_roles(stack.template, config.account, config.region)
    return built


@pytest.mark.parametrize("stage", STAGES)
def test_the_roles_are_the_documented_ones_each_trusted_by_one_environment_of_this_repository(roles_of, stage):
    config = config_for(stage)
    documented = documented_roles()
    assert sorted(roles_of[stage]) == sorted(documented) == sorted(ROLE_OUTPUTS.values())
    for name, role in roles_of[stage].items():
        (trust,) = role.trust
        assert trust["Effect"] == "Allow" and trust["Action"] == "sts:AssumeRoleWithWebIdentity", name
        provider = trust["Principal"]["Federated"]["Fn::Join"][1][-1]
        assert provider == f":iam::{config.account}:oidc-provider/token.actions.githubusercontent.com", name
        environment = documented[name].environment.replace("<stage>", stage)
        assert trust["Condition"] == {
            "StringEquals": {
                "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                "token.actions.githubusercontent.com:sub": f"repo:{CI_REPOSITORY}:environment:{environment}",
            }
        }, name


@pytest.mark.parametrize("stage", STAGES)
def test_each_role_may_do_exactly_what_the_docs_say_and_never_assume_the_lookup_role(roles_of, stage):
    config = config_for(stage)
    lookup = f"arn:aws:iam::{config.account}:role/cdk-hnb659fds-lookup-role-{config.account}-{config.region}"
    for name, role in roles_of[stage].items():
        assert role.actions() == documented_roles()[name].actions, name
        assert not role.managed_policies, f"{name}: a managed policy (an operator policy?) is attached"
        # Explicitly: a policy attached later cannot let it read the account through CDK's lookup role
        assert not role.allowed("sts:AssumeRole", lookup, {}) and any(lookup in as_list(s["Resource"]) for s in role.denies), name
    deploy = roles_of[stage]["cc-reconciler-ci-deploy"]
    assumable = {r for s in deploy.allows if s["Action"] == "sts:AssumeRole" for r in as_list(s["Resource"])}
    assert assumable == {
        f"arn:aws:iam::{config.account}:role/cdk-hnb659fds-{kind}-role-{config.account}-{config.region}" for kind in ("deploy", "file-publishing")
    }


@pytest.mark.parametrize("stage", STAGES)
def test_the_diff_role_reads_the_stages_stack_templates_and_nothing_else(roles_of, stage):
    config = config_for(stage)
    diff = roles_of[stage]["cc-reconciler-ci-diff"]
    assert diff.actions() == {"cloudformation:DescribeStacks", "cloudformation:GetTemplate"}
    stacks = {r for s in diff.allows for r in as_list(s["Resource"])}
    assert stacks == {f"arn:aws:cloudformation:{config.region}:{config.account}:stack/{name}/*" for name in config.names.app_stacks}
    assert not diff.allowed("cloudformation:GetTemplate", f"arn:aws:cloudformation:{config.region}:{config.account}:stack/CDKToolkit/x", {})


@pytest.mark.parametrize("stage", STAGES)
def test_no_ci_role_can_post_a_render_event_or_write_an_adjustment(roles_of, stage):
    config = config_for(stage)
    bus = f"arn:aws:events:{config.region}:{config.account}:event-bus/default"
    tables = {name: f"arn:aws:dynamodb:{config.region}:{config.account}:table/{name}" for name in config.names.tables}
    for name, role in roles_of[stage].items():
        for statement in role.allows:
            for action in as_list(statement["Action"]):
                assert "*" not in action, f"{name}: wildcard action {action}"
                assert not action.startswith(("iam:", "dynamodb:")) or action in DYNAMODB_READS, f"{name}: {action}"
            if any(a.startswith("dynamodb:") for a in as_list(statement["Action"])):
                assert "dynamodb:LeadingKeys" in str(statement.get("Condition")), f"{name}: a table read beyond the smoke user's items"
        # A render event of the pipeline's source, for any user: refused by every role
        render = {"events:source": ["video.generation"], "events:detail-type": ["video.rendered"]}
        assert not role.allowed("events:PutEvents", bus, render), f"{name} may post a render event"
        # An adjustment: a balance update and a Ledger entry, one transaction; refused by every role
        for action, table in (("dynamodb:UpdateItem", "Credits"), ("dynamodb:PutItem", "Ledger"), ("dynamodb:PutItem", "UserLedger")):
            assert not role.allowed(action, tables[f"{table}-{stage}"], {"dynamodb:LeadingKeys": ["smoke-test-user"]}), f"{name}: {action} {table}"
    # The smoke role's one kind of event is the smoke test's synthetic render, for what the function settles as such
    smoke = roles_of[stage]["cc-reconciler-ci-smoke"]
    assert smoke.allowed("events:PutEvents", bus, {"events:source": ["reconciler.smoke-test"], "events:detail-type": ["video.rendered"]})
    assert not smoke.allowed("events:PutEvents", bus, {"events:source": ["reconciler.smoke-test"], "events:detail-type": ["video.failed"]})
    assert not smoke.allowed("dynamodb:GetItem", tables[f"Credits-{stage}"], {"dynamodb:LeadingKeys": ["u1"]})


def workflow_jobs() -> dict[str, dict]:
    """`file:job` -> job, for every workflow."""
    return {f"{path.name}:{name}": job for path in sorted(WORKFLOWS.glob("*.yml")) for name, job in yaml.safe_load(path.read_text())["jobs"].items()}


def test_no_pull_request_job_holds_an_oidc_token_credentials_or_an_environment():
    workflow = load("pull-request.yml")
    assert workflow[True] == {"pull_request": {"branches": ["main"]}}  # YAML 1.1 reads the key `on` as true
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        assert "id-token" not in job.get("permissions", {}), f"{name} may request an OIDC token"
        assert "environment" not in job, f"{name} runs in an environment a role may trust"
        for step in job.get("steps", []):
            assert not uses("aws-actions/configure-aws-credentials")(step), f"{name} takes AWS credentials"
            assert not re.search(r"_role|ci_stage|AWS_", str(step)), f"{name} reaches for a role: {step}"


@pytest.mark.parametrize("stage", STAGES)
def test_no_role_trusts_a_pull_request_and_the_environments_they_trust_are_never_a_pull_requests(roles_of, stage):
    for name, role in roles_of[stage].items():
        (trust,) = role.trust
        assert "pull_request" not in str(trust) and "*" not in str(trust), f"{name}: {trust}"
        assert subject_environment(trust) in (stage, f"{stage}-diff")


def test_every_job_that_assumes_a_role_runs_in_the_environment_it_trusts_and_is_documented():
    documented = documented_roles()
    assuming: dict[str, set[str]] = {name: set() for name in documented}
    for where, job in workflow_jobs().items():
        for step in job.get("steps", []):
            if not uses("aws-actions/configure-aws-credentials")(step):
                continue
            output = re.fullmatch(r"\$\{\{ steps\.stage\.outputs\.(\w+) \}\}", step["with"]["role-to-assume"])
            assert output and output[1] in ROLE_OUTPUTS, f"{where}: assumes {step['with']['role-to-assume']}"
            role = ROLE_OUTPUTS[output[1]]
            assuming[role].add(where)
            # The job's environment (deploy-stage.yml: the stage it was called for) is the one the role trusts
            environment = job["environment"].replace("${{ inputs.stage }}", "<stage>")
            trusted = documented[role].environment
            assert environment == trusted or (environment == "prod-diff" and trusted == "<stage>-diff"), f"{where}: {environment} for {role}"
    assert {role: sorted(jobs) for role, jobs in assuming.items()} == {role: sorted(d.assumed_by) for role, d in documented.items()}


def test_the_deploy_runs_under_the_deploy_role_and_the_smoke_test_under_the_smoke_role():
    deploy = load("deploy-stage.yml")["jobs"]["deploy"]
    credentials = [(i, s["with"]["role-to-assume"]) for i, s in enumerate(steps(deploy)) if uses("aws-actions/configure-aws-credentials")(s)]
    cdk_deploy = next(i for i, s in enumerate(steps(deploy)) if "cdk deploy" in str(s.get("run", "")))
    smoke = next(i for i, s in enumerate(steps(deploy)) if "scripts/smoke-test.py" in str(s.get("run", "")))
    assert [role for _, role in credentials] == ["${{ steps.stage.outputs.deploy_role }}", "${{ steps.stage.outputs.smoke_role }}"]
    assert credentials[0][0] < cdk_deploy < credentials[1][0] < smoke, "deploy with the deploy role, then switch to the smoke role"
    assert credentials[1][0] == smoke - 1, "nothing else runs with the smoke role"
