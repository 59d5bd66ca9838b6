"""Credits in, pure: what an event must hold, the entry it books, and the schemas in docs/schemas/ agreeing."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.contract import user_ledger_key
from reconciler.domain.credits_in import (
    CREDITS_IN_DETAIL_TYPES,
    GRANTED,
    PURCHASED,
    REVOKED,
    credits_in_ledger_id,
    decide_credits_in,
    parse_credits_in,
    same_application,
)
from reconciler.domain.errors import InvalidEvent
from reconciler.domain.validation import MAX_ID_BYTES, MAX_ID_LENGTH, PARTITION_KEY_MAX_BYTES, SORT_KEY_MAX_BYTES

SCHEMAS = Path(__file__).resolve().parents[3] / "docs" / "schemas"
NOW = "2026-11-28T12:00:00.000Z"


def envelope(detail_type: str, **detail) -> dict:
    return {"id": "evt-1", "source": "credits.billing", "detail-type": detail_type, "detail": detail}


def test_a_purchase_books_a_paid_credit_with_its_money_exactly():
    event = parse_credits_in(envelope(PURCHASED, userId="u", credits=Decimal(500), reference="pi_1", amountPaid=19.99, currency="USD"))
    application = decide_credits_in(event, NOW)
    entry = application.entry
    assert (entry.ledger_id, entry.type, entry.amount, entry.category) == ("purchase:4:pi_1", "credit", 500, "paid")
    assert entry.amount_paid == Decimal("19.99") and str(entry.amount_paid) == "19.99"  # the float's shortest text, never binary noise
    assert not application.overdraft and application.balance_delta == 500


def test_a_revocation_is_an_overdraft_only_when_the_returned_balance_does_not_cover_it():
    event = parse_credits_in(envelope(REVOKED, userId="u", credits=100, reference="re_1", category="refund"))
    assert not decide_credits_in(event, NOW).overdraft  # decided as covered first: the guard checks it
    assert not decide_credits_in(event, NOW, 100, balance_known=True).overdraft
    short = decide_credits_in(event, NOW, 99, balance_known=True)
    assert short.overdraft and short.balance_after == -1 and short.balance_delta == -100
    assert decide_credits_in(event, NOW, None, balance_known=True).overdraft  # no balance at all


def test_each_kind_has_its_own_id_space_and_the_same_content_is_the_same_application():
    ids = {credits_in_ledger_id(kind, "pay-1") for kind in CREDITS_IN_DETAIL_TYPES}
    assert ids == {"purchase:5:pay-1", "grant:5:pay-1", "revocation:5:pay-1"}
    event = parse_credits_in(envelope(GRANTED, userId="u", credits=5, reference="t-1", category="goodwill"))
    entry = decide_credits_in(event, NOW).entry
    assert same_application(entry, event)
    other = parse_credits_in(envelope(GRANTED, userId="u", credits=6, reference="t-1", category="goodwill"))
    assert not same_application(entry, other)


def test_a_reference_reused_for_the_same_credits_at_another_price_is_another_application():
    # docs/events.md: the same reference with other content is refused, the money paid included (finance reads it)
    paid = parse_credits_in(envelope(PURCHASED, userId="u", credits=500, reference="pi_1", amountPaid="19.90", currency="USD"))
    entry = decide_credits_in(paid, NOW).entry
    assert same_application(
        entry, parse_credits_in(envelope(PURCHASED, userId="u", credits=500, reference="pi_1", amountPaid="19.9", currency="USD"))
    )
    for other in ({"amountPaid": "24.90", "currency": "USD"}, {"amountPaid": "19.90", "currency": "EUR"}):
        assert not same_application(entry, parse_credits_in(envelope(PURCHASED, userId="u", credits=500, reference="pi_1", **other))), other


@pytest.mark.parametrize(
    ("detail_type", "detail", "field"),
    [
        (PURCHASED, {"userId": "u", "credits": 1, "reference": "r", "amountPaid": "1.00", "currency": "USD", "category": "promotional"}, "category"),
        (GRANTED, {"userId": "u", "credits": 1, "reference": "r"}, "category"),
        (GRANTED, {"userId": "u", "credits": 1, "reference": "r", "category": "paid"}, "category"),
        (REVOKED, {"userId": "u", "credits": 1, "reference": "r", "category": "goodwill"}, "category"),
        (REVOKED, {"userId": "u", "credits": 1, "reference": "r", "category": "refund", "amountPaid": "1.00"}, "currency"),
        (PURCHASED, {"userId": "u", "credits": True, "reference": "r", "amountPaid": "1", "currency": "USD"}, "credits"),
        (PURCHASED, {"userId": "u", "credits": 10**13, "reference": "r", "amountPaid": "1", "currency": "USD"}, "credits"),
        (PURCHASED, {"userId": "u", "credits": 1, "reference": "r", "amountPaid": "-1", "currency": "USD"}, "amountPaid"),
        (PURCHASED, {"userId": "u", "credits": 1, "reference": "r", "amountPaid": "1.0000001", "currency": "USD"}, "amountPaid"),
        (PURCHASED, {"userId": "u", "credits": 1, "reference": "r", "amountPaid": float("nan"), "currency": "USD"}, "amountPaid"),
        (PURCHASED, {"userId": "u", "credits": 1, "reference": "\x00", "amountPaid": "1", "currency": "USD"}, "reference"),
        (PURCHASED, {"userId": "u" * 257, "credits": 1, "reference": "r", "amountPaid": "1", "currency": "USD"}, "userId"),
    ],
)
def test_bad_details_are_refused_by_name(detail_type, detail, field):
    with pytest.raises(InvalidEvent) as refused:
        parse_credits_in(envelope(detail_type, **detail))
    assert refused.value.field == field


def test_the_envelope_must_be_billings():
    with pytest.raises(InvalidEvent) as refused:
        parse_credits_in({**envelope(PURCHASED), "source": "video.generation"})
    assert refused.value.field == "source"
    with pytest.raises(InvalidEvent) as refused:
        parse_credits_in({**envelope(PURCHASED), "detail-type": "credits.low"})
    assert refused.value.field == "detail-type"


@pytest.mark.parametrize("char", ["a", "ü", "漢", "🎬"])
def test_every_key_built_from_the_widest_reference_fits_dynamodb(char):
    reference = char * min(MAX_ID_LENGTH, MAX_ID_BYTES // len(char.encode()))
    for kind in CREDITS_IN_DETAIL_TYPES:
        ledger_id = credits_in_ledger_id(kind, reference)
        assert len(ledger_id.encode()) <= PARTITION_KEY_MAX_BYTES
        assert len(user_ledger_key(NOW, ledger_id).encode()) <= SORT_KEY_MAX_BYTES


VALIDATORS = {
    kind: jsonschema.Draft202012Validator(json.loads((SCHEMAS / f"{kind}.json").read_text(), parse_float=Decimal)) for kind in CREDITS_IN_DETAIL_TYPES
}

details = st.fixed_dictionaries(
    {
        "userId": st.sampled_from(["u", "", " ", "ü" * 256, 5]),
        "credits": st.sampled_from([1, 0, -1, 10**12, 10**12 + 1, Decimal("2.5"), "5", True]),
        "reference": st.sampled_from(["pi_1", "", "x" * 257]),
    },
    optional={
        "category": st.sampled_from(["paid", "promotional", "goodwill", "refund", "chargeback", "other"]),
        "amountPaid": st.sampled_from(["19.99", "0", "1.1234567", "-1", "1e3", Decimal("4.5"), Decimal(-2), True]),
        "currency": st.sampled_from(["USD", "usd", "EURO"]),
    },
)


@settings(max_examples=500, deadline=None)
@given(kind=st.sampled_from(CREDITS_IN_DETAIL_TYPES), detail=details)
def test_the_schema_accepts_exactly_what_the_reconciler_applies(kind, detail):
    try:
        parse_credits_in(envelope(kind, **detail))
        applies = True
    except InvalidEvent:
        applies = False
    # amountPaid without currency (or the reverse) on a grant or a revocation: the schema cannot state the pairing.
    paired = ("amountPaid" in detail) == ("currency" in detail)
    if paired:
        assert VALIDATORS[kind].is_valid(detail) == applies, detail
    else:
        assert not applies


@pytest.mark.parametrize("kind", CREDITS_IN_DETAIL_TYPES)
def test_each_schemas_example_is_applied(kind):
    schema = json.loads((SCHEMAS / f"{kind}.json").read_text())
    for example in schema["examples"]:
        assert VALIDATORS[kind].is_valid(example)
        parse_credits_in(envelope(kind, **example))
