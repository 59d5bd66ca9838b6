"""One IAM statement that cdk-nag flags, in a policy of its own, with the acknowledgement bound to that policy.

cdk-nag's IAM5 findings name a wildcard (`Resource::*`, `Action::kms:GenerateDataKey*`), not the statement that
holds it, and an acknowledgement covers everything below the construct it is attached to. Attached to a role, it
would pre-approve any wildcard added to that role later; attached to a policy holding just this statement, it
excuses this statement alone, and the reason names it by Sid (tests/infra/test_infra_compliance.py checks both).
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_iam as iam

IAM5 = "AwsSolutions::AwsSolutions-IAM5"


def acknowledged_statement(role: iam.Role, construct_id: str, statement: iam.PolicyStatement, findings: list[str], reason: str) -> iam.Policy:
    """`statement` (with a Sid) in a policy named after `construct_id`, attached to `role`; `findings` are the IAM5
    finding ids it raises (e.g. "Resource::*"), acknowledged on that policy with `reason`."""
    if not statement.sid:
        raise ValueError(f"{construct_id}: an acknowledged statement needs a Sid for its acknowledgement to name")
    # A child of the role, so the role's logical id prefixes it, as it does the role's default policy.
    policy = iam.Policy(role, construct_id, statements=[statement], roles=[role])
    Validations.of(policy).acknowledge(*(Acknowledgment(id=f"{IAM5}[{finding}]", reason=f"{statement.sid}: {reason}") for finding in findings))
    return policy
