"""The GitHub workflow files, read as YAML, and look-ups of their jobs' steps."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def steps(job: dict) -> list[dict]:
    return job["steps"]


def index_of(job: dict, predicate, what: str) -> int:
    found = [i for i, step in enumerate(steps(job)) if predicate(step)]
    assert len(found) == 1, f"expected one step that {what}, found {len(found)}"
    return found[0]


def runs(fragment: str):
    return lambda step: fragment in str(step.get("run", ""))


def uses(action: str):
    return lambda step: str(step.get("uses", "")).startswith(action + "@")
