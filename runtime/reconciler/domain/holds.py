"""Holds: credits set aside for a job before it renders, like a card authorisation (docs/pipeline.md).

A hold moves credits from `remaining` (what the user can spend) to `held` on the balance, under the condition that
`remaining` covers them, and records itself on the job's settlement record (domain/records.py) with the unit price
in force: the render is charged at that price, whatever the price book says when it settles. It posts nothing. A
render releases the hold and posts its charge, a failure releases it and posts nothing, and a hold of a job that
will not render can be released by the pipeline. Only the reconciler writes holds (the hold function), so a hold
the balance never paid cannot exist; settlement still requires `held >= released` on every release.

A hold expires (at `expiresAt`, or the stage's default after it is made, never later than the stage's maximum): the
timer scan then releases it as the pipeline's release would, unless its job settled first (plan_expiry). A render
arriving after that is charged without a hold, and may overdraw; a failure settles and moves nothing.

Every answer is a plain outcome the hold function returns to any language: held, already-held, insufficient,
refused (with the field and the reason), released, not-held.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from reconciler.domain.attributes import HOLD_EXPIRED
from reconciler.domain.errors import InsufficientCredits, InvalidEvent, ReservationRefused
from reconciler.domain.events import render_seconds
from reconciler.domain.ledger import iso_timestamp
from reconciler.domain.pricing import PriceBook, cost_at
from reconciler.domain.records import SettlementRecord
from reconciler.domain.settlement import UNREAD, Balance, JobRecord
from reconciler.domain.validation import identifier, whole_credits


@dataclass(frozen=True)
class Reservation:
    """A hold of `credits` on the user's balance for a job, at `unit_price` credits per second of `model`."""

    job_id: str
    user_id: str
    model: str
    credits: int
    record_before: SettlementRecord | None
    timestamp: str
    unit_price: Decimal | None = None
    expires_at: str | None = None  # when the timer scan may release it (ISO-8601 UTC); None for holds made before expiries


@dataclass(frozen=True)
class HoldRelease:
    """A hold given back to `remaining` because its job will not render (or its expiry passed): nothing is posted."""

    job_id: str
    user_id: str
    credits: int
    record_before: SettlementRecord
    timestamp: str
    # The expiry this release is decided on (the timer scan's), conditioning its write; None: the pipeline's release.
    expired_at: str | None = None


@dataclass(frozen=True)
class HoldExpiry:
    """A stage's hold expiry: the default after a hold is made, and the latest a hold may ask for."""

    default: timedelta
    maximum: timedelta

    def expires_at(self, requested: Any, now: str) -> str:
        """The expiry of a hold made at `now`: `requested` (an ISO-8601 time with its offset), or the default.
        InvalidEvent (field expiresAt) for text that is not such a time, or a time past the maximum. Whether it has
        passed is plan_hold's to judge, for a new hold only: a retry of a hold in place keeps that hold's expiry."""
        made, moment = parse_moment(now), self.parse(requested)
        if moment is None:
            return iso_timestamp(made + self.default)
        if moment - made > self.maximum:
            raise InvalidEvent("expiresAt", f"must be at most {int(self.maximum.total_seconds() // 60)} minutes from now")
        return iso_timestamp(moment)

    @staticmethod
    def parse(requested: Any) -> datetime | None:
        """The expiry asked for as an aware datetime (None: the default); InvalidEvent (field expiresAt) for anything
        that is not an ISO-8601 time with its offset. Needs no clock: the hold function refuses it before any read."""
        if requested is None:
            return None
        if not isinstance(requested, str) or len(requested) > 40:
            raise InvalidEvent("expiresAt", "must be an ISO-8601 time with its offset, like 2026-12-07T18:00:00.000Z")
        try:
            moment = datetime.fromisoformat(requested)
        except ValueError:
            raise InvalidEvent("expiresAt", f"is not an ISO-8601 time: {requested[:40]!r}") from None
        if moment.tzinfo is None:
            raise InvalidEvent("expiresAt", "needs its offset (Z for UTC)")
        try:
            return moment.astimezone(UTC)  # a time at datetime's edge with an offset (0001-01-01T00:00+01:00) has no UTC
        except OverflowError:
            raise InvalidEvent("expiresAt", f"is out of range: {requested!r}") from None


def parse_moment(timestamp: str) -> datetime:
    """An ISO-8601 UTC timestamp as the ledger writes them, as an aware datetime."""
    return datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class HoldRequest:
    """A hold as asked for: by credits, or by the seconds the pipeline expects to render (priced now)."""

    job_id: str
    user_id: str
    model: str
    credits: int
    unit_price: Decimal
    expires_at: Any = None  # as the pipeline asked (validated when the hold is made: HoldExpiry), or None: the default

    @classmethod
    def sized(
        cls, job_id: Any, user_id: Any, model: Any, prices: PriceBook, credits: Any = None, seconds: Any = None, expires_at: Any = None
    ) -> HoldRequest:
        """Validated as settlement validates the job's events, so nothing can be held that could not be settled.
        InvalidEvent (a ValueError) names the field."""
        job_id, user_id, model = identifier("jobId", job_id), identifier("userId", user_id), identifier("model", model)
        price = prices.price_of(model)
        if (credits is None) == (seconds is None):
            raise InvalidEvent("credits", "give either credits or estimatedSeconds, not both or neither")
        if credits is not None:
            return cls(job_id, user_id, model, whole_credits("credits", credits), price, expires_at)
        held = whole_credits("credits", cost_at(price, render_seconds(seconds, "estimatedSeconds")))
        return cls(job_id, user_id, model, held, price, expires_at)


def plan_hold(
    request: HoldRequest, record: SettlementRecord | None, timestamp: str, balance: Balance = UNREAD, expires_at: str | None = None
) -> Reservation | None:
    """The hold to make, or None when exactly this hold is already in place (a retry of the same call, even one whose
    requested expiry has passed since: the hold in place keeps its own).

    ReservationRefused for a hold that conflicts with the job's record (another user's job, settled, released or
    expired, or held for another amount); InvalidEvent (field expiresAt) for a new hold whose expiry is not after
    `timestamp`; InsufficientCredits when a known balance does not cover it (unread: the write's condition decides)."""
    if record is not None:
        if record.user_id != request.user_id:
            raise ReservationRefused(f"job {request.job_id} belongs to another user")
        if record.is_settled:
            raise ReservationRefused(f"job {request.job_id} is already settled ({record.settled_as})")
        if record.held_credits and not record.hold_open:
            how = f"expired at {record.hold_expires_at}" if record.hold_released_by == HOLD_EXPIRED else "was released"
            raise ReservationRefused(f"job {request.job_id}'s hold {how}; a job is held once")
        if record.hold_open:
            if record.held_credits == request.credits:
                return None
            raise ReservationRefused(f"job {request.job_id} already holds {record.held_credits} credits")
    if expires_at is not None and expires_at <= timestamp:
        raise InvalidEvent("expiresAt", f"must be in the future (now is {timestamp})")
    if balance is not UNREAD and (balance is None or balance < request.credits):
        raise InsufficientCredits(request.user_id, request.credits, balance)
    return Reservation(request.job_id, request.user_id, request.model, request.credits, record, timestamp, request.unit_price, expires_at)


def plan_legacy_hold(request: HoldRequest, job: JobRecord | None, legacy_before: str) -> bool:
    """For a job with no settlement record: True when its Jobs item already holds this very reservation, made before
    settlement records existed (its render settles it: a second hold would take the credits twice); ReservationRefused
    when the item was settled then, or reserved for another user or amount. False: nothing on the item counts."""
    if job is None:
        return False
    legacy = job.legacy_reservation(legacy_before)
    if job.is_settled and job.created_at is not None and job.created_at < legacy_before:
        raise ReservationRefused(f"job {request.job_id} is already settled ({job.settled_as})")
    if legacy is None:
        return False
    if job.user_id != request.user_id:
        raise ReservationRefused(f"job {request.job_id} belongs to another user")
    if legacy[1] != request.credits:
        raise ReservationRefused(f"job {request.job_id} already holds {legacy[1]} credits, reserved before holds were recorded")
    return True


def plan_release(job_id: str, user_id: str, record: SettlementRecord | None, timestamp: str) -> HoldRelease | None:
    """The release of a job's open hold, or None when it holds nothing (never held, released, or settled: a
    settlement released it). ReservationRefused for another user's job."""
    identifier("jobId", job_id)
    identifier("userId", user_id)
    if record is not None and record.user_id != user_id:
        raise ReservationRefused(f"job {job_id} belongs to another user")
    if record is None or not record.open_hold:
        return None
    return HoldRelease(job_id, user_id, record.open_hold, record, timestamp)


def plan_expiry(record: SettlementRecord, now: str) -> HoldRelease | None:
    """The release of a hold whose expiry has passed, or None: no open hold (released, settled, or never held), no
    expiry (made before expiries), or not due yet. Its write is conditioned on the hold still open, unsettled and of
    this expiry, so a settlement, the pipeline's release or another scan that came first leaves nothing to release."""
    expiry = record.hold_expires_at
    if not record.open_hold or expiry is None or expiry > now:
        return None
    return HoldRelease(record.job_id, record.user_id, record.open_hold, record, now, expired_at=expiry)
