"""Holds for the video pipeline: `reserve()` places one, `release()` gives one back (docs/pipeline.md).

Each is one transaction of the balance and the job's settlement record; the hold function (handlers/hold_api.py)
turns their results and refusals into answers any language can read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from reconciler.contract import StageLimits
from reconciler.domain.errors import InsufficientCredits
from reconciler.domain.holds import HoldExpiry, HoldRelease, HoldRequest, Reservation, plan_hold, plan_legacy_hold, plan_release
from reconciler.domain.ledger import iso_timestamp
from reconciler.domain.pricing import PriceBook
from reconciler.domain.records import SettlementRecord
from reconciler.service.ports import BalanceChanged, SettlementStore
from reconciler.service.retrying import Backoff, with_retries


@dataclass(frozen=True)
class HoldResult:
    """What a hold call did: placed the hold (`placed`), or found exactly it in place already (`record`)."""

    placed: Reservation | None
    record: SettlementRecord | None

    @property
    def credits(self) -> int:
        return self.placed.credits if self.placed is not None else (self.record.held_credits if self.record else 0)


@dataclass
class ReservationService:
    store: SettlementStore
    prices: PriceBook = field(default_factory=PriceBook)
    clock: Callable[[], str] = iso_timestamp
    backoff: Callable[[], Backoff] = field(default=Backoff)
    # Jobs created before this moment may carry a reservation (or a settlement) made on their Jobs item, before
    # settlement records existed (domain/settlement.py): "" where no such job exists.
    legacy_before: str = ""
    expiry: HoldExpiry = field(
        default_factory=lambda: HoldExpiry(timedelta(minutes=StageLimits.hold_expiry_minutes), timedelta(minutes=StageLimits.hold_expiry_max_minutes))
    )

    def reserve(
        self, job_id: Any, user_id: Any, model: Any, credits: Any = None, *, seconds: Any = None, expires_at: Any = None
    ) -> Reservation | None:
        """Holds `credits` (or the price now of `seconds` of `model`) of the balance for a job until `expires_at` (or
        the stage's default), or raises InsufficientCredits moving nothing. Returns the hold made, or None when this
        exact hold was already in place (so the pipeline may retry the call safely)."""
        request = HoldRequest.sized(job_id, user_id, model, self.prices, credits=credits, seconds=seconds, expires_at=expires_at)
        return self.hold(request).placed

    def hold(self, request: HoldRequest) -> HoldResult:
        """InvalidEvent (field expiresAt) for an expiry that is not a time (before any read), past the stage's maximum,
        or, for a new hold, not in the future; a retry of a hold already in place keeps the expiry it was made with,
        even when the one it asks for has passed since (its first answer was lost: it is answered as in place)."""
        HoldExpiry.parse(request.expires_at)

        def attempt() -> HoldResult:
            # Strongly consistent: a hold found already in place writes nothing, so an earlier version of the
            # record could answer "in place" for a job settled since.
            record = self.store.load_record(request.job_id)
            # A job without a record may hold a reservation made on its Jobs item before records existed: its render
            # settles that one. Eventually consistent (0.5 RRU): such items were written before the cut-off.
            legacy_job = self.store.load_job(request.job_id, consistent=False) if record is None and self.legacy_before else None
            if plan_legacy_hold(request, legacy_job, self.legacy_before):
                return HoldResult(None, None)
            # The balance is not read: the hold's condition (remaining >= credits) decides, and returns it if not.
            made_at = self.clock()
            plan = plan_hold(request, record, made_at, expires_at=self.expiry.expires_at(request.expires_at, made_at))
            if plan is not None:
                try:
                    self.store.commit_reservation(plan)
                except BalanceChanged as short:
                    raise InsufficientCredits(request.user_id, request.credits, short.balance) from short
            return HoldResult(plan, record)

        result, _ = with_retries(attempt, self.backoff())
        return result

    def release(self, job_id: Any, user_id: Any) -> HoldRelease | None:
        """Gives a job's open hold back (the job will not render); None when it holds nothing. Nothing is posted."""

        def attempt() -> HoldRelease | None:
            plan = plan_release(job_id, user_id, self.store.load_record(job_id), self.clock())
            if plan is not None:
                self.store.commit_release(plan)
            return plan

        result, _ = with_retries(attempt, self.backoff())
        return result
