"""Credits in (issue #24): purchases, grants and revocations in a phase of their own, its generator, its oracle and its
invariants (docs/events.md, "Credits in", restated here, never imported from the product).

In seven runs of ten, after the other tasks (so the runs without it are what they were), one or two users receive
purchases (each with its payment reference, amount paid and currency), promotional and goodwill grants, and
revocations (a refund of a purchase, a chargeback, one larger than anything left: an overdraft), each delivered once,
twice or three times (the same EventBridge event again, or billing's webhook sent again as a new event), on two or
three workers beside a hold, its render, a failure and an operator's adjustment of the same user, under the run's
fault plan and Lambda's retries. Some reuse a reference for another amount (one of the two is refused, whichever
commits second) and some are invalid (a currency in lower case). The oracle books each application once per ledger
id in commit order: the balance, the user's running total of each category, whether a revocation overdraws.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from simulator.scenario import MODELS, Task, terminal_event

if TYPE_CHECKING:
    from simulator.records import Attempt
    from simulator.run import Invocation, Run
    from simulator.tables import Tables

SOURCE = "credits.billing"
# docs/events.md's table, restated: detail-type -> (ledger-id prefix, entry type)
KINDS = {"credits.purchased": ("purchase", "credit"), "credits.granted": ("grant", "credit"), "credits.revoked": ("revocation", "debit")}
# The running total each category moves (docs/events.md, "The liability"): refunds and chargebacks take back paid credits.
CREDITS_IN_PREFIXES = tuple(f"{prefix}:" for prefix, _ in KINDS.values())
RUNNING_TOTAL = {"paid": "paid", "promotional": "promotional", "goodwill": "goodwill", "refund": "paid", "chargeback": "paid"}
PHASE_FAULTS = 6  # faults the phase may inject at the run's fault rate, whatever the other tasks left of the run's budget
OVERDRAWING = 10**6  # a chargeback larger than anything a run can have left


@dataclass(frozen=True)
class Application:
    """One credits-in event as generated: what it must book."""

    detail_type: str
    user: str
    credits: int
    reference: str
    category: str
    amount_paid: str | None = None
    currency: str | None = None
    payment_reference: str | None = None

    @property
    def ledger_id(self) -> str:
        return f"{KINDS[self.detail_type][0]}:{len(self.reference)}:{self.reference}"

    @property
    def signed(self) -> int:
        return -self.credits if KINDS[self.detail_type][1] == "debit" else self.credits

    def envelope(self, event_id: str, currency: str | None = None) -> dict:
        detail: dict[str, Any] = {"userId": self.user, "credits": self.credits, "reference": self.reference}
        if self.detail_type != "credits.purchased":
            detail["category"] = self.category
        if self.amount_paid is not None:
            detail.update(amountPaid=self.amount_paid, currency=currency or self.currency)
        if self.payment_reference is not None:
            detail["paymentReference"] = self.payment_reference
        return {
            "version": "0",
            "id": event_id,
            "detail-type": self.detail_type,
            "source": SOURCE,
            "account": "123456789012",
            "time": "2026-12-01T12:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        }


def credits_in_tasks(rng: random.Random, setup: list[Task]) -> tuple[list[Task], int]:
    """The phase's tasks (one "step") and its workers; none in three runs of ten."""
    opened = sorted({task.args[0] for task in setup if task.kind == "adjust" and task.args[1]})
    if not opened or rng.random() >= 0.7:
        return [], 1
    tasks: list[Task] = []
    for user in rng.sample(opened, min(len(opened), rng.choice([1, 1, 2]))):
        tasks += _one_users_credits(rng, user)
        tasks += _beside_them(rng, user)
    if rng.random() < 0.3:  # a user with no Credits item yet: a chargeback overdraws from 0, or a grant creates the item
        first = Application("credits.revoked", "fresh-user", 7, "dp_fresh", "chargeback", "7.00", "USD")
        if rng.random() < 0.5:
            first = Application("credits.granted", "fresh-user", 15, "welcome-fresh", "promotional")
        tasks += _deliveries(rng, first, "fresh")
    rng.shuffle(tasks)
    return [Task("step", tuple(tasks))], rng.choice([2, 3])


def _one_users_credits(rng: random.Random, user: str) -> list[Task]:
    """A user's purchases, a grant, a refund of a purchase, a chargeback beyond the balance, a reused reference, bad input."""
    tag = f"{len(user)}{user[:1]}"
    apps: list[Application] = []
    purchases = []
    for number in range(rng.randint(1, 2)):
        paid, currency = rng.choice(["9.99", "19.99", "0", "120"]), rng.choice(["USD", "EUR"])
        purchases.append(Application("credits.purchased", user, rng.choice([10, 50, 100]), f"pi_{tag}_{number}", "paid", paid, currency))
    apps += purchases
    apps.append(Application("credits.granted", user, rng.choice([5, 20]), f"grant-{tag}", rng.choice(["promotional", "goodwill"])))
    if rng.random() < 0.6:
        bought = rng.choice(purchases)
        credits, money = rng.randint(1, bought.credits), (bought.amount_paid, bought.currency)
        apps.append(Application("credits.revoked", user, credits, bought.reference, "refund", *money, bought.reference))
    if rng.random() < 0.6:
        apps.append(Application("credits.revoked", user, OVERDRAWING, f"dp_{tag}", "chargeback", "5000.00", "USD"))
    tasks = [task for number, app in enumerate(apps) for task in _deliveries(rng, app, f"{tag}-{number}")]
    if rng.random() < 0.4:  # the same reference for another amount: whichever commits second is refused
        original = rng.choice(apps[:-1] or apps)
        reused = Application(original.detail_type, user, original.credits + rng.choice([1, 3]), original.reference, original.category,
                             original.amount_paid, original.currency, original.payment_reference)  # fmt: skip
        tasks.append(Task("credits", (reused.envelope(f"ci-{tag}-reused"), reused), "reused"))
    if rng.random() < 0.5:
        bad = Application("credits.purchased", user, 10, f"pi_{tag}_bad", "paid", "10.00", "USD")
        tasks.append(Task("credits", (bad.envelope(f"ci-{tag}-bad", currency="usd"), bad), "invalid"))
    return tasks


def _deliveries(rng: random.Random, app: Application, tag: str) -> list[Task]:
    """One to three deliveries: EventBridge's again (the same event id), or billing's webhook again (a new event id)."""
    count = rng.choice([1, 1, 2, 2, 3])
    ids = [f"ci-{tag}" if number == 0 or rng.random() < 0.5 else f"ci-{tag}-again-{number}" for number in range(count)]
    return [Task("credits", (app.envelope(event_id), app), "valid") for event_id in ids]


def _beside_them(rng: random.Random, user: str) -> list[Task]:
    """A hold and its render (or failure), and an operator's adjustment, of the same user meanwhile."""
    job_id = f"ci-job-{user}"
    steps = (
        Task("adjust", (user, 40, f"ci-top-up-{user}")),
        Task("reserve", (job_id, user, rng.choice(MODELS), rng.choice([1, 5]))),
        Task("event", (terminal_event(rng.choice(["rendered", "failed"]), job_id, user, f"e-{job_id}", rng),), "valid"),
    )
    return [Task("sequence", steps), Task("adjust", (user, rng.choice([-3, 8]), f"ci-adjust-{user}"))]


@dataclass
class Booked:
    """A ledger id the oracle saw committed: by which application, request and attempt, and whether it overdrew."""

    app: Application
    request_id: str
    attempt: Attempt | None
    overdraft: bool


@dataclass
class CreditsIn:
    """The run's credits-in phase: the oracle's books of it, and what the invariants need."""

    run: Run
    booked: dict[str, Booked] = field(default_factory=dict)
    came_in: dict[str, Counter] = field(default_factory=dict)  # user -> running total -> credits (the oracle's)
    problems: list[str] = field(default_factory=list)
    alerts: list[tuple[str, bool]] = field(default_factory=list)  # (outcome, overdraft) of each credits-in alert made
    reported: Counter = field(default_factory=Counter)  # metrics the answered, committing attempts must have emitted
    needed: list[tuple[str, bool]] = field(default_factory=list)  # (outcome, overdraft) of each answer that needs a person

    def run_phase(self) -> bool:
        run = self.run
        if not run.s.credits_in:
            return True
        run.result.covered["credits-in:phases"] += 1
        run.faults_left = max(run.faults_left, PHASE_FAULTS)  # a budget of its own: the other tasks may have spent the run's
        placing, finished = random.Random(f"{run.s.seed}-credits-in-queues"), True
        for step in run.s.credits_in:
            queues: list[list[Task]] = [[] for _ in range(run.s.credits_in_workers)]
            for task in step.args:
                queues[placing.randrange(len(queues))].append(task)
            with self._alerts_observed():
                finished = run.scheduler.run([partial(run.execute_queue, queue) for queue in queues]) and finished
        return finished

    def _alerts_observed(self) -> Any:
        from contextlib import contextmanager

        from reconciler.notify import credits_alerts

        @contextmanager
        def observed() -> Iterator[None]:
            original = credits_alerts.from_credits_outcome

            def spied(outcome: Any, *args: Any, **kwargs: Any) -> Any:
                made = original(outcome, *args, **kwargs)
                if made is not None:
                    self.alerts.append((outcome.kind, outcome.overdraft))
                    if outcome.kind == "rejected":
                        self.run.alert_attempts.append("rejected")  # the run's count of alerts for dead letters
                return made

            credits_alerts.from_credits_outcome = spied  # read at each call by the handler
            try:
                yield
            finally:
                credits_alerts.from_credits_outcome = original

        return observed()

    def committed(self, task: Task, params: dict) -> None:
        """A credits-in transaction committed (simulator.commits): its entry is the oracle's, applied once per ledger id."""
        app: Application = task.args[1]
        tables = self.run.h.resources.tables
        puts = [op["Put"]["Item"] for op in params.get("TransactItems", []) if "Put" in op and op["Put"]["TableName"] == tables["Ledger"]]
        found = [
            (item["ledgerId"]["S"], item["userId"]["S"], item["type"]["S"], int(item["amount"]["N"]), item.get("category", {}).get("S"))
            for item in puts
        ]
        expected = (app.ledger_id, app.user, KINDS[app.detail_type][1], app.credits, app.category)
        if found != [expected]:
            self.problems.append(f"a delivery of {app.ledger_id!r} committed the entries {found}; the oracle says {[expected]}")
        if app.ledger_id in self.booked:
            self.problems.append(f"{app.ledger_id!r} was applied twice: by {self.booked[app.ledger_id].app} and by {app}")
        books = self.run.books
        overdraft = app.signed < 0 and not books.covers(app.user, app.credits)
        self.booked[app.ledger_id] = Booked(app, self.run.local.request_id, getattr(self.run.local, "attempt", None), overdraft)
        books.adjust(app.user, app.signed)
        self.came_in.setdefault(app.user, Counter())[RUNNING_TOTAL[app.category]] += app.signed
        self.run.result.covered[f"credits-in:applied:{app.category}{':overdraft' if overdraft else ''}"] += 1

    def answered(self, invocation: Invocation, summary: dict) -> None:
        """The handler's answer to a delivery, against the oracle's books in commit order."""
        task, app = invocation.task, invocation.task.args[1]
        expected, booked = self._expected(invocation)
        kind = summary.get("outcome")
        covered = self.run.result.covered
        covered[f"credits-in:outcome:{kind}:{task.expect}"] += 1
        covered["credits-in:lambda-retries"] += len(invocation.attempts) - 1
        covered["credits-in:attempts-with-faults"] += sum(1 for attempt in invocation.attempts if attempt.faults)
        if kind == "rejected" or (kind == "applied" and summary.get("overdraft")):
            self.needed.append((kind, kind == "applied"))
        if kind not in expected.split(" or "):
            self.problems.append(f"a delivery of {app.ledger_id!r} ({task.expect}) ended {kind}; the oracle says {expected}: {summary}")
        elif kind == "rejected" and task.expect != "invalid" and summary.get("field") != "reference":
            self.problems.append(f"a reused reference was refused for {summary.get('field')!r}, not its reference: {summary}")
        elif kind == "applied" and booked is not None:
            if bool(summary.get("overdraft")) != booked.overdraft:
                self.problems.append(f"{app.ledger_id!r} applied with overdraft={summary.get('overdraft')}; the oracle says {booked.overdraft}")
            self.reported["CreditsInApplied"] += 1
            self.reported["CreditsRevoked" if app.signed < 0 else "CreditsAdded"] += app.credits
            self.reported["Overdrafts"] += booked.overdraft

    def _expected(self, invocation: Invocation) -> tuple[str, Booked | None]:
        task, app = invocation.task, invocation.task.args[1]
        booked = self.booked.get(app.ledger_id)
        if task.expect == "invalid" or (booked is not None and booked.app != app):
            return "rejected", None
        if booked is None:
            return "nothing committed", None
        if booked.request_id != invocation.request_id:
            return "duplicate", None
        if booked.attempt is invocation.attempts[-1]:
            return "applied", booked
        # An earlier Lambda attempt of this request committed it and was killed: the retry finds it (a duplicate), or
        # recovers it as its own when its own write's answer was lost too (applied; the killed attempt emitted nothing).
        return "applied or duplicate", booked


# --- the invariants --------------------------------------------------------------------------------------------


def every_credits_in_delivery_ends_as_the_oracle_books_it(run: Run, tables: Tables) -> Iterator[str]:
    """every credits-in delivery ends applied (once per reference, by the delivery that committed it, overdrawn exactly when its
    revocation was beyond the balance), duplicate, or dead-lettered with its reason (invalid, or a reference reused for another
    amount); every ledger entry is the oracle's; every overdraft and every dead letter was alerted"""
    yield from run.credits_in.problems
    answered = {id(invocation.task) for invocation in run.invocations if invocation.end}
    for task in run.s.credits_in:
        for step in task.args:
            if step.kind == "credits" and id(step) not in answered:
                yield f"{step.describe()[:200]} ended nowhere"
    needed = Counter(run.credits_in.needed)
    made = Counter(run.credits_in.alerts)
    for need, count in needed.items():
        if made[need] < count:
            yield f"{count} credits-in outcome(s) {need} needed an alert, {made[need]} alert(s) made"


def every_running_total_is_the_oracles(run: Run, tables: Tables) -> Iterator[str]:
    """each Credits item's running totals of credits in (paid, promotional, goodwill) are the oracle's sums of its applications"""
    from reconciler.repository.dynamodb import from_item

    names = {"paid": "paidCredits", "promotional": "promotionalCredits", "goodwill": "goodwillCredits"}
    for user, totals in sorted(run.credits_in.came_in.items()):
        if user in run.books.damaged_balances:
            continue
        key = {"userId": {"S": user}}
        item = from_item(run.h.fidelity.read_item(run.h.dynamodb, run.h.resources.tables["Credits"], key) or {})
        found = {total: int(item.get(name, 0)) for total, name in names.items()}
        if found != {total: totals[total] for total in names}:
            yield f"{user!r}'s running totals are {found}; the oracle's applications sum to {dict(totals)}"


def expected_liability(run: Run) -> dict[str, int]:
    """The book's outstanding credits by category from the oracle's books alone (docs/events.md, "The liability", restated):
    a posted balance is kept as paid, then goodwill, then promotional credits (each at most what came in), the rest `other`;
    a balance at or below zero is `overdrawn`."""
    books, summed = run.books, Counter({name: 0 for name in ("paid", "promotional", "goodwill", "other", "overdrawn")})
    for user in books.users - books.damaged_balances:
        posted, totals = books.remaining[user] + books.held[user], run.credits_in.came_in.get(user, Counter())
        if posted <= 0:
            summed["overdrawn"] += posted
            continue
        for category in ("paid", "goodwill", "promotional"):
            kept = min(posted, max(totals[category], 0))
            summed[category] += kept
            posted -= kept
        summed["other"] += posted
    return dict(summed)


# What `make sim` prints of the phase (label, counter prefix), and what every sample of 20 seeds must have generated.
CREDITS_IN_SUMMARY = (
    ("phases", "credits-in:phases"),
    ("applied: paid", "credits-in:applied:paid"),
    ("promotional", "credits-in:applied:promotional"),
    ("goodwill", "credits-in:applied:goodwill"),
    ("refunds", "credits-in:applied:refund"),
    ("chargebacks", "credits-in:applied:chargeback"),
    ("of them overdrafts", "credits-in:applied:refund:overdraft"),
    ("", "credits-in:applied:chargeback:overdraft"),
    ("deliveries applied", "credits-in:outcome:applied"),
    ("duplicates", "credits-in:outcome:duplicate"),
    ("reused references refused", "credits-in:outcome:rejected:reused"),
    ("invalid refused", "credits-in:outcome:rejected:invalid"),
    ("Lambda retries", "credits-in:lambda-retries"),
    ("attempts with faults", "credits-in:attempts-with-faults"),
    ("changes judged explained", "credits-in:changes-judged:explained"),
    ("liability categories checked", "credits-in:liability-categories-checked"),
)
REQUIRED_CREDITS_IN_COUNTERS = (
    "credits-in:applied:paid", "credits-in:applied:promotional", "credits-in:applied:goodwill", "credits-in:applied:refund",
    "credits-in:applied:chargeback:overdraft", "credits-in:outcome:applied:valid", "credits-in:outcome:duplicate:valid",
    "credits-in:outcome:rejected:reused", "credits-in:outcome:rejected:invalid", "credits-in:lambda-retries",
    "credits-in:changes-judged:explained", "credits-in:liability-categories-checked",
)  # fmt: skip


def credits_in_summary(covered: Counter) -> str:
    """One line of counts; the two overdraft counters print as one."""
    counts = [(label, sum(n for name, n in covered.items() if name.startswith(prefix))) for label, prefix in CREDITS_IN_SUMMARY]
    merged: list[tuple[str, int]] = []
    for label, count in counts:
        if not label and merged:
            merged[-1] = (merged[-1][0], merged[-1][1] + count)
        else:
            merged.append((label, count))
    return ", ".join(f"{label}={count}" for label, count in merged)


CREDITS_IN_CHECKS = (every_credits_in_delivery_ends_as_the_oracle_books_it, every_running_total_is_the_oracles)
