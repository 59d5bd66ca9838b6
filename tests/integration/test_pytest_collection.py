"""A bare `pytest` (the venv's script) collects exactly the tests that `python -m pytest` does.

They differ in one thing: `python -m` puts the working directory on sys.path, the script does not. A suite that
only works under `python -m` relies on that (and on what a conftest happens to insert), and a folder such as
tests/simulator can then be imported as the top-level `simulator`, hiding the real package.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Collection only, in one process, without the AWS-call recorder (its end-of-run check wants a full run). syrupy
# finds every snapshot unused when no test runs; tests/conftest.py makes that a warning, and the exit code checked
# below holds it to that.
COLLECT = ["--collect-only", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", "-p", "no:tests.least_privilege.recorder"]
NODE_ID = re.compile(r"tests/\S+\.py::")


def collect(command: list[str]) -> subprocess.Popen[str]:
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    return subprocess.Popen([*command, *COLLECT], cwd=REPO, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.mark.long
def test_a_bare_pytest_collects_the_same_tests_as_python_m_pytest(request):
    script = Path(sys.executable).with_name("pytest")
    assert script.exists(), f"no pytest script beside {sys.executable}"
    # Each collection takes a few seconds, mostly importing aws_cdk. In a whole-suite run (`make test`, which runs
    # `python -m pytest`) this session's own collection is the `python -m pytest` side; otherwise both are run.
    commands = {"pytest": [str(script)]}
    if not _whole_suite(request.config):
        commands["python -m pytest"] = [sys.executable, "-m", "pytest"]
    processes = {name: collect(command) for name, command in commands.items()}
    outputs = {name: process.communicate(timeout=600)[0] for name, process in processes.items()}
    for name, process in processes.items():
        assert process.returncode == 0, f"`{name} --collect-only` failed:\n{outputs[name][-3000:]}"
    collected = {name: [line for line in output.splitlines() if NODE_ID.match(line)] for name, output in outputs.items()}
    collected.setdefault("python -m pytest", [item.nodeid for item in request.session.items])
    assert collected["pytest"] == collected["python -m pytest"]
    # The folders named like top-level packages were collected, this file included.
    for folder in ("tests/unit/", "tests/integration/", "tests/infra/", "tests/integration/simulator/", "tests/integration/benchmarks/"):
        assert any(node.startswith(folder) for node in collected["pytest"]), f"nothing collected from {folder}"
    assert any(node.startswith("tests/integration/test_pytest_collection.py::") for node in collected["pytest"])


def _whole_suite(config) -> bool:
    """This session collected the whole suite under `python -m pytest` (the configured testpaths, nothing deselected)."""
    option = config.option
    return (
        config.args_source == config.ArgsSource.TESTPATHS
        and not option.keyword
        and not option.markexpr
        and not getattr(option, "deselect", None)
        and not getattr(option, "lf", False)
        and Path(sys.argv[0]).name != "pytest"
    )
