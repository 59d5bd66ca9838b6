"""The function's code asset: the runtime package, without the operator tooling that ships beside it."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from infra import runtime_asset
from infra.app import build_app
from infra.runtime_asset import lambda_python


def test_the_asset_holds_the_handlers_and_not_the_cli_ops_or_local_stack(asset):
    # Given the asset folder that carries the Lambda entry module in the dev app's cloud assembly (the fixture below)
    files = {path.relative_to(asset).as_posix() for path in asset.rglob("*") if path.is_file()}
    # Then the runtime layers and the reviewed prices are there, and nothing that only operators or tests use
    for needed in (
        "reconciler/domain/prices.json",
        "reconciler/repository/dynamodb.py",
        "reconciler/service/event_settlement.py",
        "reconciler/notify/notifier.py",
    ):
        assert needed in files, f"{needed} is missing from the Lambda asset"
    unwanted = sorted(
        f
        for f in files
        if f.startswith(("reconciler/cli/", "reconciler/ops/"))
        or f == "reconciler/__main__.py"
        or (f.endswith(".pyc") and not f.endswith(".cpython-312.pyc"))
        or ".egg-info" in f
    )
    assert unwanted == [], f"the Lambda asset carries files it does not need: {unwanted[:5]}"


# CPython 3.12's bytecode magic number (3531, little-endian, then \r\n): the same for every 3.12 release.
MAGIC_3_12 = (3531).to_bytes(2, "little") + b"\r\n"
HASH_BASED = 0b01  # PEP 552 flags: hash-based, source not checked


@pytest.fixture(scope="module")
def asset(tmp_path_factory) -> Path:
    """The reconciler function's asset folder in a synthesized dev cloud assembly."""
    out = tmp_path_factory.mktemp("assembly")
    build_app("dev", outdir=str(out)).synth()
    [folder] = [f for f in out.glob("asset.*") if (f / "reconciler" / "handlers" / "entry.py").exists()]
    return folder


@pytest.mark.skipif(lambda_python() is None, reason="no Python 3.12 here: the asset ships sources only (next test)")
def test_every_module_ships_unchecked_hash_bytecode_for_python_3_12(asset):
    sources = sorted(asset.rglob("*.py"))
    assert len(sources) > 30
    hashes = _source_hashes(sources)
    for source in sources:
        compiled = source.parent / "__pycache__" / f"{source.stem}.cpython-312.pyc"
        header = compiled.read_bytes()[:16]
        assert header[:4] == MAGIC_3_12, compiled
        assert int.from_bytes(header[4:8], "little") == HASH_BASED, f"{compiled} is not unchecked-hash bytecode"
        assert header[8:16] == hashes[str(source)], f"{compiled} was compiled from another source"


def test_without_python_3_12_the_asset_ships_its_sources_alone(tmp_path):
    """Built where no Python 3.12 is found (lambda_python() is None): the same files, no bytecode."""
    source = Path(runtime_asset.__file__).resolve().parents[1] / "runtime"
    files = list(runtime_asset.included(source))
    target = tmp_path / "asset"
    runtime_asset._build(source, files, target, python=None)
    assert sorted(p.relative_to(target) for p in target.rglob("*") if p.is_file()) == sorted(files)
    assert not list(target.rglob("*.pyc"))


@pytest.mark.skipif(lambda_python() is None, reason="no Python 3.12 here to run the asset with")
def test_python_3_12_loads_our_modules_from_the_bytecode_in_a_read_only_task_root(asset, tmp_path):
    task = tmp_path / "task"
    shutil.copytree(asset, task)
    for path in [task, *task.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)  # /var/task is read-only
    # The domain and the contract import only the standard library: they load here without any package installed.
    modules = [
        "reconciler.contract",
        "reconciler.json_text",
        *(f"reconciler.domain.{p.stem}" for p in (task / "reconciler" / "domain").glob("[a-z]*.py")),
    ]
    code = "import importlib, sys; sys.path[:0] = [sys.argv[1]]; [importlib.import_module(m) for m in sys.argv[2:]]"
    run = subprocess.run(
        [str(lambda_python()), "-v", "-S", "-c", code, str(task), *modules], env={"PATH": os.environ["PATH"]}, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    loaded = {line.split("'")[1] for line in run.stderr.splitlines() if line.startswith("# code object from")}
    for module in modules:
        *package, name = module.split(".")
        assert str(task.joinpath(*package, "__pycache__", f"{name}.cpython-312.pyc")) in loaded, f"{module} was compiled from source"


def _source_hashes(sources: list[Path]) -> dict[str, bytes]:
    """importlib.util.source_hash of each file, computed by Python 3.12 (the hash is keyed by the interpreter's magic)."""
    code = "import importlib.util, json, sys; print(json.dumps({p: importlib.util.source_hash(open(p, 'rb').read()).hex() for p in sys.argv[1:]}))"
    answer = subprocess.run([str(lambda_python()), "-c", code, *map(str, sources)], capture_output=True, text=True, check=True)
    return {path: bytes.fromhex(value) for path, value in json.loads(answer.stdout).items()}
