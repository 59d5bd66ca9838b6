"""The roles GitHub's workflows assume in a stage's account, through GitHub's OIDC provider (no long-lived keys).

- deploy (`environment:<stage>`): deploys the synthesized assembly through CDK's bootstrap deploy and
  file-publishing roles, reads its own stacks' templates (the diff before the deploy), reads the Powertools
  parameter and the function's reserved concurrency (the pause check); no operator policy, no data, no events.
- diff (`environment:<stage>-diff`): reads the stage's stack templates, nothing else (prod's diff before approval).
- smoke (`environment:<stage>`): puts the smoke test's synthetic events and reads the smoke user's items only.

No workflow run of a pull request is trusted by any of them, and none may assume CDK's lookup role, which reads
everything but secrets, data included (an explicit deny, so a policy attached later cannot lift it).
docs/infrastructure.md ("CI roles") lists what each may do and why; tests/infra/test_infra_ci_access.py holds the
roles and the workflows to that list.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.ci_stage import DEPLOY_ROLE_NAME, DIFF_ROLE_NAME, SMOKE_ROLE_NAME
from infra.config import CI_REPOSITORY, StageConfig
from infra.constructs.acknowledged_statement import acknowledged_statement
from reconciler import contract

GITHUB_OIDC = "token.actions.githubusercontent.com"
CDK_QUALIFIER = "hnb659fds"  # CDK's default bootstrap qualifier (`npx cdk bootstrap`)
POWERTOOLS_PARAMETERS = "aws/service/powertools/*"


class CiAccess(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._stack = Stack.of(self)
        self.deploy = self._role(DEPLOY_ROLE_NAME, config.stage, "deploys the stage's synthesized assembly")
        self.diff = self._role(DIFF_ROLE_NAME, f"{config.stage}-diff", "reads the stage's stack templates for a diff")
        self.smoke = self._role(SMOKE_ROLE_NAME, config.stage, "puts the smoke test's synthetic events and reads its user's items")
        self._grant_deploy()
        self._read_templates(self.diff)
        self._grant_smoke()
        lookup_role = self._cdk_role("lookup")
        for role in (self.deploy, self.diff, self.smoke):
            role.add_to_policy(
                iam.PolicyStatement(sid="NeverTheLookupRole", effect=iam.Effect.DENY, actions=["sts:AssumeRole"], resources=[lookup_role])
            )

    def _role(self, name: str, environment: str, purpose: str) -> iam.Role:
        """Trusted by GitHub's OIDC tokens of jobs in this repository's GitHub environment `environment` only."""
        provider = self._stack.format_arn(service="iam", region="", resource="oidc-provider", resource_name=GITHUB_OIDC)
        return iam.Role(
            self,
            name,
            role_name=name,
            description=f"CI ({self._config.stage}): {purpose}; GitHub environment {environment} of {CI_REPOSITORY} only",
            assumed_by=iam.WebIdentityPrincipal(
                provider,
                conditions={
                    "StringEquals": {
                        f"{GITHUB_OIDC}:aud": "sts.amazonaws.com",
                        f"{GITHUB_OIDC}:sub": f"repo:{CI_REPOSITORY}:environment:{environment}",
                    }
                },
            ),
        )

    def _cdk_role(self, kind: str) -> str:
        config = self._config
        return self._stack.format_arn(
            service="iam", region="", resource="role", resource_name=f"cdk-{CDK_QUALIFIER}-{kind}-role-{config.account}-{config.region}"
        )

    def _nag_arn(self, service: str, resource: str, account: str | None = None) -> str:
        """An ARN as cdk-nag prints it in a finding (the partition a token)."""
        return f"arn:<AWS::Partition>:{service}:{self._config.region}:{self._config.account if account is None else account}:{resource}"

    def _read_templates(self, role: iam.Role) -> None:
        """The stage's stack templates: what `cdk diff --method template` reads (DescribeStacks finds the stack)."""
        stacks = [f"stack/{name}/*" for name in self._config.names.app_stacks]  # the stack's id follows its name
        acknowledged_statement(
            role,
            "StackTemplates",
            iam.PolicyStatement(
                sid="ReadStackTemplates",
                actions=["cloudformation:DescribeStacks", "cloudformation:GetTemplate"],
                resources=[self._stack.format_arn(service="cloudformation", resource=stack) for stack in stacks],
            ),
            [f"Resource::{self._nag_arn('cloudformation', stack)}" for stack in stacks],
            "a stack's ARN ends in an id CloudFormation makes at creation; these are the stage's three stacks only.",
        )

    def _grant_deploy(self) -> None:
        config = self._config
        # CDK's bootstrap roles do the deploy: CloudFormation with its execution role, and the asset upload.
        self.deploy.add_to_policy(
            iam.PolicyStatement(sid="CdkDeploy", actions=["sts:AssumeRole"], resources=[self._cdk_role("deploy"), self._cdk_role("file-publishing")])
        )
        self._read_templates(self.deploy)
        # The pause check before deploying (python -m infra.deploy_guard): a deploy would restore the concurrency.
        function = self._stack.format_arn(
            service="lambda", resource="function", resource_name=config.names.function, arn_format=ArnFormat.COLON_RESOURCE_NAME
        )
        self.deploy.add_to_policy(iam.PolicyStatement(sid="PauseCheck", actions=["lambda:GetFunctionConcurrency"], resources=[function]))
        acknowledged_statement(
            self.deploy,
            "PowertoolsParameter",
            iam.PolicyStatement(
                sid="PowertoolsLayerParameter",
                actions=["ssm:GetParameter"],
                resources=[self._stack.format_arn(service="ssm", account="", resource="parameter", resource_name=POWERTOOLS_PARAMETERS)],
            ),
            [f"Resource::{self._nag_arn('ssm', 'parameter/' + POWERTOOLS_PARAMETERS, account='')}"],
            "AWS's public Powertools layer parameters: the pinned version changes with the lock, the pre-deploy check reads it.",
        )

    def _grant_smoke(self) -> None:
        names = self._config.names

        def table(name: str) -> str:
            return self._stack.format_arn(service="dynamodb", resource="table", resource_name=name)

        bus = self._stack.format_arn(service="events", resource="event-bus", resource_name=contract.DEFAULT_EVENT_BUS)
        only_smoke_user = {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [contract.SMOKE_TEST_USER_ID]}}
        for statement in (
            # Its synthetic renders only: the function settles that source for the smoke user alone.
            iam.PolicyStatement(
                sid="PutSmokeTestEvents",
                actions=["events:PutEvents"],
                resources=[bus],
                conditions={
                    "StringEquals": {"events:source": contract.SMOKE_TEST_EVENT_SOURCE, "events:detail-type": contract.SMOKE_TEST_DETAIL_TYPE}
                },
            ),
            # What it checks, the smoke user's items only: its balance, its job and its posting.
            iam.PolicyStatement(
                sid="ReadSmokeBalance", actions=["dynamodb:GetItem"], resources=[table(names.credits_table)], conditions=only_smoke_user
            ),
            iam.PolicyStatement(
                sid="ReadSmokeJobs",
                actions=["dynamodb:GetItem"],
                resources=[table(names.jobs_table)],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{contract.SMOKE_TEST_JOB_PREFIX}*"]}},
            ),
            iam.PolicyStatement(
                sid="ReadSmokePostings", actions=["dynamodb:Query"], resources=[table(names.user_ledger_table)], conditions=only_smoke_user
            ),
        ):
            self.smoke.add_to_policy(statement)
