"""docs/schemas/video.rendered.json and video.failed.json say what settlement accepts: every detail settlement accepts,
the schema accepts; and every detail the schema accepts, settlement accepts, but for the two rules JSON Schema cannot
state (every character printable, at most 768 bytes of UTF-8 per id; at most 38 significant digits in seconds),
which each schema's descriptions name and settlement enforces with a reason."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.domain.errors import InvalidEvent
from reconciler.domain.events import FAILED, RENDERED, parse_detail
from reconciler.domain.pricing import PriceBook
from reconciler.domain.validation import MAX_ID_BYTES

SCHEMAS = Path(__file__).resolve().parents[3] / "docs" / "schemas"
# Numbers read exactly (parse_float=Decimal), as settlement reads an event: a float 1e-130 is not DynamoDB's 1E-130.
VALIDATORS = {
    kind: jsonschema.Draft202012Validator(json.loads((SCHEMAS / f"{kind}.json").read_text(), parse_float=Decimal)) for kind in (RENDERED, FAILED)
}
MODELS = sorted(PriceBook().prices)

printable = st.characters(categories=("L", "M", "N", "P", "S"), include_characters=" ")
# Ids at the edges of each rule: lengths around 256 characters of one- to four-byte characters, blanks, controls.
edges = st.builds(
    lambda char, length: char * length,
    st.sampled_from(["a", "ü", "漢", "🎬", " ", "\t", "\x7f", "\u200d"]),
    st.sampled_from([0, 1, 2, 192, 193, 255, 256, 257, 300]),
)
ids = st.one_of(
    edges,
    st.text(printable, min_size=1, max_size=256),  # mostly valid
    st.text(min_size=0, max_size=300),  # anything at all
    st.integers() | st.none() | st.booleans() | st.lists(st.text(), max_size=2),
)
numbers = st.one_of(
    st.decimals(min_value=Decimal("1E-140"), max_value=Decimal("20000"), allow_nan=False, allow_infinity=False, places=None),
    st.sampled_from([Decimal("1E-130"), Decimal("1E-131"), Decimal(0), Decimal(-1), Decimal(14400), Decimal("14400.0001"), Decimal("1." + "1" * 40)]),
    st.integers(-5, 20000).map(Decimal),
    st.text(max_size=5) | st.none() | st.booleans(),
)


@st.composite
def details(draw: Any) -> tuple[str, dict]:
    kind = draw(st.sampled_from([RENDERED, FAILED]))
    fields = {"jobId": draw(ids), "userId": draw(ids)}
    if kind == RENDERED:
        fields.update(seconds=draw(numbers), model=draw(st.sampled_from(MODELS) | ids))
    else:
        fields["reason"] = draw(st.text(max_size=20) | st.none() | st.integers())
    dropped = draw(st.sets(st.sampled_from(sorted(fields)), max_size=1))
    return kind, {name: value for name, value in fields.items() if name not in dropped}


def settles(kind: str, detail: dict) -> bool:
    try:
        event = parse_detail(kind, detail, "evt-1")
        if kind == RENDERED:
            PriceBook().price_of(event.model)  # an unknown model is refused at settlement
    except InvalidEvent:
        return False
    return True


def inside_what_json_schema_can_state(detail: dict) -> bool:
    def storable_id(value: Any) -> bool:
        return not isinstance(value, str) or (value.isprintable() and len(value.encode("utf-8", "surrogatepass")) <= MAX_ID_BYTES)

    seconds = detail.get("seconds")
    # Significant digits counted exactly (normalize() would round them to the context's 28 first).
    digits_ok = not isinstance(seconds, Decimal) or not seconds.is_finite() or len("".join(map(str, seconds.as_tuple().digits)).strip("0")) <= 38
    return all(storable_id(detail.get(name)) for name in ("jobId", "userId", "model")) and digits_ok


@settings(max_examples=1000, deadline=None)
@given(details())
def test_settlement_accepts_what_the_schema_accepts_and_nothing_more(case):
    kind, detail = case
    schema_accepts = VALIDATORS[kind].is_valid(detail)
    if settles(kind, detail):
        assert schema_accepts, f"settled but the schema refuses: {detail!r}"
    elif schema_accepts:
        # a rule JSON Schema cannot state, or (a render) a model the schema cannot know: the stage's price book
        unknown_model = kind == RENDERED and detail.get("model") not in MODELS
        assert unknown_model or not inside_what_json_schema_can_state(detail), f"schema accepts, settlement refuses: {detail!r}"


@pytest.mark.parametrize("kind", [RENDERED, FAILED])
def test_each_schemas_examples_settle(kind):
    for example in VALIDATORS[kind].schema["examples"]:
        VALIDATORS[kind].validate(example)
        assert settles(kind, {name: Decimal(value) if isinstance(value, (int, Decimal)) else value for name, value in example.items()})


VALID = {RENDERED: {"jobId": "job-1", "userId": "user-1", "seconds": Decimal(3), "model": "test"}, FAILED: {"jobId": "job-1", "userId": "user-1"}}


@pytest.mark.parametrize("kind", [RENDERED, FAILED])
@pytest.mark.parametrize("field", ["jobId", "userId"])
@pytest.mark.parametrize("char", ["a", "ü", "漢", "🎬", " ", "\t", "\u200d"])
@pytest.mark.parametrize("length", [0, 1, 192, 193, 255, 256, 257])
def test_at_each_edge_of_an_id_the_schema_and_settlement_agree_but_where_the_schema_cannot_say(kind, field, char, length):
    detail = {**VALID[kind], field: char * length}
    agree = VALIDATORS[kind].is_valid(detail) == settles(kind, detail)
    assert agree or (VALIDATORS[kind].is_valid(detail) and not inside_what_json_schema_can_state(detail))


@pytest.mark.parametrize(
    "seconds",
    [Decimal(0), Decimal("1E-131"), Decimal("1E-130"), Decimal(1), Decimal(14400), Decimal("14400.5"), Decimal(-1), Decimal("1." + "1" * 37)],
)
def test_at_each_edge_of_seconds_the_schema_and_settlement_agree(seconds):
    detail = {**VALID[RENDERED], "seconds": seconds}
    assert VALIDATORS[RENDERED].is_valid(detail) == settles(RENDERED, detail)
