"""Lambda's event filtering of DynamoDB stream records, modelled, and the balance-events function's filter.

`matches(filters, record)` is what Lambda decides for one stream record (pure: the infrastructure's filter, the
local stack's stream poller and the simulator's stream delivery all apply this one function). The rules, from the
AWS Lambda Developer Guide (read 2026-12-07 from stored copies of "Control which events Lambda sends to your
function", section "Filter rule syntax", and "Using event filtering with a DynamoDB event source"), and the
CreateEventSourceMapping API reference (Filter.Pattern):

- A record passes if it satisfies at least one filter (filters are ORed); at most 5 filters by default, each
  pattern at most 4,096 characters; for DynamoDB only the `dynamodb` key may be filtered on.
- Within a pattern, keys are ANDed and the rules listed for one field are ORed; `$or` ORs whole sub-patterns.
- Strings match exactly, character by character; numbers match by their string representation (300, 300.0 and
  3.0e2 differ). A DynamoDB number (`{"N": "25"}`) is a JSON *string* in the record, so numeric operators never
  match it ("DynamoDB event filtering doesn't support the use of numeric operators"): only string rules do.
- `exists` works on leaf nodes only: a pattern that tests an intermediate node (an object) never matches.
  `exists: false` matches a field that is absent, also when a parent is (our reading of "does not exist"; it only
  decides whether a REMOVE record, which has no NewImage, is delivered).
- An array in the record matches if any of its elements does (EventBridge's rule, which Lambda follows).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.domain.attributes import LOW_OVERRIDE_ATTRIBUTE, OVERDRAFT_OVERRIDE_ATTRIBUTE, REMAINING_ATTRIBUTE, USER_ID_ATTRIBUTE
from reconciler.domain.crossings import Thresholds

MAX_FILTERS = 5
MAX_PATTERN_CHARS = 4096
FILTERABLE_KEYS = frozenset({"dynamodb"})

_MISSING = object()


class UnsupportedFilter(ValueError):
    """A filter Lambda would refuse, or one using an operator this model does not know."""


def matches(filters: Sequence[Mapping[str, Any]], record: Mapping[str, Any]) -> bool:
    """Whether Lambda hands `record` to the function under these filters (no filters: every record)."""
    for pattern in filters:
        check_filter(pattern)
    return not filters or any(_object(pattern, record) for pattern in filters)


def check_filter(pattern: Mapping[str, Any]) -> None:
    if not set(pattern) <= FILTERABLE_KEYS:
        raise UnsupportedFilter(f"a DynamoDB event source mapping filters on {sorted(FILTERABLE_KEYS)} only, not {sorted(set(pattern))}")
    if len(json.dumps(pattern)) > MAX_PATTERN_CHARS:
        raise UnsupportedFilter(f"a filter pattern holds at most {MAX_PATTERN_CHARS} characters")


def _object(pattern: Mapping[str, Any], value: Any) -> bool:
    for key, rule in pattern.items():
        if key == "$or":
            if not any(_object(alternative, value) for alternative in rule):
                return False
            continue
        child = _child(value, key)
        if isinstance(rule, Mapping):
            if not _object(rule, child):
                return False
        elif not _leaf(rule, child):
            return False
    return True


def _child(value: Any, key: str) -> Any:
    """The field `key` of an object; of an array, that field of each element (arrays are flattened)."""
    if isinstance(value, Mapping):
        return value.get(key, _MISSING)
    if isinstance(value, list):
        found: list[Any] = []
        for element in value:
            child = _child(element, key)
            if child is not _MISSING:
                found.extend(child if isinstance(child, list) else [child])
        return found or _MISSING
    return _MISSING


def _leaf(rules: Sequence[Any], value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    # An intermediate node (an object) matches no rule, `exists` included.
    return any(_rule(rule, one) for rule in rules for one in values if not isinstance(one, Mapping))


def _rule(rule: Any, value: Any) -> bool:
    if not isinstance(rule, Mapping):
        return value is not _MISSING and _same(rule, value)
    ((operator, operand),) = rule.items()
    if operator == "exists":
        return (value is not _MISSING) is bool(operand)
    if value is _MISSING:
        return False
    if operator == "prefix":
        return isinstance(value, str) and value.startswith(operand)
    if operator == "suffix":
        return isinstance(value, str) and value.endswith(operand)
    if operator == "equals-ignore-case":
        return isinstance(value, str) and value.lower() == operand.lower()
    if operator == "anything-but":
        return not any(_same(excluded, value) for excluded in (operand if isinstance(operand, list) else [operand]))
    if operator == "numeric":
        return _numeric(operand, value)
    raise UnsupportedFilter(f"unknown filter operator {operator!r}")


def _same(literal: Any, value: Any) -> bool:
    """Exact match of JSON values: a string equals only the same string, a number only the same number text."""
    if isinstance(literal, str) or isinstance(value, str) or literal is None or value is None or isinstance(literal, bool):
        return type(literal) is type(value) and literal == value
    return json.dumps(literal) == json.dumps(value)


def _numeric(comparisons: Sequence[Any], value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False  # a DynamoDB N value is a string: numeric rules never match it
    checks = {"<": value.__lt__, "<=": value.__le__, "=": value.__eq__, ">=": value.__ge__, ">": value.__gt__}
    pairs = zip(comparisons[::2], comparisons[1::2], strict=True)
    return all(checks[operator](operand) for operator, operand in pairs)


# --- the balance-events function's filter ----------------------------------------------------------------------


def below(threshold: int) -> list[Any]:
    """String rules for a DynamoDB number below `threshold` (>= 1), as DynamoDB writes numbers (no leading or
    trailing zeros, no exponent): negative, a whole number 0 .. threshold - 1, or a fraction of one of those."""
    return [{"prefix": "-"}, *(str(n) for n in range(threshold)), *({"prefix": f"{n}."} for n in range(threshold))]


def balance_event_filters(defaults: Thresholds) -> list[dict[str, Any]] | None:
    """Filters that hand the function every record on which it can publish an event (docs/events.md, "Which
    records reach the function"), or None if they do not fit Lambda's limits (then every record goes through).

    A static filter cannot be exact: it cannot compare OldImage with NewImage, nor `remaining` with the user's own
    override on the item, and it has no numeric operators for DynamoDB. So it keeps every record that has a side
    below the stage's low threshold (every crossing of any default threshold has one: they nest, low >= 1 > 0 >=
    the overdraft alert level), every record without a number `remaining` on a side (a missing one counts as 0,
    a text one is damage it reports; a REMOVE has no NewImage), and every record of an item that carries an override."""
    number = {"N": below(defaults.low)}
    no_number = {"N": [{"exists": False}]}
    present = [{"exists": True}]
    overrides = [{name: {kind: present}} for name in (LOW_OVERRIDE_ATTRIBUTE, OVERDRAFT_OVERRIDE_ATTRIBUTE) for kind in ("N", "S")]
    filters: list[dict[str, Any]] = [
        {"dynamodb": {"NewImage": {REMAINING_ATTRIBUTE: number}}},  # ends below the low threshold (an INSERT too)
        {"dynamodb": {"OldImage": {REMAINING_ATTRIBUTE: number}}},  # starts below it: may restore
        {"dynamodb": {"NewImage": {REMAINING_ATTRIBUTE: no_number}}},
        {"dynamodb": {"OldImage": {USER_ID_ATTRIBUTE: {"S": present}, REMAINING_ATTRIBUTE: no_number}}},
        {"dynamodb": {"NewImage": {"$or": overrides}}},  # the item's own thresholds judge the change
    ]
    try:
        for pattern in filters:
            check_filter(pattern)
    except UnsupportedFilter:
        return None
    return filters if len(filters) <= MAX_FILTERS else None
