"""Every attribute and key name of the tables is defined once (domain/attributes.py, re-exported by the contract):
outside the adapters (repository/) no module of the function, the operators or the infrastructure reads an item
by a literal name, nor keys a table or an index by one."""

from __future__ import annotations

import ast
from pathlib import Path

from reconciler.domain import attributes

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "runtime" / "reconciler"
# Where the names may be spelled: their one definition, and the adapters, whose job is to spell them.
ALLOWED = (PACKAGE / "domain" / "attributes.py", PACKAGE / "repository")

EVERY_NAME = {value for key, value in vars(attributes).items() if key.endswith(("_ATTRIBUTE", "_KEY")) and isinstance(value, str)}
# Names that are only ever attribute names. userId, jobId, timestamp and updatedAt are also fields of events and of the
# CLI's output, and a credits-in entry's category, amountPaid, currency and paymentReference are its event's fields
# under the same names (expiresAt too, also a hold request's field): they are checked where a table or index is keyed,
# below.
ITEM_ONLY_NAMES = EVERY_NAME - {
    attributes.CREDIT_EXPIRES_AT_ATTRIBUTE,
    attributes.CATEGORY_ATTRIBUTE,
    attributes.AMOUNT_PAID_ATTRIBUTE,
    attributes.CURRENCY_ATTRIBUTE,
    attributes.PAYMENT_REFERENCE_ATTRIBUTE,
    attributes.USER_ID_ATTRIBUTE,
    attributes.JOB_ID_ATTRIBUTE,
    attributes.LEDGER_ID_ATTRIBUTE,
    attributes.TIMESTAMP_ATTRIBUTE,
    attributes.UPDATED_AT_ATTRIBUTE,
    attributes.CREATED_AT_ATTRIBUTE,
}
KEYING_ARGUMENTS = {"name", "partition_key", "sort_key"}


def _text(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def literal_names(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, name) of each item read by a literal attribute name (`item["held"]`, `.get("held")`, `"held" in item`)
    and of each table or index keyed by one (`partition_key="userId"`)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _text(node.slice) in ITEM_ONLY_NAMES:
            found.append((node.lineno, _text(node.slice)))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "pop", "setdefault") and node.args:
            if _text(node.args[0]) in ITEM_ONLY_NAMES:
                found.append((node.lineno, _text(node.args[0])))
        elif isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops) and _text(node.left) in ITEM_ONLY_NAMES:
            found.append((node.lineno, _text(node.left)))
        if isinstance(node, ast.Call):
            found += [(node.lineno, _text(kw.value)) for kw in node.keywords if kw.arg in KEYING_ARGUMENTS and _text(kw.value) in EVERY_NAME]
    return [(line, name) for line, name in found if name is not None]


def test_no_module_outside_the_adapters_spells_an_attribute_name():
    spelled = []
    for path in sorted([*PACKAGE.rglob("*.py"), *(ROOT / "infra").rglob("*.py")]):
        if any(path == allowed or allowed in path.parents for allowed in ALLOWED):
            continue
        spelled += [f"{path.relative_to(ROOT)}:{line}: {name!r}" for line, name in literal_names(ast.parse(path.read_text()))]
    assert spelled == []


def test_the_check_finds_what_it_looks_for():
    code = 'item["held"]; image.get("remaining"); "version" in item; Attribute(name="userId"); Table(partition_key="jobId")'
    assert [name for _, name in literal_names(ast.parse(code))] == ["held", "remaining", "version", "userId", "jobId"]


def test_every_name_is_defined_once():
    values = [value for key, value in vars(attributes).items() if key.endswith(("_ATTRIBUTE", "_KEY"))]
    assert len(values) == len(set(values))
