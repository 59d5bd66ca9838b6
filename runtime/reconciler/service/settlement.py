"""Settling one event: validate, load, decide, commit in one transaction, retry on contention."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from reconciler.domain.errors import InvalidEvent
from reconciler.domain.events import VideoEvent, parse_envelope
from reconciler.domain.ledger import iso_timestamp
from reconciler.domain.pricing import PriceBook
from reconciler.domain.settlement import Conflict, Decision, Duplicate, Settlement, decide
from reconciler.repository.retry import Backoff
from reconciler.service.ports import DeadLetters, SettlementStore
from reconciler.service.retrying import with_retries

SETTLED, DUPLICATE, CONFLICT, REJECTED = "settled", "duplicate", "conflict", "rejected"


@dataclass(frozen=True)
class Outcome:
    """What happened to one event; the handler turns it into metrics and logs."""

    kind: str
    event: VideoEvent | None = None
    decision: Decision | None = None
    error: InvalidEvent | None = None
    attempts: int = 1
    dead_letter_id: str | None = None

    @property
    def settlement(self) -> Settlement | None:
        return self.decision if isinstance(self.decision, Settlement) else None

    def summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = {"outcome": self.kind, "attempts": self.attempts}
        if self.event is not None:
            summary.update(eventId=self.event.event_id, jobId=self.event.job_id, userId=self.event.user_id)
        settlement = self.settlement
        if settlement is not None:
            summary.update(
                settledAs=settlement.settled_as,
                balanceDelta=settlement.balance_delta,
                balanceAfter=settlement.balance_after,
                ledgerIds=[entry.ledger_id for entry in settlement.entries],
                overdraft=settlement.is_overdraft,
            )
        if isinstance(self.decision, (Conflict, Duplicate)):
            job = self.decision.job
            summary.update(settledAs=job.settled_as, settledByEvent=job.settled_by_event)
        if self.error is not None:
            summary.update(field=self.error.field, reason=self.error.reason, deadLetterId=self.dead_letter_id)
        return summary


@dataclass
class SettlementService:
    store: SettlementStore
    prices: PriceBook
    clock: Callable[[], str] = iso_timestamp
    backoff: Callable[[float | None], Backoff] = field(default=lambda deadline: Backoff(deadline=deadline))

    def settle(self, event: VideoEvent, deadline: float | None = None) -> Outcome:
        """Exactly once: a job already settled by this or an equal event is a duplicate, never a second charge."""

        def attempt() -> Decision:
            job, balance = self.store.load(event.job_id, event.user_id)
            decision = decide(event, job, balance, self.prices, self.clock())
            if isinstance(decision, Settlement):
                self.store.commit_settlement(decision)
            elif isinstance(decision, Conflict):
                self.store.record_conflict(decision)
            return decision

        decision, attempts = with_retries(attempt, self.backoff(deadline))
        kind = SETTLED if isinstance(decision, Settlement) else CONFLICT if isinstance(decision, Conflict) else DUPLICATE
        return Outcome(kind, event=event, decision=decision, attempts=attempts)


@dataclass
class EventProcessor:
    """The whole path of one EventBridge event; invalid input goes to the DLQ with its reason."""

    settlement: SettlementService
    dead_letters: DeadLetters

    def process(self, raw_event: str | bytes | Mapping[str, Any], deadline: float | None = None) -> Outcome:
        event = None
        try:
            event = parse_envelope(raw_event)
            return self.settlement.settle(event, deadline)
        except InvalidEvent as error:
            # Nothing was written (validation and the userId check happen before any write).
            event_id = raw_event.get("id") if isinstance(raw_event, Mapping) else None
            message_id = self.dead_letters.send(
                raw_event, error_type="InvalidEvent", field=error.field, reason=error.reason,
                event_id=event_id if isinstance(event_id, str) else None,
            )
            return Outcome(REJECTED, event=event, error=error, dead_letter_id=message_id)


def deadline_from_remaining_ms(remaining_ms: int, margin_ms: int = 3000) -> float:
    """A monotonic deadline that leaves `margin_ms` of the invocation for logging and metrics."""
    return time.monotonic() + max(remaining_ms - margin_ms, 0) / 1000
