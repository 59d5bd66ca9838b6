"""The invariants of the events a run delivered, one function each: how each ended, its dead letter, its alert, the
metrics the function emitted for them, and the services' limits on every message."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulator.run import Run
    from simulator.tables import Tables


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
        if task.expect == "valid" and kind == "rejected" and summary.get("field") not in ("ledgerId", "job", "balance"):
            yield f"a valid event was rejected ({summary.get('field')}: {summary.get('reason')}): {task.describe()[:200]}"


def every_dead_letter_carries_its_reason(run: Run, tables: Tables) -> Iterator[str]:
    """every rejected event is in the DLQ, each dead letter with its reason, error type and field"""
    rejected = [summary for _, summary in run.outcomes if summary.get("outcome") == "rejected"]
    # An operator's replay that succeeds takes its dead letter out of the queue (a corrected one does so by design).
    taken_out = run.result.covered["operators:replays:replayed"] + run.result.covered["operators:corrected-replays:replayed"]
    if len(rejected) > taken_out and not tables.dead_letters:
        yield f"{len(rejected)} event(s) rejected, {taken_out} replayed out of the DLQ, but the DLQ is empty"
    for message in tables.dead_letters:
        attributes = {name: value.get("StringValue") for name, value in message.get("MessageAttributes", {}).items()}
        if '"requestPayload"' in message.get("Body", "")[:400] and not attributes:
            continue  # Lambda's on-failure record: its reason is its responsePayload
        if not attributes.get("reason") or not attributes.get("errorType") or not attributes.get("field"):
            yield f"a dead letter lacks its reason: {attributes}"


def the_metrics_equal_the_ground_truth(run: Run, tables: Tables) -> Iterator[str]:
    """the metrics equal the ground truth (Settlements, CreditsDebited, CreditsRefunded, Overdrafts, ConflictingEvents, InvalidEvents,
    and credits in's CreditsInApplied, CreditsAdded, CreditsRevoked)"""
    emitted = emitted_metrics(run.emitted.getvalue())
    # The two documented gaps (README, "Proving it"): metrics of a write committed by an invocation that never
    # completed, because (1) it was a timer-scan tick killed after the commit, whose retry no longer finds the
    # job in the unsettled index, or (2) every Lambda attempt of it failed, so the event went to the on-failure
    # destination (a later replay is a new request, a duplicate). The books are right in both; only exactly
    # those writes are left out of the metrics' ground truth, and counted. A DLQ replay runs in the operator's
    # process, which emits no metrics: its writes are left out too. Every settlement of the run has its
    # record; conflicts are on the records, and on the Jobs items of jobs settled before records (v2's).
    reported = {job_id for _, summary in run.outcomes for job_id in summary.get("settled", []) if "examined" in summary}
    settled = [record for record in tables.records.values() if record.get("settledAs")]
    unreported_ids = {
        record["jobId"]
        for record in settled
        if (
            str(record.get("settledByEvent", "")).startswith("timer-scan:")
            and record.get("settledByRequest") in run.killed_scans
            and record["jobId"] not in reported
        )
        or record.get("settledByRequest") in run.failed_requests
        or str(record.get("settledByRequest")).startswith("replay-")  # a DLQ replay in the operator's process: no metrics
    }
    holders = list(tables.records.values()) + [job for job in tables.jobs.values() if job["jobId"] not in tables.records]
    unreported_conflicts = sum(
        sum(1 for request in item["conflictRequestIds"] if request in run.failed_requests or request.startswith("replay-"))
        for item in holders
        if isinstance(item.get("conflictRequestIds"), set)
    )
    run.result.covered["metrics-lost-with-an-unfinished-invocation"] += len(unreported_ids) + unreported_conflicts
    # The run's postings are UserLedger's (Ledger's job postings were written by v2 before the run); a failed
    # hold's release is a refund too, though nothing is posted for it (Settlement.credited).
    settled = [record for record in settled if record["jobId"] not in unreported_ids]
    postings = [entry for entry in tables.user_ledger if entry.get("reference") not in unreported_ids]
    refunds = {entry.get("reference") for entry in postings if _posting(entry) == "refund"}
    released_holds = sum(
        int(record.get("refundedCredits", 0)) for record in settled if record["settledAs"] == "failed" and record["jobId"] not in refunds
    )
    truth = {
        "Settlements": len(settled),
        "CreditsDebited": sum(int(e["amount"]) for e in postings if _posting(e) == "charge"),
        "CreditsRefunded": sum(int(e["amount"]) for e in postings if _posting(e) in ("release", "refund")) + released_holds,
        "Overdrafts": sum(1 for record in settled if record.get("settledIntoOverdraft")) + run.credits_in.reported["Overdrafts"],
        "ConflictingEvents": sum(len(item["conflictEventIds"]) for item in holders if isinstance(item.get("conflictEventIds"), set))
        - unreported_conflicts,
        "InvalidEvents": sum(1 for _, summary in run.outcomes if summary.get("outcome") == "rejected"),
        # Credits in: what the answers of the attempts that committed them reported (simulator.credits_in)
        **{name: run.credits_in.reported[name] for name in ("CreditsInApplied", "CreditsAdded", "CreditsRevoked")},
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
    for job_id, (status, after_settlement) in run.pipeline.pipeline_writes.items():
        record = tables.records.get(job_id, {})
        if not after_settlement and record.get("settledAs") and record.get("settledAs") != status:
            yield f"job {job_id!r} settled as {record.get('settledAs')} though the pipeline had set {status} before"


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
