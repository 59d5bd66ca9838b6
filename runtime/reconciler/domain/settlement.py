"""The settlement decision: given an event, the job as stored and the balance, what must change.

A job's settlement state machine:

    unknown ──reserve──▶ reserved ──rendered──▶ settled-rendered
       │                    │
       │                    └──failed────▶ settled-failed
       ├──rendered─────────────────────────▶ settled-rendered
       └──failed───────────────────────────▶ settled-failed

A settled job never moves again: the same terminal event is a duplicate (no write), the other one a
conflict (recorded on the job, nothing moves). A job settled (or a conflict recorded) by this very event in
this very Lambda request is the reconciler's own earlier attempt, whose answer was lost or whose invocation
timed out: it is that settlement (or conflict), reported as such, never a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any

from reconciler.domain.errors import DamagedJob, InsufficientCredits, InvalidEvent, ReservationRefused
from reconciler.domain.events import FAILED as FAILED_EVENT
from reconciler.domain.events import RENDERED as RENDERED_EVENT
from reconciler.domain.events import VideoEvent, VideoFailed, VideoRendered, parse_detail
from reconciler.domain.ledger import CREDIT, DEBIT, LedgerEntry, balance_delta, job_ledger_id
from reconciler.domain.pricing import PriceBook
from reconciler.domain.validation import MAX_CREDITS, identifier, whole_credits

SUBMITTED, RENDERING, RENDERED, FAILED = "submitted", "rendering", "rendered", "failed"
TERMINAL_STATUSES = (RENDERED, FAILED)


class SettlementState(str, Enum):  # noqa: UP042 - StrEnum would change str() of a state, which logs and messages show
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
    # The Lambda request that settled the job or recorded a conflict: tells our own retry from a redelivery.
    settled_by_request: str | None = None
    conflict_request_ids: frozenset[str] = field(default_factory=frozenset)
    charged_credits: int = 0
    released_credits: int = 0
    refunded_credits: int = 0
    settled_at: str | None = None
    settled_into_overdraft: bool = False

    def __post_init__(self) -> None:
        """Every JobRecord is usable: whatever the table holds, a bad item is a DamagedJob here, never a
        TypeError in the timer scan's comparisons or a ValueError in an int() later."""
        problem = _job_problem(self)
        if problem:
            raise DamagedJob(self.job_id if isinstance(self.job_id, str) else repr(self.job_id), problem)
        for name in ("reserved_credits", "charged_credits", "released_credits", "refunded_credits"):
            value = getattr(self, name)
            if isinstance(value, Decimal):  # DynamoDB numbers arrive as Decimal; credits are ints from here on
                object.__setattr__(self, name, int(value))

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


def _job_problem(job: JobRecord) -> str | None:
    if not isinstance(job.job_id, str) or not job.job_id:
        return "jobId is not a non-empty string"
    if not isinstance(job.user_id, str) or not job.user_id:
        return "userId is missing or not a string"
    for name in ("status", "model", "created_at", "updated_at", "settled_by_event", "settled_by_request", "settled_at"):
        value = getattr(job, name)
        if value is not None and not isinstance(value, str):
            return f"{_attribute(name)} must be a string, got {type(value).__name__}"
    if job.settled_as not in (None, RENDERED, FAILED):
        return f"settledAs must be {RENDERED!r} or {FAILED!r}"
    for name in ("reserved_credits", "charged_credits", "released_credits", "refunded_credits"):
        value = getattr(job, name)
        if value is None and name == "reserved_credits":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)) or not _is_whole(value) or not 0 <= value <= MAX_CREDITS:
            return f"{_attribute(name)} must be a whole number from 0 to {MAX_CREDITS}"
    for name in ("conflict_event_ids", "conflict_request_ids"):
        value = getattr(job, name)
        if not isinstance(value, frozenset) or not all(isinstance(item, str) for item in value):
            return f"{_attribute(name)} must be a set of strings"
    if not isinstance(job.settled_into_overdraft, bool):
        return "settledIntoOverdraft must be a boolean"
    return None


def _is_whole(value: int | Decimal) -> bool:
    return isinstance(value, int) or (value.is_finite() and value == value.to_integral_value())


def _attribute(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


@dataclass(frozen=True)
class UnreadableJob:
    """A Jobs item the timer scan found but cannot turn into a JobRecord: reported, never settled."""

    job_id: str
    reason: str
    user_id: str = ""
    status: Any = None
    model: Any = None
    seconds: Any = None
    reserved_credits: Any = None
    created_at: Any = None
    updated_at: Any = None


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
    request_id: str | None = None
    # Set on a settlement re-read from the job (our own lost answer): the balance it read is not known then.
    recovered_overdraft: bool | None = None

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
        if self.recovered_overdraft is not None:
            return self.recovered_overdraft
        return self.balance_delta < 0 and self.balance_after < 0

    @property
    def recovered(self) -> bool:
        return self.recovered_overdraft is not None

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
    request_id: str | None = None
    recovered: bool = False


@dataclass(frozen=True)
class Superseded:
    """A timer-scan settlement whose job is no longer what the scan saw (status changed, or changed within
    the grace period): nothing written; the next tick looks again."""

    event: VideoEvent | None
    job: JobRecord | None


Decision = Settlement | Duplicate | Conflict | Superseded


def decide(
    event: VideoEvent,
    job: JobRecord | None,
    balance: int | None,
    prices: PriceBook,
    timestamp: str,
    request_id: str | None = None,
) -> Decision:
    if job is not None and job.user_id != event.user_id:
        raise InvalidEvent("userId", "the event's user does not own this job")
    if job is not None and job.is_settled:
        if request_id is not None and job.settled_by_event == event.event_id and job.settled_by_request == request_id:
            return recovered_settlement(event, job)
        if request_id is not None and event.event_id in job.conflict_event_ids and request_id in job.conflict_request_ids:
            return Conflict(event, job, timestamp, request_id, recovered=True)
        if job.settled_as == event.kind or event.event_id in job.conflict_event_ids:
            return Duplicate(event, job)
        return Conflict(event, job, timestamp, request_id)
    reserved = (job.reserved_credits or 0) if job else 0
    if isinstance(event, VideoRendered):
        cost = prices.cost(event.model, event.seconds)
        entries = _render_entries(event, cost, reserved, timestamp)
        return Settlement(event, job, balance, entries, RENDERED, timestamp, charged=cost, released=reserved, request_id=request_id)
    if isinstance(event, VideoFailed):
        entries = _failure_entries(event, reserved, timestamp)
        return Settlement(event, job, balance, entries, FAILED, timestamp, refunded=reserved, request_id=request_id)
    raise InvalidEvent("detail-type", f"cannot settle {type(event).__name__}")


def _render_entries(event: VideoRendered, cost: int, reserved: int, timestamp: str) -> tuple[LedgerEntry, ...]:
    entries = []
    if reserved:
        entries.append(_entry(event, "release", CREDIT, reserved, f"Release of {reserved} reserved credits", timestamp))
    entries.append(_entry(event, "charge", DEBIT, cost, f"Render of {event.seconds}s on {event.model}", timestamp))
    return tuple(entries)


def _failure_entries(event: VideoFailed, refunded: int, timestamp: str) -> tuple[LedgerEntry, ...]:
    if not refunded:
        return ()
    reason = f": {event.reason}" if event.reason else ""
    return (_entry(event, "refund", CREDIT, refunded, f"Refund of failed render{reason}", timestamp),)


def recovered_settlement(event: VideoEvent, job: JobRecord) -> Settlement:
    """The settlement this event's own earlier attempt committed, rebuilt from what it stored on the job."""
    timestamp = job.settled_at or ""
    if isinstance(event, VideoRendered) and job.settled_as == RENDERED:
        entries = _render_entries(event, int(job.charged_credits), int(job.released_credits), timestamp)
    elif isinstance(event, VideoFailed) and job.settled_as == FAILED:
        entries = _failure_entries(event, int(job.refunded_credits), timestamp)
    else:  # cannot happen for one event id; refuse rather than count a wrong settlement
        raise DamagedJob(job.job_id, "settledByEvent names this event but settledAs does not match its kind")
    return Settlement(
        event,
        job,
        None,
        entries,
        job.settled_as or "",
        timestamp,
        charged=int(job.charged_credits),
        released=int(job.released_credits),
        refunded=int(job.refunded_credits),
        request_id=job.settled_by_request,
        recovered_overdraft=job.settled_into_overdraft,
    )


TIMER_SCAN_EVENT_PREFIX = "timer-scan:"


def lost_event_for(job: JobRecord, settle_before: str) -> VideoEvent | None:
    """The event a finished job's pipeline should have sent, rebuilt from the job as just read; None when the
    job is not (or no longer) finished, or changed within the grace period (its event may be in flight).

    A job settled meanwhile gets the event of how it was settled, whatever the pipeline wrote since: `decide`
    then tells the scan's own earlier attempt (a lost answer: that settlement, counted) from another
    writer's settlement (a duplicate or a conflict)."""
    if job.is_settled:
        status = job.settled_as
    elif job.status not in TERMINAL_STATUSES or (job.updated_at and job.updated_at > settle_before):
        return None
    else:
        status = job.status
    detail: dict[str, Any] = {"jobId": job.job_id, "userId": job.user_id}
    if status == RENDERED:
        detail.update(seconds=job.seconds, model=job.model)
    # The pipeline's status ("rendered") stands in for the lost event's detail-type ("video.rendered").
    detail_type = RENDERED_EVENT if status == RENDERED else FAILED_EVENT
    return parse_detail(detail_type, detail, TIMER_SCAN_EVENT_PREFIX + job.job_id)


def _entry(event: VideoEvent, posting: str, kind: str, amount: int, description: str, timestamp: str) -> LedgerEntry:
    # Deterministic ids: a second write of the same entry is refused by its condition, never doubled.
    return LedgerEntry(
        ledger_id=job_ledger_id(event.job_id, posting),
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
    job_id: str,
    user_id: str,
    model: str,
    credits: int,
    job: JobRecord | None,
    balance: int | None,
    timestamp: str,
    prices: PriceBook | None = None,
) -> Reservation | None:
    """Reserve `credits` for a job; None when exactly this reservation is already in place.

    Validated exactly as settlement validates the job's events (ids, model), so no reservation can be held
    for a job whose events would all be refused. InvalidEvent (a ValueError) names the field.
    """
    validate_reservation(job_id, user_id, model, credits, prices)
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
        ledger_id=job_ledger_id(job_id, "reserve"),
        user_id=user_id,
        type=DEBIT,
        amount=credits,
        description=f"Reservation for job {job_id} on {model}",
        reference=job_id,
        timestamp=timestamp,
    )
    return Reservation(job_id, user_id, model, credits, balance, entry, job)


def validate_reservation(job_id: str, user_id: str, model: str, credits: int, prices: PriceBook | None = None) -> None:
    identifier("jobId", job_id)
    identifier("userId", user_id)
    identifier("model", model)
    (prices or PriceBook()).price_of(model)
    whole_credits("credits", credits)
