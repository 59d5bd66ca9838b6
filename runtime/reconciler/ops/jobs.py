"""One job as an operator needs it: the item, its settlement, its ledger entries and any DLQ messages."""

from __future__ import annotations

from typing import Any

from reconciler.domain.ledger import JOB_POSTINGS, LedgerEntry, job_ledger_id
from reconciler.repository.dynamodb import from_item, to_item


def job_item(dynamodb: Any, jobs_table: str, job_id: str) -> dict | None:
    """The Jobs item as stored, every attribute (consistent read)."""
    item = dynamodb.get_item(TableName=jobs_table, Key=to_item({"jobId": job_id}), ConsistentRead=True).get("Item")
    return from_item(item) if item else None


def candidate_ledger_ids(job_id: str) -> list[str]:
    """The ids a job's entries can have: the current scheme's and v2.0's `{jobId}#{posting}` (entries written
    before the unambiguous ids stay readable)."""
    ids = []
    for posting in JOB_POSTINGS:
        ids += [job_ledger_id(job_id, posting), f"{job_id}#{posting}"]
    return ids


def job_entries(store: Any, job_id: str, user_id: str | None = None, settled_at: str | None = None) -> list[LedgerEntry]:
    """The job's ledger entries in both tables, never a scan:

    * Ledger (entries written before UserLedger: a v2 reservation's posted "reserve" debit, and the postings of
      jobs settled then): by their deterministic ids, one GetItem each;
    * UserLedger (postings of jobs settled since): a settlement writes all of a job's postings at its settledAt,
      so one Query of the user's postings at that moment, kept to this job's ids. A job not settled has none.
    """
    ids = candidate_ledger_ids(job_id)
    found = [entry for entry in (store.get_ledger_entry(ledger_id) for ledger_id in ids) if entry is not None]
    if user_id and settled_at:
        found += [entry for entry in store.postings_at(user_id, settled_at) if entry.ledger_id in ids]
    return sorted(found, key=lambda entry: (entry.timestamp, entry.ledger_id))
