"""Look-ups over synthesized templates that fail with a message saying what was there instead."""

from __future__ import annotations

import json
import re
from typing import Any

from aws_cdk.assertions import Template

ASSET_HASH = re.compile(r"[0-9a-f]{64}")
STACK_KINDS = ("data", "compute", "monitoring")


def resource_named(template: Template, resource_type: str, name_property: str, name: str) -> dict[str, Any]:
    """The one resource of `resource_type` whose `name_property` is `name`."""
    candidates = template.find_resources(resource_type)
    matches = [r for r in candidates.values() if r.get("Properties", {}).get(name_property) == name]
    assert len(matches) == 1, (
        f"expected exactly one {resource_type} with {name_property}={name!r}; found "
        f"{sorted(str(r.get('Properties', {}).get(name_property)) for r in candidates.values())}"
    )
    return matches[0]


def only_resource(template: Template, resource_type: str) -> dict[str, Any]:
    found = template.find_resources(resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {len(found)}: {sorted(found)}"
    return next(iter(found.values()))


def resource_id(template: Template, resource_type: str) -> str:
    found = template.find_resources(resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {len(found)}: {sorted(found)}"
    return next(iter(found))


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def identity_policy_statements(template: Template) -> list[dict[str, Any]]:
    """Statements of the IAM policies attached to roles (not resource or key policies)."""
    return [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def refers_to(value: Any, fragment: str) -> bool:
    """Whether a (possibly intrinsic) value mentions `fragment`, e.g. an export of the data stack."""
    return fragment in json.dumps(value)


def joined(value: Any) -> str:
    """A Fn::Join of literals and the partition, as a plain string (aws for the partition)."""
    if isinstance(value, str):
        return value
    separator, parts = value["Fn::Join"]
    return separator.join("aws" if part == {"Ref": "AWS::Partition"} else part for part in parts)


def normalised(template: dict[str, Any]) -> dict[str, Any]:
    """The template with asset hashes masked: runtime edits change them, resource edits do not."""
    return json.loads(ASSET_HASH.sub("<asset-hash>", json.dumps(template)))
