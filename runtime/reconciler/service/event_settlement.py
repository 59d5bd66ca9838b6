"""Settling one event: validate, load, decide, commit in one transaction, retry on contention."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.domain.errors import DamagedJob, InvalidEvent
from reconciler.domain.events import VideoEvent, parse_envelope
from reconciler.domain.ledger import iso_timestamp
from reconciler.domain.pricing import PriceBook
from reconciler.domain.settlement import (
    UNREAD,
    Balance,
    Conflict,
    Decision,
    Duplicate,
    JobRecord,
    Settlement,
    Superseded,
    decide,
    lost_event_for,
)
from reconciler.service.ports import BalanceChanged, DeadLetters, SettlementStore
from reconciler.service.retrying import Backoff, with_retries

SETTLED, DUPLICATE, CONFLICT, REJECTED, SUPERSEDED = "settled", "duplicate", "conflict", "rejected", "superseded"
_KINDS = {Settlement: SETTLED, Conflict: CONFLICT, Duplicate: DUPLICATE, Superseded: SUPERSEDED}


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
                ledgerIds=[entry.ledger_id for entry in settlement.entries],
                overdraft=settlement.is_overdraft,
            )
            if settlement.recovered:
                summary["recovered"] = True  # our own earlier attempt committed it; its answer was lost
            elif settlement.balance_after is not None:  # known only when a failed guard returned the balance
                summary["balanceAfter"] = settlement.balance_after
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

    def settle(self, event: VideoEvent, deadline: float | None = None, request_id: str | None = None) -> Outcome:
        """Exactly once: a job already settled by this or an equal event is a duplicate, never a second charge.

        `request_id` (the Lambda request's id, which Lambda keeps when it retries an invocation) is stored with
        the settlement: a re-read that finds the job settled by this event in this request is this settlement,
        whose answer was lost, and is reported as settled, not as a duplicate.
        """
        request_id = request_id or _new_request_id()
        known: list[Balance] = [UNREAD]
        attempts = itertools.count()

        def attempt() -> Decision:
            job = self._load_job(event.job_id, first_attempt=next(attempts) == 0)
            return self._decide_and_commit(lambda balance: decide(event, job, balance, self.prices, self.clock(), request_id), known)

        return self._outcome(event, with_retries(attempt, self.backoff(deadline)))

    def _load_job(self, job_id: str, *, first_attempt: bool) -> JobRecord | None:
        """The first read is eventually consistent (0.5 RRU instead of 1): a duplicate, the commonest event that
        writes nothing, then costs what v1's read costs. An earlier version of the job is safe to decide on:
        - a job shown unsettled (or absent) is only ever written under a condition on the job as read (its
          status, update time, reservation and no settlement; or its absence), so a decision on an earlier
          version is refused like one that lost a race, and the retry reads strongly consistently;
        - a job shown settled is settled now: a settlement is never undone (nothing removes settledAs or
          deletes a job), and what a duplicate or a conflict is decided on (settledAs, settledByEvent,
          settledByRequest) is written once; recording a conflict is conditioned on the event not being
          recorded yet.
        A damaged job is decided on the current item only: an earlier version may be the damage since repaired.
        The simulator serves earlier versions (simulator/fidelity.py, 7.) and checks every guarantee under them.
        """
        if not first_attempt:
            return self.store.load_job(job_id)
        try:
            return self.store.load_job(job_id, consistent=False)
        except DamagedJob:
            return self.store.load_job(job_id)

    def settle_lost_event(
        self, job_id: str, user_id: str, settle_before: str, deadline: float | None = None, request_id: str | None = None
    ) -> Outcome:
        """The timer scan's settlement of a finished job: the event is rebuilt from the job as read in the same
        attempt, and the write is conditioned on that job's status and update time, so a job the pipeline
        changes meanwhile is decided again from what it now says (or left for the next tick)."""
        request_id = request_id or _new_request_id()
        rebuilt: list[VideoEvent] = []
        known: list[Balance] = [UNREAD]

        def attempt() -> Decision:
            job = self.store.load_job(job_id)  # strongly consistent: "no job" or "superseded" writes nothing
            event = lost_event_for(job, settle_before) if job is not None else None
            if event is None or job is None:
                return Superseded(None, job)
            rebuilt[:] = [event]
            return self._decide_and_commit(lambda balance: decide(event, job, balance, self.prices, self.clock(), request_id), known)

        decision, attempts = with_retries(attempt, self.backoff(deadline))
        return self._outcome(rebuilt[0] if rebuilt and not isinstance(decision, Superseded) else None, (decision, attempts))

    def _decide_and_commit(self, decide_with: Callable[[Balance], Decision], known: list[Balance]) -> Decision:
        """Decide on the balance known so far (UNREAD at first: the job is the only read) and commit. When only the
        balance's guard fails, the failure carries the balance: decide once more on it (an overdraft, say) without
        a read. A second such failure (the balance crossed back meanwhile) goes to the retry loop, which backs off,
        reads the job again and starts from the balance last seen; any figure is safe there, since the guard checks it.
        """
        try:
            return self._commit(decide_with(known[0]))
        except BalanceChanged as changed:
            known[0] = changed.balance
        try:
            return self._commit(decide_with(known[0]))
        except BalanceChanged as changed:
            known[0] = changed.balance
            raise

    def _commit(self, decision: Decision) -> Decision:
        if isinstance(decision, Settlement) and not decision.recovered:
            self.store.commit_settlement(decision)
        elif isinstance(decision, Conflict) and not decision.recovered:
            self.store.record_conflict(decision)
        return decision

    @staticmethod
    def _outcome(event: VideoEvent | None, result: tuple[Decision, int]) -> Outcome:
        decision, attempts = result
        return Outcome(_KINDS[type(decision)], event=event, decision=decision, attempts=attempts)


@dataclass
class EventProcessor:
    """The whole path of one EventBridge event; invalid input goes to the DLQ with its reason."""

    settlement: SettlementService
    dead_letters: DeadLetters

    def process(self, raw_event: str | bytes | Mapping[str, Any], deadline: float | None = None, request_id: str | None = None) -> Outcome:
        event = None
        try:
            event = parse_envelope(raw_event)
            return self.settlement.settle(event, deadline, request_id)
        except InvalidEvent as error:
            # Nothing was written: validation, the userId check and a damaged job are all found before any
            # write, and a taken ledger id cancels the whole transaction.
            event_id = raw_event.get("id") if isinstance(raw_event, Mapping) else None
            message_id = self.dead_letters.send(
                raw_event,
                error_type=type(error).__name__,
                field=error.field,
                reason=error.reason,
                event_id=event_id if isinstance(event_id, str) else None,
            )
            return Outcome(REJECTED, event=event, error=error, dead_letter_id=message_id)


def _new_request_id() -> str:
    # Outside Lambda (CLI replay, tests) each call is its own request.
    return f"local-{uuid.uuid4()}"


def deadline_from_remaining_ms(remaining_ms: int, margin_ms: int = 3000) -> float:
    """A monotonic deadline that leaves `margin_ms` of the invocation for logging and metrics."""
    return time.monotonic() + max(remaining_ms - margin_ms, 0) / 1000
