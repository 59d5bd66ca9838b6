"""The timer scan: settles jobs whose terminal status no event settled, reports jobs stuck before it, and releases
the holds whose expiry has passed (service/hold_expiry.py).

Cost follows the number of unsettled jobs: it queries the sparse `unsettled-createdAt-index`, which
holds only jobs still carrying the `unsettled` marker (settlement removes it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.domain.errors import InvalidEvent
from reconciler.domain.ledger import iso_timestamp
from reconciler.domain.settlement import TERMINAL_STATUSES, TIMER_SCAN_EVENT_PREFIX, JobRecord, UnreadableJob
from reconciler.service.credit_expiry import CreditExpiryReport, CreditExpiryService
from reconciler.service.event_settlement import CONFLICT, MIRROR_REPAIRED, SETTLED, SUPERSEDED, Outcome, SettlementService
from reconciler.service.hold_expiry import ExpiryReport, HoldExpiryService
from reconciler.service.ports import SettlementStore
from reconciler.service.retrying import deadline_passed, error_summary, until_failure

SCAN_EVENT_PREFIX = TIMER_SCAN_EVENT_PREFIX
# The share of a tick's time kept for hold expiry (docs/contract.md, "Timer scan"): the jobs stop this much before
# the tick's deadline, so a backlog of jobs never starves expiry, which then runs to the deadline itself.
EXPIRY_SHARE = 0.25


@dataclass
class ScanReport:
    examined: int = 0
    settled: list[Outcome] = field(default_factory=list)
    already_settled: list[Outcome] = field(default_factory=list)
    conflicts: list[Outcome] = field(default_factory=list)
    waiting: list[JobRecord] = field(default_factory=list)
    stuck: list[JobRecord] = field(default_factory=list)
    # Jobs no retry can settle (damaged item, bad stored detail, taken ledger id): a person must look.
    unsettleable: list[tuple[JobRecord | UnreadableJob, str]] = field(default_factory=list)
    # Jobs whose settlement failed this tick for a passing reason (throttling past the retries, an AWS
    # error): left in the index for the next tick; they never stop the jobs behind them.
    deferred: list[tuple[JobRecord, str]] = field(default_factory=list)
    # Settled jobs whose Jobs item had lost its settlement (another writer saved it whole): written back.
    mirrors_repaired: list[str] = field(default_factory=list)
    # The jobs' share of the tick ran out; the jobs not reached are still in the index for the next tick.
    stopped_early: bool = False
    # Reading the index failed part-way (throttling past the retries): what was settled is still reported
    # (and counted), the rest waits for the next tick.
    interrupted: str | None = None
    # The holds released at their expiry after the jobs, every tick (None: this scan does not expire holds).
    expiry: ExpiryReport | None = None
    # The credits expired (and noticed) after the holds (None: this scan does not expire credits).
    credit_expiry: CreditExpiryReport | None = None

    def summary(self) -> dict[str, Any]:
        return {
            **(self.expiry.summary() if self.expiry is not None else {}),
            **(self.credit_expiry.summary() if self.credit_expiry is not None else {}),
            "examined": self.examined,
            "settled": [o.event.job_id for o in self.settled if o.event],
            "alreadySettled": [o.event.job_id for o in self.already_settled if o.event],
            "conflicts": [o.event.job_id for o in self.conflicts if o.event],
            "waiting": len(self.waiting),
            "stuck": [job.job_id for job in self.stuck],
            "unsettleable": [{"jobId": job.job_id, "reason": reason} for job, reason in self.unsettleable],
            "deferred": [{"jobId": job.job_id, "reason": reason} for job, reason in self.deferred],
            "mirrorsRepaired": self.mirrors_repaired,
            "stoppedEarly": self.stopped_early,
            "interrupted": self.interrupted,
        }


@dataclass
class TimerScan:
    store: SettlementStore
    settlement: SettlementService
    grace: timedelta
    stuck_after: timedelta
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    expiry: HoldExpiryService | None = None
    expiry_share: float = EXPIRY_SHARE
    credit_expiry: CreditExpiryService | None = None

    def run(self, deadline: float | None = None, request_id: str | None = None) -> ScanReport:
        """The jobs, then the expired holds, then the expired credits. With a deadline and an expiry to run, the jobs
        stop `expiry_share` of the time left before it: expiry always has that share (and whatever the jobs left)."""
        now = self.now()
        settle_before = iso_timestamp(now - self.grace)
        stuck_before = iso_timestamp(now - self.stuck_after)
        report = ScanReport()
        tick_deadline, deadline = deadline, self._jobs_deadline(deadline)
        for job in until_failure(self.store.unsettled_jobs(created_before=settle_before), lambda error: setattr(report, "interrupted", error)):
            if deadline_passed(deadline):
                report.stopped_early = True
                break
            report.examined += 1
            if isinstance(job, UnreadableJob):
                report.unsettleable.append((job, job.reason))
            elif job.is_settled:  # settled, yet back in the index: its marker was written again; remove it
                self._settle(job, settle_before, report, deadline, request_id)
            elif job.status in TERMINAL_STATUSES:
                # A status that changed within the grace period may still have its event in flight.
                if job.updated_at and job.updated_at > settle_before:
                    report.waiting.append(job)
                    continue
                self._settle(job, settle_before, report, deadline, request_id)
            elif job.created_at and job.created_at <= stuck_before:
                report.stuck.append(job)
            else:
                report.waiting.append(job)
        if self.expiry is not None:
            report.expiry = self.expiry.release_expired(iso_timestamp(now), tick_deadline)
        if self.credit_expiry is not None:
            report.credit_expiry = self.credit_expiry.run(iso_timestamp(now), tick_deadline)
        return report

    def _jobs_deadline(self, deadline: float | None) -> float | None:
        if deadline is None or (self.expiry is None and self.credit_expiry is None):
            return deadline
        return deadline - self.expiry_share * max(deadline - time.monotonic(), 0.0)

    def _settle(self, job: JobRecord, settle_before: str, report: ScanReport, deadline: float | None, request_id: str | None) -> None:
        try:
            outcome = self.settlement.settle_lost_event(job.job_id, job.user_id, settle_before, deadline, request_id)
        except InvalidEvent as error:
            report.unsettleable.append((job, str(error)))
            return
        except Exception as error:  # noqa: BLE001 - one job's failure never stops the jobs behind it
            report.deferred.append((job, error_summary(error)))
            return
        if outcome.kind == SETTLED:
            report.settled.append(outcome)
        elif outcome.kind == CONFLICT:
            report.conflicts.append(outcome)
        elif outcome.kind == SUPERSEDED:
            report.waiting.append(job)
        elif outcome.kind == MIRROR_REPAIRED:
            report.mirrors_repaired.append(job.job_id)
        else:
            report.already_settled.append(outcome)
