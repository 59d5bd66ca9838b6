"""What one AWS API call is, for IAM purposes: who made it (by the code on the call stack), which IAM actions it
needs and on which resources (stage-independent names, so one test run checks every stage's policies)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Who makes a call, decided by the innermost "principal boundary" on the stack (the code that would hold the
# credentials in AWS); without one, function code (service, notify) called directly by a test counts as the
# function's, anything else as test set-up.
FUNCTION = "function"  # the Lambda's code paths, with the function's role
BALANCE_FUNCTION = "balance-events-function"  # the balance-events stream function, with its own role
SHADOW_FUNCTION = "shadow-function"  # the deployed shadow (`--context mode=shadow`), with its own role
OPERATOR = "operator"  # reconciler.cli / reconciler.ops, with an operator policy
SETUP = "setup"  # tests, fixtures, benchmarks, the local stack's provisioning and emulation
PIPELINE = "pipeline"  # the reservation library, called by the video pipeline with its own role
LAMBDA_SERVICE = "lambda-service"  # the async-invoke emulation's on-failure delivery (Lambda's own grant)

_STRONG: tuple[tuple[str, str, str], ...] = (
    # (module prefix, qualname prefix, principal); the first match of a frame wins, so specific rows first.
    ("reconciler.ops.target", "InProcessInvoker", FUNCTION),  # stands in for `lambda invoke` on --local
    # the simulator's stand-in for Lambda's synchronous invoke of the deployed function (a DLQ replay through the CLI's
    # LambdaInvoker): what runs inside is the function's, with the function's role
    ("simulator.operators", "_SimulatedLambda", FUNCTION),
    ("reconciler.handlers.balance_stream", "", BALANCE_FUNCTION),
    # the deployed shadow's handler only: the CLI's `shadow decide` runs the same decision code as the operator
    ("reconciler.handlers.shadow_events", "", SHADOW_FUNCTION),
    ("reconciler.service.balance_event_publishing", "", BALANCE_FUNCTION),
    ("reconciler.service.balance_changes", "", BALANCE_FUNCTION),
    ("reconciler.handlers", "", FUNCTION),
    ("emulator.invoker", "", LAMBDA_SERVICE),
    ("emulator", "", SETUP),
    ("reconciler.cli", "", OPERATOR),
    ("reconciler.ops", "", OPERATOR),
    ("reconciler.service.reservations", "", PIPELINE),
    ("benchmarks", "", SETUP),
)
_WEAK = ("reconciler.service", "reconciler.notify")
_DISPATCH = {"reconciler.cli.app", "reconciler.cli.main"}  # the CLI's dispatcher: the command is the entry


def _frame_principal(module: str, qualname: str) -> str | None:
    for prefix, qualified, principal in _STRONG:
        if (module == prefix or module.startswith(prefix + ".")) and qualname.startswith(qualified):
            return principal
    return None


def _name(frame: Any) -> tuple[str, str]:
    return frame.f_globals.get("__name__", ""), getattr(frame.f_code, "co_qualname", frame.f_code.co_name)


def attribute(frame: Any) -> tuple[str, str]:
    """(principal, code path). The code path is `entry > call`: the frame that decided the principal (else the
    outermost reconciler frame) and the innermost public reconciler function on the way to the call."""
    chain = []  # reconciler (and emulator, benchmarks) frames, innermost first
    while frame is not None:
        module, qualname = _name(frame)
        if module.startswith(("reconciler.", "emulator.", "benchmarks")) or _frame_principal(module, qualname) is not None:
            chain.append((module, qualname))
        frame = frame.f_back
    if not chain:
        return SETUP, "tests"

    def public(qualname: str) -> bool:
        name = qualname.split(".")[-1]
        return not name.startswith("_") or name.endswith("__")

    leaf = next(((m, q) for m, q in chain if public(q)), chain[0])
    principal = next((p for p in (_frame_principal(m, q) for m, q in chain) if p is not None), None)
    if principal is None:
        weak = [(m, q) for m, q in chain if any(m == w or m.startswith(w + ".") for w in _WEAK)]
        principal = FUNCTION if weak else SETUP
        entry = (weak or chain)[-1]
    else:  # the outermost frame that acts as this principal: the command, handler or invoker
        acting = [(m, q) for m, q in chain if _frame_principal(m, q) == principal and m not in _DISPATCH]
        entry = acting[-1] if acting else leaf
    short = lambda m, q: f"{m.removeprefix('reconciler.')}:{q}"  # noqa: E731
    path = short(*entry) if entry == leaf else f"{short(*entry)} > {short(*leaf)}"
    return principal, path


# --- actions and resources ---------------------------------------------------------------------------------

# Resource names of the contract, with the stage replaced by {stage}.
_STAGE_NAMES = [
    re.compile(r"^(?P<base>Jobs|Credits|Ledger|UserLedger|Settlements|BalanceEvents|ShadowDecisions)-(?P<stage>[a-z0-9]+)$"),
    re.compile(r"^(?P<base>cc-reconciler-dlq)-(?P<stage>[a-z0-9]+)$"),
    re.compile(r"^(?P<base>ops-alerts)-(?P<stage>[a-z0-9]+)$"),
    re.compile(r"^(?P<base>cc-agent-reconciler)-(?P<stage>[a-z0-9]+)$"),
    re.compile(r"^(?P<base>/aws/lambda/cc-agent-reconciler)-(?P<stage>[a-z0-9]+)$"),
    re.compile(r"^(?P<base>cc-reconciler-(?:archive|events|timer-scan))-(?P<stage>[a-z0-9]+)$"),
    re.compile(r"^(?P<base>cc-reconciler-[a-z0-9-]+?)-(?P<stage>dev|staging|prod|local|test)$"),  # alarms
]


def stageless(name: str) -> str:
    for pattern in _STAGE_NAMES:
        match = pattern.match(name)
        if match:
            return f"{match['base']}-{{stage}}"
    return name


@dataclass(frozen=True, order=True)
class Need:
    """One IAM action on one resource: `resource` is `type/name` (stage as {stage}) or `*`."""

    action: str
    resource: str


def _last(value: str, separators: str = "/:") -> str:
    return re.split(f"[{re.escape(separators)}]", value)[-1]


def _dynamodb(operation: str, params: dict) -> list[Need]:
    def table(name: str, index: str | None = None) -> str:
        name = _last(name, "/") if name.startswith("arn:") else name
        return f"table/{stageless(name)}" + (f"/index/{index}" if index else "")

    if operation == "TransactWriteItems":
        kinds = {"Put": "PutItem", "Update": "UpdateItem", "ConditionCheck": "ConditionCheckItem", "Delete": "DeleteItem"}
        return [Need(f"dynamodb:{kinds[kind]}", table(body["TableName"])) for item in params.get("TransactItems", []) for kind, body in item.items()]
    if operation == "TransactGetItems":
        return [Need("dynamodb:GetItem", table(item["Get"]["TableName"])) for item in params.get("TransactItems", [])]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [Need(f"dynamodb:{operation}", table(name)) for name in params.get("RequestItems", {})]
    if "TableName" in params:
        return [Need(f"dynamodb:{operation}", table(params["TableName"], params.get("IndexName")))]
    return [Need(f"dynamodb:{operation}", "*")]


def needs(service: str, operation: str, params: dict) -> list[Need]:
    """The IAM authorisations an API call needs (per item for transactions)."""
    if service == "dynamodb":
        return _dynamodb(operation, params)
    if service == "sts" and operation == "GetCallerIdentity":
        return []  # needs no permission
    if service == "sqs":
        if "QueueUrl" in params:
            return [Need(f"sqs:{operation}", f"queue/{stageless(_last(params['QueueUrl'], '/'))}")]
        if "QueueName" in params:
            return [Need(f"sqs:{operation}", f"queue/{stageless(params['QueueName'])}")]
    if service == "sns" and "TopicArn" in params:
        return [Need(f"sns:{operation}", f"topic/{stageless(_last(params['TopicArn'], ':'))}")]
    if service == "secretsmanager" and "SecretId" in params:
        secret = params["SecretId"]
        if secret.startswith("arn:"):
            secret = re.sub(r"-[A-Za-z0-9]{6}$", "", secret.split(":secret:", 1)[1])
        return [Need(f"secretsmanager:{operation}", f"secret/{secret}")]
    if service == "lambda" and "FunctionName" in params:
        action = {"Invoke": "InvokeFunction", "InvokeAsync": "InvokeFunction"}.get(operation, operation)
        return [Need(f"lambda:{action}", f"function/{stageless(_last(params['FunctionName'], ':'))}")]
    if service == "cloudwatch" and "AlarmNames" in params and operation != "DescribeAlarms":
        return [Need(f"cloudwatch:{operation}", f"alarm/{stageless(name)}") for name in params["AlarmNames"]]
    if service == "logs" and "logGroupName" in params:
        return [Need(f"logs:{operation}", f"log-group/{stageless(params['logGroupName'])}")]
    if service == "events":
        if operation == "StartReplay":
            return [Need("events:StartReplay", f"archive/{stageless(_last(params['EventSourceArn'], '/'))}")]
        if operation == "DescribeArchive":
            return [Need("events:DescribeArchive", f"archive/{stageless(params['ArchiveName'])}")]
        if operation in ("DescribeRule", "PutRule", "PutTargets", "DeleteRule"):
            return [Need(f"events:{operation}", f"rule/{stageless(params.get('Name') or params.get('Rule'))}")]
        if operation == "PutEvents":
            buses = {entry.get("EventBusName") or "default" for entry in params.get("Entries", [])}
            return [Need("events:PutEvents", f"event-bus/{_last(bus, '/')}") for bus in sorted(buses)]
    return [Need(f"{service}:{operation}", "*")]


def arn(need_resource: str, stage: str, account: str, region: str) -> str:
    """The ARN a `type/name` resource has in a stage (secrets get a sample six-character suffix)."""
    if need_resource == "*":
        return "*"
    kind, name = need_resource.split("/", 1)
    name = name.replace("{stage}", stage)
    prefix = f":{region}:{account}:"
    return {
        "table": f"arn:aws:dynamodb{prefix}table/{name}",
        "queue": f"arn:aws:sqs{prefix}{name}",
        "topic": f"arn:aws:sns{prefix}{name}",
        "secret": f"arn:aws:secretsmanager{prefix}secret:{name}-AbCdEf",
        "function": f"arn:aws:lambda{prefix}function:{name}",
        "alarm": f"arn:aws:cloudwatch{prefix}alarm:{name}",
        "archive": f"arn:aws:events{prefix}archive/{name}",
        "rule": f"arn:aws:events{prefix}rule/{name}",
        "event-bus": f"arn:aws:events{prefix}event-bus/{name}",
        "log-group": f"arn:aws:logs{prefix}log-group:{name}:*",
    }[kind]
