"""A test's path says its tier: tests/unit, tests/integration or tests/infra, each run alone by its Makefile target
(make unit, integration, infra-tests) and together by `make test`.

    tests/unit          the domain, the use cases on the in-memory fakes, the fake side of the shared contracts, pure
                        CLI and operations logic: no moto, no CDK synthesis, seconds
    tests/integration   moto in-process and as a server, the handlers, the CLI end to end, the emulator, the AWS side
                        of the shared contracts, the simulator's default seeds, the benchmarks' request counts
    tests/infra         CDK synthesis and its assertions, snapshots, cdk-nag, cfn-lint, the CI workflows, the least-
                        privilege proof (only a full run checks the IAM policies against every AWS call the suite made)
"""

from __future__ import annotations

import re
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
TIERS = {"unit": "tests/unit", "integration": "tests/integration", "infra-tests": "tests/infra"}


def makefile_selections() -> dict[str, str]:
    """The folder each tier target of the Makefile runs, read from its recipe."""
    text = (CHECKOUT / "Makefile").read_text()
    selections = {}
    for target in TIERS:
        recipe = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", text, re.MULTILINE)
        assert recipe, f"the Makefile has no `{target}` target"
        folder = re.search(r"\s(tests/\w+)\s*$", recipe.group(1), re.MULTILINE)
        assert folder, f"`make {target}` runs one folder of tests"
        selections[target] = folder.group(1)
    return selections


def test_each_tier_target_runs_its_folder():
    assert makefile_selections() == TIERS


def test_every_collected_test_lives_in_one_tier_folder(request):
    # In `make test` (and any run without arguments) these are all the suite's tests; in a tier run, that tier's.
    items = request.session.items
    assert items
    outside = sorted({item.nodeid.split("::")[0] for item in items if not item.nodeid.startswith(tuple(f"{f}/" for f in TIERS.values()))})
    assert outside == [], f"test files outside tests/unit, tests/integration and tests/infra: {outside[:5]}"


def test_one_harness_for_aws():
    """tests/aws.py is the one test harness for AWS: no other test module defines a stage class of its own, and no
    fixture composes a store or a use case by hand (the harness takes them from the composition root)."""
    import ast

    composed = {"DynamoDBStore", "OperationsStore", "SettlementService", "EventProcessor", "ReservationService", "TimerScan"}
    found = []
    for path in sorted((CHECKOUT / "tests").rglob("*.py")):
        if path == CHECKOUT / "tests" / "aws.py":
            continue
        tree = ast.parse(path.read_text())
        found += [
            f"{path.relative_to(CHECKOUT)}: class {node.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef) and node.name in ("Aws", "Env")
        ]
        if path.name == "conftest.py":
            calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in composed]
            found += [f"{path.relative_to(CHECKOUT)}:{node.lineno}: {node.func.id}(...)" for node in calls]  # type: ignore[attr-defined]
    assert found == []
