"""The liability: outstanding credits by category, per user from their Credits item alone, so the book's totals are
a sum over the Credits items (a scheduled snapshot: docs/events.md, "The liability").

Pure. A user's posted balance (remaining + held) is allocated to where it came from. What came in by category is on
the Credits item, added by the credits-in transaction itself (`paidCredits`: purchases less refunds and chargebacks;
`promotionalCredits`, `goodwillCredits`: grants). Spending is drawn from credits of no credits-in category first
(`other`: opening balances, v1's balances, adjustments), then promotional, then goodwill, and paid credits last (the
largest paid figure: the conservative one for a liability). A balance below zero is `overdrawn`. The categories of a
user always sum to their posted balance, so the book's categories sum to the sum of every posted balance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from reconciler.domain.attributes import (
    GOODWILL_CREDITS_ATTRIBUTE,
    HELD_ATTRIBUTE,
    PAID_CREDITS_ATTRIBUTE,
    PROMOTIONAL_CREDITS_ATTRIBUTE,
    REMAINING_ATTRIBUTE,
)
from reconciler.domain.credits_in import CHARGEBACK, GOODWILL, PAID, PROMOTIONAL, REFUND
from reconciler.domain.events import SMOKE_TEST_USER

OTHER, OVERDRAWN = "other", "overdrawn"
LIABILITY_CATEGORIES = (PAID, PROMOTIONAL, GOODWILL, OTHER, OVERDRAWN)
# What remains of a positive balance is allocated in this order (so spending draws on it in the reverse order).
KEPT_FIRST = (PAID, GOODWILL, PROMOTIONAL)
# The Credits item's running totals of what came in by category (domain/attributes.py names them).
CAME_IN_ATTRIBUTES = {PAID: PAID_CREDITS_ATTRIBUTE, PROMOTIONAL: PROMOTIONAL_CREDITS_ATTRIBUTE, GOODWILL: GOODWILL_CREDITS_ATTRIBUTE}


def came_in(category: str, signed_amount: int) -> tuple[str, int] | None:
    """The running total a credits-in entry of this category adds to (and by how much): a refund or a chargeback
    takes back paid credits; None for a category with no running total."""
    if category in CAME_IN_ATTRIBUTES:
        return CAME_IN_ATTRIBUTES[category], signed_amount
    if category in (REFUND, CHARGEBACK):
        return CAME_IN_ATTRIBUTES[PAID], signed_amount
    return None


def _whole(value: Any) -> int:
    """A stored figure as a whole number; absent, or damaged (text, a fraction: the balance events report it), 0."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)) or value != int(value):
        return 0
    return int(value)


def allocation(image: Mapping[str, Any] | None) -> dict[str, int]:
    """A Credits item's posted balance by category (None, an item that does not exist: all 0)."""
    if image is None:
        return dict.fromkeys(LIABILITY_CATEGORIES, 0)
    posted = _whole(image.get(REMAINING_ATTRIBUTE)) + _whole(image.get(HELD_ATTRIBUTE))
    return allocation_of(posted, {category: _whole(image.get(name)) for category, name in CAME_IN_ATTRIBUTES.items()})


def allocation_of(posted: int, came_in: Mapping[str, int]) -> dict[str, int]:
    """A posted balance by category, given what came in by category (the module's rule)."""
    found = dict.fromkeys(LIABILITY_CATEGORIES, 0)
    if posted <= 0:
        found[OVERDRAWN] = posted
        return found
    rest = posted
    for category in KEPT_FIRST:
        kept = min(rest, max(came_in.get(category, 0), 0))
        found[category] = kept
        rest -= kept
    found[OTHER] = rest
    return found


def damaged(image: Mapping[str, Any]) -> bool:
    """A figure the allocation counts as 0 because it is not a whole number (the balance events report it)."""
    names = (REMAINING_ATTRIBUTE, HELD_ATTRIBUTE, *CAME_IN_ATTRIBUTES.values())
    return any(image.get(name) is not None and _whole(image.get(name)) == 0 and image.get(name) != 0 for name in names)


@dataclass
class BookLiability:
    """The whole book's outstanding credits by category, the sum of the posted balances, how many users and how many
    items had a damaged figure (counted as 0)."""

    by_category: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LIABILITY_CATEGORIES, 0))
    balances_total: int = 0
    users: int = 0
    damaged: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_category.values())


@dataclass(frozen=True)
class LiabilitySnapshot:
    """The book's liability as a scheduled scan found it (service/liability_snapshot.py)."""

    book: BookLiability
    taken_at: str  # when the scan began: every write committed before it is in the totals
    finished_at: str


def book_of(images: Iterable[Mapping[str, Any]]) -> BookLiability:
    """Every Credits item's allocation summed (the smoke test's user is no customer: left out)."""
    book = BookLiability()
    for image in images:
        if image.get("userId") == SMOKE_TEST_USER:
            continue
        book.users += 1
        book.damaged += damaged(image)
        for category, amount in allocation(image).items():
            book.by_category[category] += amount
        book.balances_total += _whole(image.get(REMAINING_ATTRIBUTE)) + _whole(image.get(HELD_ATTRIBUTE))
    return book
