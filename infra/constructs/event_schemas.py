"""The events the reconciler consumes and publishes, registered in an EventBridge schema registry of the stage
(`cc-reconciler-{stage}`), from the JSON Schemas in docs/schemas/, so producers and consumers find them where
EventBridge users look (and generate code bindings from them). A registry and its schemas cost nothing at run time
(EventBridge bills schema discovery, which is not turned on here).

EventBridge registers JSON Schema as draft 4 (`AWS::EventSchemas::Schema` Type `JSONSchemaDraft4`); the files are
draft 2020-12. Each is registered with the draft-4 header and id, and otherwise as written: the keywords these
schemas use are draft 4's, but for `const` (a draft-4 reader ignores it) and no `exclusiveMinimum` or
conditionals (the hold request's schema has them, and is not an event: it is not registered).
"""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import aws_eventschemas as eventschemas
from constructs import Construct

from infra.config import StageConfig
from reconciler import contract

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schemas"
DRAFT_4 = "http://json-schema.org/draft-04/schema#"
# (EventBridge source, detail-type): the pipeline's two events, the four balance events, billing's three credits in
# and the timer scan's expired holds, expired credits and expiring credits.
REGISTERED_EVENTS = (
    tuple((contract.SETTLED_EVENT_SOURCE, kind) for kind in contract.SETTLED_DETAIL_TYPES)
    + tuple((contract.BALANCE_EVENT_SOURCE, kind) for kind in contract.BALANCE_EVENT_DETAIL_TYPES)
    + tuple((contract.CREDITS_IN_EVENT_SOURCE, kind) for kind in contract.CREDITS_IN_EVENT_DETAIL_TYPES)
    + tuple(
        (contract.BALANCE_EVENT_SOURCE, kind)
        for kind in (contract.HOLD_EXPIRED_DETAIL_TYPE, contract.CREDITS_EXPIRED_DETAIL_TYPE, contract.CREDITS_EXPIRING_DETAIL_TYPE)
    )
)


def as_draft_4(schema: dict) -> dict:
    """The schema with draft 4's header (`$schema`) and identifier keyword (`id`, not `$id`)."""
    converted = {key: value for key, value in schema.items() if key not in ("$schema", "$id")}
    return {"$schema": DRAFT_4, "id": schema["$id"], **converted}


class EventSchemas(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        registry_name = f"cc-reconciler-{config.stage}"
        self.registry = eventschemas.CfnRegistry(self, "Registry", registry_name=registry_name, description="Events of the credit reconciler")
        self.schemas = []
        for source, detail_type in REGISTERED_EVENTS:
            schema = json.loads((SCHEMA_DIR / f"{detail_type}.json").read_text())
            registered = eventschemas.CfnSchema(
                self,
                detail_type,
                registry_name=registry_name,
                schema_name=f"{source}@{detail_type}",
                type="JSONSchemaDraft4",
                content=json.dumps(as_draft_4(schema), sort_keys=True),
                description=schema.get("title", detail_type),
            )
            registered.add_dependency(self.registry)
            self.schemas.append(registered)
