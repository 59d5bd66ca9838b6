"""Functions read in one screen: none of the shipped code, the infrastructure, the emulator, the simulator, the scripts
or the benchmarks is longer than about 70 lines, except the table-like ones listed here, each with what it tabulates."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("runtime", "infra", "emulator", "simulator", "scripts", "benchmarks")
MAX_LINES = 75  # about 70

TABLE_LIKE = {
    "infra/constructs/alarms.py:__init__": "the reconciler's alarms, one declaration each, in ALARM_CONCERNS' order",
    "infra/constructs/dashboard.py:__init__": "the dashboard's widgets, row by row",
    "infra/constructs/operator_access.py:__init__": "the operator policies' statements, one each",
    "benchmarks/run.py:render": "docs/benchmarks.md, the generated page's tables and their captions in order",
    "benchmarks/capacity.py:render_capacity": "docs/capacity.md, the generated page's tables and their captions in order",
}


def long_functions() -> dict[str, int]:
    found = {}
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    if length > MAX_LINES:
                        found[f"{path.relative_to(ROOT)}:{node.name}"] = length
    return found


def test_no_function_is_longer_than_a_screen_unless_it_is_a_table():
    assert {name: length for name, length in long_functions().items() if name not in TABLE_LIKE} == {}


def test_every_listed_exception_is_still_long():
    assert sorted(set(TABLE_LIKE) - set(long_functions())) == []
