"""The reservation library call for the video pipeline: a hold on the balance and the job in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from reconciler.domain.errors import InsufficientCredits
from reconciler.domain.ledger import iso_timestamp
from reconciler.domain.pricing import PriceBook
from reconciler.domain.settlement import UNREAD, Reservation, plan_reservation, validate_reservation
from reconciler.service.ports import BalanceChanged, SettlementStore
from reconciler.service.retrying import Backoff, with_retries


@dataclass
class ReservationService:
    store: SettlementStore
    prices: PriceBook = field(default_factory=PriceBook)
    clock: Callable[[], str] = iso_timestamp
    backoff: Callable[[], Backoff] = field(default=Backoff)

    def reserve(self, job_id: str, user_id: str, model: str, credits: int) -> Reservation | None:
        """Holds `credits` of the balance for a job, or raises InsufficientCredits moving nothing.

        Returns the reservation made, or None when this exact reservation was already in place
        (so a pipeline may retry the call safely).
        """

        # Before any read: an id DynamoDB cannot even look up (a lone surrogate) is refused here, by name.
        validate_reservation(job_id, user_id, model, credits, self.prices)

        def attempt() -> Reservation | None:
            # Strongly consistent, unlike a settlement's first read: a reservation found already in place writes
            # nothing, so an earlier version of the job could answer "in place" for a job settled since.
            job = self.store.load_job(job_id)
            # The balance is not read: the hold's condition (remaining >= credits) decides, and returns it if not.
            plan = plan_reservation(job_id, user_id, model, credits, job, UNREAD, self.clock(), self.prices)
            if plan is not None:
                try:
                    self.store.commit_reservation(plan)
                except BalanceChanged as short:
                    raise InsufficientCredits(user_id, credits, short.balance) from short
            return plan

        plan, _ = with_retries(attempt, self.backoff())
        return plan
