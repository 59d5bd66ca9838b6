"""The settlement decision: given an event, the job as stored and the balance, what must change.

A job's settlement state machine:

    unknown ──reserve──▶ reserved ──rendered──▶ settled-rendered
       │                    │
       │                    └──failed────▶ settled-failed
       ├──rendered─────────────────────────▶ settled-rendered
       └──failed───────────────────────────▶ settled-failed

A reservation is a hold (like a card authorisation): it moves credits from `remaining` (what the user can
spend) to `held` on the balance and posts nothing. Rendering releases the hold and posts one debit for the
render's cost; a failure releases the hold and posts nothing. So the ledger shows only real money movements,
and the posted balance (remaining + held) is the ledger's sum. Reservations made before holds (v2: a posted
"reserve" debit, no reservedAs on the job) are settled as they were made: a release and a charge, or a refund.

A settled job never moves again: the same terminal event is a duplicate (no write), the other one a
conflict (recorded on the job, nothing moves). A job settled (or a conflict recorded) by this very event in
this very Lambda request is the reconciler's own earlier attempt, whose answer was lost or whose invocation
timed out: it is that settlement (or conflict), reported as such, never a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any, Literal

from reconciler.domain.errors import DamagedJob, InsufficientCredits, InvalidEvent, ReservationRefused
from reconciler.domain.events import FAILED as FAILED_EVENT
from reconciler.domain.events import RENDERED as RENDERED_EVENT
from reconciler.domain.events import VideoEvent, VideoFailed, VideoRendered, parse_detail
from reconciler.domain.ledger import CREDIT, DEBIT, LedgerEntry, balance_delta, job_ledger_id
from reconciler.domain.pricing import PriceBook
from reconciler.domain.validation import MAX_CREDITS, derived_identifier, identifier, whole_credits

SUBMITTED, RENDERING, RENDERED, FAILED = "submitted", "rendering", "rendered", "failed"
TERMINAL_STATUSES = (RENDERED, FAILED)
# How a job's reservation was made: HOLD (held on the balance, nothing posted), or None: posted (v2).
HOLD = "hold"


class _Unread(Enum):
    UNREAD = "unread"


# A decision made without reading the balance: the write's threshold condition checks it instead, and a
# failed condition returns the balance, with which the decision is made again (BalanceChanged).
UNREAD = _Unread.UNREAD
Balance = int | None | Literal[_Unread.UNREAD]


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
    reserved_as: str | None = None

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

    @property
    def held_credits(self) -> int:
        """The credits this job holds on its user's balance (0 for a posted v2 reservation, or when settled)."""
        return (self.reserved_credits or 0) if self.reserved_as == HOLD and not self.is_settled else 0


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
    if job.reserved_as not in (None, HOLD):
        return f"reservedAs must be {HOLD!r} or absent"
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
    """A job's settlement: ledger postings, a released hold and the job's new state, written in one transaction."""

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
    # The job's hold, given back from `held` to `remaining` (it was never posted, so no posting undoes it).
    hold_released: int = 0
    # False when decided without reading the balance: the write's condition holds the decision to "covered".
    balance_read: bool = True

    @property
    def balance_delta(self) -> int:
        """What this settlement does to `remaining`: its postings plus the hold it releases."""
        return balance_delta(self.entries) + self.hold_released

    @property
    def posted_delta(self) -> int:
        """What it does to the posted balance (remaining + held): its postings alone."""
        return balance_delta(self.entries)

    @property
    def held_delta(self) -> int:
        return -self.hold_released

    @property
    def balance_after(self) -> int | None:
        """The balance this settlement leaves, counted from the one it read; None when it read none (another
        settlement of the same user may commit in between; the overdraft decision is guarded, this figure is not)."""
        if not self.balance_read or self.recovered:
            return None
        return (self.balance_before or 0) + self.balance_delta

    @property
    def is_overdraft(self) -> bool:
        """The render already happened, so settlement never refuses; it counts a balance it drove below 0.

        Decided without a read, it is False: the write then requires the balance to cover the debit, and a
        balance that does not is returned with the failure and decided again (an overdraft, read)."""
        if self.recovered_overdraft is not None:
            return self.recovered_overdraft
        after = self.balance_after
        return after is not None and self.balance_delta < 0 and after < 0

    @property
    def recovered(self) -> bool:
        return self.recovered_overdraft is not None

    @property
    def debited(self) -> int:
        return sum(e.amount for e in self.entries if e.type == DEBIT)

    @property
    def credited(self) -> int:
        """Credits given back: credit postings, and a failed render's released hold (its refund)."""
        return sum(e.amount for e in self.entries if e.type == CREDIT) + (self.hold_released if self.settled_as == FAILED else 0)


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
    balance: Balance,
    prices: PriceBook,
    timestamp: str,
    request_id: str | None = None,
) -> Decision:
    """`balance` is UNREAD for the first decision (the job is the only read); the balance a failed threshold
    condition returned, for a decision made again."""
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
    as_hold = job is not None and job.reserved_as == HOLD and reserved > 0
    read = balance is not UNREAD
    known = balance if isinstance(balance, int) else None
    if isinstance(event, VideoRendered):
        cost = prices.cost(event.model, event.seconds)
        entries = _render_entries(event, cost, reserved, timestamp, as_hold)
        return Settlement(
            event,
            job,
            known,
            entries,
            RENDERED,
            timestamp,
            charged=cost,
            released=reserved,
            request_id=request_id,
            hold_released=reserved if as_hold else 0,
            balance_read=read,
        )
    if isinstance(event, VideoFailed):
        entries = _failure_entries(event, reserved, timestamp, as_hold)
        return Settlement(
            event,
            job,
            known,
            entries,
            FAILED,
            timestamp,
            refunded=reserved,
            request_id=request_id,
            hold_released=reserved if as_hold else 0,
            balance_read=read,
        )
    raise InvalidEvent("detail-type", f"cannot settle {type(event).__name__}")


def _render_entries(event: VideoRendered, cost: int, reserved: int, timestamp: str, as_hold: bool) -> tuple[LedgerEntry, ...]:
    entries = []
    if reserved and not as_hold:  # a posted (v2) reservation is undone by a posting
        entries.append(_entry(event, "release", CREDIT, reserved, f"Release of {reserved} reserved credits", timestamp))
    entries.append(_entry(event, "charge", DEBIT, cost, f"Render of {event.seconds}s on {event.model}", timestamp))
    return tuple(entries)


def _failure_entries(event: VideoFailed, refunded: int, timestamp: str, as_hold: bool) -> tuple[LedgerEntry, ...]:
    if not refunded or as_hold:  # a released hold posts nothing: no money moved
        return ()
    reason = f": {event.reason}" if event.reason else ""
    return (_entry(event, "refund", CREDIT, refunded, f"Refund of failed render{reason}", timestamp),)


def recovered_settlement(event: VideoEvent, job: JobRecord) -> Settlement:
    """The settlement this event's own earlier attempt committed, rebuilt from what it stored on the job."""
    timestamp = job.settled_at or ""
    as_hold = job.reserved_as == HOLD
    if isinstance(event, VideoRendered) and job.settled_as == RENDERED:
        entries = _render_entries(event, int(job.charged_credits), int(job.released_credits), timestamp, as_hold)
        hold_released = int(job.released_credits) if as_hold else 0
    elif isinstance(event, VideoFailed) and job.settled_as == FAILED:
        entries = _failure_entries(event, int(job.refunded_credits), timestamp, as_hold)
        hold_released = int(job.refunded_credits) if as_hold else 0
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
        hold_released=hold_released,
        balance_read=False,
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
    return parse_detail(detail_type, detail, derived_identifier(TIMER_SCAN_EVENT_PREFIX, job.job_id))


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
    """A hold of `credits` on the user's balance for a job: no ledger posting (see the module's docstring)."""

    job_id: str
    user_id: str
    model: str
    credits: int
    job_before: JobRecord | None
    timestamp: str


def plan_reservation(
    job_id: str,
    user_id: str,
    model: str,
    credits: int,
    job: JobRecord | None,
    balance: Balance,
    timestamp: str,
    prices: PriceBook | None = None,
) -> Reservation | None:
    """Hold `credits` for a job; None when exactly this reservation is already in place.

    Validated exactly as settlement validates the job's events (ids, model), so no reservation can be held
    for a job whose events would all be refused. InvalidEvent (a ValueError) names the field. `balance` is
    UNREAD when the write's condition (remaining >= credits) is to decide; a known balance short of it is
    InsufficientCredits here.
    """
    validate_reservation(job_id, user_id, model, credits, prices)
    if job is not None:
        if job.user_id != user_id:
            raise ReservationRefused(f"job {job_id} belongs to another user")
        if job.is_settled:
            raise ReservationRefused(f"job {job_id} is already settled ({job.settled_as})")
        if job.reserved_credits is not None:
            if job.reserved_credits == 0:  # the write requires no reservation at all: retrying could never succeed
                raise ReservationRefused(f"job {job_id} has a stored reservation of 0 credits: repair the job (`reconciler job show {job_id}`)")
            if job.reserved_credits == credits:
                return None
            raise ReservationRefused(f"job {job_id} already holds a reservation of {job.reserved_credits} credits")
    if balance is not UNREAD and (balance is None or balance < credits):
        raise InsufficientCredits(user_id, credits, balance)
    return Reservation(job_id, user_id, model, credits, job, timestamp)


def validate_reservation(job_id: str, user_id: str, model: str, credits: int, prices: PriceBook | None = None) -> None:
    identifier("jobId", job_id)
    identifier("userId", user_id)
    identifier("model", model)
    (prices or PriceBook()).price_of(model)
    whole_credits("credits", credits)
