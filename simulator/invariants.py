"""The state checker, after a run's tasks: one function per invariant, named after it, each reading the tables
as the run left them (`Tables`) and the run's records, and yielding what it finds wrong. `check()` runs them
all, in `CHECKS`' order.

The invariants checked while the run goes on (at every commit, against the oracle replayed in commit order) are
in `AT_EVERY_COMMIT`; those of the balance events in simulator.balance_events.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from simulator.credits_in import CREDITS_IN_CHECKS
from simulator.edges import EDGE_CHECKS
from simulator.event_invariants import emitted_metrics as emitted_metrics  # sim.py's, and the runtime tests'
from simulator.event_invariants import (
    every_conflict_and_dead_letter_was_alerted,
    every_dead_letter_carries_its_reason,
    every_delivered_event_ends_as_constructed,
    every_message_obeys_the_services_limits,
    the_metrics_equal_the_ground_truth,
    the_timer_scan_never_settles_a_replaced_status,
)
from simulator.expiries import EXPIRY_CHECKS
from simulator.liveness import LIVENESS_CHECKS
from simulator.operators import OPERATOR_CHECKS
from simulator.oracle import CUT_OFF
from simulator.pipeline import PIPELINE_CHECKS
from simulator.tables import Tables, expected_kinds, modelled_users, operators_auditor, read_tables

if TYPE_CHECKING:
    from simulator.run import Run

AT_EVERY_COMMIT = (
    "after every commit, in commit order, the user's remaining and held are the oracle's (holds move remaining -> held and post "
    "nothing; a held render posts one charge, a held failure nothing; a v2 reservation settles with release + charge or a refund)",
    "every settlement's overdraft flag is exact: the oracle's balance after it, in commit order, is below 0 and it debited",
    "every job is settled at most once (its settlement record says so), with the reservation, charge, release and refund the oracle "
    "says, and its Jobs item mirrors the record as the settlement commits",
    "a hold records the unit price of its model then; a render is charged at it when held for that model, else at the prices "
    "deployed when the settlement was decided (a deploy may come between a hold and its render, or between a settlement's attempts)",
    "a release gives back exactly the open hold; a hold of a job the oracle knows as held, settled or released is never made",
    "right after an operator's fix (audit --fix, trusting the balance or the ledger) commits, its user's books are exactly clean: "
    "of two fixes of one discrepancy one applies, and none decides on a lagging index",
    "no ledger or balance write outside a transaction (but an operator's restore, one conditioned UpdateItem)",
    "the timer scan settles a job only if its status last changed at least the grace period before (on the run's simulated clock)",
    "a change of the balance that keeps it on its side of a guard's threshold never cancels the guarded write (no lock, no serialising)",
)


# --- the books --------------------------------------------------------------------------------------------


def every_posted_balance_equals_both_ledgers(run: Run, tables: Tables) -> Iterator[str]:
    """for each user, remaining + held = the sum of both ledgers (Ledger + UserLedger; opening balances are entries, so initial 0), but for
    damage to the books no fix repaired"""
    sums, off = tables.ledger_sums(), run.books.off_ledger
    for user in modelled_users(run, tables):
        item = tables.credit_items.get(user, {})
        remaining, held = int(item.get("remaining", 0)), int(item.get("held", 0))
        if remaining + held != sums.get(user, 0) + off[user]:
            posted = f"remaining {remaining} + held {held} = {remaining + held}"
            yield f"{user!r}: {posted}, but its two ledgers sum to {sums.get(user, 0)} (damaged by {off[user]})"


def every_held_equals_the_open_holds(run: Run, tables: Tables) -> Iterator[str]:
    """held = the sum of the user's open holds, by the records and Jobs items as stored and by the oracle, less what Jobs items from
    before the cut-off claim without a balance behind them, plus what the world moved to held by hand"""
    open_holds, oracle_holds, books = tables.open_holds(), run.books.open_holds(), run.books
    for user in modelled_users(run, tables):
        held = int(tables.credit_items.get(user, {}).get("held", 0))
        stored, oracle = open_holds[user] - books.claimed[user] + books.by_hand[user], oracle_holds[user] + books.by_hand[user]
        if held != stored or held != oracle:
            yield (
                f"{user!r} holds {held}; its open holds as stored sum to {open_holds[user]} (the oracle's: {oracle_holds[user]}; claimed without "
                f"a balance: {books.claimed[user]}; moved to held by hand: {books.by_hand[user]})"
            )


def every_balance_ends_as_the_oracle_says(run: Run, tables: Tables) -> Iterator[str]:
    """at the end, each user's remaining and held, and whether it has a Credits item, are the oracle's"""
    books = run.books
    for user in modelled_users(run, tables):
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
    """no ledger entry without its job state: each job's postings are those its stored reservation and outcome imply (no oracle):
    the outcome its settlement record says (or its Jobs item, for a job settled before records), a v2 reservation only on a Jobs
    item created before the cut-off"""
    postings = tables.job_postings()
    for job_id, counts in postings.items():
        job, record = tables.jobs.get(job_id), tables.records.get(job_id, {})
        if job is None:
            yield f"ledger entries {dict(counts)} for job {job_id!r}, which does not exist"
            continue
        outcome = record.get("settledAs") or (job.get("settledAs") if not record else None)
        posted = "reserve" in counts and str(job.get("createdAt", "~")) < CUT_OFF and "reservedAs" not in job and not record.get("heldCredits")
        expected = {"reserve"} if posted else set()
        if outcome == "rendered":
            expected |= {"charge"} | ({"release"} if posted else set())
        elif outcome == "failed":
            expected |= {"refund"} if posted else set()
        if set(counts) != expected:
            what = "a posted (v2) reservation" if posted else "no posted reservation"
            yield f"job {job_id!r} ({what}) settled as {outcome} has postings {sorted(counts)}, expected {sorted(expected)}"
    for job_id, record in tables.records.items():
        if record.get("settledAs") == "rendered" and record.get("chargedCredits", 0) and "charge" not in postings.get(job_id, {}):
            yield f"job {job_id!r} records a charge with no ledger entry"


def every_settled_job_gave_back_what_it_held(run: Run, tables: Tables) -> Iterator[str]:
    """a settled job's record holds nothing open, and gave back its hold (released when rendered, refunded when failed) unless
    release() gave it back before"""
    for job_id, record in tables.records.items():
        if not record.get("settledAs"):
            continue
        if "holdUser" in record:
            yield f"settled job {job_id!r} still has an open hold on its record"
        if record.get("heldCredits") and not record.get("holdReleasedAt"):
            given_back = record.get("releasedCredits", 0) if record["settledAs"] == "rendered" else record.get("refundedCredits", 0)
            if given_back != record["heldCredits"]:
                yield f"settled job {job_id!r} still holds credits: held {record['heldCredits']}, gave back {given_back}"


def user_ledger_is_keyed_by_time_and_read_in_time_order(run: Run, tables: Tables) -> Iterator[str]:
    """UserLedger: each posting keyed {timestamp}#{ledgerId} at its job's settlement time; a user's Query returns them in time order"""
    from reconciler.repository.dynamodb import from_item

    for entry in tables.user_ledger:
        if entry.get("entryKey") != f"{entry['timestamp']}#{entry['ledgerId']}":
            yield f"UserLedger entry {entry['ledgerId']} of {entry['userId']!r} is keyed {entry.get('entryKey')!r}"
        record = tables.records.get(str(entry.get("reference")), {})
        if entry["timestamp"] != record.get("settledAt"):
            yield f"posting {entry['ledgerId']} at {entry['timestamp']}, but its job was settled at {record.get('settledAt')}"
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
    """the operator's audit (all users, and one user's merged history), built as the CLI builds it, finds the books clean, v2's
    data included, but for what the world wrote behind the reconciler's back and no fix repaired: a damaged ledger or balance,
    held moved with no hold behind it, holds that Jobs items from before the cut-off claim with no balance behind them (each
    found as exactly that, naming the ignored hand-written reservations)"""
    # One user per run, the seed's: each user's audit costs a Query of each ledger and of the unsettled jobs.
    auditor, off, damaged = operators_auditor(run), run.books.off_the_books(), run.books.damaged_balances
    found = {discrepancy.user_id: discrepancy for discrepancy in auditor.audit_all() if discrepancy.user_id not in damaged}
    for user in sorted(set(found) | set(off)):
        discrepancy, (ledger, held) = found.get(user), off.get(user, (0, 0))
        report = (discrepancy.difference, discrepancy.held_difference, tuple(discrepancy.kinds)) if discrepancy else (0, 0, ())
        kinds = expected_kinds(run, ledger, held, discrepancy)
        if report != (ledger, held, kinds):
            shown = discrepancy.as_dict() if discrepancy else "nothing"
            yield f"the operator's audit (all users) reports {shown} for {user!r}; expected {ledger}, {held}"
        elif discrepancy is not None:
            run.result.covered["audits:off-the-books-reported"] += 1
            unsettled = {job_id for job_id in run.pipeline.hand_written if run.books.jobs[job_id].user == user and not run.books.jobs[job_id].settled}
            if not unsettled <= set(discrepancy.holds.ignored) <= run.pipeline.hand_written:
                ignored = discrepancy.holds.ignored
                yield f"the audit of {user!r} names {ignored} as ignored reservations; the unsettled hand-written holds are {unsettled}"
    users = (set(tables.credit_items) | set(tables.ledger_sums())) - damaged
    if users:
        user = random.Random(f"{run.s.seed}-audit").choice(sorted(users))
        own = auditor.audit_user(user)
        if ((own.difference, own.held_difference) if own else (0, 0)) != off.get(user, (0, 0)):
            yield f"the operator's audit of {user!r} reports {own.as_dict() if own else 'nothing'}; expected {off.get(user, (0, 0))}"
    run.result.covered["audits-clean"] += 1


__all__ = ["AT_EVERY_COMMIT", "CHECKS", "Tables", "check", "emitted_metrics", "operators_auditor", "read_tables", "statement"]
Invariant = Callable[["Run", Tables], Iterator[str]]
CHECKS: tuple[Invariant, ...] = (
    every_posted_balance_equals_both_ledgers,
    every_held_equals_the_open_holds,
    every_balance_ends_as_the_oracle_says,
    every_job_posting_is_the_oracles_exactly_once,
    every_job_has_the_postings_its_settlement_implies,
    every_settled_job_gave_back_what_it_held,
    user_ledger_is_keyed_by_time_and_read_in_time_order,
    the_operators_audit_finds_the_books_clean,
    every_delivered_event_ends_as_constructed,
    every_dead_letter_carries_its_reason,
    the_metrics_equal_the_ground_truth,
    every_conflict_and_dead_letter_was_alerted,
    every_message_obeys_the_services_limits,
    the_timer_scan_never_settles_a_replaced_status,
    *PIPELINE_CHECKS,
    *OPERATOR_CHECKS,
    *EDGE_CHECKS,
    *LIVENESS_CHECKS,
    *EXPIRY_CHECKS,
    *CREDITS_IN_CHECKS,
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
    run.result.covered["holds:open-at-the-end"] += sum(run.books.open_holds().values())
