"""Adoption instead of creation (issue #23, docs/migration.md): the data stack's templates for taking v1's resources over.

Where v1.0 lives (`takeover="adopt"` in infra/config.py), its stateful resources already exist under the names v2
keeps, so a create fails (`AlreadyExists`). They become the data stack's by CloudFormation resource import, then grow
into v2's form by ordinary updates, one template a step:

  1. `import`: a new stack `cc-reconciler-data-{stage}` holding only v1's three tables, its DLQ and its topic, created
     by a change set of type IMPORT. Each has exactly v1's name and key schema, `DeletionPolicy` and
     `UpdateReplacePolicy` `Retain`, and only the properties v1's resource already has (an import changes nothing
     and adds nothing else: no outputs, no other resource).
  2. `settings`: everything else of v2's data stack (its own tables, queues, key, policies, subscriptions; the Credits
     stream, PITR, encryption, the DLQ's settings) except the two indexes v2 adds to v1's tables, and without deletion
     protection.
  3. `jobs-index`, 4. `ledger-index`: one new global secondary index per update (DynamoDB creates or deletes only
     one per UpdateTable; each step waits for the index to become ACTIVE).
  5. the regular app (`make deploy`): deletion protection as the stage says, and the compute and monitoring stacks.

Every step keeps the regular data stack's logical ids (the templates are the regular stack's, synthesized alone, so
no stack imports its outputs yet), so each step is an update of the one before, and the last is `make deploy`'s.

`python -m infra.adoption STAGE [--out DIR]` writes each step's template and the import's resources file.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from infra.config import StageConfig, config_for
from infra.stacks.data_stack import DataStack
from reconciler.contract import EXPIRING_CREDITS_INDEX, JOBS_UNSETTLED_INDEX, LEDGER_BY_USER_INDEX

IMPORT, SETTINGS, JOBS_INDEX, LEDGER_INDEX = "import", "settings", "jobs-index", "ledger-index"
EXPIRY_INDEX = "expiry-index"  # Ledger's second index (credits that expire): one index per update
ADOPTION_STEPS = (IMPORT, SETTINGS, JOBS_INDEX, LEDGER_INDEX, EXPIRY_INDEX)

TABLE, QUEUE, TOPIC = "AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::SNS::Topic"
# The properties an imported resource may carry: its identifier and what v1 set when it created it (v1's runbook:
# on-demand tables, a 14-day DLQ). Anything more would be a change, which an import may not make.
IMPORT_PROPERTIES = {
    TABLE: ("TableName", "KeySchema", "AttributeDefinitions", "BillingMode"),
    QUEUE: ("QueueName", "MessageRetentionPeriod"),
    TOPIC: ("TopicName",),
}
# The identifier CloudFormation finds each type's existing resource by (a change set's ResourcesToImport).
IDENTIFIERS = {TABLE: "TableName", QUEUE: "QueueUrl", TOPIC: "TopicArn"}


def adopted(config: StageConfig) -> dict[str, tuple[str, str]]:
    """v1's stateful resources: name -> (resource type, key attribute for a table, else "")."""
    names = config.names
    return {
        names.jobs_table: (TABLE, "jobId"),
        names.credits_table: (TABLE, "userId"),
        names.ledger_table: (TABLE, "ledgerId"),
        names.dead_letter_queue: (QUEUE, ""),
        names.ops_topic: (TOPIC, ""),
    }


def resource_name(resource: dict[str, Any]) -> str | None:
    properties = resource.get("Properties", {})
    return next((properties[key] for key in ("TableName", "QueueName", "TopicName") if isinstance(properties.get(key), str)), None)


def data_template(config: StageConfig) -> dict[str, Any]:
    """The regular data stack's template, synthesized alone (no other stack, so no exports)."""
    with tempfile.TemporaryDirectory(prefix="cc-reconciler-adoption-") as outdir:
        app = cdk.App(outdir=outdir)
        env = cdk.Environment(account=config.account, region=config.region)
        DataStack(app, config.names.data_stack, config=config, stack_name=config.names.data_stack, env=env)
        return copy.deepcopy(app.synth().get_stack_by_name(config.names.data_stack).template)


def _logical_ids(template: dict[str, Any], config: StageConfig) -> dict[str, str]:
    """name -> logical id of each adopted resource in `template`."""
    wanted = adopted(config)
    found = {}
    for logical_id, resource in template["Resources"].items():
        name = resource_name(resource)
        if name in wanted and resource["Type"] == wanted[name][0]:
            found[name] = logical_id
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise ValueError(f"the data stack has no resource named {', '.join(missing)}")
    return found


def _without_index(table: dict[str, Any], index_name: str) -> None:
    properties = table["Properties"]
    kept = [index for index in properties.get("GlobalSecondaryIndexes", []) if index["IndexName"] != index_name]
    if kept:
        properties["GlobalSecondaryIndexes"] = kept
    else:
        properties.pop("GlobalSecondaryIndexes", None)
    used = {key["AttributeName"] for key in properties["KeySchema"]}
    used |= {key["AttributeName"] for index in kept for key in index["KeySchema"]}
    properties["AttributeDefinitions"] = [a for a in properties["AttributeDefinitions"] if a["AttributeName"] in used]


def _retained(resource: dict[str, Any]) -> None:
    if resource.get("DeletionPolicy") not in ("Retain", "RetainExceptOnCreate"):
        resource["DeletionPolicy"] = resource["UpdateReplacePolicy"] = "Retain"


def import_template(full: dict[str, Any], config: StageConfig) -> dict[str, Any]:
    """Step 1: v1's five resources alone, as v1 made them, retained."""
    resources = {}
    for name, logical_id in _logical_ids(full, config).items():
        source = full["Resources"][logical_id]
        kind, key = adopted(config)[name]
        properties = {k: v for k, v in source["Properties"].items() if k in IMPORT_PROPERTIES[kind]}
        if kind == TABLE:
            properties["KeySchema"] = [{"AttributeName": key, "KeyType": "HASH"}]
            properties["AttributeDefinitions"] = [{"AttributeName": key, "AttributeType": "S"}]
        if kind == QUEUE:
            properties["MessageRetentionPeriod"] = 14 * 24 * 3600  # v1's runbook: 14-day retention
        resources[logical_id] = {"Type": kind, "Properties": properties, "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    template = {key: value for key, value in full.items() if key in ("Parameters", "Rules")}
    return {"Description": f"v1's stateful resources of {config.stage}, imported (docs/migration.md)", **template, "Resources": resources}


def step_template(full: dict[str, Any], config: StageConfig, step: str) -> dict[str, Any]:
    """The data stack's template at `step` (ADOPTION_STEPS) of an adoption."""
    if step == IMPORT:
        return import_template(full, config)
    if step not in ADOPTION_STEPS:
        raise ValueError(f"unknown adoption step {step!r}; steps: {', '.join(ADOPTION_STEPS)}")
    template = copy.deepcopy(full)
    ids = _logical_ids(template, config)
    names = config.names
    later = ADOPTION_STEPS[ADOPTION_STEPS.index(step) + 1 :]
    if JOBS_INDEX in later:
        _without_index(template["Resources"][ids[names.jobs_table]], JOBS_UNSETTLED_INDEX)
    if LEDGER_INDEX in later:
        _without_index(template["Resources"][ids[names.ledger_table]], LEDGER_BY_USER_INDEX)
    if EXPIRY_INDEX in later:
        _without_index(template["Resources"][ids[names.ledger_table]], EXPIRING_CREDITS_INDEX)
    for resource in template["Resources"].values():
        if resource["Type"] == TABLE:
            resource["Properties"]["DeletionProtectionEnabled"] = False  # on only once the adoption is done (`make deploy`)
    for logical_id in ids.values():
        _retained(template["Resources"][logical_id])
    return template


def resources_to_import(template: dict[str, Any], config: StageConfig) -> list[dict[str, Any]]:
    """The import change set's ResourcesToImport (`aws cloudformation create-change-set --resources-to-import`)."""
    account, region = config.account, config.region
    found = []
    for logical_id, resource in template["Resources"].items():
        name = resource_name(resource) or ""
        identifier = {
            TABLE: name,
            QUEUE: f"https://sqs.{region}.amazonaws.com/{account}/{name}",
            TOPIC: f"arn:aws:sns:{region}:{account}:{name}",
        }[resource["Type"]]
        key = IDENTIFIERS[resource["Type"]]
        found.append({"ResourceType": resource["Type"], "LogicalResourceId": logical_id, "ResourceIdentifier": {key: identifier}})
    return found


def write_steps(config: StageConfig, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    full = data_template(config)
    written = []
    for number, step in enumerate(ADOPTION_STEPS, start=1):
        template = step_template(full, config, step)
        path = out / f"{number}-{step}.template.json"
        path.write_text(json.dumps(template, indent=1, sort_keys=True) + "\n")
        written.append(path)
        if step == IMPORT:
            resources = out / "1-import.resources.json"
            resources.write_text(json.dumps(resources_to_import(template, config), indent=1) + "\n")
            written.append(resources)
    return written


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.adoption", description="Write the adoption steps' data stack templates.")
    parser.add_argument("stage")
    parser.add_argument("--out", type=Path, default=None, help="default: cdk.out/adoption/STAGE")
    args = parser.parse_args(argv)
    config = config_for(args.stage)
    if config.takeover != "adopt":
        print(f"error: {config.stage} creates its resources (takeover={config.takeover!r} in infra/config.py)", file=sys.stderr)
        return 2
    for path in write_steps(config, args.out or Path("cdk.out") / "adoption" / config.stage):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
