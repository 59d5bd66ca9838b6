"""The structure issue #14 asked for, kept: imports point one way, and names say where they live."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "runtime" / "reconciler"


def test_the_import_contracts_hold():
    # Given the contracts in .importlinter (domain pure, services without AWS, adapters towards the ports,
    # the installed package importing neither infra nor the emulator, the asset needing no operator code)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "runtime"), str(ROOT)])}
    # When import-linter reads the whole import graph, function-level imports included
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())", "--no-cache"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    # Then every contract is kept
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_no_module_shares_a_name_with_a_definition_of_its_package():
    """Importing a submodule sets it as an attribute of its package: a function of the same name is replaced
    (how `reconciler.notify.notifier` once silenced alerts)."""
    clashes = []
    for init in PACKAGE.rglob("__init__.py"):
        defined = {
            node.name if not isinstance(node, ast.Assign) else target.id
            for node in ast.parse(init.read_text()).body
            for target in (node.targets if isinstance(node, ast.Assign) else [node])
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Assign)) and (not isinstance(node, ast.Assign) or isinstance(target, ast.Name))
        }
        modules = {path.stem for path in init.parent.glob("*.py")} | {path.name for path in init.parent.iterdir() if (path / "__init__.py").exists()}
        clashes += [f"{init.parent.relative_to(ROOT)}: {name}" for name in sorted(defined & modules)]
    assert clashes == []


def test_no_two_packages_hold_modules_of_the_same_name():
    """`settlement.py` in the domain and the service, `dead_letters.py` in ops and the repository: one name
    for two things. Every module name of the runtime package is used once."""
    where = defaultdict(list)
    for path in PACKAGE.rglob("*.py"):
        if path.name != "__init__.py":
            where[path.stem].append(str(path.parent.relative_to(PACKAGE)))
    assert {name: places for name, places in where.items() if len(places) > 1} == {}


def test_only_the_composition_root_builds_aws_clients():
    """boto3 sessions and clients are made in reconciler/bootstrap.py; everything else receives them (the local
    stack, which runs its own server, lives outside the package: emulator/)."""
    makers = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "bootstrap.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("Session", "client") and isinstance(node.value, (ast.Name, ast.Attribute)):
                base = ast.unparse(node.value)
                if base in ("boto3", "boto3.session", "session"):
                    makers.append(f"{path.relative_to(ROOT)}:{node.lineno}: {base}.{node.attr}")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if any(name == "boto3" or name.startswith("boto3.session") for name in names):
                    makers.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports boto3")
    assert makers == []


def test_cli_commands_build_no_client_and_no_use_case():
    """A command parses, asks the operators' composition root (ops/target.py) for one use case, calls it and renders:
    it calls no `.client(...)` and constructs nothing it imports from the use cases or the adapters."""
    built = []
    for path in (PACKAGE / "cli").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith(("reconciler.ops", "reconciler.repository", "reconciler.service"))
            and node.module != "reconciler.ops.operator_error"  # the errors an operator acts on, raised, not built
            for alias in node.names
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            if isinstance(node.func, ast.Attribute) and node.func.attr == "client":
                built.append(f"{path.relative_to(ROOT)}:{node.lineno}: .client(...)")
            if isinstance(node.func, ast.Name) and node.func.id in imported and node.func.id[:1].isupper():
                built.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.func.id}(...)")
    assert built == []
