"""The timer scan: settles jobs whose terminal status no event settled, reports jobs stuck before it.

Cost follows the number of unsettled jobs: it queries the sparse `unsettled-createdAt-index`, which
holds only jobs still carrying the `unsettled` marker (settlement removes it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

from reconciler.domain.errors import InvalidEvent
from reconciler.domain import events
from reconciler.domain.ledger import iso_timestamp
from reconciler.domain.settlement import RENDERED, TERMINAL_STATUSES, JobRecord
from reconciler.service.ports import SettlementStore
from reconciler.service.settlement import Outcome, SettlementService

SCAN_EVENT_PREFIX = "timer-scan:"


@dataclass
class ScanReport:
    examined: int = 0
    settled: list[Outcome] = field(default_factory=list)
    already_settled: list[Outcome] = field(default_factory=list)
    waiting: list[JobRecord] = field(default_factory=list)
    stuck: list[JobRecord] = field(default_factory=list)
    unsettleable: list[tuple[JobRecord, str]] = field(default_factory=list)
    # The invocation ran out of time; the jobs not reached are still in the index for the next tick.
    stopped_early: bool = False

    def summary(self) -> dict:
        return {
            "examined": self.examined,
            "settled": [o.event.job_id for o in self.settled],
            "alreadySettled": [o.event.job_id for o in self.already_settled],
            "waiting": len(self.waiting),
            "stuck": [job.job_id for job in self.stuck],
            "unsettleable": [{"jobId": job.job_id, "reason": reason} for job, reason in self.unsettleable],
            "stoppedEarly": self.stopped_early,
        }


@dataclass
class TimerScan:
    store: SettlementStore
    settlement: SettlementService
    grace: timedelta
    stuck_after: timedelta
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)

    def run(self, deadline: float | None = None) -> ScanReport:
        now = self.now()
        settle_before = iso_timestamp(now - self.grace)
        stuck_before = iso_timestamp(now - self.stuck_after)
        report = ScanReport()
        for job in self.store.unsettled_jobs(created_before=settle_before):
            if deadline is not None and time.monotonic() >= deadline:
                report.stopped_early = True
                break
            report.examined += 1
            if job.is_settled:
                continue
            if job.status in TERMINAL_STATUSES:
                # A status that changed within the grace period may still have its event in flight.
                if job.updated_at and job.updated_at > settle_before:
                    report.waiting.append(job)
                    continue
                self._settle(job, report, deadline)
            elif job.created_at and job.created_at <= stuck_before:
                report.stuck.append(job)
            else:
                report.waiting.append(job)
        return report

    def _settle(self, job: JobRecord, report: ScanReport, deadline: float | None) -> None:
        detail = {"jobId": job.job_id, "userId": job.user_id}
        if job.status == RENDERED:
            detail.update(seconds=job.seconds, model=job.model)
        try:
            # The job's pipeline status ("rendered") stands in for the lost event's detail-type ("video.rendered").
            detail_type = events.RENDERED if job.status == RENDERED else events.FAILED
            event = events.parse_detail(detail_type, detail, SCAN_EVENT_PREFIX + job.job_id)
            outcome = self.settlement.settle(event, deadline)
        except InvalidEvent as error:
            report.unsettleable.append((job, str(error)))
            return
        (report.settled if outcome.kind == "settled" else report.already_settled).append(outcome)
