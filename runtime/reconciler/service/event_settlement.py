"""Settling one event: validate, load, decide, commit in one transaction, retry on contention."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from reconciler.domain.errors import DamagedJob, InvalidEvent
from reconciler.domain.events import VideoEvent, archive_replay, parse_envelope, skips_refused
from reconciler.domain.ledger import iso_timestamp
from reconciler.domain.pricing import PriceBook
from reconciler.domain.records import SettlementRecord
from reconciler.domain.settlement import (
    UNREAD,
    Balance,
    Conflict,
    Decision,
    Duplicate,
    JobView,
    Known,
    MirrorRepaired,
    Settlement,
    Superseded,
    decide,
    lost_event_for,
    settled_facts,
)
from reconciler.service.ports import BalanceChanged, DeadLetters, SettlementStore
from reconciler.service.retrying import Backoff, new_request_id, with_retries

SETTLED, DUPLICATE, CONFLICT, REJECTED, SUPERSEDED = "settled", "duplicate", "conflict", "rejected", "superseded"
# An archive replay's event refused as invalid: it was when it first arrived (dead-lettered then, with its alert).
ALREADY_REFUSED = "already-refused"
MIRROR_REPAIRED = "mirror-repaired"
_KINDS = {Settlement: SETTLED, Conflict: CONFLICT, Duplicate: DUPLICATE, Superseded: SUPERSEDED, MirrorRepaired: MIRROR_REPAIRED}


@dataclass(frozen=True)
class Outcome:
    """What happened to one event; the handler turns it into metrics and logs."""

    kind: str
    event: VideoEvent | None = None
    decision: Decision | None = None
    error: InvalidEvent | None = None
    attempts: int = 1
    dead_letter_id: str | None = None
    replay: str | None = None  # the archive replay this event came from (EventBridge's replay-name)

    @property
    def skipped_in_replay(self) -> bool:
        """An archive replay's event the function had already handled: settled before, or refused before."""
        return self.replay is not None and self.kind in (DUPLICATE, ALREADY_REFUSED)

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
            settled = self.decision.settled
            summary.update(settledAs=settled.settled_as, settledByEvent=settled.settled_by_event)
        if self.error is not None:
            summary.update(field=self.error.field, reason=self.error.reason, deadLetterId=self.dead_letter_id)
        if self.replay is not None:
            summary["replay"] = self.replay
        return summary


@dataclass
class SettlementService:
    store: SettlementStore
    prices: PriceBook
    clock: Callable[[], str] = iso_timestamp
    backoff: Callable[[float | None], Backoff] = field(default=lambda deadline: Backoff(deadline=deadline))
    # Jobs created before this moment may carry a reservation made on their Jobs item (domain/settlement.py).
    legacy_before: str = ""

    def settle(self, event: VideoEvent, deadline: float | None = None, request_id: str | None = None) -> Outcome:
        """Exactly once: a job already settled by this or an equal event is a duplicate, never a second charge.

        `request_id` (the Lambda request's id, which Lambda keeps when it retries an invocation) is stored with
        the settlement: a re-read that finds the job settled by this event in this request is this settlement,
        whose answer was lost, and is reported as settled, not as a duplicate.
        """
        request_id = request_id or new_request_id()
        known: list[Balance] = [UNREAD]
        attempts = itertools.count()

        def attempt() -> Decision:
            record, job = self._load(event.job_id, first_attempt=next(attempts) == 0)
            return self._decide_and_commit(lambda balance: self._decide(event, Known(record, job, balance), request_id), known)

        return self._outcome(event, with_retries(attempt, self.backoff(deadline)))

    def _decide(self, event: VideoEvent, known: Known, request_id: str | None) -> Decision:
        return decide(event, known, self.prices, self.clock(), request_id, self.legacy_before)

    def _load(self, job_id: str, *, first_attempt: bool) -> tuple[SettlementRecord | None, JobView]:
        """The first attempt reads only the job's settlement record, eventually consistently (0.5 RRU): a duplicate,
        the commonest event that writes nothing, then costs what v1's read costs, and the Jobs item (the pipeline's)
        is not read at all: the write's condition on it checks what the decision assumed (domain/settlement.py).
        An earlier version of the record is safe to decide on:
        - a record shown unsettled (or absent) is only ever written under a condition on the record as read (no
          settlement, the same hold; or its absence), so a decision on an earlier version is refused like one that
          lost a race, and the retry reads strongly consistently;
        - a record shown settled is settled now: only the reconciler writes records and nothing removes a
          settlement, and what a duplicate or a conflict is decided on is written once; recording a conflict is
          conditioned on the event not being recorded yet.
        A damaged record is decided on the current item only: an earlier version may be the damage since repaired.
        A retry reads the record strongly, and the Jobs item too unless the record shows the job settled (our own
        lost answer, or another writer's settlement: the Jobs item cannot change that decision).
        The simulator serves earlier versions (emulator/fidelity.py, 7.) and checks every guarantee under them.
        """
        if first_attempt:
            try:
                return self.store.load_record(job_id, consistent=False), UNREAD
            except DamagedJob:
                pass
        record = self.store.load_record(job_id)
        if record is not None and record.is_settled:
            return record, UNREAD
        job = self.store.load_job(job_id)
        if job is not None and job.is_settled:
            # Settled between the two reads (the record and the item's mirror are one transaction), or before records
            # existed: the record read again says which, so a conflict is recorded where the settlement is.
            record = self.store.load_record(job_id)
        return record, UNREAD if record is not None and record.is_settled else job

    def settle_lost_event(
        self, job_id: str, user_id: str, settle_before: str, deadline: float | None = None, request_id: str | None = None
    ) -> Outcome:
        """The timer scan's settlement of a finished job: the event is rebuilt from the job as read in the same
        attempt, and the write is conditioned on that job's status and update time, so a job the pipeline
        changes meanwhile is decided again from what it now says (or left for the next tick)."""
        request_id = request_id or new_request_id()
        rebuilt: list[VideoEvent] = []
        known: list[Balance] = [UNREAD]

        def attempt() -> Decision:
            # Strongly consistent: "no job", "superseded" and a repaired mirror write nothing that needs them.
            job, record = self.store.load_job(job_id), self.store.load_record(job_id)
            if job is None:
                return Superseded(None, job)
            facts = settled_facts(record, job)
            if facts is not None and not (facts.settled_by_request == request_id and facts.settled_by_event):
                # Settled, by another request: the job is in the index only because its item lost the settlement
                # (another writer saved it whole) or got its marker back. Write the settlement back onto it.
                self.store.repair_mirror(job_id, facts)
                return MirrorRepaired(job, facts)
            event = lost_event_for(job, record, settle_before)
            if event is None:
                return Superseded(None, job)
            rebuilt[:] = [event]
            return self._decide_and_commit(lambda balance: self._decide(event, Known(record, job, balance), request_id), known)

        decision, attempts = with_retries(attempt, self.backoff(deadline))
        return self._outcome(rebuilt[0] if rebuilt and not isinstance(decision, (Superseded, MirrorRepaired)) else None, (decision, attempts))

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
        event, replay = None, archive_replay(raw_event)
        try:
            event = parse_envelope(raw_event)
            return replace(self.settlement.settle(event, deadline, request_id), replay=replay)
        except InvalidEvent as error:
            if skips_refused(replay):
                # The function received the archived event when it first arrived and dead-lettered it then, with
                # its alert (Lambda did, unrun, if it was paused): another copy would repeat what the DLQ says.
                return Outcome(ALREADY_REFUSED, event=event, error=error, replay=replay)
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


def deadline_from_remaining_ms(remaining_ms: int, margin_ms: int = 3000) -> float:
    """A monotonic deadline that leaves `margin_ms` of the invocation for logging and metrics."""
    return time.monotonic() + max(remaining_ms - margin_ms, 0) / 1000
