"""The deployed shadow (`--context mode=shadow`, docs/migration.md step 1) on the local endpoint, beside a v1 (or its
stand-in): its decisions table, its DLQ and its rule, created from the synthesized shadow template, and the shadow
function's handler invoked in-process from the rule's queue, as the local stack does with the reconciler.

Nothing of v1's is created here: the shadow's template has only its own resources; v1's tables are read by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emulator.invoker import LocalInvoker
from emulator.resources import create_queues, create_tables, resources_of, route_rules
from reconciler.contract import ENV_DLQ_URL, ENV_SHADOW_TABLE, SHADOW_HANDLER, ResourceNames

# The shadow rule's stand-in target (the reconciler's rule has its own: emulator/resources.py INVOKE_QUEUE).
SHADOW_INVOKE_QUEUE = "cc-reconciler-local-shadow-invocations"


@dataclass
class LocalShadow:
    stage: str
    decisions_table: str
    dlq_url: str
    rules: dict[str, dict]
    function_name: str
    environment: dict[str, str]  # the function's, as the template sets it, references resolved locally
    invoke_queue_url: str
    max_attempts: int

    def invoker(self, sqs: Any) -> LocalInvoker:
        from reconciler.handlers.shadow_events import handler

        return LocalInvoker(sqs, self.invoke_queue_url, self.dlq_url, self.function_name, handler, max_attempts=self.max_attempts)


def shadow_templates(stage: str) -> dict[str, dict]:
    """The stage's shadow template (CDK synthesis in-process, no credentials)."""
    from infra.app import synthesize_templates

    return synthesize_templates(stage, "shadow")


def provision_shadow(templates: Mapping[str, dict], stage: str, session: Any, endpoint: str | None = None) -> LocalShadow:
    """The shadow's own resources from its template, beside whatever runs on the endpoint (v1's tables untouched)."""
    dynamodb, sqs, events = (session.client(name, endpoint_url=endpoint) for name in ("dynamodb", "sqs", "events"))
    names = ResourceNames(stage)
    tables, queues = create_tables(templates, dynamodb), create_queues(templates, sqs)
    if set(tables.values()) != {names.shadow_table} or set(queues) != {names.shadow_dead_letter_queue}:
        raise RuntimeError(f"the shadow template for {stage} creates {sorted(tables.values())} and {sorted(queues)}: only its own")
    invoke_queue_url = sqs.create_queue(QueueName=SHADOW_INVOKE_QUEUE)["QueueUrl"]
    rules = route_rules(templates, events, sqs, invoke_queue_url)
    ((_, function),) = ((lid, props) for lid, props in resources_of(templates, "AWS::Lambda::Function") if props.get("Handler") == SHADOW_HANDLER)
    variables = function.get("Environment", {}).get("Variables", {})
    environment = {key: value for key, value in variables.items() if isinstance(value, str)}
    # The template's references (its table, its queue), resolved; no X-Ray daemon locally.
    resolved = {ENV_SHADOW_TABLE: names.shadow_table, ENV_DLQ_URL: queues[names.shadow_dead_letter_queue]}
    environment.update({**resolved, "POWERTOOLS_TRACE_DISABLED": "true"})
    retries = [int(props.get("MaximumRetryAttempts", 2)) for _, props in resources_of(templates, "AWS::Lambda::EventInvokeConfig")]
    return LocalShadow(
        stage=stage,
        decisions_table=names.shadow_table,
        dlq_url=queues[names.shadow_dead_letter_queue],
        rules=rules,
        function_name=function["FunctionName"],
        environment=environment,
        invoke_queue_url=invoke_queue_url,
        max_attempts=1 + (retries[0] if retries else 2),
    )
