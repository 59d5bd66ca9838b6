"""Prices in credits per second; a render costs ceil(seconds * price) whole credits."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from importlib import resources
from typing import Mapping

from reconciler.domain.errors import InvalidEvent


def _load_reviewed_prices() -> dict[str, Decimal]:
    raw = json.loads(resources.files("reconciler.domain").joinpath("prices.json").read_text(), parse_float=Decimal)
    return {model: Decimal(str(price)) for model, price in raw.items() if not model.startswith("_")}


@dataclass(frozen=True)
class PriceBook:
    prices: Mapping[str, Decimal] = field(default_factory=_load_reviewed_prices)

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, Decimal]) -> "PriceBook":
        return cls({**_load_reviewed_prices(), **overrides})

    def price_of(self, model: str) -> Decimal:
        try:
            return self.prices[model]
        except KeyError:
            raise InvalidEvent("model", f"unknown model {model!r}") from None

    def cost(self, model: str, seconds: Decimal) -> int:
        """Whole credits for `seconds` of `model`, rounded up: a started credit is a spent credit."""
        return int((seconds * self.price_of(model)).to_integral_value(rounding=ROUND_CEILING))
