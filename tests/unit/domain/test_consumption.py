"""The consumption rule (domain/consumption.py, docs/ledger.md "Credits that expire"): order, ties, expiry, overdraft,
givebacks, and the invariant that the lots less the debt are the ledger's sum."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.domain.consumption import EXPIRY, consume
from reconciler.domain.credits_in import GRANTED, PURCHASED, check_expiry, parse_credits_in
from reconciler.domain.errors import InvalidEvent
from reconciler.domain.ledger import CREDIT, DEBIT, LedgerEntry, balance_delta


def at(day: int, hour: int = 12) -> str:
    return f"2026-12-{day:02d}T{hour:02d}:00:00.000Z"


def credit(ledger_id: str, amount: int, when: str, category: str | None, expires: str | None = None) -> LedgerEntry:
    return LedgerEntry(ledger_id, "u", CREDIT, amount, "", ledger_id, when, category=category, expires_at=expires)


def debit(ledger_id: str, amount: int, when: str, category: str | None = None) -> LedgerEntry:
    return LedgerEntry(ledger_id, "u", DEBIT, amount, "", ledger_id, when, category=category)


def expiry(lot_id: str, amount: int, when: str) -> LedgerEntry:
    return LedgerEntry(f"expiry:{len(lot_id)}:{lot_id}", "u", DEBIT, amount, "", lot_id, when, category=EXPIRY)


def test_promotional_then_goodwill_then_paid_then_other():
    ledger = [
        credit("adjustment:1:a", 5, at(1), None),
        credit("purchase:1:p", 10, at(1), "paid"),
        credit("grant:1:g", 10, at(2), "goodwill"),
        credit("grant:1:m", 10, at(3), "promotional"),
        debit("job:1:1:charge", 25, at(4)),
    ]
    left = consume(ledger)
    # 25 = promotional 10 + goodwill 10 + paid 5; the adjustment's 5 (other) untouched.
    assert {lot: left.unconsumed(lot) for lot in left.lots} == {"adjustment:1:a": 5, "purchase:1:p": 5, "grant:1:g": 0, "grant:1:m": 0}


def test_within_a_category_the_soonest_expiring_first_no_expiry_last_then_the_oldest_then_the_id():
    ledger = [
        credit("grant:1:a", 10, at(1), "promotional"),  # no expiry: last
        credit("grant:1:b", 10, at(2), "promotional", at(20)),
        credit("grant:1:c", 10, at(3), "promotional", at(10)),  # soonest: first
        credit("grant:1:e", 10, at(2), "promotional", at(20)),  # same expiry and time as b: the id decides, b first
        debit("job:1:1:charge", 25, at(4)),
    ]
    left = consume(ledger)
    assert [left.unconsumed(lot) for lot in ("grant:1:c", "grant:1:b", "grant:1:e", "grant:1:a")] == [0, 0, 5, 10]


def test_a_lot_past_its_expiry_is_not_consumed_and_its_expiry_takes_the_rest():
    ledger = [
        credit("grant:1:m", 30, at(1), "promotional", at(5)),
        credit("purchase:1:p", 50, at(1), "paid"),
        debit("job:1:1:charge", 10, at(4)),  # promotional 30 -> 20
        debit("job:1:2:charge", 15, at(6)),  # after the grant's expiry: paid 50 -> 35
    ]
    assert consume(ledger).unconsumed("grant:1:m") == 20
    booked = consume([*ledger, expiry("grant:1:m", 20, at(6, 13))])
    assert (booked.unconsumed("grant:1:m"), booked.unconsumed("purchase:1:p"), booked.balance) == (0, 35, 35)


def test_an_overdraft_consumes_nothing_more_and_the_next_credit_repays_it_before_it_can_expire():
    ledger = [
        credit("grant:1:m", 10, at(1), "promotional", at(20)),
        debit("job:1:1:charge", 25, at(2)),  # 10 from the grant, 15 owed
        credit("grant:1:n", 40, at(3), "promotional", at(9)),  # 15 repays the debt, 25 is the lot
    ]
    left = consume(ledger)
    assert (left.unconsumed("grant:1:m"), left.unconsumed("grant:1:n"), left.debt, left.balance) == (0, 25, 0, 25)
    overdrawn = consume(ledger[:2])
    assert (overdrawn.unconsumed("grant:1:m"), overdrawn.debt, overdrawn.balance) == (0, 15, -15)


def test_a_legacy_reservations_release_goes_back_to_the_lots_it_took_and_a_lot_expired_since_gives_an_unexpiring_lot():
    ledger = [
        credit("grant:1:m", 10, at(1), "promotional", at(5)),
        credit("purchase:1:p", 10, at(1), "paid"),
        debit("job:1:1:reserve", 15, at(2)),  # promotional 10, paid 5
        credit("job:1:1:release", 15, at(3, 10), None),  # back: paid 5, promotional 10
        debit("job:1:1:charge", 4, at(3)),  # promotional 10 -> 6
        debit("job:1:2:reserve", 8, at(4)),  # promotional 6, paid 2
        debit("job:1:3:charge", 1, at(4)),  # paid 8 -> 7
        credit("job:1:2:refund", 8, at(7), None),  # paid 2 back; the promotional 6 came from a lot expired since (day 5)
    ]
    left = consume(ledger)
    assert left.unconsumed("grant:1:m") == 0
    assert left.unconsumed("purchase:1:p") == 9  # 10 - 2 (reserve) - 1 (charge) + 2 (refund)
    assert left.unconsumed("job:1:2:refund#grant:1:m") == 6
    assert left.lots["job:1:2:refund#grant:1:m"].category == "promotional"
    assert left.lots["job:1:2:refund#grant:1:m"].expires_at is None
    assert left.balance == balance_delta(ledger)


entries = st.lists(
    st.tuples(
        st.sampled_from(["credit", "debit", "reserve", "giveback", "expiry"]),
        st.integers(1, 50),
        st.integers(1, 28),
        st.sampled_from(["paid", "promotional", "goodwill", None]),
        st.none() | st.integers(1, 28),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(entries)
def test_the_lots_less_the_debt_are_always_the_ledgers_sum_and_never_negative(drawn):
    ledger: list[LedgerEntry] = []
    for number, (kind, amount, day, category, expires) in enumerate(drawn):
        when = f"2026-12-{day:02d}T12:00:{number % 60:02d}.000Z"
        if kind == "credit":
            ledger.append(credit(f"grant:{number}", amount, when, category, None if expires is None else at(expires)))
        elif kind == "debit":
            ledger.append(debit(f"job:1:{number}:charge", amount, when))
        elif kind == "reserve":
            ledger.append(debit(f"job:1:{number % 3}:reserve", amount, when))
        elif kind == "giveback":
            ledger.append(credit(f"job:1:{number % 3}:release", amount, when, None))
        else:
            ledger.append(expiry(f"grant:{max(number - 1, 0)}", amount, when))
    left = consume(ledger)
    assert left.balance == balance_delta(ledger)
    assert all(lot.remaining >= 0 for lot in left.lots.values()) and left.debt >= 0


def envelope(detail_type: str, **detail) -> dict:
    return {"id": "evt-1", "source": "credits.billing", "detail-type": detail_type, "detail": detail}


def test_a_grants_expiry_is_kept_in_utc_to_the_millisecond_and_booked_on_its_entry():
    detail = {"userId": "u", "credits": 5, "reference": "g", "category": "promotional", "expiresAt": "2026-12-31T23:00:00.123456+01:00"}
    event = parse_credits_in(envelope(GRANTED, **detail))
    assert event.expires_at == "2026-12-31T22:00:00.123Z"


@pytest.mark.parametrize(
    ("detail_type", "expires", "reason"),
    [
        (GRANTED, "2026-12-01T00:00:00", "offset"),
        (GRANTED, "tomorrow", "ISO-8601"),
        (PURCHASED, 5, "ISO-8601"),
        ("credits.revoked", "2027-01-01T00:00:00Z", "revocation"),
    ],
)
def test_a_malformed_expiry_is_refused_by_name(detail_type, expires, reason):
    detail = {"userId": "u", "credits": 5, "reference": "r", "expiresAt": expires, "amountPaid": "1", "currency": "USD"}
    detail["category"] = {GRANTED: "promotional", PURCHASED: "paid"}.get(detail_type, "refund")
    with pytest.raises(InvalidEvent) as refused:
        parse_credits_in(envelope(detail_type, **detail))
    assert refused.value.field == "expiresAt" and reason in refused.value.reason


@pytest.mark.parametrize(("expires", "reason"), [(at(1), "future"), (at(8, 11), "future"), ("2030-01-01T00:00:00Z", "at most")])
def test_an_expiry_not_ahead_or_beyond_the_stages_maximum_is_refused(expires, reason):
    event = parse_credits_in(envelope(GRANTED, userId="u", credits=5, reference="g", category="goodwill", expiresAt=expires))
    with pytest.raises(InvalidEvent) as refused:
        check_expiry(event, at(8), timedelta(days=3 * 366))
    assert refused.value.field == "expiresAt" and reason in refused.value.reason
    tomorrow = parse_credits_in(envelope(GRANTED, userId="u", credits=5, reference="g", category="goodwill", expiresAt=at(9)))
    check_expiry(tomorrow, at(8), timedelta(days=1))
