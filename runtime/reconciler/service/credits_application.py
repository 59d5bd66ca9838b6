"""Applying credits in (purchases, grants, revocations): validate, decide, one transaction, retry; bad input to the DLQ.

The common path is one write and no read: the transaction writes the balance and the entry under the id derived
from the outside reference, on condition that the id is free. A redelivery fails that condition; the entry it
finds (one strong read) is the same application (a duplicate, nothing written; or, when this very invocation wrote
it, the application itself, answered as first decided) or another one reusing the reference (refused,
dead-lettered). A revocation is decided as covered first; when the balance's guard fails, the balance comes back
with the failure and the revocation is applied as an overdraft under the opposite guard.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from reconciler.contract import StageLimits
from reconciler.domain.credits_in import (
    CreditsApplication,
    CreditsInEvent,
    check_expiry,
    decide_credits_in,
    parse_credits_in,
    same_application,
)
from reconciler.domain.errors import InvalidEvent, LedgerEntryTaken
from reconciler.domain.ledger import iso_timestamp
from reconciler.service.ports import BalanceChanged, CreditsInStore, DeadLetters, StaleState
from reconciler.service.retrying import Backoff, new_request_id, with_retries

APPLIED, DUPLICATE, REJECTED = "applied", "duplicate", "rejected"


@dataclass(frozen=True)
class CreditsOutcome:
    kind: str
    event: CreditsInEvent | None = None
    application: CreditsApplication | None = None
    error: InvalidEvent | None = None
    attempts: int = 1
    dead_letter_id: str | None = None
    recovered: bool = False  # this invocation committed it before (a lost answer, or Lambda's retry of the invocation)

    @property
    def overdraft(self) -> bool:
        return self.kind == APPLIED and self.application is not None and self.application.overdraft

    def summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = {"outcome": self.kind, "attempts": self.attempts}
        if self.event is not None:
            summary.update(
                eventId=self.event.event_id,
                detailType=self.event.detail_type,
                userId=self.event.user_id,
                reference=self.event.reference,
                category=self.event.category,
                ledgerId=self.event.ledger_id,
            )
        if self.application is not None and self.kind == APPLIED:
            summary.update(balanceDelta=self.application.balance_delta, overdraft=self.application.overdraft)
            if self.application.balance_after is not None:
                summary["balanceAfter"] = self.application.balance_after
        if self.recovered:
            summary["recovered"] = True
        if self.error is not None:
            summary.update(field=self.error.field, reason=self.error.reason, deadLetterId=self.dead_letter_id)
        return summary


@dataclass
class CreditsInService:
    store: CreditsInStore
    dead_letters: DeadLetters
    clock: Callable[[], str] = iso_timestamp
    backoff: Callable[[float | None], Backoff] = field(default=lambda deadline: Backoff(deadline=deadline))
    # The latest a credit may expire, after it comes in (StageLimits.credit_expiry_max_days).
    max_expiry: timedelta = timedelta(days=StageLimits.credit_expiry_max_days)

    def process(self, raw_event: Mapping[str, Any], deadline: float | None = None, request_id: str | None = None) -> CreditsOutcome:
        event = None
        try:
            event = parse_credits_in(raw_event)
            self._check_expiry(event)
            return self.apply(event, deadline, request_id)
        except InvalidEvent as error:
            # Nothing was written: validation and a reused reference are found before any write commits.
            event_id = raw_event.get("id") if isinstance(raw_event, Mapping) else None
            message_id = self.dead_letters.send(
                raw_event,
                error_type=type(error).__name__,
                field=error.field,
                reason=error.reason,
                event_id=event_id if isinstance(event_id, str) else None,
            )
            return CreditsOutcome(REJECTED, event=event, error=error, dead_letter_id=message_id)

    def _check_expiry(self, event: CreditsInEvent) -> None:
        """A new credit's expiry must be ahead, within the maximum; a redelivery of one applied before its expiry passed
        is still the duplicate it is (one strong read, on this path only)."""
        try:
            check_expiry(event, self.clock(), self.max_expiry)
        except InvalidEvent:
            recorded = self.store.get_application(event.ledger_id)
            if recorded is None or not same_application(recorded.entry, event):
                raise

    def apply(self, event: CreditsInEvent, deadline: float | None = None, request_id: str | None = None) -> CreditsOutcome:
        """Exactly once per ledger id: whatever the deliveries, retries and concurrency, one entry, one balance change.

        `request_id` (the Lambda request's id, which Lambda keeps when it retries an invocation) is written on the
        entry: an attempt that finds the entry written by this event in this request (its own earlier attempt whose
        answer was lost, or the invocation Lambda retries after a fault past the commit) answers as that attempt
        did, overdraft included, so its alert and counts are not lost; another delivery is a duplicate."""
        request_id = request_id or new_request_id()
        known: list[Any] = [None, False]  # the balance a failed guard returned, and whether there is one

        def attempt() -> CreditsOutcome:
            for _ in range(2):  # decided as covered; once more on the balance the failed guard returned
                application = decide_credits_in(event, self.clock(), known[0], balance_known=known[1], request_id=request_id)
                try:
                    self.store.commit_credits_in(application)
                except BalanceChanged as changed:
                    known[:] = [changed.balance, True]
                    continue
                except (LedgerEntryTaken, StaleState):
                    return self._already_applied(event, request_id)
                return CreditsOutcome(APPLIED, event=event, application=application)
            raise StaleState("the balance crossed the revocation's threshold again meanwhile")

        outcome, attempts = with_retries(attempt, self.backoff(deadline))
        return CreditsOutcome(outcome.kind, event=outcome.event, application=outcome.application, attempts=attempts, recovered=outcome.recovered)

    def _already_applied(self, event: CreditsInEvent, request_id: str) -> CreditsOutcome:
        recorded = self.store.get_application(event.ledger_id)
        if recorded is None:
            raise StaleState("the write was refused but no entry holds its ledger id: decide again")
        existing = recorded.entry
        if not same_application(existing, event):
            raise InvalidEvent(
                "reference",
                f"reference {event.reference!r} was already used by ledger entry {existing.ledger_id!r} for "
                f"{existing.signed_amount:+d} credits ({existing.category or 'no category'}) to user {existing.user_id!r}; "
                "a new application needs a new reference",
            )
        if recorded.written_by(event, request_id):
            # This invocation committed it (its answer was lost, or Lambda retries it): applied, not a duplicate.
            return CreditsOutcome(APPLIED, event=event, application=recorded.as_applied(event), recovered=True)
        return CreditsOutcome(DUPLICATE, event=event)
