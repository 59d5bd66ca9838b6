"""Numbers are validated to DynamoDB's documented range and precision, not to boto3's wider decimal context."""

from __future__ import annotations

from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeSerializer

from reconciler.domain.errors import InvalidEvent
from reconciler.domain.validation import storable_decimal

# AWS DynamoDB developer guide, "Supported data types and naming rules": 38 digits, 1E-130 to 9.99...E+125.
STORABLE_EDGES = [
    Decimal("1E-130"),
    Decimal("-1E-130"),
    Decimal("9.9999999999999999999999999999999999999E+125"),
    Decimal("-9.9999999999999999999999999999999999999E+125"),
    Decimal("1." + "1" * 37),
    Decimal(0),
]
# Each of these boto3's serializer accepts, and DynamoDB refuses.
REFUSED_BY_DYNAMODB_ONLY = [Decimal("1E-131"), Decimal("1E-165"), Decimal("-1E-140"), Decimal("1E+126"), Decimal("-1E+126")]


@pytest.mark.parametrize("value", STORABLE_EDGES, ids=str)
def test_every_documented_edge_is_storable(value):
    assert storable_decimal("seconds", value) == value


@pytest.mark.parametrize("value", REFUSED_BY_DYNAMODB_ONLY, ids=str)
def test_what_boto3_lets_through_and_dynamodb_refuses_is_refused_by_name(value):
    TypeSerializer().serialize(value)  # boto3 alone would send it
    with pytest.raises(InvalidEvent) as refused:
        storable_decimal("seconds", value)
    assert refused.value.field == "seconds" and "1E-130" in refused.value.reason


@pytest.mark.parametrize("value", [Decimal("1." + "1" * 38), Decimal("1E+200"), Decimal("NaN")], ids=str)
def test_more_than_38_digits_or_out_of_any_range_is_refused(value):
    with pytest.raises(InvalidEvent):
        storable_decimal("seconds", value)
