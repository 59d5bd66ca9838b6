"""The CI roles as synthesized (infra/constructs/ci_access.py) and as docs/infrastructure.md lists them, read into
plain values the tests compare: trust, allowed and denied statements with their ARNs resolved. Imported by the
infra tests and by tests/integration/cli/test_smoke_test.py (as tests.infra.ci_roles), so it imports no test helper."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[2] / "docs" / "infrastructure.md"


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def resolved(value: Any, account: str, region: str) -> Any:
    """An ARN as a string: `Fn::Join` of literals and pseudo parameters (the partition is aws)."""
    if isinstance(value, list):
        return [resolved(v, account, region) for v in value]
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        pseudo = {"AWS::Partition": "aws", "AWS::AccountId": account, "AWS::Region": region}
        return separator.join(part if isinstance(part, str) else pseudo[part["Ref"]] for part in parts)
    return value


@dataclass
class CiRole:
    name: str
    trust: list[dict]
    allows: list[dict] = field(default_factory=list)
    denies: list[dict] = field(default_factory=list)
    managed_policies: list[Any] = field(default_factory=list)

    def actions(self) -> set[str]:
        return {action for statement in self.allows for action in as_list(statement["Action"])}

    def allowed(self, action: str, resource: str, context: dict[str, list[str]]) -> bool:
        """Whether an Allow statement grants `action` on `resource` given the request's condition keys (and no Deny
        names it): the operators this project's roles use, as IAM evaluates them."""
        if any(_matches(s, action, resource) for s in self.denies):
            return False
        return any(self.grants(s, action, resource, context) for s in self.allows)

    @staticmethod
    def grants(statement: dict, action: str, resource: str, context: dict[str, list[str]]) -> bool:
        return _matches(statement, action, resource) and _conditions_hold(statement.get("Condition", {}), context)


def _matches(statement: dict, action: str, resource: str) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in as_list(statement["Action"])) and any(
        fnmatch.fnmatchcase(resource, r) for r in as_list(statement["Resource"])
    )


def _conditions_hold(conditions: dict, context: dict[str, list[str]]) -> bool:
    for operator, keys in conditions.items():
        for key, expected in keys.items():
            values, wanted = context.get(key, []), as_list(expected)
            if operator == "StringEquals":
                ok = len(values) == 1 and values[0] in wanted
            elif operator == "ForAllValues:StringEquals":
                ok = all(value in wanted for value in values)
            elif operator == "ForAllValues:StringLike":
                ok = all(any(fnmatch.fnmatchcase(value, pattern) for pattern in wanted) for value in values)
            else:
                raise AssertionError(f"condition operator {operator} is not evaluated here")
            if not ok:
                return False
    return True


def ci_roles(template: dict, account: str, region: str) -> dict[str, CiRole]:
    """Role name -> its trust and the statements of every policy attached to it."""
    resources = template["Resources"]
    roles = {
        logical_id: CiRole(
            r["Properties"]["RoleName"],
            r["Properties"]["AssumeRolePolicyDocument"]["Statement"],
            managed_policies=r["Properties"].get("ManagedPolicyArns", []),
        )
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::IAM::Role"
    }
    for policy in (r for r in resources.values() if r["Type"] == "AWS::IAM::Policy"):
        for attached in policy["Properties"]["Roles"]:
            role = roles[attached["Ref"]]
            for statement in as_list(policy["Properties"]["PolicyDocument"]["Statement"]):
                statement = {**statement, "Resource": resolved(statement["Resource"], account, region)}
                (role.allows if statement["Effect"] == "Allow" else role.denies).append(statement)
    assert not any(r["Type"] == "AWS::IAM::ManagedPolicy" for r in resources.values()), "CI roles hold no managed policy"
    return {role.name: role for role in roles.values()}


@dataclass(frozen=True)
class DocumentedRole:
    environment: str  # with <stage>
    assumed_by: tuple[str, ...]  # workflow file:job
    actions: frozenset[str]


# An IAM action in backticks (`service:Action`, `…`/`Other` for more of one service); condition keys are lowercase.
ACTION = re.compile(r"`(?P<service>[a-z0-9-]+):(?P<first>[A-Z][A-Za-z*]*)`(?P<more>(?:/`[A-Z][A-Za-z*]*`)*)")


def documented_roles() -> dict[str, DocumentedRole]:
    """docs/infrastructure.md, "CI roles": role -> its trusted environment, the jobs that assume it, its actions."""
    section = DOCS.read_text().split("### CI roles", 1)[1].split("\n### ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `cc-reconciler-ci-")]
    found = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split(" | ")]
        role, environment, assumed_by, may = cells[0].strip("`"), cells[1].strip("`"), cells[2], cells[3]
        actions = {f"{m['service']}:{name}" for m in ACTION.finditer(may) for name in [m["first"], *re.findall(r"`([A-Z][A-Za-z*]*)`", m["more"])]}
        jobs = tuple(re.findall(r"`([a-z-]+\.yml:[a-z-]+)`", assumed_by))
        found[role] = DocumentedRole(environment, jobs, frozenset(actions))
    return found


def subject_environment(statement: dict) -> str:
    """The GitHub environment a trust statement's OIDC subject names."""
    return statement["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"].rsplit(":environment:", 1)[1]
