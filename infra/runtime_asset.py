"""The functions' code asset as shipped: the runtime package without the operator tooling, with its modules compiled
for Lambda's Python (3.12) as unchecked-hash bytecode.

Why: /var/task is read-only, so without bytecode in the asset Python compiles every module of ours at every cold
start and cannot keep the result (docs/benchmarks.md, section 3). An unchecked-hash .pyc (PEP 552) is loaded without
reading, stat-ing or hashing its source, so the asset's file times do not matter. The bytecode must come from a 3.12
interpreter: Python ignores a .pyc of another version's magic number. Where no 3.12 is found (a machine with only
3.11), the asset ships its sources alone, exactly as before, and Lambda compiles them at cold start.

The staged copy lives in build/lambda-asset/<digest of the sources and the compiler>; the CDK copies it into the
cloud assembly and hashes it like any asset folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

LAMBDA_PYTHON = (3, 12)
LAMBDA_TASK_ROOT = "/var/task"  # where Lambda unpacks the asset
CACHE = Path(__file__).resolve().parents[1] / "build" / "lambda-asset"
# The operators' CLI and its use cases are installed for operators, not shipped with the function; nor is any bytecode of ours
# compiled by another interpreter, or packaging metadata.
EXCLUDED_DIRECTORIES = {"reconciler/cli", "reconciler/ops"}
EXCLUDED_FILES = {"reconciler/__main__.py"}  # `python -m reconciler` is the CLI


def included(root: Path) -> Iterable[Path]:
    """The runtime's files that go into the asset, relative to `root`, sorted."""
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        parts = relative.as_posix()
        if not path.is_file() or parts in EXCLUDED_FILES or path.suffix == ".pyc":
            continue
        if "__pycache__" in relative.parts or any(part.endswith(".egg-info") for part in relative.parts):
            continue
        if any(parts.startswith(directory + "/") for directory in EXCLUDED_DIRECTORIES):
            continue
        found.append(relative)
    return sorted(found)


@lru_cache(maxsize=1)
def lambda_python() -> str | None:
    """A Python 3.12 interpreter to compile with: LAMBDA_PYTHON_EXECUTABLE, this one, python3.12 on PATH, or a pyenv
    3.12; None if there is none."""
    candidates = [os.environ.get("LAMBDA_PYTHON_EXECUTABLE"), sys.executable, shutil.which("python3.12")]
    candidates += sorted(str(p) for p in (Path.home() / ".pyenv" / "versions").glob("3.12.*/bin/python3.12"))
    for candidate in filter(None, candidates):
        try:
            answer = subprocess.run([candidate, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if answer.returncode == 0 and tuple(map(int, answer.stdout.split())) == LAMBDA_PYTHON:
            return candidate
    return None


def staged_runtime(source: Path) -> Path:
    """The asset folder for `source` (the repository's runtime/), built once per content and compiler."""
    python = lambda_python()
    files = list(included(source))
    digest = hashlib.sha256(f"{LAMBDA_PYTHON}:{python is not None}".encode())
    for relative in files:
        digest.update(relative.as_posix().encode() + b"\0" + (source / relative).read_bytes() + b"\0")
    target = CACHE / f"runtime-{digest.hexdigest()[:20]}"
    if not target.exists():  # a folder appears there only whole (built aside, then renamed)
        _build(source, files, target, python)
    return target


def _build(source: Path, files: list[Path], target: Path, python: str | None) -> None:
    scratch = CACHE / f".building-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    for relative in files:
        (scratch / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / relative, scratch / relative)
    if python is not None:
        # The same bytes for the same sources, so the asset's hash moves only when they do: the file names compiled in
        # are Lambda's (/var/task/...), not this build's, and with a fixed hash seed set and frozenset constants are
        # marshalled in one order.
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        command = [
            python,
            "-m",
            "compileall",
            "-q",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            str(scratch),
            "-p",
            LAMBDA_TASK_ROOT,
            str(scratch),
        ]
        subprocess.run(command, env=env, check=True)
    try:
        scratch.rename(target)
    except OSError:  # another process built the same content first
        shutil.rmtree(scratch, ignore_errors=True)
