from decimal import Decimal

import pytest

from reconciler.domain.errors import InvalidEvent
from reconciler.domain.pricing import PriceBook


def test_model_test_costs_one_credit_per_second():
    assert PriceBook().cost("test", Decimal("5")) == 5


@pytest.mark.parametrize(
    ("model", "seconds", "expected"),
    [("test", "0.1", 1), ("test", "4.0001", 5), ("standard-v1", "7.5", 15), ("standard-v2", "3", 8), ("hd-v1", "2", 8)],
)
def test_cost_rounds_up_to_whole_credits(model, seconds, expected):
    cost = PriceBook().cost(model, Decimal(seconds))
    assert cost == expected and isinstance(cost, int)


def test_stage_overrides_replace_single_models_only():
    prices = PriceBook.with_overrides({"hd-v1": Decimal("3.5")})
    assert prices.cost("hd-v1", Decimal("2")) == 7
    assert prices.cost("test", Decimal("2")) == 2


def test_unknown_model_is_an_invalid_event_naming_the_field():
    with pytest.raises(InvalidEvent) as raised:
        PriceBook().cost("nope", Decimal("1"))
    assert raised.value.field == "model"


def test_reviewed_price_file_holds_only_positive_decimals():
    prices = PriceBook().prices
    assert prices and all(isinstance(p, Decimal) and p > 0 for p in prices.values())
