"""One job as an operator needs it (`job show`): its Jobs item and settlement record as stored, its ledger entries,
its messages in the DLQ, and what happened to its money, in words."""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.domain.attributes import HOLD, HOLD_EXPIRED
from reconciler.domain.ledger import JOB_POSTINGS, LedgerEntry, job_ledger_id
from reconciler.domain.records import SettlementRecord
from reconciler.domain.settlement import JobRecord
from reconciler.domain.stored import StoredJob
from reconciler.ops.dead_letter_replay import DeadLetter, peek
from reconciler.ops.operator_ports import BookStore, DeadLetterQueue


def candidate_ledger_ids(job_id: str) -> list[str]:
    """The ids a job's entries can have: the current scheme's and v2.0's `{jobId}#{posting}` (entries written
    before the unambiguous ids stay readable)."""
    ids = []
    for posting in JOB_POSTINGS:
        ids += [job_ledger_id(job_id, posting), f"{job_id}#{posting}"]
    return ids


@dataclass
class JobReport:
    job_id: str
    stored: StoredJob  # its Jobs item (the pipeline's, and the settlement's mirror) and its settlement record
    entries: list[LedgerEntry] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return self.stored.item is not None or self.stored.record_item is not None or bool(self.entries) or bool(self.letters)

    def story(self) -> list[str]:
        """What happened to the job's money, in words (and which of its items cannot be read)."""
        return [f"unreadable {damage}" for damage in self.stored.damage] + money_story(self.stored.record, self.stored.job)


@dataclass
class JobView:
    store: BookStore
    queue: DeadLetterQueue

    def show(self, job_id: str, dlq_max: int) -> JobReport:
        stored = self.store.stored_job(job_id)
        settled_by = settled_by_of(stored.record, stored.job)
        entries = self.entries(job_id, settled_by.user_id if settled_by else None, settled_by.settled_at if settled_by else None)
        letters = [letter for letter in peek(self.queue, dlq_max) if letter.job_id == job_id] if dlq_max else []
        return JobReport(job_id, stored, entries, letters)

    def entries(self, job_id: str, user_id: str | None = None, settled_at: str | None = None) -> list[LedgerEntry]:
        """The job's ledger entries in both tables, never a scan:

        * Ledger (entries written before UserLedger: a v2 reservation's posted "reserve" debit, and the postings of
          jobs settled then): by their deterministic ids, one GetItem each;
        * UserLedger (postings of jobs settled since): a settlement writes all of a job's postings at its settledAt,
          so one Query of the user's postings at that moment, kept to this job's ids. A job not settled has none.
        """
        ids = candidate_ledger_ids(job_id)
        found = [entry for entry in (self.store.get_ledger_entry(ledger_id) for ledger_id in ids) if entry is not None]
        if user_id and settled_at:
            found += [entry for entry in self.store.postings_at(user_id, settled_at) if entry.ledger_id in ids]
        return sorted(found, key=lambda entry: (entry.timestamp, entry.ledger_id))


def settled_by_of(record: SettlementRecord | None, job: JobRecord | None) -> SettlementRecord | JobRecord | None:
    """Where the job's settlement is recorded: its record, or the Jobs item of a job settled before records."""
    return record if record is not None and record.settled_as else job


def money_story(record: SettlementRecord | None, job: JobRecord | None) -> list[str]:
    """Its hold (the record's, or one made on the Jobs item before records) and its settlement."""
    lines = []
    if record is not None and record.held_credits:
        expiry = f", expiring at {record.hold_expires_at}" if record.hold_expires_at else ""
        if record.hold_open:
            state = f"held on the balance{expiry}"
        elif record.hold_released_at and record.hold_released_by == HOLD_EXPIRED:
            state = f"released by the timer scan at {record.hold_released_at}: it expired at {record.hold_expires_at}"
        elif record.hold_released_at:
            state = f"released by the pipeline at {record.hold_released_at}"
        else:
            state = "released by its settlement"
        lines.append(f"held {record.held_credits} credits at {record.unit_price} a second of {record.hold_model} ({state})")
    elif job is not None and job.reserved_credits is not None:
        kind = "a hold" if job.reserved_as == HOLD else "a posted reservation (a Ledger debit)"
        claim = f"the Jobs item claims a reservation of {job.reserved_credits} credits as {kind}"
        lines.append(f"{claim}: it counts only on a job created before settlement records")
    settled_by = settled_by_of(record, job)
    if settled_by is not None and settled_by.settled_as:
        settled = settled_by.settled_as
        lines.append(f"settled as {settled} by {settled_by.settled_by_event} at {settled_by.settled_at}: {_moved(settled_by, record, job)}")
    else:
        lines.append("not settled")
    return lines


def _moved(settled_by: SettlementRecord | JobRecord, record: SettlementRecord | None, job: JobRecord | None) -> str:
    """What the settlement did with the money: a failure of a held job released its hold (nothing was posted, so
    nothing was refunded, though the items count it as `refundedCredits`); of a posted reservation, refunded it."""
    if settled_by.settled_as == "rendered":
        return f"charged {settled_by.charged_credits} credits"
    held = (record is not None and bool(record.held_credits)) or (job is not None and job.reserved_as == HOLD)
    if held:
        return f"released its hold of {settled_by.refunded_credits} credits back to remaining (nothing posted, nothing refunded)"
    return f"gave back {settled_by.refunded_credits} credits"
