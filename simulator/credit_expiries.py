"""Credits that expire, across seeds (issue #28, item 4): purchases and grants with expiries, holds, renders,
failures, refunds and timer-scan ticks interleaved on one user per seed, against the dev stage's tables in moto, with
the product's own services (credits in, settlement, holds, credit expiry) on a simulated clock.

The races each seed draws: a second scan that books the same credit first (the first scan's write must be refused),
a render settling between an expiry's read of the books and its write (the expiry must decide again), and a lost
answer (the write committed, the answer lost: the retry must recognise its own expiry). The oracle keeps its own
model of the consumption rule (docs/ledger.md, "Credits that expire") and checks, after the seed: each expiry entry
removes exactly what the rule left of its credit, after its expiry; no credit is expired twice, none left unexpired
once its expiry passed and a tick ran; each expiry announced once; the books balance (remaining + held = the ledger's
sum, held = the open holds, each category's running total = what came in less what expired).

A phase of its own (`python -m simulator.credit_expiries --seeds 20`), sequential: not yet inside the concurrent
scheduler and the fault layer of `simulator.sim` (docs/simulator.md).
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

START = datetime(2027, 1, 1, tzinfo=UTC)
RANK = {"promotional": 0, "goodwill": 1, "paid": 2}  # the rule's order; any other credit ranks last


@dataclass
class SeedResult:
    failures: list[str] = field(default_factory=list)
    covered: Counter = field(default_factory=Counter)


class Clock:
    """ISO-8601 UTC, one millisecond further at every reading (no two entries share a moment)."""

    def __init__(self) -> None:
        self.moment = START

    def __call__(self) -> str:
        from reconciler.domain.ledger import iso_timestamp

        self.moment += timedelta(milliseconds=1)
        return iso_timestamp(self.moment)

    def later(self, rng: random.Random) -> None:
        self.moment += timedelta(minutes=rng.choice([1, 30, 90, 240, 600]))

    def at(self, hours: int) -> str:
        from reconciler.domain.ledger import iso_timestamp

        return iso_timestamp(self.moment + timedelta(hours=hours))


def oracle_remainders(entries: list[Any]) -> tuple[dict[str, int], list[str]]:
    """The oracle's own model of the rule: what each expiry entry should have removed (by the expiry's id), from the
    ledger in time order; and any entry the model does not expect in this phase."""
    lots: list[dict[str, Any]] = []  # {"id", "rank", "expires", "time", "left"}
    debt, expected, unexpected = 0, {}, []
    for entry in sorted(entries, key=lambda e: (e.timestamp, e.ledger_id)):
        if entry.category == "expiry":
            lot = next((lot for lot in lots if lot["id"] == entry.reference), None)
            expected[entry.ledger_id] = lot["left"] if lot else 0
            if lot is not None:
                lot["left"] -= min(lot["left"], entry.amount)
        elif entry.type == "credit":
            if entry.ledger_id.startswith("job:"):
                unexpected.append(entry.ledger_id)  # a hold posts nothing; no legacy reservation here
            paid_back = min(debt, entry.amount)
            debt -= paid_back
            lots.append({"id": entry.ledger_id, "rank": RANK.get(entry.category or "", 3), "expires": entry.expires_at, "time": entry.timestamp})
            lots[-1]["left"] = entry.amount - paid_back
        else:
            need = entry.amount
            live = [lot for lot in lots if lot["left"] and (lot["expires"] is None or entry.timestamp <= lot["expires"])]
            for lot in sorted(live, key=lambda lot: (lot["rank"], lot["expires"] is None, lot["expires"] or "", lot["time"], lot["id"])):
                take = min(need, lot["left"])
                lot["left"], need = lot["left"] - take, need - take
            debt += need
    return expected, unexpected


class Seed:
    """One seed's user, services and script."""

    def __init__(self, seed: int, aws: Any) -> None:
        from reconciler import bootstrap
        from reconciler.repository.credit_expiry_store import CreditExpiryStore
        from reconciler.service.credit_expiry import CreditExpiryService
        from reconciler.service.retrying import Backoff

        self.rng, self.user, self.clock, self.aws = random.Random(f"credit-expiry-{seed}"), f"cx-user-{seed}", Clock(), aws
        dynamodb, sqs, config = aws["dynamodb"], aws["sqs"], aws["config"]
        no_sleep = lambda deadline=None: Backoff(deadline=deadline, sleep=lambda _: None)  # noqa: E731
        self.credits_in = bootstrap.build_credits_in_service(config, dynamodb, sqs, clock=self.clock, backoff=no_sleep)
        self.processor = bootstrap.build_processor(config, dynamodb, sqs, clock=self.clock, backoff=no_sleep)
        self.store = bootstrap.operations_store(config, dynamodb)
        self.holds = bootstrap.build_reservations(self.store, config)
        self.holds.clock = self.clock
        self.published: list[dict] = []
        self.scans = [CreditExpiryService(CreditExpiryStore(dynamodb, config), self, clock=self.clock, backoff=no_sleep) for _ in range(2)]
        self.result, self.number = SeedResult(), 0
        self.jobs: list[str] = []  # jobs holding credits

    def publish(self, detail_type: str, detail: dict) -> str:  # the scans' publisher
        self.published.append({"type": detail_type, **detail})
        return f"event-{len(self.published)}"

    def run(self) -> SeedResult:
        for _ in range(self.rng.randint(12, 24)):
            self.clock.later(self.rng)
            self.step()
        self.clock.moment += timedelta(days=3)  # past every expiry drawn (at most 48 hours ahead)
        self.tick()
        self.check()
        return self.result

    def step(self) -> None:
        from reconciler.domain.errors import InsufficientCredits

        roll, covered = self.rng.random(), self.result.covered
        self.number += 1
        if roll < 0.35:
            self.credit()
        elif roll < 0.55:
            self.render(f"{self.user}-r-{self.number}", self.rng.randint(1, 40))
        elif roll < 0.7:
            job = f"{self.user}-h-{self.number}"
            try:
                self.holds.reserve(job, self.user, "test", self.rng.randint(1, 20))
            except InsufficientCredits:
                covered["holds refused for want of credits"] += 1
                return
            self.jobs.append(job)
            covered["holds"] += 1
        elif roll < 0.8 and self.jobs:
            job = self.jobs.pop(self.rng.randrange(len(self.jobs)))
            if self.rng.random() < 0.7:
                self.render(job, self.rng.randint(1, 30))
            else:
                self.settle({"jobId": job, "userId": self.user}, "video.failed")
        elif roll < 0.85:
            self.send("credits.revoked", credits=self.rng.randint(1, 15), category="refund")
        else:
            self.tick()

    def credit(self) -> None:
        category = self.rng.choice(["promotional", "promotional", "goodwill", "paid"])
        expires = self.clock.at(self.rng.choice([1, 4, 12, 48])) if category != "paid" or self.rng.random() < 0.3 else None
        extra = {"expiresAt": expires} if expires else {}
        if category == "paid":
            self.send("credits.purchased", credits=self.rng.choice([20, 50]), amountPaid="5", currency="USD", **extra)
        else:
            self.send("credits.granted", credits=self.rng.choice([10, 25, 40]), category=category, **extra)
        self.result.covered["credits with an expiry" if expires else "credits without one"] += 1

    def send(self, detail_type: str, **detail: Any) -> None:
        envelope: dict[str, Any] = {"id": f"{self.user}-{self.number}", "source": "credits.billing", "detail-type": detail_type}
        envelope["detail"] = {"userId": self.user, "reference": f"{self.user}-ref-{self.number}", **detail}
        outcome = self.credits_in.process(envelope)
        if outcome.kind != "applied":
            self.result.failures.append(f"{detail_type} {detail} was {outcome.kind}: {outcome.summary()}")

    def render(self, job: str, seconds: int) -> None:
        self.settle({"jobId": job, "userId": self.user, "seconds": seconds, "model": "test"}, "video.rendered")
        self.result.covered["renders"] += 1

    def settle(self, detail: dict, detail_type: str) -> None:
        envelope = {"id": f"e-{detail['jobId']}", "source": "video.generation", "detail-type": detail_type, "detail": detail}
        outcome = self.processor.process(envelope)
        if outcome.kind != "settled":
            self.result.failures.append(f"{detail_type} {detail} was {outcome.kind}")

    def tick(self) -> None:
        """One scan (scans[0]), maybe raced: by a second scan, by a render, or losing its answer (one mode a tick)."""
        from reconciler.service.ports import AmbiguousWrite

        scan, other = self.scans
        mode = self.rng.choice(["plain", "plain", "second scan first", "render in between", "answer lost"])
        commit, calls = scan.store.commit_credit_expiry, []

        def raced(plan: Any) -> None:
            calls.append(plan)
            if len(calls) == 1 and mode == "second scan first":
                booked = other.run().expired
                self.result.covered["expiries booked by a second scan first"] += len(booked)
            if len(calls) == 1 and mode == "render in between":
                self.render(f"{self.user}-race-{self.number}", self.rng.randint(1, 10))
                self.result.covered["renders racing an expiry"] += 1
            commit(plan)
            if len(calls) == 1 and mode == "answer lost":
                self.result.covered["expiries whose answer was lost"] += 1
                raise AmbiguousWrite("the answer was lost")

        scan.store.commit_credit_expiry = raced  # type: ignore[method-assign,assignment]
        try:
            report = scan.run()
        finally:
            del scan.store.commit_credit_expiry
        self.result.covered["ticks"] += 1
        self.result.covered["expiries decided again"] += max(len(calls) - len(report.expired) - report.gone, 0)
        self.result.failures += [f"a tick deferred {ledger_id}: {reason}" for ledger_id, reason in report.deferred]
        self.result.failures += [f"a tick's listing was interrupted: {report.interrupted}"] if report.interrupted else []

    def check(self) -> None:
        """The oracle's verdict on the seed (module docstring)."""
        from reconciler.domain.consumption import expiry_ledger_id

        fail, covered = self.result.failures.append, self.result.covered
        entries = list(self.store.ledger_for_user(self.user))
        expected, unexpected = oracle_remainders(entries)
        fail(f"entries the phase cannot make: {unexpected}") if unexpected else None
        expiries = [entry for entry in entries if entry.category == "expiry"]
        credits_ = {entry.ledger_id: entry for entry in entries if entry.expires_at}
        for entry in expiries:
            credit = credits_.get(entry.reference)
            if credit is None or entry.ledger_id != expiry_ledger_id(credit.ledger_id) or entry.timestamp <= (credit.expires_at or ""):
                fail(f"expiry {entry.ledger_id} ({entry.timestamp}) is not of a credit that had expired: {credit}")
            if entry.amount != expected[entry.ledger_id]:
                fail(f"{entry.ledger_id} removed {entry.amount}; the rule left {expected[entry.ledger_id]}")
        booked = Counter(entry.reference for entry in expiries)
        fail(f"credits expired twice: {[c for c, n in booked.items() if n > 1]}") if any(n > 1 for n in booked.values()) else None
        final = self.clock()
        for credit in credits_.values():
            left = _left_at_expiry(entries, credit)
            if (credit.expires_at or final) < final and left and credit.ledger_id not in booked:
                fail(f"{credit.ledger_id} expired at {credit.expires_at} with {left} left, and no tick removed it")
        announced = Counter(event["creditLedgerId"] for event in self.published if event["type"] == "credits.expired")
        if announced != booked:
            fail(f"credits.expired announced {dict(announced)}; booked {dict(booked)}")
        self._check_books(entries, expiries)
        covered["expiries booked"] += len(expiries)
        covered["credits credited with nothing left at their expiry"] += sum(1 for c in credits_.values() if c.ledger_id not in booked)
        covered["credits expired"] += sum(entry.amount for entry in expiries)

    def _check_books(self, entries: list[Any], expiries: list[Any]) -> None:
        from reconciler.domain.liability import CAME_IN_ATTRIBUTES, came_in

        balance = self.store.get_balance(self.user)
        posted = sum(entry.signed_amount for entry in entries)
        held = sum(self.aws["held"](job) for job in self.jobs)
        if balance is None or (balance.remaining or 0) + balance.held != posted or balance.held != held:
            fail = self.result.failures.append
            fail(f"books: balance {balance} against the ledger's {posted} and the open holds' {held}")
        totals: Counter = Counter()
        for entry in entries:
            found = came_in(entry.category or "", entry.signed_amount) if entry.category != "expiry" else None
            if entry.category == "expiry":
                found = came_in(entries_by_id(entries)[entry.reference].category or "", entry.signed_amount)
            if found:
                totals[found[0]] += found[1]
        stored = {name: balance.came_in.get(category, 0) for category, name in CAME_IN_ATTRIBUTES.items()} if balance else {}
        if any(stored.get(name, 0) != totals[name] for name in CAME_IN_ATTRIBUTES.values()):
            self.result.failures.append(f"running totals {stored}; came in less expired: {dict(totals)}")


def entries_by_id(entries: list[Any]) -> dict[str, Any]:
    return {entry.ledger_id: entry for entry in entries}


def _left_at_expiry(entries: list[Any], credit: Any) -> int:
    """What the oracle's model leaves of a credit at its expiry (its entries up to then)."""
    from reconciler.domain.ledger import DEBIT, LedgerEntry

    probe = LedgerEntry("expiry:probe", credit.user_id, DEBIT, 1, "", credit.ledger_id, credit.expires_at + "~", category="expiry")
    before = [entry for entry in entries if entry.timestamp <= credit.expires_at]
    expected, _ = oracle_remainders([*before, probe])
    return expected["expiry:probe"]


def stage() -> dict[str, Any]:
    """The dev stage's tables in in-process moto, made as the simulator's harness makes them."""
    import os

    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    import boto3
    from moto import mock_aws

    from emulator import fidelity
    from emulator.resources import provision
    from emulator.stack import templates_for
    from reconciler.config import RuntimeConfig
    from reconciler.repository.dynamodb import from_item, to_item

    fidelity.install()
    mock = mock_aws()
    mock.start()
    session = boto3.session.Session(region_name="us-east-1")
    resources = provision(templates_for("dev"), "dev", session)
    config = RuntimeConfig.from_env(resources.runtime_environment())
    dynamodb = session.client("dynamodb")

    def held(job: str) -> int:
        item = dynamodb.get_item(TableName=config.settlements_table, Key=to_item({"jobId": job}), ConsistentRead=True).get("Item")
        record = from_item(item) if item else {}
        return int(record.get("heldCredits", 0)) if "holdUser" in record else 0

    return {"dynamodb": dynamodb, "sqs": session.client("sqs"), "config": config, "held": held, "mock": mock}


def run_seeds(seeds: range) -> tuple[Counter, list[str]]:
    aws, covered, failures = stage(), Counter[str](), list[str]()
    try:
        for seed in seeds:
            result = Seed(seed, aws).run()
            covered.update(result.covered)
            failures += [f"seed {seed}: {failure}" for failure in result.failures]
    finally:
        aws["mock"].stop()
    return covered, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first", type=int, default=0)
    options = parser.parse_args(argv)
    covered, failures = run_seeds(range(options.first, options.first + options.seeds))
    for name, count in sorted(covered.items()):
        print(f"  {name}: {count}")
    for failure in failures:
        print(f"FAIL {failure}")
    print(f"credit expiry: {options.seeds} seeds, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
