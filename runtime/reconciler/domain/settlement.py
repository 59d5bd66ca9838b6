"""The settlement decision: given an event, the job as stored and the balance, what must change.

A job's settlement state machine:

    unknown ──reserve──▶ reserved ──rendered──▶ settled-rendered
       │                    │
       │                    └──failed────▶ settled-failed
       ├──rendered─────────────────────────▶ settled-rendered
       └──failed───────────────────────────▶ settled-failed

A settled job never moves again: the same terminal event is a duplicate (no write), the other one a
conflict (recorded on the job, nothing moves).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from reconciler.domain.errors import InvalidEvent, InsufficientCredits, ReservationRefused
from reconciler.domain.events import VideoEvent, VideoFailed, VideoRendered
from reconciler.domain.ledger import CREDIT, DEBIT, LedgerEntry, balance_delta
from reconciler.domain.pricing import PriceBook

SUBMITTED, RENDERING, RENDERED, FAILED = "submitted", "rendering", "rendered", "failed"
TERMINAL_STATUSES = (RENDERED, FAILED)


class SettlementState(str, Enum):
    UNKNOWN = "unknown"
    OPEN = "open"
    RESERVED = "reserved"
    SETTLED_RENDERED = "settled-rendered"
    SETTLED_FAILED = "settled-failed"


@dataclass(frozen=True)
class JobRecord:
    """What settlement needs to know of a Jobs item (the pipeline owns the rest)."""

    job_id: str
    user_id: str
    status: str | None = None
    model: str | None = None
    seconds: object | None = None
    reserved_credits: int | None = None
    created_at: str | None = None
    updated_at: str | None = None
    settled_as: str | None = None
    settled_by_event: str | None = None
    conflict_event_ids: frozenset[str] = field(default_factory=frozenset)

    @property
    def state(self) -> SettlementState:
        if self.settled_as == RENDERED:
            return SettlementState.SETTLED_RENDERED
        if self.settled_as == FAILED:
            return SettlementState.SETTLED_FAILED
        if self.reserved_credits:
            return SettlementState.RESERVED
        return SettlementState.OPEN

    @property
    def is_settled(self) -> bool:
        return self.settled_as is not None


@dataclass(frozen=True)
class Settlement:
    """A job's settlement: ledger entries and the job's new state, to be written in one transaction."""

    event: VideoEvent
    job_before: JobRecord | None
    balance_before: int | None
    entries: tuple[LedgerEntry, ...]
    settled_as: str
    timestamp: str
    charged: int = 0
    released: int = 0
    refunded: int = 0

    @property
    def balance_delta(self) -> int:
        return balance_delta(self.entries)

    @property
    def balance_after(self) -> int:
        """The balance this settlement leaves, counted from the one it read (another settlement of the same
        user may commit in between; the overdraft decision is guarded against that, this figure is not)."""
        return (self.balance_before or 0) + self.balance_delta

    @property
    def is_overdraft(self) -> bool:
        """The render already happened, so settlement never refuses; it counts a balance it drove below 0."""
        return self.balance_delta < 0 and self.balance_after < 0

    @property
    def debited(self) -> int:
        return sum(e.amount for e in self.entries if e.type == DEBIT)

    @property
    def credited(self) -> int:
        return sum(e.amount for e in self.entries if e.type == CREDIT)


@dataclass(frozen=True)
class Duplicate:
    """The job was already settled this way (a redelivery, or a retry after a lost answer)."""

    event: VideoEvent
    job: JobRecord

    @property
    def same_event(self) -> bool:
        return self.job.settled_by_event == self.event.event_id or self.event.event_id in self.job.conflict_event_ids


@dataclass(frozen=True)
class Conflict:
    """A terminal event that contradicts how the job was settled: recorded, nothing moves."""

    event: VideoEvent
    job: JobRecord
    timestamp: str


Decision = Settlement | Duplicate | Conflict


def decide(
    event: VideoEvent, job: JobRecord | None, balance: int | None, prices: PriceBook, timestamp: str
) -> Decision:
    if job is not None and job.user_id != event.user_id:
        raise InvalidEvent("userId", f"event is for user {event.user_id!r} but job {event.job_id} belongs to another user")
    if job is not None and job.is_settled:
        if job.settled_as == event.kind or event.event_id in job.conflict_event_ids:
            return Duplicate(event, job)
        return Conflict(event, job, timestamp)
    reserved = (job.reserved_credits or 0) if job else 0
    if isinstance(event, VideoRendered):
        cost = prices.cost(event.model, event.seconds)
        entries = []
        if reserved:
            entries.append(_entry(event, "release", CREDIT, reserved, f"Release of {reserved} reserved credits", timestamp))
        entries.append(
            _entry(event, "charge", DEBIT, cost, f"Render of {event.seconds}s on {event.model}", timestamp)
        )
        return Settlement(event, job, balance, tuple(entries), RENDERED, timestamp, charged=cost, released=reserved)
    if isinstance(event, VideoFailed):
        entries = []
        if reserved:
            reason = f": {event.reason}" if event.reason else ""
            entries.append(_entry(event, "refund", CREDIT, reserved, f"Refund of failed render{reason}", timestamp))
        return Settlement(event, job, balance, tuple(entries), FAILED, timestamp, refunded=reserved)
    raise InvalidEvent("detail-type", f"cannot settle {type(event).__name__}")


def _entry(event: VideoEvent, suffix: str, kind: str, amount: int, description: str, timestamp: str) -> LedgerEntry:
    # Deterministic ids: a second write of the same entry is refused by its condition, never doubled.
    return LedgerEntry(
        ledger_id=f"{event.job_id}#{suffix}",
        user_id=event.user_id,
        type=kind,
        amount=amount,
        description=description,
        reference=event.job_id,
        timestamp=timestamp,
        event_id=event.event_id,
    )


@dataclass(frozen=True)
class Reservation:
    job_id: str
    user_id: str
    model: str
    credits: int
    balance_before: int
    entry: LedgerEntry
    job_before: JobRecord | None


def plan_reservation(
    job_id: str, user_id: str, model: str, credits: int, job: JobRecord | None, balance: int | None, timestamp: str
) -> Reservation | None:
    """Reserve `credits` for a job; None when exactly this reservation is already in place."""
    if not isinstance(credits, int) or isinstance(credits, bool) or credits <= 0:
        raise ValueError(f"a reservation is a positive whole number of credits, got {credits!r}")
    if job is not None:
        if job.user_id != user_id:
            raise ReservationRefused(f"job {job_id} belongs to another user")
        if job.is_settled:
            raise ReservationRefused(f"job {job_id} is already settled ({job.settled_as})")
        if job.reserved_credits:
            if job.reserved_credits == credits:
                return None
            raise ReservationRefused(f"job {job_id} already holds a reservation of {job.reserved_credits} credits")
    if balance is None or balance < credits:
        raise InsufficientCredits(user_id, credits, balance)
    entry = LedgerEntry(
        ledger_id=f"{job_id}#reserve",
        user_id=user_id,
        type=DEBIT,
        amount=credits,
        description=f"Reservation for job {job_id} on {model}",
        reference=job_id,
        timestamp=timestamp,
    )
    return Reservation(job_id, user_id, model, credits, balance, entry, job)
