"""The oracle fed with every commit, in commit order: each transaction the run's workers commit is applied to
the independent books (`oracle.Books`) and the tables it touched are compared with them at once.

One worker runs at a time and hands over only at its next DynamoDB call, so the order in which AWS answered
is the commit order.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

from simulator.oracle import HOLD, LEGACY, OracleJob, generated_event, render_cost
from simulator.scenario import Task

if TYPE_CHECKING:
    from simulator.run import Run

WRITES = ("TransactWriteItems", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")
TIMER_SCAN_EVENT = "timer-scan:"  # a timer-scan settlement names its event by this and the job id


class CommitOracle:
    """Installed as the fidelity layer's observer of answers and errors for the concurrent part of a run."""

    def __init__(self, run: Run) -> None:
        self.h, self.result, self.books = run.h, run.result, run.books
        self.scheduler, self.local = run.scheduler, run.local  # the worker running, and its own state
        self.commit_number = 0  # commits that changed a Credits item, in commit order
        self.balance_commits: dict[str, list[tuple[int, int]]] = {}  # user -> (commit number, worker)
        self.writes = 0  # writes AWS answered to the workers, and injected races: what interferes with an attempt

    def on_result(self, service: str, operation: str, params: dict, response: Any) -> None:
        """Every call AWS answered (also those whose answer a fault then loses): the commits, in commit order (one
        worker runs at a time and hands over only at its next DynamoDB call)."""
        if service != "dynamodb" or getattr(self.scheduler.local, "index", None) is None:
            return
        tables = self.h.resources.tables
        task: Task = self.local.task
        table = params.get("TableName")
        if operation in WRITES:
            self.writes += 1
            attempt = getattr(self.local, "attempt", None)
            if attempt is not None:
                attempt.own_writes += 1
                attempt.transactions += operation == "TransactWriteItems"
        if operation == "UpdateItem" and table == tables["Jobs"] and task.kind in ("event", "scan"):
            self._conflict_recorded(task, params["Key"]["jobId"]["S"])
        if operation == "GetItem" and table == tables["Jobs"]:
            self.local.loaded_at = self.commit_number  # a settlement's (or reservation's) one read
        elif operation == "TransactWriteItems":
            race, self.local.race = self.local.race, None
            if race is not None:
                self.result.covered[f"race:{'same-side' if race['same_side'] else 'crossing'}:committed"] += 1
            self._on_commit(task, params)
        elif operation in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem") and (
            table in (tables["Credits"], tables["Ledger"], tables["UserLedger"]) or operation == "BatchWriteItem"
        ):
            self.result.failures.append(f"{operation} on {table} outside a transaction, by {task.describe()[:200]}")

    def on_error(self, service: str, operation: str, params: dict, error: Any) -> None:
        if service != "dynamodb" or operation != "TransactWriteItems" or getattr(self.scheduler.local, "index", None) is None:
            return
        credits = self.h.resources.tables["Credits"]
        reasons = error.response.get("CancellationReasons") or []
        items = [op for entry in params.get("TransactItems", []) for op in entry.values()]
        failed = [(op, reason) for op, reason in zip(items, reasons, strict=False) if reason.get("Code") == "ConditionalCheckFailed"]
        on_balance = [reason for op, reason in failed if op["TableName"] == credits]
        race, self.local.race = self.local.race, None
        attempt = getattr(self.local, "attempt", None)
        if attempt is not None:
            attempt.transactions += 1
            attempt.balance_cancellations += bool(on_balance and len(failed) == 1)
        if on_balance and len(failed) == 1:
            task: Task = self.local.task
            if task.kind == "reserve":
                self.result.covered["holds:refused-by-the-hold-condition"] += 1
                _, user, _, credits = task.args
                if attempt is not None and self.books.covers(user, credits):
                    attempt.covered_refusals.append(f"{user!r} had {self.books.remaining[user]} to spend")
            else:
                self.result.covered["holds:balance-re-decisions"] += 1
                self.result.covered[
                    "holds:re-decisions-on-the-returned-balance" if "Item" in on_balance[0] else "holds:re-decisions-without-a-balance-item"
                ] += 1
        if race is not None:
            self.result.covered[f"race:{'same-side' if race['same_side'] else 'crossing'}:{'cancelled' if on_balance else 'committed'}"] += 1
            if race["same_side"] and race["passed"] and on_balance:
                self.result.failures.append(
                    f"a change of {race['user']!r}'s balance that kept it on the side of the threshold cancelled a guarded write "
                    f"(its settlements serialise on the balance, not on a threshold): {self.local.task.describe()[:200]}"
                )

    def _conflict_recorded(self, task: Task, job_id: str) -> None:
        """An event's (or a tick's) write of the job alone: the conflict it records, by this event in this request.
        The books note it only when it is one (the job settled the other way), so a conflict recorded for a
        duplicate leaves the event's answer to be judged against the oracle's classification."""
        job = self.books.jobs.get(job_id)
        if job is None or not job.settled or task.expect == "invalid":
            self.result.failures.append(f"a write of job {job_id!r}, which the oracle has not seen settled, by {task.describe()[:200]}")
            return
        if task.kind == "scan":
            self.books.record_conflict(job_id, TIMER_SCAN_EVENT + job_id, self.local.request_id)
            return
        event = generated_event(task.args[0])
        if job.settled != event.kind and event.event_id not in {conflict for conflict, _ in job.conflicts}:
            self.books.record_conflict(job_id, event.event_id, self.local.request_id)

    def balance_committed(self, user: str) -> None:
        self.commit_number += 1
        self.balance_commits.setdefault(user, []).append((self.commit_number, self.scheduler.local.index))

    def _on_commit(self, task: Task, params: dict) -> None:
        from reconciler.repository.dynamodb import from_item

        tables = self.h.resources.tables
        fail = self.result.failures.append
        ops = [op for entry in params.get("TransactItems", []) for op in entry.values()]
        balance_op = next((op for op in ops if op["TableName"] == tables["Credits"]), None)
        job_op = next((op for op in ops if op["TableName"] == tables["Jobs"]), None)
        user = balance_op["Key"]["userId"]["S"] if balance_op else None
        if task.kind == "adjust":
            self.books.adjust(task.args[0], task.args[1])
        elif task.kind == "reserve" and job_op is not None:
            job_id, owner, _, credits = task.args
            for problem in self.books.hold(job_id, owner, credits):
                fail(problem)
            job = from_item(self.h.fidelity.read_item(self.h.dynamodb, tables["Jobs"], {"jobId": {"S": job_id}}) or {})
            if job.get("reservedAs") != HOLD or job.get("reservedCredits") != credits:
                stored = f"reservedAs={job.get('reservedAs')!r}, reservedCredits={job.get('reservedCredits')}"
                fail(f"reservation of {job_id!r} committed but the job says {stored}")
            self.result.covered["holds:made"] += 1
        elif task.kind in ("event", "scan") and job_op is not None:
            job_key = job_op.get("Key") or {"jobId": job_op["Item"]["jobId"]}
            self._settled(task, job_key, user)
        else:
            fail(f"an unexpected transaction during {task.describe()[:200]}: {[op['TableName'] for op in ops]}")
        if user is not None and balance_op is not None:
            if user != (task.args[0] if task.kind == "adjust" else user):
                fail(f"an adjustment of {task.args[0]!r} wrote the balance of {user!r}")
            self.balance_committed(user)
            item = from_item(self.h.fidelity.read_item(self.h.dynamodb, tables["Credits"], balance_op["Key"]) or {})
            found, expected = (int(item.get("remaining", 0)), int(item.get("held", 0))), (self.books.remaining[user], self.books.held[user])
            if found != expected:
                fail(f"after {task.describe()[:160]}: {user!r} has remaining, held = {found}; the oracle says {expected}")

    def _settled(self, task: Task, job_key: dict, user: str | None) -> None:
        """A settlement committed: what the oracle says it must have done, against the job it left."""
        from reconciler.repository.dynamodb import from_item

        fail = self.result.failures.append
        job = from_item(self.h.fidelity.read_item(self.h.dynamodb, self.h.resources.tables["Jobs"], job_key) or {})
        job_id, owner, outcome = str(job.get("jobId")), job.get("userId"), job.get("settledAs")
        if not isinstance(owner, str) or outcome not in ("rendered", "failed") or (user is not None and user != owner):
            fail(f"a settlement of {job_id!r} committed, leaving settledAs={outcome!r} on a job of {owner!r} and a balance write of {user!r}")
            return
        known = self.books.jobs.get(job_id) or OracleJob(owner)
        if known.settled:
            fail(f"job {job_id!r} settled twice: {known.settled}, then {outcome} by {task.describe()[:160]}")
        stored_kind = HOLD if job.get("reservedAs") == HOLD else LEGACY if job.get("reservedCredits") else ""
        if (int(job.get("reservedCredits") or 0), stored_kind) != (known.reserved, known.kind):
            stored = f"{job.get('reservedCredits')} ({stored_kind or 'none'})"
            fail(f"job {job_id!r} settled with reservation {stored}; the oracle has {known.reserved} ({known.kind or 'none'})")
        if task.kind == "event":
            event = generated_event(task.args[0])  # a settlement commits only for an event generated valid
            if (job.get("settledByEvent"), job_id, outcome) != (event.event_id, event.job_id, event.kind):
                stored = f"{job_id!r} settled as {outcome} by {job.get('settledByEvent')!r}"
                fail(f"job {stored} during the delivery of {event.kind} event {event.event_id!r} of job {event.job_id!r}")
            priced: tuple[Any, Any] = (event.model, event.seconds)
            by = (event.event_id, self.local.request_id)
        else:  # the timer scan prices what the pipeline stored on the job (the simulator's writes)
            priced = (job.get("model"), job.get("seconds"))
            by = (TIMER_SCAN_EVENT + job_id, self.local.request_id)
        cost = render_cost(priced[0], Fraction(priced[1])) if outcome == "rendered" else 0
        if outcome == "rendered" and job.get("chargedCredits") != cost:
            fail(f"job {job_id!r} charged {job.get('chargedCredits')}, the price of {priced} is {cost}")
        reserved = known.reserved if known.kind else 0
        released, refunded = (reserved, 0) if outcome == "rendered" else (0, reserved)
        if (job.get("releasedCredits", 0), job.get("refundedCredits", 0)) != (released, refunded):
            stored = f"released {job.get('releasedCredits')}, refunded {job.get('refundedCredits')}"
            fail(f"job {job_id!r} ({known.kind or 'unreserved'}, {outcome}) records {stored}; expected {released}, {refunded}")
        _, overdraft = self.books.settle(job_id, owner, outcome, cost, by)
        if bool(job.get("settledIntoOverdraft")) != overdraft:
            fail(
                f"job {job_id!r} settledIntoOverdraft={job.get('settledIntoOverdraft')} but the oracle's balance of {owner!r} after it is "
                f"{self.books.remaining[owner]} (overdraft: {overdraft}), by {task.describe()[:160]}"
            )
        self.result.covered[f"holds:settled-{known.kind or 'unreserved'}-{outcome}"] += 1
        if overdraft:
            self.result.covered["holds:overdrafts"] += 1
        # Unserialised: another worker changed this user's balance between this settlement's read and its commit.
        loaded_at, me = getattr(self.local, "loaded_at", 0), self.scheduler.local.index
        if any(number > loaded_at and worker != me for number, worker in self.balance_commits.get(owner, [])):
            self.result.covered["holds:settled-past-a-concurrent-balance-change"] += 1
