"""Hold expiry (issue #28, item 3): holds made with an expiry, and timer-scan ticks that release them, concurrent with
their jobs' settlements, the pipeline's releases, each other and Lambda's retries (with the run's faults), in a phase
of their own after the other tasks (its own generator and queues, so every other run stays as it was).

The commit oracle books each release the scan commits (simulator.commits), at once: it must be of a hold the
oracle's books still hold open (never released twice, never a settled job's), of the expiry the hold was asked with,
decided at or after it. After the phase, simulated time passes beyond every expiry and one tick runs without
faults: no hold whose expiry passed may then be left open (liveness). After the run: each `credits.hold.expired` on
the bus is of one such release, once; the metric HoldsExpired counts the releases of the attempts that completed.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from simulator.scenario import MODELS, Task, terminal_event

if TYPE_CHECKING:
    from simulator.invariants import Tables
    from simulator.records import Attempt
    from simulator.run import Run

# Milliseconds of simulated time from the call to the expiry it asks for (the clock moves 1 ms a reading).
EXPIRY_MS = (3, 5, 8, 13, 21)
# Time passing after the phase: beyond every expiry asked for.
BEYOND_EVERY_EXPIRY = timedelta(seconds=5)
HOLD_EXPIRED_DETAIL_TYPE = "credits.hold.expired"  # docs/schemas/credits.hold.expired.json, restated


def expiry_tasks(rng: random.Random, setup: list[Task]) -> tuple[list[Task], int]:
    """The expiry phase's tasks and workers, in two steps (each a "step" task of its own, run one after the other):
    two to four jobs of one user held with an expiry (each after a top-up that covers it), maybe one of the stage's
    default expiry, beside a tick; then their renders or failures (a third of them delivered twice) or the pipeline's
    releases, among four to six ticks."""
    opened = [(task.args[0], task.args[1]) for task in setup if task.kind == "adjust" and task.args[1]]
    if not opened or rng.random() >= 0.6:
        return [], 1
    user = rng.choice(opened)[0]  # one user's holds: a release too many would find credits held to take
    holds: list[Task] = [Task("scan")]
    races: list[Task] = [Task("scan") for _ in range(rng.randint(4, 6))]
    for number in range(rng.randint(2, 4)):
        job_id, credits = f"exp-{number}", rng.choice([1, 5, 20])
        top_up = Task("adjust", (user, 100 + credits, f"expiry-top-up-{number}"))  # whatever the run left of the balance
        holds.append(Task("sequence", (top_up, Task("reserve", (job_id, user, rng.choice(MODELS), credits, rng.choice(EXPIRY_MS))))))
        then = rng.random()
        if then < 0.8:
            event = terminal_event(rng.choice(("rendered", "failed")), job_id, user, f"e-{job_id}", rng)
            races += [Task("event", (event,), "valid") for _ in range(1 + (rng.random() < 0.3))]
        elif then < 0.9:
            races.append(Task("release", (job_id, user)))
    if rng.random() < 0.7:  # a hold of the stage's default expiry beside them: a second release would find credits held
        holds.append(Task("sequence", (Task("adjust", (user, 120, "expiry-top-up-long")), Task("reserve", ("exp-long", user, "test", 20)))))
    rng.shuffle(holds)
    rng.shuffle(races)
    return [Task("step", tuple(holds)), Task("step", tuple(races))], 3


class Expiries:
    """The run's expiry phase, and what the commit oracle and the invariants need of it."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.releases: list[tuple[str, Attempt | None]] = []  # (job id, the scan attempt that committed it)
        self.left_open: list[str] = []  # holds past their expiry that the last tick left open (liveness)
        self.asked: set[str] = set()  # jobs held with an expiry of their own (the others have the stage's default)

    def run_phase(self) -> bool:
        """The phase's tasks on its workers, then time beyond every expiry and one tick without faults."""
        from reconciler.domain.ledger import iso_timestamp
        from simulator import clock

        run, scenario = self.run, self.run.s
        if not scenario.expiries:
            return True
        run.result.covered["expiry:phases"] += 1
        placing, finished = random.Random(f"{scenario.seed}-expiry-queues"), True
        for step in scenario.expiries:
            queues: list[list[Task]] = [[] for _ in range(scenario.expiry_workers)]
            for task in step.args:
                queues[placing.randrange(len(queues))].append(task)
            finished = run.scheduler.run([partial(run.execute_queue, queue) for queue in queues]) and finished
        clock.advance(BEYOND_EVERY_EXPIRY)
        run.h.fidelity.catch_up_indexes()
        due = iso_timestamp(clock.now())
        run.closing = True  # no faults, races or stale reads: the tick must do its work
        try:
            finished = finished and run.scheduler.run([partial(run.execute_queue, [Task("scan")])])
        finally:
            run.closing = False
        for job_id, job in run.books.jobs.items():
            if job.holding and job.expires_at is not None and job.expires_at <= due:
                self.left_open.append(f"job {job_id!r} of {job.user!r} still holds {job.holding} credits past its expiry {job.expires_at}")
        return finished

    def requested(self, task: Task) -> str | None:
        """The expiry a reserve() task asks for: its milliseconds from now on the simulated clock (None: the default)."""
        from reconciler.domain.ledger import iso_timestamp
        from simulator import clock

        if len(task.args) < 5:
            return None
        return iso_timestamp(clock.now() + timedelta(milliseconds=task.args[4]))

    def held(self, job_id: str, record: dict) -> None:
        """A hold committed (simulator.commits): the expiry it was asked with is the one recorded."""
        asked = getattr(self.run.local, "requested_expiry", None)
        job = self.run.books.jobs[job_id]
        job.expires_at = record.get("holdExpiresAt")
        if asked is not None:
            self.asked.add(job_id)
        if asked is not None and job.expires_at != asked:
            self.run.result.failures.append(f"the hold of {job_id!r} asked to expire at {asked}, its record says {job.expires_at}")
        if self.run.s.expiries:  # a run without the phase counts nothing new (its digest stays as it was)
            self.run.result.covered["expiry:holds-made-with-an-expiry" if asked else "expiry:holds-made-with-the-default"] += 1

    def released(self, task: Task, params: dict) -> None:
        """A timer-scan tick committed a release (a Settlements update with no Jobs item): an expiry's, booked at once."""
        from reconciler.repository.dynamodb import from_item

        fail, covered = self.run.result.failures.append, self.run.result.covered
        record_op = next(
            op for entry in params["TransactItems"] for op in entry.values() if op["TableName"] == self.run.h.resources.tables["Settlements"]
        )
        job_id = record_op["Key"]["jobId"]["S"]
        for problem in self.run.books.release(job_id, expired=True):
            fail(f"{problem}, by {task.describe()[:120]}")
        record = from_item(self.run.h.fidelity.read_item(self.run.h.dynamodb, self.run.h.resources.tables["Settlements"], record_op["Key"]) or {})
        expiry, released_at, job = record.get("holdExpiresAt"), record.get("holdReleasedAt"), self.run.books.jobs.get(job_id)
        if record.get("holdReleasedBy") != "expiry" or expiry is None or released_at is None or released_at < expiry or "holdUser" in record:
            fail(f"the scan released the hold of {job_id!r} (expiry {expiry}) at {released_at}, its record: {sorted(record)}")
        if job is not None and job.expires_at != expiry:
            fail(f"the scan released the hold of {job_id!r} on expiry {expiry}; it was held to expire at {job.expires_at}")
        self.releases.append((job_id, getattr(self.run.local, "attempt", None)))
        covered["expiry:released-by-the-last-tick" if self.run.closing else "expiry:released-in-the-phase"] += 1

    def refused(self, task: Task, params: dict, reasons: list[Any]) -> None:
        """A tick's release refused by its condition: a settlement, a release or another tick came first (a race)."""
        settlements = self.run.h.resources.tables["Settlements"]
        ops = [op for entry in params.get("TransactItems", []) for op in entry.values()]
        for op, reason in zip(ops, reasons, strict=False):
            if op["TableName"] == settlements and "#expires" in op.get("ConditionExpression", "") and reason.get("Code") == "ConditionalCheckFailed":
                self.run.result.covered["expiry:raced:refused-by-the-condition"] += 1

    def settled(self, job_id: str, job: Any, outcome: str, settled_at: Any) -> None:
        """A settlement of a job held with an expiry of its own: before its expiry, after it but before a tick released
        the hold (the settlement came first: the tick must not release it), or after the scan released it (a late render
        is charged in full, without a hold)."""
        if job_id not in self.asked or job.expires_at is None:
            return
        if job.expired:
            when = "after-the-scan-released-it"
        else:
            when = "before-its-expiry" if str(settled_at) < job.expires_at else "after-its-expiry-before-a-tick"
        self.run.result.covered[f"expiry:{outcome}-{when}"] += 1


def no_hold_is_released_by_its_expiry_twice_or_left_open(run: Run, tables: Tables) -> Iterator[str]:
    """every hold past its expiry is released by the next tick that runs without faults unless its job settled first (liveness);
    no hold is released at its expiry twice or after its job settled (the commit oracle books each release at once)"""
    yield from run.expiries.left_open
    released = Counter(job_id for job_id, _ in run.expiries.releases)
    for job_id, count in released.items():
        if count > 1:
            yield f"the hold of {job_id!r} was released at its expiry {count} times"


def every_expired_hold_is_announced_once_and_counted(run: Run, tables: Tables) -> Iterator[str]:
    """each credits.hold.expired on the bus is of a hold the scan released at its expiry, once, with its values; a release goes
    unannounced only when its tick's attempt failed after the commit; HoldsExpired counts the releases of the attempts that
    completed"""
    from simulator.event_invariants import emitted_metrics

    announced = [event for event in run.h.bus if event.get("detail-type") == HOLD_EXPIRED_DETAIL_TYPE]
    released = {job_id: attempt for job_id, attempt in run.expiries.releases}
    seen: Counter = Counter(event["detail"].get("jobId") for event in announced)
    for event in announced:
        detail = event["detail"]
        job = run.books.jobs.get(detail.get("jobId"))
        if detail.get("jobId") not in released or job is None or (detail.get("userId"), detail.get("credits")) != (job.user, job.reserved):
            yield f"credits.hold.expired announces a release that did not happen as said: {detail}"
    for job_id, count in seen.items():
        if count > 1:
            yield f"the expiry of {job_id!r} was announced {count} times"
    completed = sum(1 for attempt in released.values() if attempt is None or attempt.error is None)
    for job_id, attempt in released.items():
        if not seen[job_id] and (attempt is None or attempt.error is None):
            yield f"the expiry of {job_id!r} was released by a tick that completed, but never announced"
    emitted = int(emitted_metrics(run.emitted.getvalue()).get("HoldsExpired", 0))
    if emitted != completed:
        yield f"HoldsExpired counted {emitted}; the ticks that completed released {completed}"
    if run.s.expiries:
        run.result.covered["expiry:announced"] += len(announced)
        run.result.covered["expiry:unannounced-after-a-failed-attempt"] += len(released) - len(seen)


EXPIRY_CHECKS = (no_hold_is_released_by_its_expiry_twice_or_left_open, every_expired_hold_is_announced_once_and_counted)
# What `make sim` prints of the phase (counter name prefixes).
EXPIRY_SUMMARY = (
    ("runs with an expiry phase", "expiry:phases"),
    ("holds made with an expiry", "expiry:holds-made-with-an-expiry"),
    ("expiries asked that passed before the hold was made (refused)", "expiry:passed-before-the-hold"),
    ("released by the phase's ticks", "expiry:released-in-the-phase"),
    ("released by the last tick", "expiry:released-by-the-last-tick"),
    ("ticks refused by the condition (raced)", "expiry:raced:"),
    ("renders after the scan released the hold", "expiry:rendered-after-the-scan-released-it"),
    ("failures after the scan released the hold", "expiry:failed-after-the-scan-released-it"),
    ("settled after the expiry, before a tick (the tick then releases nothing)", "expiry:rendered-after-its-expiry-before-a-tick"),
    ("failed likewise", "expiry:failed-after-its-expiry-before-a-tick"),
    ("settled before the expiry", "expiry:rendered-before-its-expiry"),
    ("announced", "expiry:announced"),
)
