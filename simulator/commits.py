"""The oracle fed with every commit, in commit order: each transaction the run's workers commit is applied to
the independent books (`oracle.Books`) and the tables it touched are compared with them at once.

One worker runs at a time and hands over only at its next DynamoDB call, so the order in which AWS answered
is the commit order.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

from simulator.oracle import HOLD, LEGACY, LEGACY_HOLD, GeneratedEvent, OracleJob, generated_event
from simulator.pipeline import PIPELINE_KINDS
from simulator.scenario import Task

if TYPE_CHECKING:
    from simulator.run import Run

WRITES = ("TransactWriteItems", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")
TIMER_SCAN_EVENT = "timer-scan:"  # a timer-scan settlement names its event by this and the job id
# What a settlement record and its Jobs item's mirror both say of a settlement (docs/pipeline.md).
SETTLED_ATTRIBUTES = (
    "settledAs",
    "settledAt",
    "settledByEvent",
    "settledByRequest",
    "chargedCredits",
    "releasedCredits",
    "refundedCredits",
    "settledIntoOverdraft",
)
# Tasks whose workers settle events: each sets `local.event` to the envelope it hands the function.
SETTLING = ("event", "scan", "replay")


class CommitOracle:
    """Installed as the fidelity layer's observer of answers and errors for the concurrent part of a run."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.h, self.result, self.books = run.h, run.result, run.books
        self.scheduler, self.local = run.scheduler, run.local  # the worker running, and its own state
        self.commit_number = 0  # commits that changed a Credits item, in commit order
        self.balance_commits: dict[str, list[tuple[int, int]]] = {}  # user -> (commit number, worker)
        self.writes = 0  # writes AWS answered to the workers, and injected races: what interferes with an attempt
        self.mirrors_written: dict[str, int] = {}  # job id -> the run's Jobs writes when the reconciler last wrote its mirror

    def on_result(self, service: str, operation: str, params: dict, response: Any) -> None:
        try:
            self._on_result(service, operation, params, response)
        except Exception as error:  # noqa: BLE001 - the oracle's own bug: reported, never handed to the code under test
            self.result.failures.append(f"the commit oracle raised {type(error).__name__}: {error} on {operation}")

    def on_error(self, service: str, operation: str, params: dict, error: Any) -> None:
        try:
            self._on_error(service, operation, params, error)
        except Exception as raised:  # noqa: BLE001 - as above
            self.result.failures.append(f"the commit oracle raised {type(raised).__name__}: {raised} on a failed {operation}")

    def _on_result(self, service: str, operation: str, params: dict, response: Any) -> None:
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
        if task.kind in PIPELINE_KINDS:
            if operation in WRITES:
                self.run.pipeline.on_write(task, operation, params)
            return
        if operation == "UpdateItem" and table in (tables["Jobs"], tables["Settlements"]) and task.kind in SETTLING:
            self._job_written(task, table, params)
        if operation == "GetItem" and table == tables["Settlements"]:
            self.local.loaded_at = self.commit_number  # a settlement's (or a hold's) first read
        elif operation == "TransactWriteItems":
            race, self.local.race = self.local.race, None
            if race is not None:
                self.result.covered[f"race:{'same-side' if race['same_side'] else 'crossing'}:committed"] += 1
            self._on_commit(task, params)
        elif (
            operation in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")
            and (table in (tables["Credits"], tables["Ledger"], tables["UserLedger"], tables["Settlements"]) or operation == "BatchWriteItem")
            and not self._operator_restore(task, operation, str(table), params)
            and not _a_conflict(params)
        ):
            self.result.failures.append(f"{operation} on {table} outside a transaction, by {task.describe()[:200]}")

    def _operator_restore(self, task: Task, operation: str, table: str, params: dict) -> bool:
        """`audit --fix --trust ledger` sets a balance back to its books with one conditioned UpdateItem."""
        if task.kind == "audit-fix" and operation == "UpdateItem" and table == self.h.resources.tables["Credits"]:
            self.run.operators.restored(task, params)
            return True
        return False

    def _on_error(self, service: str, operation: str, params: dict, error: Any) -> None:
        if service != "dynamodb" or operation != "TransactWriteItems" or getattr(self.scheduler.local, "index", None) is None:
            return
        if self.local.task.kind in PIPELINE_KINDS:
            return
        credits = self.h.resources.tables["Credits"]
        reasons = error.response.get("CancellationReasons") or []
        items = [op for entry in params.get("TransactItems", []) for op in entry.values()]
        failed = [(op, reason) for op, reason in zip(items, reasons, strict=False) if reason.get("Code") == "ConditionalCheckFailed"]
        on_balance = [reason for op, reason in failed if op["TableName"] == credits]
        race, self.local.race = self.local.race, None
        if self.local.task.kind == "scan":
            self.run.expiries.refused(self.local.task, params, reasons)
        attempt = getattr(self.local, "attempt", None)
        if attempt is not None:
            attempt.transactions += 1
            attempt.balance_cancellations += bool(on_balance and len(failed) == 1)
            # A first attempt does not read the Jobs item: its condition refuses an item that holds what the decision
            # could not see (a reservation or a settlement from before records, another owner), and the retry reads it.
            attempt.unread_refusals += any(
                op["TableName"] == self.h.resources.tables["Jobs"] and op.get("ConditionExpression", "").startswith("attribute_not_exists(jobId) OR")
                for op, _ in failed
            )
        if on_balance and len(failed) == 1:
            task: Task = self.local.task
            if task.kind == "reserve":
                self.result.covered["holds:refused-by-the-hold-condition"] += 1
                _, user, _, credits = task.args[:4]
                if attempt is not None and self.books.covers(user, credits) and user not in self.books.damaged_balances:
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

    def _job_written(self, task: Task, table: str, params: dict) -> None:
        """An event's (or a tick's) write of one item alone: a conflict it records (on the settlement record, or on
        the Jobs item of a job settled before records), or the timer scan writing a lost mirror back."""
        job_id = params["Key"]["jobId"]["S"]
        if "conflictEventIds" not in params.get("UpdateExpression", ""):
            if table == self.h.resources.tables["Jobs"] and task.kind == "scan":
                self.mirrors_written[job_id] = self.run.pipeline.jobs_writes
                self.result.covered["pipeline:mirrors-repaired-by-the-scan"] += 1
            else:
                self.result.failures.append(f"an unexpected write of job {job_id!r} by {task.describe()[:200]}")
            return
        job = self.books.jobs.get(job_id)
        event = getattr(self.local, "event", None)
        if job is None or not job.settled or event is None:
            self.result.failures.append(f"a conflict on job {job_id!r}, which the oracle has not seen settled, by {task.describe()[:200]}")
            return
        if event == "timer-scan":
            self.books.record_conflict(job_id, TIMER_SCAN_EVENT + job_id, self.local.request_id)
            return
        generated = generated_event(dict(event))
        if job.settled != generated.kind and generated.event_id not in {conflict for conflict, _ in job.conflicts}:
            self.books.record_conflict(job_id, generated.event_id, self.local.request_id)

    def balance_committed(self, user: str) -> None:
        self.commit_number += 1
        self.balance_commits.setdefault(user, []).append((self.commit_number, self.scheduler.local.index))

    def _on_commit(self, task: Task, params: dict) -> None:
        tables = self.h.resources.tables
        entries = [(kind, op) for entry in params.get("TransactItems", []) for kind, op in entry.items()]
        of = {
            name: next(((kind, op) for kind, op in entries if op["TableName"] == tables[name]), None) for name in ("Credits", "Settlements", "Jobs")
        }
        balance_op = of["Credits"][1] if of["Credits"] else None
        user = balance_op["Key"]["userId"]["S"] if balance_op else None
        record_write = of["Settlements"][0] if of["Settlements"] else None
        if of["Jobs"] is not None and record_write is not None:
            job_op = of["Jobs"][1]
            self._settled(task, job_op.get("Key") or {"jobId": job_op["Item"]["jobId"]}, user)
            if task.kind == "scan":
                self._after_the_grace_period(job_op)
        elif record_write == "Put" and task.kind == "reserve":
            self._held(task)
        elif record_write == "Update" and task.kind == "release":
            self._released(task)
        elif record_write == "Update" and task.kind == "scan":
            self.run.expiries.released(task, params)
        elif record_write is None and task.kind in ("adjust", "audit-fix"):
            self._adjusted(task, params)
        elif record_write is None and task.kind == "credits":
            self.run.credits_in.committed(task, params)
        else:
            self.result.failures.append(f"an unexpected transaction during {task.describe()[:200]}: {[op['TableName'] for _, op in entries]}")
        if user is not None and balance_op is not None:
            self._balance_is_the_oracles(task, user, balance_op)

    def _after_the_grace_period(self, job_op: dict) -> None:
        """A timer-scan settlement is conditioned on the job's update time as the scan read it: that time is at least the
        grace period older than this commit (the scan took its now earlier, on the run's simulated clock)."""
        from datetime import timedelta

        from reconciler.config import load_config
        from reconciler.domain.ledger import iso_timestamp
        from simulator import clock

        seen = job_op.get("ExpressionAttributeValues", {}).get(":seen_updatedAt", {}).get("S")
        if seen is None:
            return
        grace = load_config().scan_grace_minutes
        if seen > iso_timestamp(clock.now() - timedelta(minutes=grace)):
            job_id = job_op["Key"]["jobId"]["S"]
            self.result.failures.append(
                f"the timer scan settled job {job_id!r}, whose status changed at {seen}, within the grace period ({grace} min)"
            )
        self.result.covered["scan:settled-after-the-grace-period"] += 1

    def _adjusted(self, task: Task, params: dict) -> None:
        """An adjustment, or an audit correction (a Ledger entry that explains the balance, which moves by 0)."""
        if task.kind == "adjust":
            self.books.adjust(task.args[0], task.args[1])
        else:
            self.run.operators.corrected(task, params)

    def _held(self, task: Task) -> None:
        from reconciler.repository.dynamodb import from_item

        job_id, owner, model, credits = task.args[:4]
        for problem in self.books.hold(job_id, owner, credits, model, self.local.task_epoch):
            self.result.failures.append(problem)
        record = from_item(self._read("Settlements", job_id) or {})
        unit_price = self.books.jobs[job_id].unit_price
        found = (record.get("heldCredits"), record.get("holdUser"), record.get("holdModel"), Fraction(str(record.get("unitPrice", "0"))))
        if found != (credits, owner, model, unit_price):
            self.result.failures.append(
                f"the hold of {job_id!r} recorded (credits, holdUser, model, unit price) {found}; the oracle says {credits, owner, model, unit_price}"
            )
        self.run.expiries.held(job_id, record)
        self.result.covered["holds:made"] += 1

    def _released(self, task: Task) -> None:
        from reconciler.repository.dynamodb import from_item

        job_id = task.args[0]
        for problem in self.books.release(job_id):
            self.result.failures.append(problem)
        record = from_item(self._read("Settlements", job_id) or {})
        if "holdUser" in record or not record.get("holdReleasedAt"):
            self.result.failures.append(f"the release of {job_id!r} committed but its record still shows the hold open: {sorted(record)}")
        self.result.covered["holds:released"] += 1

    def _balance_is_the_oracles(self, task: Task, user: str, balance_op: dict) -> None:
        from reconciler.repository.dynamodb import from_item

        if task.kind == "adjust" and user != task.args[0]:
            self.result.failures.append(f"an adjustment of {task.args[0]!r} wrote the balance of {user!r}")
        self.balance_committed(user)
        if user in self.books.damaged_balances:
            return
        item = from_item(self.h.fidelity.read_item(self.h.dynamodb, self.h.resources.tables["Credits"], balance_op["Key"]) or {})
        found, expected = (int(item.get("remaining", 0)), int(item.get("held", 0))), (self.books.remaining[user], self.books.held[user])
        if found != expected:
            self.result.failures.append(f"after {task.describe()[:160]}: {user!r} has remaining, held = {found}; the oracle says {expected}")

    def _read(self, table: str, job_id: str) -> dict | None:
        return self.h.fidelity.read_item(self.h.dynamodb, self.h.resources.tables[table], {"jobId": {"S": job_id}})

    def _settled(self, task: Task, job_key: dict, user: str | None) -> None:
        """A settlement committed: what the oracle says it must have done, against the record and the mirror it left."""
        from reconciler.repository.dynamodb import from_item

        fail = self.result.failures.append
        job_id = job_key["jobId"]["S"]
        record, mirror = from_item(self._read("Settlements", job_id) or {}), from_item(self._read("Jobs", job_id) or {})
        owner, outcome = record.get("userId"), record.get("settledAs")
        if not isinstance(owner, str) or outcome not in ("rendered", "failed") or (user is not None and user != owner):
            fail(f"a settlement of {job_id!r} committed, leaving settledAs={outcome!r} on a record of {owner!r} and a balance write of {user!r}")
            return
        known = self.books.jobs.get(job_id) or OracleJob(owner)
        if known.settled:
            fail(f"job {job_id!r} settled twice: {known.settled}, then {outcome} by {task.describe()[:160]}")
        if int(record.get("heldCredits") or 0) != (known.reserved if known.kind == HOLD else 0):
            fail(
                f"job {job_id!r} settled with a record holding {record.get('heldCredits')}; the oracle has {known.reserved} ({known.kind or 'none'})"
            )
        event, epoch = getattr(self.local, "event", None), self.run.call_epoch()
        if event == "timer-scan":  # the timer scan prices what the pipeline stored on the job (the simulator's writes)
            priced: tuple[Any, Any] = (mirror.get("model"), mirror.get("seconds"))
            by = (TIMER_SCAN_EVENT + job_id, self.local.request_id)
            seconds = Fraction(str(priced[1])) if outcome == "rendered" else None
            cost = self.books.cost(GeneratedEvent(by[0], outcome, job_id, owner, seconds, priced[0]), epoch)
        else:
            generated = generated_event(event if isinstance(event, dict) else {})  # a settlement commits only for an event generated valid
            if (record.get("settledByEvent"), job_id, outcome) != (generated.event_id, generated.job_id, generated.kind):
                stored = f"{job_id!r} settled as {outcome} by {record.get('settledByEvent')!r}"
                fail(f"job {stored} during the delivery of {generated.kind} event {generated.event_id!r} of job {generated.job_id!r}")
            priced, by, cost = (generated.model, generated.seconds), (generated.event_id, self.local.request_id), self.books.cost(generated, epoch)
            self._count_deploys(known, generated.model, epoch)
        if outcome == "rendered" and record.get("chargedCredits") != cost:
            fail(f"job {job_id!r} charged {record.get('chargedCredits')}, the price of {priced} is {cost} (prices deployed: {epoch})")
        reserved = known.reserved if known.kind == LEGACY else known.holding
        kind = {HOLD: "hold", LEGACY: "legacy", LEGACY_HOLD: "legacy-hold"}.get(known.kind) if reserved else None
        released, refunded = (reserved, 0) if outcome == "rendered" else (0, reserved)
        if (record.get("releasedCredits", 0), record.get("refundedCredits", 0)) != (released, refunded):
            stored = f"released {record.get('releasedCredits')}, refunded {record.get('refundedCredits')}"
            fail(f"job {job_id!r} ({known.kind or 'unreserved'}, {outcome}) records {stored}; expected {released}, {refunded}")
        self.run.expiries.settled(job_id, known, outcome, record.get("settledAt"))
        _, overdraft = self.books.settle(job_id, owner, outcome, cost, by)
        if bool(record.get("settledIntoOverdraft")) != overdraft:
            fail(
                f"job {job_id!r} settledIntoOverdraft={record.get('settledIntoOverdraft')} but the oracle's balance of {owner!r} after it is "
                f"{self.books.remaining[owner]} (overdraft: {overdraft}), by {task.describe()[:160]}"
            )
        mirrored = {name: mirror.get(name) for name in SETTLED_ATTRIBUTES}
        if mirrored != {name: record.get(name) for name in SETTLED_ATTRIBUTES} or "unsettled" in mirror or mirror.get("status") != outcome:
            fail(f"the Jobs item of {job_id!r} does not mirror its settlement record: {mirrored}, status {mirror.get('status')!r}")
        self.mirrors_written[job_id] = self.run.pipeline.jobs_writes
        self._count(kind or "unreserved", outcome, owner, overdraft)

    def _count_deploys(self, known: OracleJob, model: str | None, epoch: int) -> None:
        if known.unit_price is not None and known.hold_model == model and known.held_epoch != epoch:
            self.result.covered["config:held-price-charged-after-a-deploy"] += 1
        if epoch != getattr(self.local, "invocation_epoch", epoch):
            self.result.covered["config:prices-deployed-during-a-settlement"] += 1

    def _count(self, kind: str, outcome: str, owner: str, overdraft: bool) -> None:
        self.result.covered[f"holds:settled-{kind}-{outcome}"] += 1
        if overdraft:
            self.result.covered["holds:overdrafts"] += 1
        # Unserialised: another worker changed this user's balance between this settlement's read and its commit.
        loaded_at, me = getattr(self.local, "loaded_at", 0), self.scheduler.local.index
        if any(number > loaded_at and worker != me for number, worker in self.balance_commits.get(owner, [])):
            self.result.covered["holds:settled-past-a-concurrent-balance-change"] += 1


def _a_conflict(params: dict) -> bool:
    """A conflicting event recorded on a settlement record: one UpdateItem, no money (its own invariants judge it)."""
    return "conflictEventIds" in params.get("UpdateExpression", "") and "Settlements" in str(params.get("TableName"))
