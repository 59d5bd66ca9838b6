"""The invariants of progress, one function each: what must happen, not only what must not. Each reads what the
run recorded of its invocations and calls (simulator.records) and judges it with the simulator's own knowledge:
the faults it injected, and the oracle's books (simulator.oracle), never the product's error classes or the
attributes the product wrote.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from typing import TYPE_CHECKING

from simulator.oracle import LEGACY, OracleJob
from simulator.records import Attempt

if TYPE_CHECKING:
    from simulator.run import Run
    from simulator.tables import Tables


def _error(attempt: Attempt) -> str:
    error = attempt.error
    if error is None:
        return "nothing"
    where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    return f"{type(error).__name__}: {str(error)[:200]}" + (f" (at {where.filename}:{where.lineno})" if where else "")


def nothing_leaves_the_handler_or_a_call_but_an_injected_fault(run: Run, tables: Tables) -> Iterator[str]:
    """nothing raises out of the handler, reserve() or the Adjuster unless a fault the simulator injected into that attempt caused
    it (the error is the injected one, or its chain of causes reaches it): retryability is the injected fault's, not the product's
    error classes'"""
    for invocation in run.invocations:
        for attempt in invocation.attempts:
            if attempt.error is not None and not attempt.caused_by_a_fault():
                faults = f"faults injected: {attempt.faults}" if attempt.faults else "no fault injected"
                yield f"the handler raised {_error(attempt)} ({faults}) for {invocation.task.describe()[:300]}"
    for task, attempt in run.calls:
        if attempt.error is not None and not attempt.caused_by_a_fault():
            yield f"{task.kind} raised {_error(attempt)} (faults injected: {attempt.faults or 'none'}) for {task.describe()[:200]}"


def a_fault_the_code_retries_itself_never_ends_an_attempt(run: Run, tables: Tables) -> Iterator[str]:
    """a fault the code retries itself (a TransactWriteItems cancelled for a conflict or throttling, or whose answer was lost to a
    timeout or a 5xx: simulator.faults.RETRIED_BY_THE_CODE) never ends a Lambda attempt, a reserve() or an Adjuster call: the code
    reads again and decides again, whatever class it gives the error"""
    attempts = [(invocation.task, attempt) for invocation in run.invocations for attempt in invocation.attempts]
    for task, attempt in [*attempts, *run.calls]:
        label = attempt.ended_by_a_retried_fault() if attempt.error is not None else None
        if label is not None:
            yield f"a fault the code retries itself ({label}) ended an attempt: {_error(attempt)} for {task.describe()[:300]}"


def a_retry_reads_the_record_as_it_is(run: Run, tables: Tables) -> Iterator[str]:
    """a settlement decides on an earlier version of its record at most once per Lambda attempt: only its first read is eventually
    consistent, and every retry after a refused write reads the record strongly (an earlier version again would be decided on again)"""
    for invocation in run.invocations:
        for number, attempt in enumerate(invocation.attempts, 1):
            if invocation.task.kind == "event" and attempt.stale_reads > 1:
                yield (
                    f"attempt {number} of {invocation.task.describe()[:200]} was served {attempt.stale_reads} earlier versions of its record: "
                    "a retry read it eventually consistently"
                )


def an_event_reaches_the_on_failure_destination_only_if_faults_hit_every_attempt(run: Run, tables: Tables) -> Iterator[str]:
    """every delivered event (and timer-scan tick) ends answered or dead-lettered with its reason, and reaches Lambda's on-failure
    destination only when a fault was injected into every one of its attempts"""
    for invocation in run.invocations:
        if invocation.end != "on-failure-destination":
            continue
        clean = [number for number, attempt in enumerate(invocation.attempts, 1) if not attempt.faults]
        if clean:
            errors = "; ".join(_error(attempt) for attempt in invocation.attempts)
            yield (
                f"{invocation.task.describe()[:200]} went to the on-failure destination, but no fault was injected into its attempt(s) "
                f"{clean}: {errors[:600]}"
            )


def every_event_ends_as_the_oracle_classifies_it(run: Run, tables: Tables) -> Iterator[str]:
    """every answered event ends as the oracle classifies it from what it knows of its job when the handler answers: settled (by
    this request), duplicate, conflict, or rejected (invalid as generated, another user's job, a damaged job)"""
    for invocation in run.invocations:
        if invocation.task.kind != "event" or invocation.summary is None:
            continue
        outcome = invocation.summary.get("outcome")
        if outcome != invocation.expected:
            detail = {key: invocation.summary.get(key) for key in ("settledAs", "settledByEvent", "field", "reason") if key in invocation.summary}
            yield f"an event ended {outcome} {detail}; the oracle classifies it {invocation.expected}: {invocation.task.describe()[:200]}"


def every_hold_the_oracles_balance_covers_succeeds(run: Run, tables: Tables) -> Iterator[str]:
    """every reserve() call succeeds that the oracle's balance covers when its hold condition is evaluated and that the design
    allows (not another user's job, not settled, not reserved with other credits); a refusal is explained by one of those, and
    giving up by an injected fault"""
    for call in run.reserve_calls:
        what = call.task.describe()[:200]
        for refusal in call.attempt.covered_refusals:
            yield f"the hold condition refused a covered hold ({refusal}): {what}"
        if call.result == "refused" and call.refusal is None:
            yield f"reserve() refused a hold the design allows (the oracle knows no reason): {what}"
        if call.result == "held" and call.refusal is not None:
            yield f"reserve() held credits though {call.refusal}: {what}"
        if call.result == "gave-up" and not call.attempt.caused_by_a_fault():
            yield f"reserve() gave up with {_error(call.attempt)} and no fault caused it (a guard that livelocks?): {what}"


def every_hold_is_settled_or_released_by_the_end(run: Run, tables: Tables) -> Iterator[str]:
    """every hold, and every reservation made before settlement records, is settled or released by the end of the run (after the
    closing phase delivered a render or a failure of every job still holding credits): no record holds a hold open, no Jobs item
    from before the cut-off holds a reservation unsettled, and no balance holds anything but what the world moved there by hand"""
    for job_id, job in run.books.jobs.items():
        if job.holding or (job.kind == LEGACY and not job.settled):
            yield f"job {job_id!r} of {job.user!r} still holds {job.reserved} credits ({job.kind}) at the end of the run"
    for job_id, record in tables.records.items():
        if "holdUser" in record:
            yield f"the record of job {job_id!r} still holds {record.get('heldCredits')} credits open at the end of the run"
    for job_id in tables.jobs:
        if tables.legacy_reservation(job_id) and not run.books.jobs.get(job_id, OracleJob("")).damaged:
            yield f"job {job_id!r} from before the cut-off is stored unsettled with reservedCredits={tables.jobs[job_id].get('reservedCredits')}"
    for user, item in tables.credit_items.items():
        if user not in run.books.damaged_balances and int(item.get("held", 0)) != run.books.by_hand[user]:
            yield f"{user!r} still holds {item.get('held')} at the end of the run (moved to held by hand: {run.books.by_hand[user]})"


# The bound, from the code (runtime/reconciler/service/event_settlement.py, _decide_and_commit; retrying.py): an attempt of a
# settlement decides on the balance known so far (none at first: the write's threshold guard decides); when only that guard fails,
# it decides once more on the balance the failure returned, exact then, so that decision fails only if someone changed the balance
# in between. A new attempt (read the job, decide, write) follows only a failed condition (someone wrote the job or the balance, or
# the read answered an earlier version), contention or a lost answer: each is a write by someone else or something injected.


def re_decisions_and_retries_per_event_stay_within_their_bound(run: Run, tables: Tables) -> Iterator[str]:
    """per Lambda attempt of an event, with I the writes by anyone else while it ran, F the faults, stale reads and races injected
    into it, and U 1 if its first transaction was refused on a Jobs item it did not read (0 otherwise): at most 1 + I + F + U balance
    re-decisions (one on the balance a failed guard returns, again only if the balance changed since) and at most 2 (1 + I + F + U)
    transactions (two per settlement attempt, a new attempt only after a write by someone else, a stale read, a fault or that
    refusal); a reserve() call re-decides at most once and writes at most 1 + I + F times"""
    for invocation in run.invocations:
        if invocation.task.kind != "event":
            continue
        for number, attempt in enumerate(invocation.attempts, 1):
            allowed = 1 + attempt.interference + attempt.injected + min(1, attempt.unread_refusals)
            if attempt.balance_cancellations > allowed or attempt.transactions > 2 * allowed:
                yield (
                    f"attempt {number} of {invocation.task.describe()[:160]} made {attempt.balance_cancellations} balance re-decisions and "
                    f"{attempt.transactions} transactions, beyond its bound (1 + I + F = {allowed}: I={attempt.interference}, "
                    f"F={attempt.injected})"
                )
    for call in run.reserve_calls:
        attempt = call.attempt
        if attempt.balance_cancellations > 1 or attempt.transactions > 1 + attempt.interference + attempt.injected:
            yield (
                f"{call.task.describe()[:160]} made {attempt.balance_cancellations} balance re-decisions and {attempt.transactions} "
                f"transactions, beyond its bound (I={attempt.interference}, F={attempt.injected})"
            )


LIVENESS_CHECKS = (
    nothing_leaves_the_handler_or_a_call_but_an_injected_fault,
    a_fault_the_code_retries_itself_never_ends_an_attempt,
    a_retry_reads_the_record_as_it_is,
    an_event_reaches_the_on_failure_destination_only_if_faults_hit_every_attempt,
    every_event_ends_as_the_oracle_classifies_it,
    every_hold_the_oracles_balance_covers_succeeds,
    every_hold_is_settled_or_released_by_the_end,
    re_decisions_and_retries_per_event_stay_within_their_bound,
)
