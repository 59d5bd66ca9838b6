"""The state checker's models, written from the design documents, never from the runtime's code: the prices,
the events the scenario generated, the books as the holds design says they must move (replayed in commit
order), how each delivered event must end, and the balance events docs/events.md says a Credits stream must
produce. Nothing here imports the product: a bug shared by the product and its own helpers stays visible.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

# How a job's reservation was made: a recorded hold (no posting), posted by v2, or a hold on the Jobs item made before
# settlement records; the last two only on Jobs items created before the cut-off (CUT_OFF).
HOLD, LEGACY, LEGACY_HOLD = "hold", "legacy", "legacy-hold"
# runtime/reconciler/contract.py, StageLimits.legacy_reservations_before (docs/pipeline.md), restated.
CUT_OFF = "2026-12-07T00:00:00.000Z"
SETTLED, DUPLICATE, CONFLICT, REJECTED = "settled", "duplicate", "conflict", "rejected"

# Credits per second of rendered video: runtime/reconciler/domain/prices.json restated, with the dev stage's
# overrides (infra/config.py: HD at half price), the stage every run deploys. Exact fractions, no rounding.
PRICES = {
    "test": Fraction(1),
    "standard-v1": Fraction(2),
    "standard-v2": Fraction(5, 2),
    "hd-v1": Fraction(2),  # 4 in prices.json
    "hd-v2": Fraction(5, 2),  # 5 in prices.json
    "4k-v1": Fraction(12),
}


# Deploys of new prices during a run (simulator.config_changes): each a new table, in the order deployed.
PRICE_DEPLOYS = (
    {**PRICES, "test": Fraction(3, 2), "hd-v2": Fraction(3)},
    {**PRICES, "standard-v1": Fraction(9, 4), "test": Fraction(1, 2)},
)


def prices_at(epoch: int) -> dict[str, Fraction]:
    """The price table after `epoch` deploys."""
    return PRICES if epoch == 0 else PRICE_DEPLOYS[epoch - 1]


def render_cost(model: str, seconds: Fraction, epoch: int = 0) -> int:
    """prices.json's rule: a render costs ceil(seconds * price) whole credits (a started credit is spent)."""
    return math.ceil(seconds * prices_at(epoch)[model])


@dataclass(frozen=True)
class GeneratedEvent:
    """A valid terminal event, as the scenario generated it."""

    event_id: str
    kind: str  # "rendered" or "failed"
    job_id: str
    user: str
    seconds: Fraction | None = None  # renders only
    model: str | None = None

    @property
    def cost(self) -> int:
        return render_cost(self.model or "", self.seconds or Fraction(0)) if self.kind == "rendered" else 0


def generated_event(envelope: dict) -> GeneratedEvent:
    """Reads back what the scenario put in a valid event's envelope (simulator.scenario: a detail dict, or the
    same detail as JSON text); only for events the scenario generated valid."""
    detail: Any = envelope["detail"]
    if isinstance(detail, str):
        detail = json.loads(detail, parse_float=Decimal)
    kind = str(envelope["detail-type"]).removeprefix("video.")
    seconds = Fraction(detail["seconds"]) if kind == "rendered" else None  # exact from an int, a Decimal or a float
    return GeneratedEvent(envelope["id"], kind, detail["jobId"], detail["userId"], seconds, detail.get("model") if kind == "rendered" else None)


@dataclass
class OracleJob:
    user: str  # its owner: the user of its settlement record, else of its Jobs item
    reserved: int = 0
    kind: str = ""  # HOLD, LEGACY, LEGACY_HOLD, or "" (no reservation that counts)
    settled: str | None = None
    before_the_run: bool = False  # settled by the v2 code in the seeded world
    # The world stored it damaged: "always" (every event of it is refused: the write's condition on the item fails,
    # so the item is read), "maybe" (refused only when a retry reads the item; a first attempt does not read it).
    damaged: str = ""
    settled_by: tuple[str, str] | None = None  # (event id, Lambda request id) of its settlement
    conflicts: set[tuple[str, str]] = field(default_factory=set)  # (event id, request id) of each conflict recorded
    recorded: bool = False  # it has a settlement record (a hold made, or a settlement in the run)
    released: bool = False  # its recorded hold was given back by release()
    hold_model: str | None = None  # the model and unit price a recorded hold was made at, and the price deploys then
    unit_price: Fraction | None = None
    held_epoch: int = 0
    expires_at: str | None = None  # a recorded hold's expiry, as the hold call asked for it (simulator.expiries)
    expired: bool = False  # its hold was released by the timer scan at its expiry

    @property
    def holding(self) -> int:
        """What it holds on its user's `held` now."""
        return self.reserved if self.kind in (HOLD, LEGACY_HOLD) and not self.settled and not self.released else 0


@dataclass
class Books:
    """An independent model of the money path (no runtime code): each user's `remaining` and `held`, each job's
    reservation and settlement, and every posting each must leave, applied one commit at a time.

    A hold moves remaining -> held and posts nothing; it is recorded with the unit price of its model then, and a
    render of that model is charged at it. Rendering a held job releases the hold and posts one charge; failing it
    releases the hold and posts nothing; release() gives it back. A v2 reservation (posted as a `reserve` debit,
    on a Jobs item created before the cut-off) is undone by postings: a release and a charge, or a refund; a hold
    written on a Jobs item before the cut-off is released like a recorded one. Reservation attributes on a later
    Jobs item count for nothing. A job without a reservation posts its charge, or nothing when it fails. Opening
    balances and adjustments are Ledger entries, so each user's initial balance is 0 and remaining + held = the
    sum of both ledgers, except what the world moved by hand (`by_hand`: remaining -> held with no hold)."""

    remaining: Counter = field(default_factory=Counter)
    held: Counter = field(default_factory=Counter)
    users: set[str] = field(default_factory=set)  # users with a Credits item
    jobs: dict[str, OracleJob] = field(default_factory=dict)
    # Job postings: ledgerId -> (table, user, type, amount); the run's go to UserLedger, v2's are in Ledger.
    postings: dict[str, tuple[str, str, str, int]] = field(default_factory=dict)
    by_hand: Counter = field(default_factory=Counter)  # held moved by hand, no hold behind it (the audit's to find)
    claimed: Counter = field(default_factory=Counter)  # held that Jobs items from before the cut-off claim, never paid
    off_ledger: Counter = field(default_factory=Counter)  # posted balance less the ledgers' sum: books damaged, not yet fixed
    damaged_balances: set[str] = field(default_factory=set)  # users whose Credits item holds figures that are not numbers
    epoch: int = 0  # the price deploys so far (PRICE_DEPLOYS)

    def adjust(self, user: str, amount: int) -> None:
        self.users.add(user)
        self.remaining[user] += amount

    def covers(self, user: str, credits: int) -> bool:
        return user in self.users and self.remaining[user] >= credits

    def post(self, job_id: str, user: str, posting: str, kind: str, amount: int, table: str) -> None:
        self.postings[job_ledger_id(job_id, posting)] = (table, user, kind, amount)

    def v2_reservation(self, job_id: str, user: str, credits: int, kind: str = LEGACY) -> None:
        """A reservation made on a Jobs item before the cut-off: v2's (posted) or a hold of the code before records."""
        if kind == LEGACY:
            self.adjust(user, -credits)
            self.post(job_id, user, "reserve", "debit", credits, "Ledger")
        else:
            self.adjust(user, -credits)
            self.held[user] += credits
        self.jobs[job_id] = OracleJob(user, credits, kind)

    def hold(self, job_id: str, user: str, credits: int, model: str, epoch: int) -> list[str]:
        problems = []
        if not self.covers(user, credits):
            have = self.remaining[user] if user in self.users else "no balance"
            problems.append(f"a hold of {credits} for job {job_id!r} was made while {user!r} had {have} to spend")
        job = self.jobs.get(job_id)
        if job is not None and (job.reserved or job.settled or job.recorded):
            problems.append(f"job {job_id!r} was reserved again (it held {job.reserved} ({job.kind}), settled {job.settled})")
        self.adjust(user, -credits)
        self.held[user] += credits
        self.jobs[job_id] = OracleJob(user, credits, HOLD, recorded=True, hold_model=model, unit_price=prices_at(epoch)[model], held_epoch=epoch)
        return problems

    def release(self, job_id: str, expired: bool = False) -> list[str]:
        """A recorded hold given back: by the pipeline's release(), or (`expired`) by the timer scan at its expiry."""
        job = self.jobs.get(job_id)
        if job is None or job.kind != HOLD or not job.holding:
            how = "at its expiry" if expired else ""
            return [f"a hold of job {job_id!r} was released {how}, but the oracle knows no open hold of it (released twice, or settled)"]
        job.released, job.expired = True, expired
        self.held[job.user] -= job.reserved
        self.adjust(job.user, job.reserved)
        return []

    def unit_price(self, job_id: str, model: str, epoch: int) -> Fraction:
        """The price a render of `model` is charged at: its hold's, when held for that model; else the price book's."""
        job = self.jobs.get(job_id)
        if job is not None and job.unit_price is not None and job.hold_model == model:
            return job.unit_price
        return prices_at(epoch)[model]

    def cost(self, event: GeneratedEvent, epoch: int) -> int:
        if event.kind != "rendered":
            return 0
        return math.ceil((event.seconds or Fraction(0)) * self.unit_price(event.job_id, event.model or "", epoch))

    def settle(self, job_id: str, user: str, outcome: str, cost: int, by: tuple[str, str], table: str = "UserLedger") -> tuple[int, bool]:
        """Applies a settlement by (event id, request id); returns (its change to remaining, whether it settles
        into an overdraft)."""
        job = self.jobs.setdefault(job_id, OracleJob(user))
        job.settled_by, job.recorded = by, job.recorded or table == "UserLedger"
        reserved, kind, holding = job.reserved, job.kind, job.holding
        given_back = reserved if kind == LEGACY else holding
        if outcome == "rendered":
            if kind == LEGACY:
                self.post(job_id, user, "release", "credit", reserved, table)
            self.post(job_id, user, "charge", "debit", cost, table)
            change = given_back - cost
        else:
            if kind == LEGACY:
                self.post(job_id, user, "refund", "credit", reserved, table)
            change = given_back
        self.held[user] -= holding
        if outcome == "rendered" or given_back:  # a settlement that moves anything writes (or creates) the Credits item
            self.adjust(user, change)
        job.settled = outcome
        return change, change < 0 and self.remaining[user] < 0

    def given_back(self, job_id: str) -> int:
        """What a settlement of the job now gives back to `remaining` (its hold, or its v2 reservation)."""
        job = self.jobs.get(job_id)
        if job is None or job.settled:
            return 0
        return job.reserved if job.kind == LEGACY else job.holding

    def record_conflict(self, job_id: str, event_id: str, request_id: str) -> None:
        self.jobs[job_id].conflicts.add((event_id, request_id))

    def expected_outcome(self, event: GeneratedEvent, request_id: str) -> str:
        """How a delivery of `event` in Lambda request `request_id` must end, from what the books know of its job
        now (in commit order, so after this delivery's own writes). The settlement design, restated: an event of
        another user's job, or of a damaged job, is refused; a settled job never moves again, so the same terminal
        event is a duplicate and the other one a conflict (recorded; its redelivery is a duplicate); but a
        settlement or a conflict this very event wrote in this very request is this delivery's own (its answer
        was lost or its invocation timed out), reported as such. A job damaged only where a retry reads it is
        settled by a first attempt, or refused once a retry reads it."""
        job = self.jobs.get(event.job_id)
        if job is not None and (job.user != event.user or job.damaged in ("always", "balance")):
            return REJECTED
        if job is None or job.settled is None:
            # No outcome but a rejection can leave the job unsettled: one of a damaged item that a retry read.
            return REJECTED if job is not None and job.damaged else "unsettled"
        if job.settled_by == (event.event_id, request_id):
            return SETTLED
        if (event.event_id, request_id) in job.conflicts:
            return CONFLICT
        if job.settled == event.kind or event.event_id in {conflict for conflict, _ in job.conflicts}:
            return DUPLICATE
        return CONFLICT

    def refuses_reservation(self, job_id: str, user: str, credits: int) -> str | None:
        """Why the holds design refuses a hold for this job now (None: it may hold, or is already in place):
        another user's job, a settled one, one whose hold was released, or one reserved with other credits."""
        job = self.jobs.get(job_id)
        if job is None or not (job.recorded or job.kind in (LEGACY, LEGACY_HOLD)):
            return None  # a Jobs item the pipeline wrote says nothing of holds
        if job.user != user:
            return f"the job is {job.user!r}'s"
        if job.settled:
            return f"the job is settled ({job.settled})"
        if job.released:
            return "its hold was released"
        if job.reserved and job.reserved != credits:
            return f"the job holds {job.reserved}"
        return None

    def off_the_books(self) -> dict[str, tuple[int, int]]:
        """user -> what the audit must find off: (posted less the ledgers' sum, held less the open holds as the audit counts
        them: held by hand, less held claimed), for the users off at all; users with damaged balances are not audited."""
        off = {
            user: (self.off_ledger[user], self.by_hand[user] - self.claimed[user])
            for user in set(self.off_ledger) | set(self.by_hand) | set(self.claimed)
        }
        return {user: figures for user, figures in off.items() if any(figures) and user not in self.damaged_balances}

    def open_holds(self) -> Counter:
        held: Counter = Counter()
        for job in self.jobs.values():
            held[job.user] += job.holding
        return held


def job_ledger_id(job_id: str, posting: str) -> str:
    """docs/ledger.md's job ledger id, restated: `job:{len}:{jobId}:{posting}`."""
    return f"job:{len(job_id)}:{job_id}:{posting}"


BALANCE_SOURCE = "credits.reconciler"


def ground_truth(records: list[dict], defaults: tuple[int, int]) -> dict[str, dict]:
    """crossingId -> the crossing, from the stream records in stream order: docs/events.md re-stated, without
    the runtime's code. A balance is in `low` (balance < low), `exhausted` (<= 0), `overdrawn` (< alert level);
    a change emits each condition it enters and `credits.restored` when it leaves low, in balance order
    (restored first: it is the only upward crossing); the NewImage's overrides judge both sides; a new item was
    in no condition; REMOVE records and damaged ones (a remaining that is not a whole number) emit nothing."""
    truth: dict[str, dict] = {}
    for record in records:
        data = record["dynamodb"]
        if record["eventName"] == "REMOVE" or "NewImage" not in data:
            continue
        new, old = data["NewImage"], data.get("OldImage")
        after, before = whole_number(new.get("remaining", {"N": "0"})), None if old is None else whole_number(old.get("remaining", {"N": "0"}))
        if after is None or (old is not None and before is None):
            continue
        low = whole_number(new.get("lowBalanceThreshold"))
        low = low if low is not None and low >= 1 else defaults[0]
        level = whole_number(new.get("overdraftAlertLevel"))
        level = level if level is not None and level <= 0 else defaults[1]
        levels = (("credits.low", low), ("credits.exhausted", 0), ("credits.overdrawn", level))

        def inside(balance: int | None, low: int = low, level: int = level) -> list[bool]:
            if balance is None:
                return [False, False, False]
            return [balance < low, balance <= 0, balance < level]

        was, now = inside(before), inside(after)
        found = [("credits.restored", low)] if was[0] and not now[0] else []
        found += [levels[i] for i in range(3) if now[i] and not was[i]]
        user, sequence = data["Keys"]["userId"]["S"], data["SequenceNumber"]
        for position, (detail_type, threshold) in enumerate(found):
            truth[crossing_id(user, sequence, detail_type)] = {
                "detail-type": detail_type,
                "userId": user,
                "sequence": sequence,
                "position": position,
                "balanceBefore": before,
                "balanceAfter": after,
                "threshold": threshold,
            }
    return truth


def whole_number(value: dict | None) -> int | None:
    """A DynamoDB number attribute that is a whole number, else None (text, a fraction, anything else)."""
    if not isinstance(value, dict) or "N" not in value:
        return None
    number = Decimal(value["N"])
    return int(number) if number == number.to_integral_value() else None


def crossing_id(user: str, sequence: str, detail_type: str) -> str:
    """docs/events.md: the first 32 hex digits of the SHA-256 of the length-prefixed user, sequence number and detail-type."""
    text = f"crossing:v1:{len(user)}:{user}:{len(sequence)}:{sequence}:{detail_type}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
