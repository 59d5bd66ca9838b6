"""The liability's rule (domain/liability.py): a posted balance by category, from the Credits item alone."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from reconciler.domain.liability import LIABILITY_CATEGORIES, allocation, allocation_of, book_of, came_in


def item(remaining: int, held: int = 0, **came: int) -> dict:
    names = {"paid": "paidCredits", "promotional": "promotionalCredits", "goodwill": "goodwillCredits"}
    return {"userId": "u", "remaining": Decimal(remaining), "held": Decimal(held), **{names[k]: Decimal(v) for k, v in came.items()}}


def test_spending_draws_on_other_then_promotional_then_goodwill_and_paid_last():
    # 100 paid, 30 promotional, 20 goodwill, and 50 of an opening balance (other): 200 in all
    assert allocation(item(200, paid=100, promotional=30, goodwill=20)) == {
        "paid": 100,
        "promotional": 30,
        "goodwill": 20,
        "other": 50,
        "overdrawn": 0,
    }
    # 80 spent: the other 50, then 30 promotional
    assert allocation(item(120, paid=100, promotional=30, goodwill=20)) == {"paid": 100, "promotional": 0, "goodwill": 20, "other": 0, "overdrawn": 0}
    # 190 spent: paid is what remains
    assert allocation(item(5, 5, paid=100, promotional=30, goodwill=20)) == {"paid": 10, "promotional": 0, "goodwill": 0, "other": 0, "overdrawn": 0}


def test_a_balance_below_zero_is_overdrawn_and_a_refund_takes_back_paid_credits():
    assert allocation(item(-60, paid=0)) == {"paid": 0, "promotional": 0, "goodwill": 0, "other": 0, "overdrawn": -60}
    assert came_in("refund", -500) == ("paidCredits", -500) and came_in("chargeback", -5) == ("paidCredits", -5)
    assert came_in("goodwill", 20) == ("goodwillCredits", 20) and came_in("paid", 7) == ("paidCredits", 7)
    assert allocation(item(40, paid=-100)) == {"paid": 0, "promotional": 0, "goodwill": 0, "other": 40, "overdrawn": 0}


def test_a_missing_item_and_damaged_figures_allocate_nothing():
    assert allocation(None) == dict.fromkeys(LIABILITY_CATEGORIES, 0)
    assert allocation({"remaining": "ten", "paidCredits": Decimal("1.5")}) == dict.fromkeys(LIABILITY_CATEGORIES, 0)


def test_the_book_sums_every_users_allocation_and_leaves_the_smoke_user_out():
    smoke = {**item(1000), "userId": "smoke-test-user"}
    damaged = {**item(7), "userId": "d", "held": "x"}
    book = book_of([item(200, paid=100), {**item(-30), "userId": "v"}, {**item(5, 5), "userId": "w"}, smoke, damaged])
    assert book.by_category == {"paid": 100, "promotional": 0, "goodwill": 0, "other": 117, "overdrawn": -30}
    assert book.total == book.balances_total == 187 and book.users == 4 and book.damaged == 1


figures = st.integers(min_value=-(10**6), max_value=10**6)


@given(figures, figures, st.integers(0, 10**6), st.integers(0, 10**6))
def test_the_categories_always_sum_to_the_posted_balance_and_only_overdrawn_is_negative(posted, paid, promotional, goodwill):
    found = allocation_of(posted, {"paid": paid, "promotional": promotional, "goodwill": goodwill})
    assert sum(found.values()) == posted
    assert all(amount >= 0 for category, amount in found.items() if category != "overdrawn") and found["overdrawn"] <= 0
