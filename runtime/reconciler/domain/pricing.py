"""Prices in credits per second; a render costs ceil(seconds * price) whole credits."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Context, Decimal, Inexact
from functools import lru_cache
from importlib import resources
from types import MappingProxyType

from reconciler.domain.errors import InvalidEvent


@lru_cache(maxsize=1)
def _load_reviewed_prices() -> Mapping[str, Decimal]:
    """Read once per process: every PriceBook() (a reservation, a scan) shares it, read-only."""
    raw = json.loads(resources.files("reconciler.domain").joinpath("prices.json").read_text(), parse_float=Decimal)
    return MappingProxyType({model: Decimal(str(price)) for model, price in raw.items() if not model.startswith("_")})


@dataclass(frozen=True)
class PriceBook:
    prices: Mapping[str, Decimal] = field(default_factory=_load_reviewed_prices)

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, Decimal]) -> PriceBook:
        return cls({**_load_reviewed_prices(), **overrides})

    def price_of(self, model: str) -> Decimal:
        try:
            return self.prices[model]
        except KeyError:
            raise InvalidEvent("model", f"unknown model {model!r}") from None

    def cost(self, model: str, seconds: Decimal) -> int:
        """Whole credits for `seconds` of `model`, rounded up: a started credit is a spent credit."""
        return cost_at(self.price_of(model), seconds)


def cost_at(price: Decimal, seconds: Decimal) -> int:
    """Whole credits for `seconds` at `price` credits per second, rounded up."""
    # Exact product, then the ceiling: the default context keeps 28 digits and would round a long
    # duration (30 significant digits is valid JSON) down before the ceiling, undercharging it.
    product = _EXACT.multiply(seconds, price)
    return int(product.to_integral_value(rounding=ROUND_CEILING))


# Wide enough for any storable duration (38 digits) times any price; Inexact traps if it ever is not.
_EXACT = Context(prec=200, traps=[Inexact])
