"""Credit expiry on moto (docs/ledger.md, "Credits that expire"): a month of a user expires exactly what the rule says;
an expiry is booked once under a second scan and a retry, and decided again when a render races it; its events match
their schemas; a statement shows it; the category's running total goes down with it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from reconciler import bootstrap
from reconciler.contract import CREDITS_EXPIRED_DETAIL_TYPE, CREDITS_EXPIRING_DETAIL_TYPE, PROMOTIONAL_CREDITS_ATTRIBUTE
from reconciler.domain.consumption import expiry_ledger_id, plan_credit_expiry
from reconciler.ops.statements import build_statement
from reconciler.repository.credit_expiry_store import CreditExpiryStore
from reconciler.service.credit_expiry import CreditExpiryService
from reconciler.service.ports import AmbiguousWrite, StaleState
from reconciler.service.retrying import Backoff
from tests.events import envelope, rendered
from tests.fakes import RecordingPublisher

SCHEMAS = Path(__file__).resolve().parents[3] / "docs" / "schemas"


class Clock:
    def __init__(self) -> None:
        self.now = "2027-01-01T09:00:00.000Z"

    def __call__(self) -> str:
        return self.now


@pytest.fixture
def month(aws):
    """The services of one stage on one settable clock: credits in, settlement, credit expiry (a day's notice)."""
    clock = Clock()
    dynamodb, sqs = aws.client("dynamodb"), aws.client("sqs")
    credits_in = bootstrap.build_credits_in_service(aws.config, dynamodb, sqs, clock=clock)
    processor = bootstrap.build_processor(
        aws.config, dynamodb, sqs, clock=clock, backoff=lambda deadline: Backoff(deadline=deadline, sleep=lambda _: None)
    )
    publisher = RecordingPublisher()
    store = CreditExpiryStore(dynamodb, aws.config)
    expiry = CreditExpiryService(store, publisher, clock=clock, backoff=lambda deadline: Backoff(deadline=deadline, sleep=lambda _: None))
    return clock, credits_in, processor, expiry, publisher


def grant(reference: str, credits: int, expires: str | None, category: str = "promotional") -> dict:
    detail = {"userId": "u", "credits": credits, "reference": reference, "category": category}
    if expires:
        detail["expiresAt"] = expires
    return envelope("credits.granted", detail, f"evt-{reference}", source="credits.billing")


def purchase(reference: str, credits: int) -> dict:
    detail = {"userId": "u", "credits": credits, "reference": reference, "amountPaid": "10", "currency": "USD"}
    return envelope("credits.purchased", detail, f"evt-{reference}", source="credits.billing")


def day(number: int, hour: int = 9) -> str:
    return f"2027-01-{number:02d}T{hour:02d}:00:00.000Z"


def test_a_month_with_a_purchase_two_promotional_grants_and_renders_expires_exactly_what_the_rule_says(aws, month):
    clock, credits_in, processor, expiry, publisher = month

    def at(moment: str, event: dict) -> None:
        clock.now = moment
        outcome = credits_in.process(event) if event["source"] == "credits.billing" else processor.process(event)
        assert outcome.kind in ("applied", "settled"), outcome

    at(day(1), purchase("pay-1", 100))  # paid 100, never expires
    at(day(2), grant("promo-a", 50, day(10, 0)))  # promotional A: 50, expires Jan 10
    at(day(3), grant("promo-b", 40, day(20, 0)))  # promotional B: 40, expires Jan 20
    at(day(5), rendered("r1", "u", seconds=30))  # 30: promotional first, soonest-expiring first -> A 50 - 30 = 20
    at(day(8), rendered("r2", "u", seconds=10))  # 10 from A -> A 10, B 40, paid 100: balance 150
    assert aws.balance("u") == 150
    clock.now = day(10, 12)  # the scan after A's expiry: A's 10 expire, B and paid untouched
    report = expiry.run()
    assert [(e.credit.ledger_id, e.expired) for e in report.expired] == [("grant:7:promo-a", 10)]
    assert aws.balance("u") == 140 == aws.ledger_sum("u")
    at(day(12), rendered("r3", "u", seconds=25))  # A has expired: B 40 - 25 = 15; balance 115
    clock.now = day(20, 12)  # B's 15 expire; paid 100 untouched: balance 100
    assert [(e.credit.ledger_id, e.expired) for e in expiry.run().expired] == [("grant:7:promo-b", 15)]
    at(day(25), rendered("r4", "u", seconds=30))  # only paid is left: 100 - 30 = 70
    # Expired in the month: 10 + 15 = 25 of the 90 promotional credits; 65 rendered on them, 30 on paid.
    assert (aws.balance("u"), aws.ledger_sum("u")) == (70, 70)
    assert aws.credits_item("u")[PROMOTIONAL_CREDITS_ATTRIBUTE] == 90 - 25  # the category's running total less expiries
    expired_events = [detail for kind, detail in publisher.published if kind == CREDITS_EXPIRED_DETAIL_TYPE]
    assert [(d["creditLedgerId"], d["credits"]) for d in expired_events] == [("grant:7:promo-a", 10), ("grant:7:promo-b", 15)]
    schema = json.loads((SCHEMAS / "credits.expired.json").read_text())
    for detail in expired_events:
        jsonschema.validate(detail, schema)
    # And the month's statement shows the expiries as their own line, the renders as theirs
    statement = build_statement("u", "2027-01", aws.store().ledger_for_user("u"))
    lines = {(line.section, line.category): (line.amount, line.ledger_ids) for line in statement.lines}
    assert lines[("debits", "expiry")] == (-25, ("expiry:15:grant:7:promo-a", "expiry:15:grant:7:promo-b"))
    assert lines[("debits", "usage")][0] == -95 and statement.closing == 70
    # And a later scan finds nothing left to expire (the index is empty)
    clock.now = day(31)
    assert expiry.run().expired == [] and list(expiry.store.expiring_credits(day(31))) == []


def test_a_credit_expiring_within_the_lead_time_is_noticed_once_with_what_the_rule_leaves(aws, month):
    clock, credits_in, processor, expiry, publisher = month
    credits_in.process(grant("promo-n", 30, day(5, 0)))
    clock.now = day(1, 10)
    processor.process(rendered("r1", "u", seconds=12))
    clock.now = day(1, 23)  # more than the 72 hours of notice before Jan 5 00:00: nothing yet
    assert expiry.run().noticed == []
    clock.now = day(3)
    assert expiry.run().noticed == ["grant:7:promo-n"] and expiry.run().noticed == []
    ((kind, detail),) = publisher.published
    assert kind == CREDITS_EXPIRING_DETAIL_TYPE and (detail["grantedCredits"], detail["unconsumed"]) == (30, 18)
    jsonschema.validate(detail, json.loads((SCHEMAS / "credits.expiring.json").read_text()))


def test_an_expiry_is_booked_once_under_a_second_scan_and_a_retry(aws, month):
    clock, credits_in, _, expiry, _ = month
    credits_in.process(grant("promo-x", 20, day(2, 0)))
    clock.now = day(3)
    (seen,) = expiry.store.expiring_credits(day(3))
    books = expiry.store.books("u")
    first_scans_plan = plan_credit_expiry(seen.entry, books.entries, books.version, day(3))
    # A second scan that read the same index entry commits first; the first scan's write of its plan is refused,
    # and the first scan, deciding again, finds it booked
    assert expiry.expire(seen.entry).expired == 20
    with pytest.raises(StaleState):
        expiry.store.commit_credit_expiry(first_scans_plan)
    assert expiry.expire(seen.entry) is None
    assert aws.balance("u") == 0 == aws.ledger_sum("u")
    assert aws.all_ledger_ids().count(expiry_ledger_id("grant:7:promo-x")) == 1


def test_a_lost_answer_is_recognised_as_the_expiry_it_booked(aws, month):
    clock, credits_in, _, expiry, _ = month
    credits_in.process(grant("promo-y", 20, day(2, 0)))
    clock.now = day(3)
    commit = expiry.store.commit_credit_expiry
    calls = []

    def committed_but_answer_lost(plan):
        calls.append(plan)
        commit(plan)
        if len(calls) == 1:
            raise AmbiguousWrite("read timeout")

    expiry.store.commit_credit_expiry = committed_but_answer_lost
    (seen,) = expiry.store.expiring_credits(day(3))
    assert expiry.expire(seen.entry).expired == 20 and len(calls) == 1
    assert aws.balance("u") == 0 == aws.ledger_sum("u")


def test_a_render_racing_the_expiry_makes_it_decide_again_on_the_new_books(aws, month):
    clock, credits_in, processor, expiry, _ = month
    clock.now = day(1)
    credits_in.process(purchase("pay-1", 10))
    credits_in.process(grant("promo-z", 20, day(2, 0)))
    clock.now = day(3)
    commit = expiry.store.commit_credit_expiry
    versions = []

    def render_in_between(plan):
        versions.append(plan.version)
        if len(versions) == 1:  # after the books were read, before the write: a render settles (after the expiry)
            assert processor.process(rendered("late", "u", seconds=7)).kind == "settled"
        commit(plan)

    expiry.store.commit_credit_expiry = render_in_between
    (seen,) = expiry.store.expiring_credits(day(3))
    booked = expiry.expire(seen.entry)
    # The first write was refused on the version; decided again, the render (after Jan 2) took paid credits: 20 expire
    assert len(versions) == 2 and versions[1] == versions[0] + 1
    assert booked.expired == 20 and aws.balance("u") == 3 == aws.ledger_sum("u")


def test_a_grant_whose_expiry_has_passed_is_refused_by_name_and_its_redelivery_after_expiry_is_a_duplicate(aws, month):
    clock, credits_in, _, _, _ = month
    clock.now = day(3)
    refused = credits_in.process(grant("promo-old", 5, day(2)))
    assert (refused.kind, refused.error.field) == ("rejected", "expiresAt")
    clock.now = day(1)
    assert credits_in.process(grant("promo-new", 5, day(2))).kind == "applied"
    clock.now = day(3)
    assert credits_in.process(grant("promo-new", 5, day(2))).kind == "duplicate"
    assert aws.balance("u") == 5


def test_an_expiry_retried_on_a_moving_balance_stops_at_the_ticks_deadline_and_waits_for_the_next_tick(aws, month):
    # Given an expired grant whose balance moves under every write (each attempt refused on its version), and a tick
    # whose deadline passes during the first attempt
    import time

    clock, credits_in, _, expiry, _ = month
    credits_in.process(grant("promo-d", 20, day(2, 0)))
    clock.now = day(3)
    attempts = []

    def refused_until_after_the_deadline(plan):
        attempts.append(plan)
        time.sleep(0.05)
        raise StaleState("the balance moved")

    expiry.store.commit_credit_expiry = refused_until_after_the_deadline
    # When the tick runs
    report = expiry.run(day(3), deadline=time.monotonic() + 0.02)
    # Then no attempt starts after the deadline (without the bound: 50 attempts, 2.5 s past it), the credit is
    # deferred, and it is still in the index for the next tick, with nothing booked
    assert len(attempts) == 1 and [ledger_id for ledger_id, _ in report.deferred] == [attempts[0].credit.ledger_id]
    assert [seen.entry.ledger_id for seen in expiry.store.expiring_credits(day(3))] == [attempts[0].credit.ledger_id]
    assert aws.balance("u") == 20 == aws.ledger_sum("u")
