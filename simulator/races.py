"""Concurrent balance changes, injected: just before a worker's guarded balance write, an operator's
adjustment (the CLI's `Adjuster`, in a thread of its own) commits to the same balance, either across the
write's threshold (AWS then cancels the write on the balance alone and returns the item) or keeping the balance
on its side (a threshold guard, unlike a lock, must let the write commit).
"""

from __future__ import annotations

import random
import threading
from typing import TYPE_CHECKING

from simulator.faults import MAX_RACES, RACE_RATE
from simulator.oracle import generated_event
from simulator.scenario import Task

if TYPE_CHECKING:
    from simulator.run import Run


class Races:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.h, self.result, self.books, self.local = run.h, run.result, run.books, run.local
        self.commits = run.commits
        self.rng = random.Random(f"{run.s.seed}-races")  # its own stream: the faults stay as they were
        self.count = 0

    def before_a_transaction(self, params: dict) -> None:
        """Maybe races the transaction about to be sent (the seed's race generator decides)."""
        if self.count < MAX_RACES and self.rng.random() < RACE_RATE:
            race = self._race_plan(params)
            if race is not None:
                self._race(race, same_side=self.rng.random() < 0.5)

    def _race_plan(self, params: dict) -> tuple[dict, int] | None:
        """(the balance's transaction item, the change to `remaining` the oracle expects of this transaction) for a
        guarded balance write of a reservation or an event's settlement; None for anything else."""
        credits = self.h.resources.tables["Credits"]
        guarded = [
            op
            for entry in params.get("TransactItems", [])
            for op in entry.values()
            if op.get("TableName") == credits and op.get("ConditionExpression")
        ]
        task = getattr(self.local, "task", None)
        if not guarded or task is None or guarded[0]["Key"]["userId"]["S"] in self.books.damaged_balances:
            return None
        change = self._expected_change(task)
        return None if change is None else (guarded[0], change)

    def _expected_change(self, task: Task) -> int | None:
        if task.kind == "reserve":
            return -int(task.args[3])
        envelope = getattr(self.local, "event", None)
        if task.kind not in ("event", "replay") or not isinstance(envelope, dict) or task.expect == "invalid":
            return None
        event = generated_event(envelope)
        job = self.books.jobs.get(event.job_id)
        if job is not None and job.settled:
            return None
        return self.books.given_back(event.job_id) - self.books.cost(event, self.run.call_epoch())

    def _race(self, race: tuple[dict, int], same_side: bool) -> None:
        from reconciler.ops.adjustments import Adjuster

        operation, change = race
        fidelity, rng = self.h.fidelity, self.rng
        item = fidelity.read_item(self.h.dynamodb, self.h.resources.tables["Credits"], operation["Key"])
        user = operation["Key"]["userId"]["S"]
        balance = int(item["remaining"]["N"]) if item and "N" in item.get("remaining", {}) else 0
        covered = balance + change >= 0
        # Same side: a few credits more when covered, fewer when short. Across: to one credit short of covered,
        # or from short to exactly covered.
        across = -(balance + change) - 1 if covered else -(balance + change)
        amount = rng.randint(1, 5) * (1 if covered else -1) if same_side else across
        self.local.race = {"same_side": same_side, "passed": fidelity.condition_holds(operation, item), "user": user}
        self.count += 1
        self.result.covered[f"race:{'same-side' if same_side else 'crossing'}"] += 1
        # The operator's CLI, in a thread of its own (as its own process would be: the AWS-call recorder charges
        # its calls to the operator, not to the function whose call is on hold meanwhile).
        failed: list[BaseException] = []

        def operator() -> None:
            try:
                Adjuster(self.h.store).adjust(user, amount, "simulated concurrent change", f"race-{self.count}", "sim-race")
            except BaseException as error:  # noqa: BLE001 - reported below, in the worker
                failed.append(error)

        thread = threading.Thread(target=operator)
        thread.start()
        thread.join()
        if failed:
            self.result.failures.append(f"the simulated concurrent adjustment of {user!r} by {amount} failed: {failed[0]!r}")
            return
        self.books.adjust(user, amount)
        self.commits.balance_committed(user)
        self.commits.writes += 1
        attempt = getattr(self.local, "attempt", None)
        if attempt is not None:
            attempt.races += 1
