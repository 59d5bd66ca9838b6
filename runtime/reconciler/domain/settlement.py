"""The settlement decision: given an event, the job's settlement record, its Jobs item and the balance, what
must change.

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
conflict (recorded, nothing moves). A job settled (or a conflict recorded) by this very event in
this very Lambda request is the reconciler's own earlier attempt, whose answer was lost or whose invocation
timed out: it is that settlement (or conflict), reported as such, never a duplicate.

What a job holds and how it settled is decided from its settlement record (domain/records.py), which only the
reconciler writes: the Jobs item is the pipeline's. The Jobs item still tells two things of jobs from before
records: a settlement made then (settledAs on the item, no record), and a reservation made then (reservedCredits,
with reservedAs "hold" or without: posted), which counts only for jobs created before the cut-off
(`legacy_before`); reservation attributes on a later job were written by another writer and move nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any, Literal, Union

from reconciler.domain.attributes import HOLD
from reconciler.domain.errors import DamagedJob, InvalidEvent
from reconciler.domain.events import FAILED as FAILED_EVENT
from reconciler.domain.events import RENDERED as RENDERED_EVENT
from reconciler.domain.events import VideoEvent, VideoFailed, VideoRendered, parse_detail
from reconciler.domain.ledger import CREDIT, DEBIT, LedgerEntry, balance_delta, job_ledger_id
from reconciler.domain.pricing import PriceBook, cost_at
from reconciler.domain.records import LEGACY_POSTED, SettledFacts, SettlementRecord
from reconciler.domain.validation import MAX_CREDITS, derived_identifier

SUBMITTED, RENDERING, RENDERED, FAILED = "submitted", "rendering", "rendered", "failed"
TERMINAL_STATUSES = (RENDERED, FAILED)
# How a job's reservation was made: HOLD (held on the balance, nothing posted), or None: posted (v2).


# How a job's reservation is settled: a hold recorded by the reconciler, or one of the two kinds made before
# records existed (on the Jobs item, for jobs created before the cut-off): a hold, or posted to the ledger (v2).
RECORDED_HOLD, LEGACY_HOLD = "recorded-hold", "legacy-hold"


class _Unread(Enum):
    UNREAD = "unread"


# A decision made without reading the balance: the write's threshold condition checks it instead, and a
# failed condition returns the balance, with which the decision is made again (BalanceChanged). Likewise a
# decision made without reading the Jobs item: the write's condition on the item checks what it assumed (the
# event's user owns it or it is absent, no settlement or reservation from before records), and a failure reads it.
UNREAD = _Unread.UNREAD
Balance = int | None | Literal[_Unread.UNREAD]
JobView = Union["JobRecord", None, Literal[_Unread.UNREAD]]


class SettlementState(str, Enum):  # noqa: UP042 - StrEnum would change str() of a state, which logs and messages show
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
    unsettled: bool = False  # carries the pipeline's unsettled marker (the timer scan's index)

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

    def legacy_reservation(self, legacy_before: str) -> tuple[str, int] | None:
        """(kind, credits) of a reservation made on this item before records existed, or None: reservation
        attributes on a job created at or after the cut-off were written by another writer and count for nothing."""
        if not self.reserved_credits or self.created_at is None or not self.created_at < legacy_before:
            return None
        return (LEGACY_HOLD if self.reserved_as == HOLD else LEGACY_POSTED), self.reserved_credits

    def facts(self) -> SettledFacts:
        """How this item says the job settled (a job settled before records existed)."""
        return SettledFacts.of(
            self,
            reserved_credits=self.reserved_credits,
            status=self.status,
            model=self.model,
            seconds=self.seconds,
            held=self.reserved_as == HOLD,
            source="job",
        )


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
    if not isinstance(job.settled_into_overdraft, bool) or not isinstance(job.unsettled, bool):
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
    """A job's settlement: ledger postings, a released hold, its settlement record and the Jobs item's mirror of
    it, written in one transaction."""

    event: VideoEvent
    record_before: SettlementRecord | None
    job_before: JobView
    balance_before: int | None
    entries: tuple[LedgerEntry, ...]
    settled_as: str
    timestamp: str
    charged: int = 0
    released: int = 0
    refunded: int = 0
    request_id: str | None = None
    # Set on a settlement re-read from the record (our own lost answer): the balance it read is not known then.
    recovered_overdraft: bool | None = None
    # The job's hold, given back from `held` to `remaining` (it was never posted, so no posting undoes it).
    hold_released: int = 0
    # False when decided without reading the balance: the write's condition holds the decision to "covered".
    balance_read: bool = True
    reservation: str | None = None  # RECORDED_HOLD, LEGACY_HOLD, LEGACY_POSTED, or None
    unit_price: Decimal | None = None  # the price per second the render was charged at

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
    settled: SettledFacts

    @property
    def same_event(self) -> bool:
        return self.settled.settled_by_event == self.event.event_id or self.event.event_id in self.settled.conflict_event_ids


@dataclass(frozen=True)
class Conflict:
    """A terminal event that contradicts how the job was settled: recorded, nothing moves."""

    event: VideoEvent
    settled: SettledFacts
    timestamp: str
    request_id: str | None = None
    recovered: bool = False


@dataclass(frozen=True)
class Superseded:
    """A timer-scan settlement whose job is no longer what the scan saw (status changed, or changed within
    the grace period): nothing written; the next tick looks again."""

    event: VideoEvent | None
    job: JobRecord | None


@dataclass(frozen=True)
class MirrorRepaired:
    """The timer scan found a job whose settlement its Jobs item no longer shows (another writer saved the item
    whole, or put the unsettled marker back): the settlement was written back onto the item; nothing moved."""

    job: JobRecord
    settled: SettledFacts


Decision = Settlement | Duplicate | Conflict | Superseded | MirrorRepaired


@dataclass(frozen=True)
class Known:
    """What a decision is made on: the job's settlement record, its Jobs item (UNREAD on a first attempt) and the
    balance (UNREAD until a failed guard returned it)."""

    record: SettlementRecord | None
    job: JobView = UNREAD
    balance: Balance = UNREAD


def decide(event: VideoEvent, known: Known, prices: PriceBook, timestamp: str, request_id: str | None = None, legacy_before: str = "") -> Decision:
    """The settlement of `event`, or why there is none. `legacy_before`: the cut-off before which reservations were
    made on the Jobs item (they are settled as they were made); a reservation on a later job's item counts for
    nothing (another writer's)."""
    record, job = known.record, known.job
    owner = record.user_id if record is not None else job.user_id if isinstance(job, JobRecord) else None
    if owner is not None and owner != event.user_id:
        raise InvalidEvent("userId", "the event's user does not own this job")
    if isinstance(job, JobRecord) and job.user_id != event.user_id:
        raise InvalidEvent("userId", "the event's user does not own this job")
    facts = settled_facts(record, job)
    if facts is not None:
        return _already_settled(event, facts, timestamp, request_id)
    reservation, reserved = _reservation(record, job, legacy_before)
    held = reservation in (RECORDED_HOLD, LEGACY_HOLD)
    common: dict[str, Any] = dict(
        request_id=request_id,
        hold_released=reserved if held else 0,
        balance_read=known.balance is not UNREAD,
        reservation=reservation,
    )
    balance = known.balance if isinstance(known.balance, int) else None
    if isinstance(event, VideoRendered):
        price = _price(event, record, prices)
        cost = cost_at(price, event.seconds)
        entries = _render_entries(event, cost, reserved, timestamp, held)
        return Settlement(event, record, job, balance, entries, RENDERED, timestamp, charged=cost, released=reserved, unit_price=price, **common)
    if isinstance(event, VideoFailed):
        entries = _failure_entries(event, reserved, timestamp, held)
        return Settlement(event, record, job, balance, entries, FAILED, timestamp, refunded=reserved, **common)
    raise InvalidEvent("detail-type", f"cannot settle {type(event).__name__}")


def settled_facts(record: SettlementRecord | None, job: JobView) -> SettledFacts | None:
    """How the job settled: its record says; a job settled before records existed has only its Jobs item's word."""
    if record is not None and record.is_settled:
        return record.facts()
    if isinstance(job, JobRecord) and job.is_settled and (record is None or not record.is_settled):
        return job.facts()
    return None


def _already_settled(event: VideoEvent, facts: SettledFacts, timestamp: str, request_id: str | None) -> Decision:
    if request_id is not None and facts.settled_by_event == event.event_id and facts.settled_by_request == request_id:
        return recovered_settlement(event, facts)
    if request_id is not None and event.event_id in facts.conflict_event_ids and request_id in facts.conflict_request_ids:
        return Conflict(event, facts, timestamp, request_id, recovered=True)
    if facts.settled_as == event.kind or event.event_id in facts.conflict_event_ids:
        return Duplicate(event, facts)
    return Conflict(event, facts, timestamp, request_id)


def _reservation(record: SettlementRecord | None, job: JobView, legacy_before: str) -> tuple[str | None, int]:
    if record is not None and record.open_hold:
        return RECORDED_HOLD, record.open_hold
    if isinstance(job, JobRecord) and (record is None or not record.held_credits):
        legacy = job.legacy_reservation(legacy_before)
        if legacy is not None:
            return legacy
    return None, 0


def _price(event: VideoRendered, record: SettlementRecord | None, prices: PriceBook) -> Decimal:
    """The price per second of the render: the one in force when the job was held, for the model it was held for;
    otherwise the price book's now."""
    if record is not None and record.unit_price is not None and record.hold_model == event.model:
        return record.unit_price
    return prices.price_of(event.model)


def _render_entries(event: VideoRendered, cost: int, reserved: int, timestamp: str, held: bool) -> tuple[LedgerEntry, ...]:
    entries = []
    if reserved and not held:  # a posted (v2) reservation is undone by a posting
        entries.append(_entry(event, "release", CREDIT, reserved, f"Release of {reserved} reserved credits", timestamp))
    entries.append(_entry(event, "charge", DEBIT, cost, f"Render of {event.seconds}s on {event.model}", timestamp))
    return tuple(entries)


def _failure_entries(event: VideoFailed, refunded: int, timestamp: str, held: bool) -> tuple[LedgerEntry, ...]:
    if not refunded or held:  # a released hold posts nothing: no money moved
        return ()
    reason = f": {event.reason}" if event.reason else ""
    return (_entry(event, "refund", CREDIT, refunded, f"Refund of failed render{reason}", timestamp),)


def recovered_settlement(event: VideoEvent, facts: SettledFacts) -> Settlement:
    """The settlement this event's own earlier attempt committed, rebuilt from what it recorded."""
    timestamp = facts.settled_at or ""
    if isinstance(event, VideoRendered) and facts.settled_as == RENDERED:
        entries = _render_entries(event, facts.charged_credits, facts.released_credits, timestamp, facts.held)
        hold_released = facts.released_credits if facts.held else 0
    elif isinstance(event, VideoFailed) and facts.settled_as == FAILED:
        entries = _failure_entries(event, facts.refunded_credits, timestamp, facts.held)
        hold_released = facts.refunded_credits if facts.held else 0
    else:  # cannot happen for one event id; refuse rather than count a wrong settlement
        raise DamagedJob(event.job_id, "settledByEvent names this event but settledAs does not match its kind")
    return Settlement(
        event,
        None,
        UNREAD,
        None,
        entries,
        facts.settled_as or "",
        timestamp,
        charged=facts.charged_credits,
        released=facts.released_credits,
        refunded=facts.refunded_credits,
        request_id=facts.settled_by_request,
        recovered_overdraft=facts.settled_into_overdraft,
        hold_released=hold_released,
        balance_read=False,
    )


TIMER_SCAN_EVENT_PREFIX = "timer-scan:"


def lost_event_for(job: JobRecord, record: SettlementRecord | None, settle_before: str) -> VideoEvent | None:
    """The event a finished job's pipeline should have sent, rebuilt from the job as just read; None when the
    job is not (or no longer) finished, or changed within the grace period (its event may be in flight).

    A job settled meanwhile gets the event of how it was settled, whatever the pipeline wrote since: `decide`
    then tells the scan's own earlier attempt (a lost answer: that settlement, counted) from another
    writer's settlement (a duplicate or a conflict)."""
    facts = settled_facts(record, job)
    if facts is not None:
        status = facts.settled_as
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
