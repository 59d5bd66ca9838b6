"""The state checker, after a run's tasks: one function per invariant, named after it, each reading the tables
as the run left them (`Tables`) and the run's records, and yielding what it finds wrong. `check()` runs them
all, in `CHECKS`' order.

The invariants checked while the run goes on (at every commit, against the oracle replayed in commit order) are
in `AT_EVERY_COMMIT`; those of the balance events in simulator.balance_events.
"""

from __future__ import annotations

import inspect
import json
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simulator.liveness import LIVENESS_CHECKS
from simulator.oracle import HOLD, OracleJob

if TYPE_CHECKING:
    from simulator.run import Run

AT_EVERY_COMMIT = (
    "after every commit, in commit order, the user's remaining and held are the oracle's (holds move remaining -> held and post "
    "nothing; a held render posts one charge, a held failure nothing; a v2 reservation settles with release + charge or a refund)",
    "every settlement's overdraft flag is exact: the oracle's balance after it, in commit order, is below 0 and it debited",
    "every job is settled at most once, with the reservation, charge, release and refund the oracle says",
    "no ledger or balance write outside a transaction",
    "a change of the balance that keeps it on its side of a guard's threshold never cancels the guarded write (no lock, no serialising)",
)


@dataclass
class Tables:
    """The tables and the DLQ as the run left them."""

    jobs: dict[str, dict]
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
        """Each user's open hold reservations, by the jobs as stored."""
        held: Counter = Counter()
        for job in self.jobs.values():
            if job.get("reservedAs") == HOLD and not job.get("settledAs") and isinstance(job.get("userId"), str):
                held[job["userId"]] += int(job.get("reservedCredits") or 0)
        return held

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
        credit_items={item["userId"]: item for item in scan("Credits")},
        ledger=scan("Ledger"),
        user_ledger=scan("UserLedger"),
        dead_letters=run.h.sqs.receive_message(
            QueueUrl=run.h.resources.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
        ).get("Messages", []),
    )


def _users(run: Run, tables: Tables) -> set[str]:
    return set(tables.credit_items) | set(tables.ledger_sums()) | set(tables.open_holds()) | run.books.users


# --- the books --------------------------------------------------------------------------------------------


def every_posted_balance_equals_both_ledgers(run: Run, tables: Tables) -> Iterator[str]:
    """for each user, remaining + held = the sum of both ledgers (Ledger + UserLedger; opening balances are entries, so initial 0)"""
    sums = tables.ledger_sums()
    for user in _users(run, tables):
        item = tables.credit_items.get(user, {})
        remaining, held = int(item.get("remaining", 0)), int(item.get("held", 0))
        if remaining + held != sums.get(user, 0):
            yield f"{user!r}: remaining {remaining} + held {held} = {remaining + held}, but its two ledgers sum to {sums.get(user, 0)}"


def every_held_equals_the_open_holds(run: Run, tables: Tables) -> Iterator[str]:
    """held = the sum of the user's open hold reservations, by the jobs as stored and by the oracle"""
    open_holds, oracle_holds = tables.open_holds(), run.books.open_holds()
    for user in _users(run, tables):
        held = int(tables.credit_items.get(user, {}).get("held", 0))
        if held != open_holds[user] or held != oracle_holds[user]:
            yield f"{user!r} holds {held}; its open hold reservations sum to {open_holds[user]} (the oracle's: {oracle_holds[user]})"


def every_balance_ends_as_the_oracle_says(run: Run, tables: Tables) -> Iterator[str]:
    """at the end, each user's remaining and held, and whether it has a Credits item, are the oracle's"""
    books = run.books
    for user in _users(run, tables):
        item = tables.credit_items.get(user, {})
        remaining, held = int(item.get("remaining", 0)), int(item.get("held", 0))
        if (remaining, held) != (books.remaining[user], books.held[user]) or (user in tables.credit_items) != (user in books.users):
            yield (
                f"{user!r} has remaining, held = {remaining}, {held} ({'an item' if item else 'no item'}); the oracle says "
                f"{books.remaining[user]}, {books.held[user]} ({'an item' if user in books.users else 'no item'})"
            )


def every_job_posting_is_the_oracles_exactly_once(run: Run, tables: Tables) -> Iterator[str]:
    """every job posting is in the books exactly once, in the table and with the amount the oracle says; a hold posts nothing"""
    found: dict[str, list[tuple[str, str, str, int]]] = {}
    for table, entry in tables.books:
        if entry["ledgerId"].startswith("job:"):
            found.setdefault(entry["ledgerId"], []).append((table, entry["userId"], entry["type"], int(entry["amount"])))
    expected = run.books.postings
    for ledger_id, copies in found.items():
        if len(copies) > 1:
            yield f"posting {ledger_id} is in the books {len(copies)} times: {copies}"
        if ledger_id.endswith(":reserve") and copies[0][0] == "UserLedger":
            yield f"a reservation was posted ({ledger_id}): a hold posts nothing"
        if ledger_id not in expected:
            yield f"posting {ledger_id} {copies[0]} is one the oracle does not expect"
        elif copies[0] != expected[ledger_id]:
            yield f"posting {ledger_id} is {copies[0]} (table, user, type, amount); the oracle expects {expected[ledger_id]}"
    for ledger_id, oracle_posting in expected.items():
        if ledger_id not in found:
            yield f"posting {ledger_id} {oracle_posting} is missing from the books"


def every_job_has_the_postings_its_settlement_implies(run: Run, tables: Tables) -> Iterator[str]:
    """no ledger entry without its job state: each job's postings are those its stored reservation and outcome imply (no oracle)"""
    postings = tables.job_postings()
    for job_id, counts in postings.items():
        job = tables.jobs.get(job_id)
        if job is None:
            yield f"ledger entries {dict(counts)} for job {job_id!r}, which does not exist"
            continue
        as_hold = job.get("reservedAs") == HOLD
        posted_reservation = bool(job.get("reservedCredits")) and not as_hold
        expected = {"reserve"} if posted_reservation else set()
        if job.get("settledAs") == "rendered":
            expected |= {"charge"} | ({"release"} if posted_reservation else set())
        elif job.get("settledAs") == "failed":
            expected |= {"refund"} if posted_reservation else set()
        if set(counts) != expected:
            what = "a hold" if as_hold else "a posted (v2) reservation" if posted_reservation else "no reservation"
            yield f"job {job_id!r} ({what}) settled as {job.get('settledAs')} has postings {sorted(counts)}, expected {sorted(expected)}"
    for job_id, job in tables.jobs.items():
        if job.get("settledAs") and job.get("settledAs") != "failed" and job.get("chargedCredits", 0) and "charge" not in postings.get(job_id, {}):
            yield f"job {job_id!r} records a charge with no ledger entry"


def every_settled_job_holds_nothing_and_leaves_the_unsettled_index(run: Run, tables: Tables) -> Iterator[str]:
    """a settled job is out of the unsettled index and gave back all it held (released when rendered, refunded when failed)"""
    for job_id, job in tables.jobs.items():
        if job.get("settledAs") and job.get("unsettled"):
            yield f"job {job_id!r} is settled but still in the unsettled index"
        if job.get("settledAs") and job.get("reservedAs") == HOLD:
            given_back = job.get("releasedCredits", 0) if job["settledAs"] == "rendered" else job.get("refundedCredits", 0)
            if given_back != job.get("reservedCredits"):
                yield f"settled job {job_id!r} still holds credits: reserved {job.get('reservedCredits')}, gave back {given_back}"


def user_ledger_is_keyed_by_time_and_read_in_time_order(run: Run, tables: Tables) -> Iterator[str]:
    """UserLedger: each posting keyed {timestamp}#{ledgerId} at its job's settlement time; a user's Query returns them in time order"""
    from reconciler.repository.dynamodb import from_item

    for entry in tables.user_ledger:
        if entry.get("entryKey") != f"{entry['timestamp']}#{entry['ledgerId']}":
            yield f"UserLedger entry {entry['ledgerId']} of {entry['userId']!r} is keyed {entry.get('entryKey')!r}"
        job = tables.jobs.get(str(entry.get("reference")), {})
        if entry["timestamp"] != job.get("settledAt"):
            yield f"posting {entry['ledgerId']} at {entry['timestamp']}, but its job was settled at {job.get('settledAt')}"
    for user in sorted({entry["userId"] for entry in tables.user_ledger}):
        items = run.h.dynamodb.query(
            TableName=run.h.resources.tables["UserLedger"],
            KeyConditionExpression="userId = :u",
            ExpressionAttributeValues={":u": {"S": user}},
            ConsistentRead=True,
        )["Items"]
        history = [(entry["timestamp"], entry["ledgerId"]) for entry in map(from_item, items)]
        if history != sorted(history):
            yield f"{user!r}'s UserLedger history is not in time order: {history}"
        run.result.covered["user-ledger-histories-in-order"] += 1


def the_operators_audit_finds_the_books_clean(run: Run, tables: Tables) -> Iterator[str]:
    """the operator's audit (all users, and one user's merged history) finds the books clean, v2's data included"""
    # One user per run, the seed's: each user's audit costs a Query of each ledger and of the unsettled jobs.
    from reconciler.ops.audit import Auditor

    auditor = Auditor(run.h.store)
    for discrepancy in auditor.audit_all():
        yield f"the operator's audit (all users) reports {discrepancy.as_dict()}"
    users = set(tables.credit_items) | set(tables.ledger_sums())
    if users:
        user = random.Random(f"{run.s.seed}-audit").choice(sorted(users))
        found = auditor.audit_user(user)
        if found is not None:
            yield f"the operator's audit of {user!r} reports {found.as_dict()}"
    run.result.covered["audits-clean"] += 1


# --- the events ---------------------------------------------------------------------------------------------


def every_delivered_event_ends_as_constructed(run: Run, tables: Tables) -> Iterator[str]:
    """every delivered event ends settled, duplicate, conflict or rejected (valid ones only for their ledger id or job)"""
    ended = {id(invocation.task) for invocation in run.invocations if invocation.end}
    for task in run.delivered:
        if task.kind in ("event", "scan") and id(task) not in ended:
            yield f"{task.describe()[:200]} ended nowhere"
    for task, summary in run.outcomes:
        if task.kind != "event":
            continue
        kind = summary.get("outcome")
        if kind not in ("settled", "duplicate", "conflict", "rejected"):
            yield f"event ended as {kind!r}: {task.describe()[:200]}"
        if task.expect == "invalid" and kind != "rejected":
            yield f"an invalid event was {kind}: {task.describe()[:200]}"
        if task.expect == "valid" and kind == "rejected" and summary.get("field") not in ("ledgerId", "job"):
            yield f"a valid event was rejected ({summary.get('field')}: {summary.get('reason')}): {task.describe()[:200]}"


def every_dead_letter_carries_its_reason(run: Run, tables: Tables) -> Iterator[str]:
    """every rejected event is in the DLQ, each dead letter with its reason, error type and field"""
    rejected = [summary for _, summary in run.outcomes if summary.get("outcome") == "rejected"]
    if rejected and not tables.dead_letters:
        yield f"{len(rejected)} event(s) rejected but the DLQ is empty"
    for message in tables.dead_letters:
        attributes = {name: value.get("StringValue") for name, value in message.get("MessageAttributes", {}).items()}
        if not attributes.get("reason") or not attributes.get("errorType") or not attributes.get("field"):
            yield f"a dead letter lacks its reason: {attributes}"


def the_metrics_equal_the_ground_truth(run: Run, tables: Tables) -> Iterator[str]:
    """the metrics equal the ground truth (Settlements, CreditsDebited, CreditsRefunded, Overdrafts, ConflictingEvents, InvalidEvents)"""
    emitted = emitted_metrics(run.emitted.getvalue())
    jobs = tables.jobs
    # The two documented gaps (README, "Proving it"): metrics of a write committed by an invocation that never
    # completed, because (1) it was a timer-scan tick killed after the commit, whose retry no longer finds the
    # job in the unsettled index, or (2) every Lambda attempt of it failed, so the event went to the on-failure
    # destination (a later replay is a new request, a duplicate). The books are right in both; only exactly
    # those writes are left out of the metrics' ground truth, and counted.
    reported = {job_id for _, summary in run.outcomes for job_id in summary.get("settled", []) if "examined" in summary}
    settled_jobs = [job for job in jobs.values() if job.get("settledAs")]
    unreported_ids = {
        job["jobId"]
        for job in settled_jobs
        if (
            str(job.get("settledByEvent", "")).startswith("timer-scan:")
            and job.get("settledByRequest") in run.killed_scans
            and job["jobId"] not in reported
        )
        or job.get("settledByRequest") in run.failed_requests
    }
    unreported_conflicts = sum(
        len(job["conflictRequestIds"] & run.failed_requests) for job in jobs.values() if isinstance(job.get("conflictRequestIds"), set)
    )
    run.result.covered["metrics-lost-with-an-unfinished-invocation"] += len(unreported_ids) + unreported_conflicts
    # The run's postings are UserLedger's (Ledger's job postings were written by v2 before the run); a failed
    # hold's release is a refund too, though nothing is posted for it (Settlement.credited).
    settled_jobs = [
        job for job in settled_jobs if job["jobId"] not in unreported_ids and not run.books.jobs.get(job["jobId"], OracleJob("")).before_the_run
    ]
    postings = [entry for entry in tables.user_ledger if entry.get("reference") not in unreported_ids]
    released_holds = sum(
        int(job.get("refundedCredits", 0)) for job in settled_jobs if job.get("reservedAs") == HOLD and job.get("settledAs") == "failed"
    )
    truth = {
        "Settlements": len(settled_jobs),
        "CreditsDebited": sum(int(e["amount"]) for e in postings if _posting(e) == "charge"),
        "CreditsRefunded": sum(int(e["amount"]) for e in postings if _posting(e) in ("release", "refund")) + released_holds,
        "Overdrafts": sum(1 for job in settled_jobs if job.get("settledIntoOverdraft")),
        "ConflictingEvents": sum(len(job["conflictEventIds"]) for job in jobs.values() if isinstance(job.get("conflictEventIds"), set))
        - unreported_conflicts,
        "InvalidEvents": sum(1 for _, summary in run.outcomes if summary.get("outcome") == "rejected"),
    }
    for name, true_value in truth.items():
        if emitted.get(name, 0) != true_value:
            yield f"metric {name} is {emitted.get(name, 0)}, ground truth {true_value}"


def every_conflict_and_dead_letter_was_alerted(run: Run, tables: Tables) -> Iterator[str]:
    """every conflict and dead-lettered event produced an alert attempt; AlertFailures only for injected SNS faults"""
    needs_person = sum(1 for _, summary in run.outcomes if summary.get("outcome") in ("conflict", "rejected"))
    needs_person += sum(len(summary.get("conflicts", [])) for _, summary in run.outcomes if "examined" in summary)
    if len([kind for kind in run.alert_attempts if kind in ("conflict", "rejected")]) < needs_person:
        yield f"{needs_person} outcome(s) needed a person but only {len(run.alert_attempts)} alert attempt(s) were made"
    failures = emitted_metrics(run.emitted.getvalue()).get("AlertFailures", 0)
    if failures > run.sns_faults:
        yield f"AlertFailures is {failures} with only {run.sns_faults} injected SNS fault(s)"


def every_message_obeys_the_services_limits(run: Run, tables: Tables) -> Iterator[str]:
    """every SQS and SNS message obeys the services' limits (fidelity refusals: none), and moto cancelled as AWS does"""
    for violation in run.h.fidelity.violations:
        yield f"AWS would refuse: {violation}"
    for correction in run.h.fidelity.item_corrections:
        yield f"moto's cancellation reason differs from AWS's (corrected): {correction}"


def the_timer_scan_never_settles_a_replaced_status(run: Run, tables: Tables) -> Iterator[str]:
    """the timer scan never settles on a status the pipeline replaced before the settlement"""
    for job_id, (status, after_settlement) in run.pipeline_writes.items():
        job = tables.jobs.get(job_id, {})
        if not after_settlement and job.get("settledAs") and job.get("settledAs") != status:
            yield f"job {job_id!r} settled as {job.get('settledAs')} though the pipeline had set {status} before"


Invariant = Callable[["Run", Tables], Iterator[str]]
CHECKS: tuple[Invariant, ...] = (
    every_posted_balance_equals_both_ledgers,
    every_held_equals_the_open_holds,
    every_balance_ends_as_the_oracle_says,
    every_job_posting_is_the_oracles_exactly_once,
    every_job_has_the_postings_its_settlement_implies,
    every_settled_job_holds_nothing_and_leaves_the_unsettled_index,
    user_ledger_is_keyed_by_time_and_read_in_time_order,
    the_operators_audit_finds_the_books_clean,
    every_delivered_event_ends_as_constructed,
    every_dead_letter_carries_its_reason,
    the_metrics_equal_the_ground_truth,
    every_conflict_and_dead_letter_was_alerted,
    every_message_obeys_the_services_limits,
    the_timer_scan_never_settles_a_replaced_status,
    *LIVENESS_CHECKS,
)


def statement(invariant: Callable[..., Iterator[str]]) -> str:
    """An invariant's text: its docstring on one line."""
    return " ".join((inspect.getdoc(invariant) or invariant.__name__).split())


def check(run: Run) -> None:
    tables = read_tables(run)
    run.books_found = tables.books  # the balance events' causes are checked against them (the stream function writes none)
    for invariant in CHECKS:
        run.result.failures.extend(invariant(run, tables))
    run.result.covered["ledger-entries"] += len(tables.ledger)
    run.result.covered["user-ledger-entries"] += len(tables.user_ledger)
    run.result.covered["holds:open-at-the-end"] += sum(tables.open_holds().values())


def _posting(entry: dict) -> str | None:
    ledger_id = entry["ledgerId"]
    return ledger_id.rsplit(":", 1)[1] if ledger_id.startswith("job:") else None


def emitted_metrics(printed: str) -> dict[str, float]:
    """Sums the EMF metrics Powertools printed, by name (whatever dimension sets each record declares)."""
    totals: Counter = Counter()
    for line in printed.splitlines():
        if '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for definition in blob["_aws"]["CloudWatchMetrics"]:
            for metric in definition["Metrics"]:
                values = blob[metric["Name"]]
                totals[metric["Name"]] += sum(values if isinstance(values, list) else [values])
    return dict(totals)
