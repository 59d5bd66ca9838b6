"""The synthesized policies, resolved to plain ARNs, and the check of observed calls against them."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.least_privilege.calls import BALANCE_FUNCTION, FUNCTION, OPERATOR, SHADOW_FUNCTION, Need, arn

# Grants the function's role needs for AWS itself rather than for a call its code makes: they can never be
# observed in a test, so each is listed with its reason (and checked to exist, so none goes stale).
PLATFORM_GRANTS: dict[tuple[str, str], str] = {
    ("logs:CreateLogStream", "log-group"): "Lambda writes the function's logs with its role (its own log group only)",
    ("logs:PutLogEvents", "log-group"): "Lambda writes the function's logs with its role (its own log group only)",
    ("xray:PutTraceSegments", "*"): "active tracing: Lambda and the SDK send segments with the role",
    ("xray:PutTelemetryRecords", "*"): "active tracing",
    ("kms:GenerateDataKey*", "key"): "SNS encrypts what the function publishes with the topic's key, as the publisher",
    ("kms:Decrypt", "key"): "SNS needs the publisher to be allowed kms:Decrypt on the topic's key too",
    ("sqs:GetQueueAttributes", "queue"): "CDK's grant for the async on-failure destination (Lambda's service side)",
    ("sqs:GetQueueUrl", "queue"): "CDK's grant for the async on-failure destination (Lambda's service side)",
}
# The balance-events function's role: what Lambda's stream poller does with it (the event source mapping's
# grants), never a call of the function's code.
# Every function's: Lambda writes its logs and, where the stage traces, its segments with its role.
LOGS_AND_TRACES = {
    grant: PLATFORM_GRANTS[grant]
    for grant in (
        ("logs:CreateLogStream", "log-group"),
        ("logs:PutLogEvents", "log-group"),
        ("xray:PutTraceSegments", "*"),
        ("xray:PutTelemetryRecords", "*"),
    )
}
BALANCE_PLATFORM_GRANTS: dict[tuple[str, str], str] = {
    **LOGS_AND_TRACES,
    # An unexplained balance change is alerted on the ops topic (sns:Publish is a call of the code; SNS's key use is not).
    ("kms:GenerateDataKey*", "key"): PLATFORM_GRANTS[("kms:GenerateDataKey*", "key")],
    ("kms:Decrypt", "key"): PLATFORM_GRANTS[("kms:Decrypt", "key")],
    ("dynamodb:ListStreams", "*"): "the event source mapping: Lambda's poller lists the table's streams",
    ("dynamodb:DescribeStream", "stream"): "the event source mapping: Lambda's poller reads the Credits stream",
    ("dynamodb:GetRecords", "stream"): "the event source mapping: Lambda's poller reads the Credits stream",
    ("dynamodb:GetShardIterator", "stream"): "the event source mapping: Lambda's poller reads the Credits stream",
    ("sqs:SendMessage", "queue"): "the mapping's on-failure destination: Lambda describes a given-up batch there",
    ("sqs:GetQueueAttributes", "queue"): "the mapping's on-failure destination (Lambda's service side)",
    ("sqs:GetQueueUrl", "queue"): "the mapping's on-failure destination (Lambda's service side)",
}
# The deployed shadow's role: Lambda's own uses of it, and the one read of v1's tables no test path reaches.
SHADOW_PLATFORM_GRANTS: dict[tuple[str, str], str] = {
    **LOGS_AND_TRACES,
    ("sqs:SendMessage", "queue"): "CDK's grant for the async on-failure destination (Lambda sends the failed event)",
    ("sqs:GetQueueAttributes", "queue"): PLATFORM_GRANTS[("sqs:GetQueueAttributes", "queue")],
    ("sqs:GetQueueUrl", "queue"): PLATFORM_GRANTS[("sqs:GetQueueUrl", "queue")],
}
SHADOW_UNREACHED_GRANTS: dict[tuple[str, str], str] = {
    ("dynamodb:GetItem", "table/Jobs-{stage}"): "the shadow store's load_job (v1's Jobs, read-only): the settlement service reads the "
    "job only on a retry or a damaged record, which the shadow's captured writes and own records never cause",
}


# Operator grants for an aws CLI command the CLI prints for the operator to run, never a call of the CLI itself.
RUNBOOK_GRANTS: dict[tuple[str, str], str] = {
    ("break-glass", "events:DescribeReplay"): "`aws events describe-replay --replay-name NAME`, printed by `events replay` to watch it",
}
# Which principal-less resource kinds a platform grant may sit on: resolved ARNs are classified by service.
_ARN_KINDS = {":logs:": "log-group", ":kms:": "key", ":sqs:": "queue", "/stream/": "stream"}
# A grant in the read-only operator policy may only be one of these.
READ_ACTION_PREFIXES = ("Get", "Describe", "List", "Query", "Scan", "Filter", "ReceiveMessage", "ChangeMessageVisibility")


# --- template resolution ---------------------------------------------------------------------------------


@dataclass
class Templates:
    """The three stacks of one stage, with enough of CloudFormation to turn intrinsics into ARNs."""

    stage: str
    account: str
    region: str
    stacks: dict[str, dict]
    exports: dict[str, tuple[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, template in self.stacks.items():
            for output in template.get("Outputs", {}).values():
                export = output.get("Export", {}).get("Name")
                if export:
                    self.exports[export] = (name, output["Value"])

    def resolve(self, value: Any, stack: str) -> Any:
        if isinstance(value, list):
            return [self.resolve(v, stack) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self.resolve(v, stack) for k, v in value.items()}
        ((function, argument),) = value.items()
        if function == "Ref":
            return self._ref(argument, stack)
        if function == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self._attribute(logical_id, attribute, stack)
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(str(self.resolve(part, stack)) for part in parts)
        if function == "Fn::ImportValue":
            owner, exported = self.exports[self.resolve(argument, stack)]
            return self.resolve(exported, owner)
        if function == "Fn::Select":
            index, items = argument
            return self.resolve(items, stack)[int(index)]
        if function == "Fn::Split":
            separator, text = argument
            return str(self.resolve(text, stack)).split(separator)
        return {k: self.resolve(v, stack) for k, v in value.items()}

    def _resource(self, logical_id: str, stack: str) -> dict:
        return self.stacks[stack]["Resources"][logical_id]

    def _ref(self, name: str, stack: str) -> str:
        pseudo = {"AWS::Partition": "aws", "AWS::Region": self.region, "AWS::AccountId": self.account, "AWS::URLSuffix": "amazonaws.com"}
        if name in pseudo:
            return pseudo[name]
        resource = self._resource(name, stack)
        kind, properties = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{properties['QueueName']}"
        if kind == "AWS::SNS::Topic":
            return self._attribute(name, "Arn", stack)
        for key in ("TableName", "FunctionName", "LogGroupName", "Name", "ArchiveName", "AlarmName", "ManagedPolicyName"):
            if key in properties:
                return properties[key]
        return name  # e.g. a KMS key id

    def _attribute(self, logical_id: str, attribute: str, stack: str) -> str:
        resource = self._resource(logical_id, stack)
        kind, p = resource["Type"], resource.get("Properties", {})
        base = f":{self.region}:{self.account}:"
        arns = {
            "AWS::DynamoDB::Table": lambda: f"arn:aws:dynamodb{base}table/{p['TableName']}",
            "AWS::SQS::Queue": lambda: f"arn:aws:sqs{base}{p['QueueName']}",
            "AWS::SNS::Topic": lambda: f"arn:aws:sns{base}{p['TopicName']}",
            "AWS::KMS::Key": lambda: f"arn:aws:kms{base}key/{logical_id}",
            "AWS::Logs::LogGroup": lambda: f"arn:aws:logs{base}log-group:{p['LogGroupName']}:*",
            "AWS::Lambda::Function": lambda: f"arn:aws:lambda{base}function:{p['FunctionName']}",
            "AWS::Events::Rule": lambda: f"arn:aws:events{base}rule/{p['Name']}",
            "AWS::Events::Archive": lambda: f"arn:aws:events{base}archive/{p['ArchiveName']}",
            "AWS::CloudWatch::Alarm": lambda: f"arn:aws:cloudwatch{base}alarm:{p['AlarmName']}",
        }
        if kind == "AWS::DynamoDB::Table" and attribute == "StreamArn":
            return f"arn:aws:dynamodb{base}table/{p['TableName']}/stream/*"
        if attribute != "Arn" or kind not in arns:
            raise KeyError(f"cannot resolve {logical_id}.{attribute} ({kind})")
        return arns[kind]()


@dataclass(frozen=True)
class Grant:
    policy: str
    sid: str
    action: str
    resource: str

    def allows(self, action: str, resource_arn: str) -> bool:
        return fnmatch.fnmatchcase(action.lower(), self.action.lower()) and fnmatch.fnmatchcase(resource_arn, self.resource)


def grants(templates: Templates, resource_type: str, name_filter=lambda logical_id, resource: True) -> list[Grant]:
    """Every (action, resource) pair of the Allow statements of the matching policies (Deny: none expected)."""
    found = []
    for stack, template in templates.stacks.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] != resource_type or not name_filter(logical_id, resource):
                continue
            document = templates.resolve(resource["Properties"]["PolicyDocument"], stack)
            for number, statement in enumerate(_listed(document["Statement"])):
                assert statement["Effect"] == "Allow", f"{logical_id}: unexpected {statement}"
                assert "NotAction" not in statement and "NotResource" not in statement, statement
                for action in _listed(statement["Action"]):
                    for resource_arn in _listed(statement["Resource"]):
                        found.append(Grant(logical_id, statement.get("Sid", f"#{number}"), action, resource_arn))
    return found


def _listed(value: Any) -> list:
    return value if isinstance(value, list) else [value]


# --- the check -------------------------------------------------------------------------------------------


@dataclass
class Observed:
    """Calls seen in the run: Need -> code paths, per principal."""

    by_principal: dict[str, dict[Need, set[str]]]

    def of(self, principal: str) -> dict[Need, set[str]]:
        return self.by_principal.get(principal, {})


def _kind(resource_arn: str) -> str:
    if resource_arn == "*":
        return "*"
    return next((kind for marker, kind in _ARN_KINDS.items() if marker in resource_arn), "other")


def _uses(grant: Grant, calls: Iterable[Need], templates: Templates) -> bool:
    return any(grant.allows(need.action, arn(need.resource, templates.stage, templates.account, templates.region)) for need in calls)


def check_function(templates: Templates, observed: Observed, triage_enabled: bool) -> list[str]:
    role_grants = grants(templates, "AWS::IAM::Policy", lambda lid, r: lid.startswith("ReconcilerRole"))
    calls = dict(observed.of(FUNCTION))
    if not triage_enabled:  # only the triage note reads the secret, and triage is off in this stage
        calls = {need: paths for need, paths in calls.items() if not need.action.startswith("secretsmanager:")}
    problems = check_balance_function(templates, observed)
    for need, paths in sorted(calls.items()):
        resource_arn = arn(need.resource, templates.stage, templates.account, templates.region)
        if not any(g.allows(need.action, resource_arn) for g in role_grants):
            problems.append(
                f"{templates.stage}: the function calls {need.action} on {resource_arn} ({', '.join(sorted(paths))}) but its role does not allow it"
            )
    published = any(need.action == "sns:Publish" for need in calls)
    for grant in role_grants:
        if _uses(grant, calls, templates):
            continue
        platform = PLATFORM_GRANTS.get((grant.action, _kind(grant.resource)))
        if platform and (not grant.action.startswith("kms:") or published):
            continue
        problems.append(
            f"{templates.stage}: the function role allows {grant.action} on {grant.resource} (statement {grant.sid}), which no function "
            "code path calls"
        )
    return problems


def check_balance_function(templates: Templates, observed: Observed) -> list[str]:
    """The balance-events function's role against its code's calls, in both directions."""
    role_grants = grants(templates, "AWS::IAM::Policy", lambda lid, r: lid.startswith("BalanceEventsRole"))
    calls = observed.of(BALANCE_FUNCTION)
    problems = []
    if not role_grants:
        problems.append(f"{templates.stage}: no balance-events function role")
    for need, paths in sorted(calls.items()):
        resource_arn = arn(need.resource, templates.stage, templates.account, templates.region)
        if not any(g.allows(need.action, resource_arn) for g in role_grants):
            problems.append(
                f"{templates.stage}: the balance-events function calls {need.action} on {resource_arn} ({', '.join(sorted(paths))}) "
                "but its role does not allow it"
            )
    for grant in role_grants:
        if _uses(grant, calls, templates) or (grant.action, _kind(grant.resource)) in BALANCE_PLATFORM_GRANTS:
            continue
        problems.append(
            f"{templates.stage}: the balance-events role allows {grant.action} on {grant.resource} (statement {grant.sid}), "
            "which no function code path calls"
        )
    return problems


def check_shadow_function(templates: Templates, observed: Observed) -> list[str]:
    """The deployed shadow's role (its own stack, `--context mode=shadow`) against its code's calls, both directions."""
    role_grants = grants(templates, "AWS::IAM::Policy", lambda lid, r: lid.startswith("ShadowRole"))
    calls = observed.of(SHADOW_FUNCTION)
    problems = [] if role_grants else [f"{templates.stage}: no shadow function role"]
    for need, paths in sorted(calls.items()):
        resource_arn = arn(need.resource, templates.stage, templates.account, templates.region)
        if not any(g.allows(need.action, resource_arn) for g in role_grants):
            where = ", ".join(sorted(paths))
            problems.append(f"{templates.stage}: the shadow function calls {need.action} on {resource_arn} ({where}) but its role does not allow it")
    unreached = {arn(resource, templates.stage, templates.account, templates.region): action for action, resource in SHADOW_UNREACHED_GRANTS}
    for grant in role_grants:
        if _uses(grant, calls, templates) or (grant.action, _kind(grant.resource)) in SHADOW_PLATFORM_GRANTS:
            continue
        if unreached.get(grant.resource) == grant.action:
            continue
        problems.append(
            f"{templates.stage}: the shadow role allows {grant.action} on {grant.resource} (statement {grant.sid}), which no function code path calls"
        )
    return problems


def check_operator(templates: Templates, observed: Observed) -> list[str]:
    names = templates.stage
    policies = {
        variant: grants(
            templates,
            "AWS::IAM::ManagedPolicy",
            lambda lid, r, v=variant: r["Properties"].get("ManagedPolicyName") == f"cc-reconciler-operator-{v}-{names}",
        )
        for variant in ("read-only", "break-glass")
    }
    calls = observed.of(OPERATOR)
    problems = []
    for variant, found in policies.items():
        if not found:
            problems.append(f"{names}: no {variant} operator policy")
    for need, paths in sorted(calls.items()):
        resource_arn = arn(need.resource, templates.stage, templates.account, templates.region)
        where = ", ".join(sorted(paths))
        if not any(g.allows(need.action, resource_arn) for g in policies["break-glass"]):
            problems.append(f"{names}: the CLI calls {need.action} on {resource_arn} ({where}) but the break-glass policy does not allow it")
        is_read = need.action.split(":", 1)[1].startswith(READ_ACTION_PREFIXES)
        if is_read and not any(g.allows(need.action, resource_arn) for g in policies["read-only"]):
            problems.append(f"{names}: the CLI reads with {need.action} on {resource_arn} ({where}) but the read-only policy does not allow it")
    for variant, action in RUNBOOK_GRANTS:
        if not any(grant.action == action for grant in policies[variant]):
            problems.append(f"{names}: the {variant} policy lacks {action} ({RUNBOOK_GRANTS[(variant, action)]})")
    for variant, found in policies.items():
        for grant in found:
            if variant == "read-only" and not grant.action.split(":", 1)[1].startswith(READ_ACTION_PREFIXES):
                problems.append(f"{names}: the read-only policy allows {grant.action}, which is not a read")
            if not _uses(grant, calls, templates) and (variant, grant.action) not in RUNBOOK_GRANTS:
                problems.append(
                    f"{names}: the {variant} policy allows {grant.action} on {grant.resource} (statement {grant.sid}), which the CLI never calls"
                )
    return problems
