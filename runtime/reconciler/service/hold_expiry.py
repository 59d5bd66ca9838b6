"""Hold expiry: the timer scan releases the open holds whose expiry has passed (docs/contract.md, "Timer scan").

Each expired hold is released in one transaction of its own (the pipeline's release: the balance's `held` back to
`remaining`, the record's hold closed, nothing posted), conditioned on the hold still open, unsettled and of that
expiry, so a settlement, the pipeline's release, another tick or a retry that came first leaves nothing to release.
Once it commits, `credits.hold.expired` is published (docs/schemas/credits.hold.expired.json). No release (first
attempt or retry) starts after the tick's deadline: a hold not reached stays in the index, expired, for the next tick.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from reconciler.contract import HOLD_EXPIRED, HOLD_EXPIRED_DETAIL_TYPE
from reconciler.domain.holds import HoldRelease, plan_expiry
from reconciler.domain.ledger import iso_timestamp
from reconciler.domain.records import SettlementRecord
from reconciler.domain.settlement import UnreadableJob
from reconciler.service.ports import Publisher, RetriesExhausted
from reconciler.service.retrying import Backoff, deadline_passed, error_summary, until_failure, with_retries


class ExpiringHolds(Protocol):
    """What hold expiry needs of the store (repository/dynamodb.py DynamoDBStore)."""

    def expired_holds(self, now: str) -> Iterator[SettlementRecord | UnreadableJob]: ...
    def load_record(self, job_id: str, *, consistent: bool = True) -> SettlementRecord | None: ...
    def commit_release(self, release: HoldRelease) -> None: ...


@dataclass
class ExpiryReport:
    released: list[HoldRelease] = field(default_factory=list)
    # Holds that expired but were settled or released before this tick's write (nothing to do).
    gone: int = 0
    # Records in the index the reconciler cannot read (a person must look), and releases that failed for a passing
    # reason (left for the next tick).
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    deferred: list[tuple[str, str]] = field(default_factory=list)
    # Released, but `credits.hold.expired` could not be published (the release stands; the event is lost).
    unpublished: list[tuple[str, str]] = field(default_factory=list)
    interrupted: str | None = None
    # The tick's deadline came before the index was read to its end: the holds not reached wait for the next tick.
    stopped_early: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "holdsExpired": [release.job_id for release in self.released],
            "expiredHoldsGone": self.gone,
            "expiryUnreadable": [{"jobId": job, "reason": reason} for job, reason in self.unreadable],
            "expiryDeferred": [{"jobId": job, "reason": reason} for job, reason in self.deferred],
            "expiryUnpublished": [{"jobId": job, "reason": reason} for job, reason in self.unpublished],
            "expiryInterrupted": self.interrupted,
            "expiryStoppedEarly": self.stopped_early,
        }


@dataclass
class HoldExpiryService:
    store: ExpiringHolds
    publisher: Publisher | None = None
    clock: Callable[[], str] = iso_timestamp
    backoff: Callable[[float | None], Backoff] = field(default=lambda deadline: Backoff(deadline=deadline))

    def release_expired(self, now: str | None = None, deadline: float | None = None) -> ExpiryReport:
        """Releases the holds expired at `now` (the tick's start; default: the clock's now), none after `deadline`."""
        report = ExpiryReport()
        for seen in until_failure(self.store.expired_holds(now or self.clock()), lambda error: setattr(report, "interrupted", error)):
            if deadline_passed(deadline):
                report.stopped_early = True
                break  # the rest waits for the next tick
            if isinstance(seen, UnreadableJob):
                report.unreadable.append((seen.job_id, seen.reason))
                continue
            try:
                released = self.expire(seen, deadline)
            except Exception as error:  # noqa: BLE001 - one hold's failure never stops the holds behind it
                report.deferred.append((seen.job_id, error_summary(error)))
                continue
            if released is None:
                report.gone += 1
                continue
            report.released.append(released)
            self._announce(released, report)
        return report

    def expire(self, seen: SettlementRecord, deadline: float | None = None) -> HoldRelease | None:
        """Releases one expired hold, deciding on `seen` (the index's copy) first and on a strong read after a refusal;
        None when there is nothing to release (settled, released, or no longer expired as read). Retries stop at
        `deadline`, and no write starts after it (RetriesExhausted: the hold is left for the next tick), so a release
        never commits when the function has no time left to announce it."""
        first: list[SettlementRecord | None] = [seen]
        tried: list[str] = []

        def attempt() -> HoldRelease | None:
            record = first.pop() if first else self.store.load_record(seen.job_id)
            if record is None:
                return None
            if record.hold_released_by == HOLD_EXPIRED and record.hold_released_at in tried:
                # Our own write, whose answer was lost: it is this release, not another one.
                return HoldRelease(record.job_id, record.user_id, record.held_credits, record, record.hold_released_at or "", record.hold_expires_at)
            now = self.clock()
            tried.append(now)
            plan = plan_expiry(record, now)
            if plan is not None:
                if deadline_passed(deadline):
                    raise RetriesExhausted("the tick's deadline passed before the release could be written")
                self.store.commit_release(plan)
            return plan

        released, _ = with_retries(attempt, self.backoff(deadline))
        return released

    def _announce(self, release: HoldRelease, report: ExpiryReport) -> None:
        if self.publisher is None:
            return
        try:
            self.publisher.publish(HOLD_EXPIRED_DETAIL_TYPE, expired_hold_detail(release))
        except Exception as error:  # noqa: BLE001 - the release stands whatever happens to its announcement
            report.unpublished.append((release.job_id, error_summary(error)))


def expired_hold_detail(release: HoldRelease) -> dict[str, Any]:
    """`credits.hold.expired`'s detail (docs/schemas/credits.hold.expired.json); a hold expires once, so jobId
    identifies it."""
    record = release.record_before
    return {
        "jobId": release.job_id,
        "userId": release.user_id,
        "credits": release.credits,
        "heldAt": record.held_at,
        "expiresAt": release.expired_at,
        "releasedAt": release.timestamp,
    }
