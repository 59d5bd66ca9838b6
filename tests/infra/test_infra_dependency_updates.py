"""Renovate proposes dependency updates (.github/renovate.json) for every place a version is decided: pyproject's ranges,
both hash-locked requirement files, the CDK CLI in package.json, the workflows' actions with their pins file, and the
Powertools layer version that must follow the locked package."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG = json.loads((REPO / ".github" / "renovate.json").read_text())


def python_regex(renovate_regex: str) -> re.Pattern[str]:
    """Renovate's patterns are JavaScript's: (?<name>...) is Python's (?P<name>...)."""
    return re.compile(renovate_regex.replace("(?<", "(?P<"))


def manager_files(patterns: list[str]) -> set[str]:
    """The files of the repository (what Renovate sees: git's, new ones included) a manager's patterns select."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True)
    regexes = [python_regex(p.strip("/")) for p in patterns]
    return {path for path in listed.stdout.splitlines() if any(r.search(path) for r in regexes)}


def custom(file: str) -> dict:
    [manager] = [m for m in CONFIG["customManagers"] if manager_files(m["managerFilePatterns"]) == {file}]
    return manager


def test_every_ecosystem_is_managed():
    assert set(CONFIG["enabledManagers"]) == {"pep621", "pip_requirements", "npm", "github-actions", "custom.regex"}
    assert manager_files(CONFIG["pep621"]["managerFilePatterns"]) == {"pyproject.toml"}
    assert manager_files(CONFIG["pip_requirements"]["managerFilePatterns"]) == {"requirements.txt", "requirements-dev.txt"}


def test_the_pins_file_is_read_pin_by_pin():
    pins = yaml.safe_load((REPO / ".github" / "action-pins.yml").read_text())
    [pattern] = custom(".github/action-pins.yml")["matchStrings"]
    found = {
        m["depName"]: {"sha": m["currentDigest"], "tag": m["currentValue"]}
        for m in python_regex(pattern).finditer((REPO / ".github" / "action-pins.yml").read_text())
    }
    assert found == pins
    # Its updates and the workflows' come in one pull request, so the pins test never sees one without the other.
    [group] = [rule for rule in CONFIG["packageRules"] if rule.get("groupName") == "GitHub Actions"]
    assert set(group["matchManagers"]) == {"github-actions", "custom.regex"} and group["pinDigests"] is True


def test_the_powertools_layer_version_follows_the_locked_package():
    from infra.config import POWERTOOLS_VERSION

    manager = custom("infra/config.py")
    [pattern] = manager["matchStrings"]
    [match] = python_regex(pattern).finditer((REPO / "infra" / "config.py").read_text())
    assert match["currentValue"] == POWERTOOLS_VERSION and manager["depNameTemplate"] == "aws-lambda-powertools"
    assert any(rule.get("groupName") == "Powertools" and rule["matchPackageNames"] == ["aws-lambda-powertools"] for rule in CONFIG["packageRules"])
