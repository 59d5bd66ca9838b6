"""Which credits a debit consumes: the one consumption rule (docs/ledger.md, "Credits that expire").

Pure. Decided afterwards, from a user's ordered ledger (both tables merged, by timestamp then ledger id), never on
the render path: renders settle against the single balance as before. Every credit of a credits-in category (paid,
promotional, goodwill) is a **lot**; every other credit (an adjustment, a correction, an opening balance) is a lot of
category `other`, which never expires. A debit (a render, an adjustment's or a correction's debit, a revocation, a
legacy reservation) consumes lots in this order: promotional, then goodwill, then paid, then other; within a category
the soonest-expiring first (no expiry last), then the oldest (then by ledger id, so ties are decided). A lot is
consumable only until its `expiresAt`: a debit later than that does not touch it. An expiry entry (category
`expiry`) consumes its own lot, named by its reference. What no lot covers is debt (an overdraft): lots are never
negative, and the next credit repays the debt before it becomes a lot. A job's giveback (a legacy reservation's
release or refund) goes back to the lots its reservation consumed, newest consumption first; what belonged to a lot
that has expired since becomes a lot of that category without expiry (its expiry is booked once and cannot run
again). So at every point: the lots' remainders less the debt equal the ledger's sum (the posted balance).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from reconciler.domain.credits_in import GOODWILL, PAID, PROMOTIONAL
from reconciler.domain.ledger import CREDIT, DEBIT, LedgerEntry

EXPIRY, OTHER = "expiry", "other"
CONSUMED_FIRST = (PROMOTIONAL, GOODWILL, PAID, OTHER)
_GIVEBACKS = (":release", ":refund")


@dataclass
class Lot:
    ledger_id: str
    category: str
    timestamp: str
    expires_at: str | None
    remaining: int
    expired: int = 0  # what its expiry entry booked

    def consumable_at(self, moment: str) -> bool:
        return self.remaining > 0 and (self.expires_at is None or moment <= self.expires_at)

    def order(self) -> tuple[int, bool, str, str, str]:
        return (CONSUMED_FIRST.index(self.category), self.expires_at is None, self.expires_at or "", self.timestamp, self.ledger_id)


@dataclass
class Consumption:
    """The user's lots as the rule leaves them, the debt no lot covered, and what each job's debits took (for its
    giveback)."""

    lots: dict[str, Lot] = field(default_factory=dict)
    debt: int = 0
    taken: dict[str, list[tuple[str, int]]] = field(default_factory=dict)

    @property
    def balance(self) -> int:
        return sum(lot.remaining for lot in self.lots.values()) - self.debt

    def unconsumed(self, lot_id: str) -> int:
        lot = self.lots.get(lot_id)
        return 0 if lot is None else lot.remaining


def lot_category(entry: LedgerEntry) -> str:
    return entry.category if entry.category in (PAID, PROMOTIONAL, GOODWILL) else OTHER


def ordered(entries: Iterable[LedgerEntry]) -> list[LedgerEntry]:
    return sorted(entries, key=lambda entry: (entry.timestamp, entry.ledger_id))


def consume(entries: Iterable[LedgerEntry]) -> Consumption:
    """The rule applied to a user's ledger (any order in: it is sorted here)."""
    state = Consumption()
    for entry in ordered(entries):
        if entry.category == EXPIRY:
            _expire(state, entry)
        elif entry.type == CREDIT and _job_key(entry, _GIVEBACKS) in state.taken:
            _give_back(state, entry)
        elif entry.type == CREDIT:
            _add_lot(state, entry.ledger_id, lot_category(entry), entry.timestamp, entry.expires_at, entry.amount)
        else:
            taken = _take(state, entry.amount, entry.timestamp)
            key = _job_key(entry, (":reserve",))
            if key is not None:
                state.taken.setdefault(key, []).extend(taken)
    return state


def _add_lot(state: Consumption, lot_id: str, category: str, timestamp: str, expires_at: str | None, amount: int) -> None:
    repaid = min(state.debt, amount)
    state.debt -= repaid
    lot = state.lots.get(lot_id)
    if lot is None:
        state.lots[lot_id] = Lot(lot_id, category, timestamp, expires_at, amount - repaid)
    else:  # a second credit under one id (never written by the reconciler): one lot, both amounts
        lot.remaining += amount - repaid


def _take(state: Consumption, amount: int, moment: str) -> list[tuple[str, int]]:
    """Consumes `amount` by the rule at `moment`; what no lot covers becomes debt."""
    taken, rest = [], amount
    for lot in sorted((lot for lot in state.lots.values() if lot.consumable_at(moment)), key=Lot.order):
        share = min(rest, lot.remaining)
        lot.remaining -= share
        taken.append((lot.ledger_id, share))
        rest -= share
        if rest == 0:
            break
    state.debt += rest
    return taken


def _expire(state: Consumption, entry: LedgerEntry) -> None:
    lot = state.lots.get(entry.reference)
    share = 0 if lot is None else min(lot.remaining, entry.amount)
    if lot is not None:
        lot.remaining -= share
        lot.expired += entry.amount
    if entry.amount > share:  # more than the rule left (booked by another writer): consumed like any debit
        _take(state, entry.amount - share, entry.timestamp)


def _give_back(state: Consumption, entry: LedgerEntry) -> None:
    """Back to the lots the job's reservation took, the last taken first; what it took from no lot repays the debt
    (then is a lot of category other)."""
    key = _job_key(entry, _GIVEBACKS) or ""
    taken = state.taken[key]
    rest = entry.amount
    while rest and taken:
        lot_id, share = taken.pop()
        back = min(rest, share)
        if back < share:
            taken.append((lot_id, share - back))
        lot = state.lots[lot_id]
        if lot.expired or (lot.expires_at is not None and entry.timestamp > lot.expires_at):
            _add_lot(state, f"{entry.ledger_id}#{lot_id}", lot.category, entry.timestamp, None, back)
        else:
            lot.remaining += back
        rest -= back
    if rest:
        _add_lot(state, entry.ledger_id, OTHER, entry.timestamp, None, rest)


def _job_key(entry: LedgerEntry, suffixes: tuple[str, ...]) -> str | None:
    """`job:{n}:{jobId}` of a job posting with one of the suffixes (the postings of one job share it)."""
    if not entry.ledger_id.startswith("job:"):
        return None
    for suffix in suffixes:
        if entry.ledger_id.endswith(suffix):
            return entry.ledger_id[: -len(suffix)]
    return None


def expiry_ledger_id(credit_ledger_id: str) -> str:
    """`expiry:{n}:{the credit's ledger id}`: one expiry per credit, whoever books it and however often."""
    return f"expiry:{len(credit_ledger_id)}:{credit_ledger_id}"


@dataclass(frozen=True)
class CreditExpiry:
    """What the rule leaves of a credit at its expiry, decided on the balance version the ledger was read at; booked
    as one expiry entry (none when nothing is left)."""

    credit: LedgerEntry
    expired: int
    version: int
    timestamp: str

    @property
    def ledger_id(self) -> str:
        return expiry_ledger_id(self.credit.ledger_id)

    @property
    def entry(self) -> LedgerEntry | None:
        if self.expired <= 0:
            return None
        return LedgerEntry(
            ledger_id=self.ledger_id,
            user_id=self.credit.user_id,
            type=DEBIT,
            amount=self.expired,
            description=f"Expired, {self.credit.category}: what was left of {self.credit.ledger_id} at {self.credit.expires_at}",
            reference=self.credit.ledger_id,
            timestamp=self.timestamp,
            category=EXPIRY,
        )


def plan_credit_expiry(credit: LedgerEntry, ledger: Iterable[LedgerEntry], version: int, now: str) -> CreditExpiry | None:
    """The expiry of `credit` decided on the user's whole ledger (read at balance `version`); None when its expiry has
    not passed at `now`, or is booked already."""
    if credit.expires_at is None or credit.expires_at > now:
        return None
    entries = list(ledger)
    if any(entry.ledger_id == expiry_ledger_id(credit.ledger_id) for entry in entries):
        return None
    return CreditExpiry(credit, consume(entries).unconsumed(credit.ledger_id), version, now)
