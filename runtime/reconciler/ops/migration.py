"""Taking over from v1.0 (issue #23, docs/migration.md): v1's settled jobs marked settled before v2, and the opening audit.

v1 leaves Jobs items without any of v2's settlement attributes, and how v1 marks a job processed is not known for
certain (its stand-in writes `processedAt`). What is certain is the cutover instant: v1's rule is paused then, so a
job terminal (rendered or failed) at that instant is v1's to have settled. Each such job gets a settlement record
(Settlements-{stage}, which v2 decides from) that says it settled before v2 and moved nothing: a later event for it
(a replay from the archive, a DLQ redrive, a redelivery) is a duplicate or a conflict, never a second charge.

Every job is reported with its verdict, and nothing is guessed silently:
  * terminal, every timestamp at or before the cutover (or v1's `processedAt` at or before it): marked;
  * terminal with no timestamp at all: marked too (it was terminal when migrate read it, after v1 stopped), and
    named (`noTimestamp`) so a person can look;
  * terminal but changed after the cutover, and not processed by v1 before it: left for v2 (its event is v2's);
  * not terminal: left for v2; already settled by v2, or marked by an earlier run: left alone.

The mark is a conditional put (the record must not exist), so a run can stop anywhere and run again: the next run
marks what is left and recognises its own earlier marks.

The opening audit is the ordinary audit (ops/audit.py) of v1's books: per user, v1's balance against v1's ledger,
each difference named; the corrections the operator chooses (trust the balance or the ledger, for all users or per
user) are the audit's own idempotent fixes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from reconciler.domain.ledger import iso_timestamp
from reconciler.domain.records import SettlementRecord
from reconciler.domain.settlement import TERMINAL_STATUSES
from reconciler.ops.audit import TRUSTS, Auditor, Discrepancy, FixResult
from reconciler.ops.operator_error import InvalidInput

# The settledByEvent of a job settled by v1 before the cutover: `v1-cutover:{cutover}`.
V1_CUTOVER_PREFIX = "v1-cutover:"
V1_PROCESSED_ATTRIBUTE = "processedAt"  # v1's own mark of a processed job (as far as its stand-in shows)

MARKED, WOULD_MARK, ALREADY_MARKED = "marked", "would-mark", "already-marked"
SETTLED_BY_V2, NOT_TERMINAL, AFTER_CUTOVER, UNREADABLE = "settled-by-v2", "not-terminal", "after-cutover", "unreadable"


def parse_moment(text: str) -> datetime:
    """An ISO 8601 instant with a zone (`Z` or an offset); ValueError otherwise."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone (end it with Z)")
    return moment


def _moment_or_none(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_moment(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class JobFinding:
    job_id: str
    user_id: str
    status: str | None
    verdict: str
    detail: str = ""
    no_timestamp: bool = False
    in_dead_letters: bool = False  # an event of the job waits in the DLQ: v1 may have failed on it

    def as_dict(self) -> dict[str, Any]:
        shown = {"jobId": self.job_id, "userId": self.user_id, "status": self.status, "verdict": self.verdict}
        return {**shown, "detail": self.detail, "noTimestamp": self.no_timestamp, "inDeadLetters": self.in_dead_letters}


@dataclass(frozen=True)
class CutoverMark:
    """The settlement record of a job v1 settled: settled as its status, by the cutover, nothing charged or refunded."""

    job_id: str
    user_id: str
    settled_as: str
    cutover: str
    marked_at: str
    actor: str
    reason: str
    v1_processed_at: str | None = None

    @property
    def event_id(self) -> str:
        return f"{V1_CUTOVER_PREFIX}{self.cutover}"

    def provenance(self) -> dict[str, Any]:
        return {"v1ProcessedAt": self.v1_processed_at, "migratedAt": self.marked_at, "migratedBy": self.actor, "migrationReason": self.reason}

    def record(self) -> SettlementRecord:
        """The record as v2 reads it (checked by the domain's own rules before anything is written)."""
        return SettlementRecord(self.job_id, self.user_id, settled_as=self.settled_as, settled_at=self.cutover, settled_by_event=self.event_id)


class MigrationStore(Protocol):
    def scan_jobs(self) -> Iterator[dict[str, Any]]: ...
    def get_job_item(self, job_id: str) -> dict[str, Any] | None: ...
    def load_record(self, job_id: str, *, consistent: bool = True) -> SettlementRecord | None: ...
    def put_cutover_mark(self, job_id: str, user_id: str, settled_as: str, settled_by: str, settled_at: str, provenance: dict[str, Any]) -> bool: ...


def classify(item: Mapping[str, Any], record: SettlementRecord | None, cutover: datetime) -> JobFinding:
    """What to do with one Jobs item at the cutover (its settlement record, if any, already read)."""
    job_id, user_id, status = item.get("jobId"), item.get("userId"), item.get("status")
    if not isinstance(job_id, str) or not isinstance(user_id, str) or not user_id:
        return JobFinding(str(job_id), str(user_id or ""), None, UNREADABLE, "jobId or userId missing or not a string")
    shown_status = status if isinstance(status, str) else None
    if record is not None and record.is_settled:
        if (record.settled_by_event or "").startswith(V1_CUTOVER_PREFIX):
            return JobFinding(job_id, user_id, shown_status, ALREADY_MARKED, f"marked by {record.settled_by_event}")
        return JobFinding(job_id, user_id, shown_status, SETTLED_BY_V2, f"settled as {record.settled_as} by {record.settled_by_event}")
    if item.get("settledAs") is not None:
        return JobFinding(job_id, user_id, shown_status, SETTLED_BY_V2, f"its Jobs item says settled as {item.get('settledAs')}")
    if record is not None and record.hold_open:
        return JobFinding(job_id, user_id, shown_status, NOT_TERMINAL, "holds an open v2 hold: v2 settles it")
    processed = _moment_or_none(item.get(V1_PROCESSED_ATTRIBUTE))
    if status not in TERMINAL_STATUSES:
        detail = "not rendered or failed: v2 settles it when its event comes"
        if processed is not None and processed <= cutover:
            detail = f"v1 processed it ({V1_PROCESSED_ATTRIBUTE}) but its status is {status!r}: look at it (`job show`) before its event"
        return JobFinding(job_id, user_id, shown_status, NOT_TERMINAL, detail)
    moments = [m for m in (_moment_or_none(item.get(name)) for name in ("createdAt", "updatedAt", V1_PROCESSED_ATTRIBUTE)) if m is not None]
    if processed is None and any(moment > cutover for moment in moments):
        return JobFinding(job_id, user_id, shown_status, AFTER_CUTOVER, "changed after the cutover and not processed by v1: v2 settles it")
    detail = f"{status} at the cutover" + (f", processed by v1 at {item.get(V1_PROCESSED_ATTRIBUTE)}" if processed else "")
    if not moments:
        detail = f"{status}, with no timestamp: marked as v1's (it was terminal when read, after v1 stopped)"
    return JobFinding(job_id, user_id, shown_status, WOULD_MARK, detail, no_timestamp=not moments)


@dataclass(frozen=True)
class OpeningCause:
    """One user's opening difference, named."""

    discrepancy: Discrepancy

    @property
    def named(self) -> str:
        d = self.discrepancy
        if d.entry_count == 0:
            return f"a balance of {d.posted} with no ledger at all (funded before v1 kept one, or written behind the books)"
        if d.difference > 0:
            return (
                f"the balance holds {d.difference} credits more than the ledger explains: a debit posted to the ledger whose balance "
                "write was lost (v1's read-modify-write under concurrency), or a credit written to the balance alone"
            )
        if d.difference < 0:
            return (
                f"the balance holds {-d.difference} credits less than the ledger explains: a credit posted to the ledger whose balance "
                "write was lost (v1's read-modify-write under concurrency), or a debit written to the balance alone"
            )
        return d.summary()

    def as_dict(self) -> dict[str, Any]:
        d = self.discrepancy
        return {**d.as_dict(), "entryCount": d.entry_count, "named": self.named, "summary": d.summary(), "corrections": d.corrections()}


def trust_choices(default: str | None, per_user: Iterable[str]) -> tuple[str | None, dict[str, str]]:
    """The operator's choice: one trust for all users (or none), and USER=TRUST overrides."""
    if default is not None and default not in TRUSTS:
        raise ValueError(f"--trust must be ledger or balance, got {default!r}")
    overrides = {}
    for pair in per_user:
        user, sep, trust = pair.rpartition("=")
        if not sep or not user or trust not in TRUSTS:
            raise ValueError(f"--trust-user takes USER=ledger or USER=balance, got {pair!r}")
        overrides[user] = trust
    return default, overrides


@dataclass(frozen=True)
class MigrationReport:
    cutover: str
    dry_run: bool
    jobs: tuple[JobFinding, ...]
    opening: tuple[OpeningCause, ...]
    corrections: tuple[FixResult, ...]

    def counts(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for job in self.jobs:
            counted[job.verdict] = counted.get(job.verdict, 0) + 1
        return counted


@dataclass
class Migration:
    """`reconciler migrate`: a dry run unless `apply`; the same run can be repeated until it has nothing left to do."""

    store: MigrationStore
    auditor: Auditor
    actor: str
    reason: str
    clock: Callable[[], str] = iso_timestamp
    # Jobs whose events wait in the DLQ (v1's failures, or failed redeliveries of events it settled): marked like the
    # others (a mark never charges; a replay of a job v1 did settle would), and named so that a person looks first.
    dead_letter_jobs: frozenset[str] = frozenset()

    def mark_jobs(self, cutover: str, apply: bool, only: Iterable[str] = ()) -> list[JobFinding]:
        moment = parse_moment(cutover)
        if apply and not self.reason.strip():
            raise InvalidInput("marking v1's jobs needs a reason (--reason)")
        wanted = list(only)
        items = (item for item in (self.store.get_job_item(job_id) for job_id in wanted) if item) if wanted else self.store.scan_jobs()
        findings = []
        for item in items:
            job_id = item.get("jobId")
            record = self.store.load_record(job_id) if isinstance(job_id, str) and job_id else None
            finding = classify(item, record, moment)
            if finding.job_id in self.dead_letter_jobs and finding.verdict == WOULD_MARK:
                detail = f"{finding.detail}; an event of it waits in the DLQ: see `job show` and `dlq show` before replaying it"
                finding = replace(finding, detail=detail, in_dead_letters=True)
            if finding.verdict == WOULD_MARK and apply:
                finding = self._mark(item, finding, cutover)
            findings.append(finding)
        return findings

    def _mark(self, item: Mapping[str, Any], finding: JobFinding, cutover: str) -> JobFinding:
        processed = item.get(V1_PROCESSED_ATTRIBUTE)
        mark = CutoverMark(
            finding.job_id,
            finding.user_id,
            str(finding.status),
            cutover,
            self.clock(),
            self.actor,
            self.reason,
            processed if isinstance(processed, str) else None,
        )
        mark.record()  # refuses (DamagedJob) anything v2 could not read back
        if self.store.put_cutover_mark(mark.job_id, mark.user_id, mark.settled_as, mark.event_id, mark.cutover, mark.provenance()):
            return replace(finding, verdict=MARKED)
        # A record appeared since it was read: an earlier run's mark, or v2's settlement. Say which.
        return classify(item, self.store.load_record(finding.job_id), parse_moment(cutover))

    def opening_audit(self) -> list[OpeningCause]:
        return [OpeningCause(d) for d in self.auditor.audit_all()]

    def book_opening(self, opening: Iterable[OpeningCause], default: str | None, overrides: Mapping[str, str], apply: bool) -> list[FixResult]:
        """The corrections the operator chose; users with no choice are left as found (and stay in the report). A
        choice for a user without a difference (one corrected by an earlier run) has nothing to do."""
        fixes = []
        for cause in opening:
            user = cause.discrepancy.user_id
            trust = overrides.get(user, default)
            if trust is None:
                continue
            # v1 is stopped at the cutover: nothing is in flight, so no balance is too fresh to correct.
            result = self.auditor.fix(user, f"opening audit at the v1 cutover: {self.reason}", self.actor, not apply, timedelta(0), trust)
            if result is not None:
                fixes.append(result)
        return fixes

    def run(self, cutover: str, apply: bool, default: str | None, overrides: Mapping[str, str], only: Iterable[str] = ()) -> MigrationReport:
        jobs = self.mark_jobs(cutover, apply, only)
        opening = self.opening_audit()
        corrections = self.book_opening(opening, default, overrides, apply) if (default or overrides) else []
        return MigrationReport(cutover, not apply, tuple(jobs), tuple(opening), tuple(corrections))


DEAD_LETTERS_READ = 10_000  # the DLQ's messages read to name the jobs waiting there (each once; all left in the queue)


def jobs_waiting_in(queue: Any) -> frozenset[str]:
    """The jobs whose events wait in the dead-letter queue (v1 may have failed on them): read, never taken out."""
    from reconciler.ops.dead_letter_replay import peek

    details = (letter.event.get("detail") for letter in peek(queue, DEAD_LETTERS_READ) if letter.event)
    return frozenset(detail["jobId"] for detail in details if isinstance(detail, dict) and isinstance(detail.get("jobId"), str))
