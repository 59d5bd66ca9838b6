"""The reservation library call for the video pipeline: balance, ledger and job in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from reconciler.domain.errors import LedgerEntryTaken, ReservationRefused
from reconciler.domain.ledger import iso_timestamp
from reconciler.domain.pricing import PriceBook
from reconciler.domain.settlement import Reservation, plan_reservation, validate_reservation
from reconciler.service.retrying import Backoff
from reconciler.service.ports import SettlementStore
from reconciler.service.retrying import with_retries


@dataclass
class ReservationService:
    store: SettlementStore
    prices: PriceBook = field(default_factory=PriceBook)
    clock: Callable[[], str] = iso_timestamp
    backoff: Callable[[], Backoff] = field(default=Backoff)

    def reserve(self, job_id: str, user_id: str, model: str, credits: int) -> Reservation | None:
        """Takes `credits` from the balance for a job, or raises InsufficientCredits moving nothing.

        Returns the reservation made, or None when this exact reservation was already in place
        (so a pipeline may retry the call safely).
        """

        # Before any read: an id DynamoDB cannot even look up (a lone surrogate) is refused here, by name.
        validate_reservation(job_id, user_id, model, credits, self.prices)

        def attempt() -> Reservation | None:
            job, balance = self.store.load(job_id, user_id)
            plan = plan_reservation(job_id, user_id, model, credits, job, balance, self.clock(), self.prices)
            if plan is not None:
                try:
                    self.store.commit_reservation(plan)
                except LedgerEntryTaken as taken:
                    raise ReservationRefused(f"job {job_id}: {taken.reason}") from taken
            return plan

        plan, _ = with_retries(attempt, self.backoff())
        return plan
