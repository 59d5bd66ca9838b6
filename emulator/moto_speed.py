"""moto answers DynamoDB faster, byte for byte as before: a speed change only, no behaviour of AWS's is involved.

moto 5.2.5 writes every answer through a generic walker of botocore's model that visits all ten members of every
AttributeValue and looks each up through five alias providers. On the simulator's seeds that walk was about a
third of the CPU (cProfile of seeds 300-319: 14 s of the main thread's 39 s outside thread joins). The
AttributeValues moto hands the walker are already in DynamoDB's JSON wire form (`DynamoType.to_json`: a
one-key dict of S, N, BOOL, NULL, SS, NS, M or L), so they are copied as they are; anything else (binary, which
moto encodes on the way, or a moto object) takes moto's own path. tests/integration/emulator/test_moto_speed.py
checks both paths give the same bytes for every kind of value.
"""

from __future__ import annotations

from typing import Any

ATTRIBUTE_VALUE_SHAPE = "AttributeValue"
_SCALARS: dict[str, type] = {"S": str, "N": str, "BOOL": bool, "NULL": bool}
_STRING_SETS = frozenset({"SS", "NS"})
_moto_walk: Any = None  # moto's own structure walker, kept for the test that compares both paths


def wire_form(value: Any) -> Any:
    """A copy of `value` if it is an AttributeValue in plain wire form, else None (moto's walker then decides)."""
    if type(value) is not dict or len(value) != 1:
        return None
    ((kind, inner),) = value.items()
    scalar = _SCALARS.get(kind)
    if scalar is not None:
        return {kind: inner} if type(inner) is scalar else None
    if kind in _STRING_SETS:
        return {kind: list(inner)} if type(inner) is list and all(type(each) is str for each in inner) else None
    if kind == "M" and type(inner) is dict:
        members = {name: wire_form(member) for name, member in inner.items()}
        return None if any(member is None for member in members.values()) else {"M": members}
    if kind == "L" and type(inner) is list:
        elements = [wire_form(element) for element in inner]
        return None if any(element is None for element in elements) else {"L": elements}
    return None


def answer_attribute_values_as_stored() -> None:
    """Installed once per process, for in-process moto (emulator.fidelity.install) and the local stack's server."""
    global _moto_walk
    if _moto_walk is not None:
        return
    from moto.core.serialize import JSONSerializer

    walk = _moto_walk = JSONSerializer._serialize_type_structure

    def _serialize_type_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == ATTRIBUTE_VALUE_SHAPE:
            plain = wire_form(value)
            if plain is not None:
                serialized[self.get_serialized_name(shape, key)] = plain
                return
        walk(self, serialized, value, shape, key)

    JSONSerializer._serialize_type_structure = _serialize_type_structure


def moto_walk() -> Any:
    """moto's own walker, once installed (None before)."""
    return _moto_walk
