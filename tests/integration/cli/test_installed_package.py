"""The installed `reconciler` package stands alone: from `/`, with neither infra nor the emulator importable (they
live in the checkout only), every one of its modules imports and loads nothing of theirs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

# Module files are listed, not walked with pkgutil (which imports every package it walks into).
PROBE = """
import importlib, importlib.util, json, pathlib, sys
import reconciler
root = pathlib.Path(reconciler.__file__).parent
names = sorted(
    ".".join(("reconciler", *path.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
    for path in root.rglob("*.py")
)
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except Exception as error:
        failed[name] = f"{type(error).__name__}: {error}"
outside = sorted({m.split(".")[0] for m in sys.modules} & {"infra", "emulator", "simulator", "benchmarks", "moto", "aws_cdk", "werkzeug"})
print(json.dumps({
    "modules": len(names),
    "failed": failed,
    "loaded": outside,
    "findable": [n for n in ("infra", "emulator", "simulator") if importlib.util.find_spec(n) is not None],
}))
"""


def test_every_module_of_the_installed_package_imports_from_the_root_directory_alone():
    # Given the venv's Python in `/`, without PYTHONPATH: the checkout's top-level packages are out of reach
    environment = {**os.environ, "PYTHONPATH": ""}
    # When it imports every module of the installed package
    done = subprocess.run([sys.executable, "-c", PROBE], cwd="/", capture_output=True, text=True, timeout=300, env=environment)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # Then neither infra nor the emulator could be found, every module imported, and none loaded what only they need
    assert report["findable"] == []
    assert report["modules"] > 50
    assert report["failed"] == {}
    assert report["loaded"] == []


def test_the_installed_cli_runs_from_the_root_directory_against_the_local_stack(env, console):
    # Given a local stack saved where --local finds it (the emulator's state file); When the installed console
    # script, run from `/`, reads and writes through it
    adjusted = console("--local", "--json", "adjust", "u1", "7", "--reason", "opening", "--reference", "root-1", "--create-user")
    assert adjusted.exit_code == 0, adjusted.stderr
    balance = console("--local", "--json", "balance", "u1")
    # Then it works as from the checkout, and the emulator's command group is not part of it
    assert balance.exit_code == 0, balance.stderr
    assert json.loads(balance.stdout)["remaining"] == 7
    assert "local" not in console("--help").stdout.split("Commands")[-1].split()
