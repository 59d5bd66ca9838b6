"""A simulated month on the local stack (moto server): for every user, the statement's closing balance equals their
posted balance at the month's end (read from Credits as the month ended, not from the ledger) and its lines sum to
it; the liability's categories sum to every posted balance. Then the CLI shows one statement as a table, JSON, CSV."""

from __future__ import annotations

import contextlib
import csv
import io
import random
from datetime import UTC, datetime, timedelta

from reconciler import bootstrap
from reconciler.domain.errors import InsufficientCredits
from reconciler.domain.ledger import iso_timestamp
from reconciler.domain.liability import LIABILITY_CATEGORIES, allocation_of
from reconciler.domain.pricing import PriceBook
from reconciler.ops.adjustments import Adjuster
from reconciler.ops.statements import Statements
from reconciler.ops.target import Target
from reconciler.service.event_settlement import EventProcessor, SettlementService
from reconciler.service.reservations import ReservationService

USERS = ("ada", "bo", "cy", "di")
START = datetime(2026, 10, 20, tzinfo=UTC)  # ten days of October, November, and a few days of December
END = datetime(2026, 12, 4, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> str:
        return iso_timestamp(self.now)


def credits_event(kind: str, event_id: str, **detail) -> dict:
    return {"id": event_id, "source": "credits.billing", "detail-type": kind, "detail": detail}


def render(job_id: str, user: str, seconds: int) -> dict:
    detail = {"jobId": job_id, "userId": user, "seconds": seconds, "model": "test"}
    return {"id": f"evt-{job_id}", "source": "video.generation", "detail-type": "video.rendered", "detail": detail}


def posted(store, user: str) -> int:
    found = store.get_balance(user)
    return 0 if found is None else found.posted


def take_the_snapshot(env) -> None:
    """The liability snapshot, as its schedule runs it: the function's handler with the rule's input."""
    from reconciler.handlers.entry import handler
    from tests.events import LambdaContext

    env.activate()
    bootstrap.reset_container()
    assert handler({"job": "liability-snapshot"}, LambdaContext())["stored"] is True
    bootstrap.reset_container()


def statements() -> Statements:
    """What `reconciler --local statement` and `liability` call (the operators' composition root)."""
    return Target.resolve("dev", use_local=True).statements()


def simulate_month(env, seed: int) -> dict[str, int]:
    """Random purchases, grants, refunds, chargebacks, renders, holds and adjustments from 20 October to 7 December,
    in time order; returns every user's posted balance read from Credits when the clock passed 1 December."""
    rng = random.Random(seed)
    clock = Clock()
    dynamodb, sqs = env.client("dynamodb"), env.client("sqs")
    config = env.config
    credits = bootstrap.build_credits_in_service(config, dynamodb=dynamodb, sqs=sqs, clock=clock)
    settlement = EventProcessor(SettlementService(bootstrap.settlement_store(config, dynamodb), PriceBook(), clock=clock), credits.dead_letters)
    holds = ReservationService(bootstrap.settlement_store(config, dynamodb), clock=clock)
    store = env.store()
    adjuster = Adjuster(store, clock=clock)
    at_month_end: dict[str, int] = {}
    step = 0
    while clock.now < END:
        step += 1
        clock.now += timedelta(hours=rng.randint(4, 12))
        if not at_month_end and clock.now >= datetime(2026, 12, 1, tzinfo=UTC):
            at_month_end = {user: posted(store, user) for user in USERS}
        user, roll = rng.choice(USERS), rng.random()
        if roll < 0.25:
            credits.process(
                credits_event(
                    "credits.purchased",
                    f"p{step}",
                    userId=user,
                    credits=rng.choice([100, 500]),
                    reference=f"pi_{step}",
                    amountPaid="9.99",
                    currency="EUR",
                )
            )
            if rng.random() < 0.3:  # the provider delivers it again
                credits.process(
                    credits_event(
                        "credits.purchased", f"p{step}-again", userId=user, credits=100, reference=f"pi_{step}", amountPaid="9.99", currency="EUR"
                    )
                )
        elif roll < 0.35:
            category = rng.choice(["promotional", "goodwill"])
            credits.process(
                credits_event("credits.granted", f"g{step}", userId=user, credits=rng.randint(5, 50), reference=f"grant-{step}", category=category)
            )
        elif roll < 0.42:
            category = rng.choice(["refund", "chargeback"])
            credits.process(
                credits_event("credits.revoked", f"r{step}", userId=user, credits=rng.randint(10, 300), reference=f"rev-{step}", category=category)
            )
        elif roll < 0.85:
            job = f"job-{step}"
            if rng.random() < 0.3:
                _try_hold(holds, job, user)
            if rng.random() < 0.8:
                settlement.process(render(job, user, rng.randint(1, 40)))
        else:
            adjuster.adjust(user, rng.choice([-25, 40]), "support fix", f"adj-{step}", "finance-test")
    return at_month_end


def _try_hold(holds: ReservationService, job: str, user: str) -> None:
    with contextlib.suppress(InsufficientCredits):  # the pipeline would not start that render
        holds.reserve(job, user, "test", 20)


def test_every_statement_of_a_simulated_month_closes_on_the_balance_at_its_end_and_the_liability_on_the_book(env):
    at_month_end = simulate_month(env, seed=24)
    store = env.store()
    for user in USERS:
        statement = statements().statement(user, "2026-11")
        assert statement.closing == at_month_end[user], (user, statement.as_dict())
        assert statement.opening + sum(line.amount for line in statement.lines) == statement.closing
        # Each line names its entries: together, exactly the user's November entries, each line their sum
        november = {e.ledger_id: e for e in store.ledger_for_user(user) if "2026-11-01" <= e.timestamp < "2026-12-01"}
        named = [entry_id for line in statement.lines for entry_id in line.ledger_ids]
        assert sorted(named) == sorted(november) and november
        for line in statement.lines:
            assert sum(november[i].signed_amount for i in line.ledger_ids) == line.amount
            assert (line.amount > 0) == (line.section == "credits")
    # The liability: the function's snapshot, taken at this quiet point, equals, category by category, the sum of
    # every balance's own allocation; so does the check's scan now.
    take_the_snapshot(env)
    book = statements().liability(check=True)
    balances = list(store.scan_balances())
    assert book.agrees and book.total == sum(posted(store, user) for user in USERS) == sum(b.posted for b in balances)
    assert book.age_seconds is not None and book.age_seconds < 600
    per_user = {b.user_id: allocation_of(b.posted, b.came_in) for b in balances}
    assert {c: sum(found[c] for found in per_user.values()) for c in LIABILITY_CATEGORIES} == book.by_category
    assert book.by_category["paid"] > 0 and book.by_category["promotional"] + book.by_category["goodwill"] > 0
    for user, found in per_user.items():
        assert sum(found.values()) == posted(store, user)
        assert all(amount >= 0 for category, amount in found.items() if category != "overdrawn")


def test_the_cli_shows_a_statement_as_a_table_json_and_csv_and_the_liability(env, cli):
    simulate_month(env, seed=7)
    as_json = cli("--output", "json", "statement", "ada", "--month", "2026-11")
    assert as_json.exit_code == 0, as_json.stderr
    document = as_json.json()
    expected = statements().statement("ada", "2026-11")
    assert document["closing"] == expected.closing and document["opening"] == expected.opening
    assert {line["category"] for line in document["credits"] + document["debits"]} <= {
        "paid",
        "promotional",
        "goodwill",
        "refund",
        "chargeback",
        "usage",
        "adjustment",
        "correction",
        "other",
    }
    rows = list(csv.reader(io.StringIO(cli("statement", "ada", "--month", "2026-11", "--csv").stdout)))
    assert rows[0] == ["line", "category", "credits", "ledger entries"]
    assert rows[1][0] == "opening" and next(r for r in rows if r[0] == "closing")[2] == str(expected.closing)
    table = cli("statement", "ada", "--month", "2026-11")
    assert table.exit_code == 0 and "closing" in table.stdout
    assert cli("liability").exit_code == 3  # no snapshot yet: its schedule has not run
    take_the_snapshot(env)
    book = cli("--output", "json", "liability", "--check").json()
    assert book["checked"]["agrees"] is True and book["total"] == sum(book["byCategory"].values()) == book["balancesTotal"]
    shown = cli("liability")
    assert shown.exit_code == 0 and "old" in shown.stdout
    bad = cli("statement", "ada", "--month", "2026-13")
    assert bad.exit_code != 0 and "YYYY-MM" in bad.stderr
