"""The tables and the DLQ as a run left them, read once for the invariants (simulator.invariants and the modules of
each class), and the operator's Auditor as the CLI builds it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from simulator.oracle import CUT_OFF, HOLD

if TYPE_CHECKING:
    from simulator.run import Run


@dataclass
class Tables:
    """The tables and the DLQ as the run left them."""

    jobs: dict[str, dict]
    records: dict[str, dict]  # Settlements, by job id
    credit_items: dict[str, dict]
    ledger: list[dict]
    user_ledger: list[dict]
    dead_letters: list[Any]  # SQS messages

    @property
    def books(self) -> list[tuple[str, dict]]:
        """(table, entry) of both ledgers."""
        return [("Ledger", entry) for entry in self.ledger] + [("UserLedger", entry) for entry in self.user_ledger]

    def ledger_sums(self) -> Counter:
        sums: Counter = Counter()
        for _, entry in self.books:
            sums[entry["userId"]] += int(entry["amount"]) * (1 if entry["type"] == "credit" else -1)
        return sums

    def open_holds(self) -> Counter:
        """Each user's open holds as stored: the records' open holds, and the holds on unsettled Jobs items created
        before the cut-off (made before settlement records existed, or claimed there by hand)."""
        held: Counter = Counter()
        for record in self.records.values():
            if "holdUser" in record and not record.get("settledAs"):
                held[record["holdUser"]] += int(record.get("heldCredits") or 0)
        for job_id, job in self.jobs.items():
            if self.legacy_reservation(job_id) == HOLD and isinstance(job.get("userId"), str):
                held[job["userId"]] += int(job["reservedCredits"])
        return held

    def legacy_reservation(self, job_id: str) -> str | None:
        """How an unsettled Jobs item from before the cut-off is reserved: "hold", "posted" (v2), or None."""
        job, record = self.jobs.get(job_id, {}), self.records.get(job_id, {})
        if job.get("settledAs") or record.get("settledAs") or record.get("heldCredits") or not str(job.get("createdAt", "~")) < CUT_OFF:
            return None
        credits = job.get("reservedCredits")
        if not isinstance(credits, Decimal) or credits <= 0 or credits != int(credits):
            return None  # none, or damaged: the item is refused
        return HOLD if job.get("reservedAs") == HOLD else "posted"

    def job_postings(self) -> dict[str, Counter]:
        """Job id -> how many of each posting (reserve, release, charge, refund) both ledgers hold for it."""
        postings: dict[str, Counter] = {}
        for _, entry in self.books:
            if entry["ledgerId"].startswith("job:"):
                postings.setdefault(entry["reference"], Counter())[entry["ledgerId"].rsplit(":", 1)[1]] += 1
        return postings


def read_tables(run: Run) -> Tables:
    from reconciler.repository.dynamodb import from_item

    tables, dynamodb = run.h.resources.tables, run.h.dynamodb

    def scan(name: str) -> list[dict]:
        return list(map(from_item, dynamodb.scan(TableName=tables[name])["Items"]))

    return Tables(
        jobs={item["jobId"]: item for item in scan("Jobs")},
        records={item["jobId"]: item for item in scan("Settlements")},
        credit_items={item["userId"]: item for item in scan("Credits")},
        ledger=scan("Ledger"),
        user_ledger=scan("UserLedger"),
        dead_letters=every_dead_letter(run),
    )


def every_dead_letter(run: Run) -> list[dict]:
    """Every message in the DLQ, each once (received out of sight, then made visible again)."""
    url = run.h.resources.dlq_url
    seen: dict[str, dict] = {}
    while True:
        batch = run.h.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=60)
        fresh = [message for message in batch.get("Messages", []) if message["MessageId"] not in seen]
        if not fresh:
            break
        seen.update((message["MessageId"], dict(message)) for message in fresh)
    for message in seen.values():
        run.h.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return list(seen.values())


def modelled_users(run: Run, tables: Tables) -> set[str]:
    """The users whose books the oracle models (not those whose balance the world stored damaged)."""
    return (set(tables.credit_items) | set(tables.ledger_sums()) | set(tables.open_holds()) | run.books.users) - run.books.damaged_balances


def operators_auditor(run: Run) -> Any:
    """The Auditor as reconciler/cli/book_commands.py builds it: the store, as restorer too, and the stage's cut-off."""
    from reconciler.ops.audit import Auditor

    return Auditor(run.h.store, run.h.store, legacy_before=run.h.store.legacy_reservations_before)


def expected_kinds(run: Any, ledger: int, held: int, discrepancy: Any) -> tuple[str, ...]:
    """The kinds an audit reports for a user whose books are off by (ledger, held): those, and `reservations` where it
    names ignored reservations that are all the world's hand-written holds (on Jobs items created after the stage's
    cut-off, which move no money: README, "Settlement records"; the world creates them an hour before the simulated now,
    a week after the cut-off: simulator.clock)."""
    kinds = [kind for kind, amiss in (("ledger", ledger), ("holds", held)) if amiss]
    named = set(discrepancy.holds.ignored) if discrepancy is not None else set()
    if named and named <= run.pipeline.hand_written:
        kinds.append("reservations")
    return tuple(kinds)
