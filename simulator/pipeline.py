"""The render pipeline's side of the contract (issue #21): it owns the Jobs table and writes it as a real pipeline
might, in a language of its own. It creates its jobs (with the unsettled marker) before or after their hold, moves
their status, saves an item whole from a mapper that knows only its own fields (dropping the settlement, maybe
putting the unsettled marker back), and writes holds by hand on Jobs items, with or without moving the balance.

The generator (`pipeline_tasks`, a stream of its own), the writes (`Pipeline`), and the invariants that judge them.
A job settles once whatever the pipeline writes: the settlement record says so, the Jobs item's mirror of it is
written back by the timer scan when a whole save lost it, and reservation attributes on a Jobs item created after
the cut-off move no money.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from simulator.faults import SimulatedTimeout
from simulator.oracle import OracleJob, generated_event
from simulator.scenario import MODELS, Task, terminal_event
from simulator.world import hours_ago

if TYPE_CHECKING:
    from simulator.run import Run
    from simulator.tables import Tables

PIPELINE_KINDS = ("create-job", "pipeline", "save-whole", "hand-hold")
TERMINAL = ("rendered", "failed")


def pipeline_tasks(rng: random.Random, setup: list[Task], tasks: list[Task]) -> None:
    """The pipeline's writes, inserted among the workload's tasks (the workers may reorder them further)."""
    owners: dict[str, set[str]] = {}
    for task in tasks:
        if task.kind == "reserve" and task.expect != "invalid":
            owners.setdefault(task.args[0], set()).add(task.args[1])
        elif task.kind == "event" and task.expect == "valid" and isinstance(task.args[0]["detail"], dict):
            owners.setdefault(task.args[0]["detail"]["jobId"], set()).add(task.args[0]["detail"]["userId"])
    seeded = {task.args[0] for task in setup if task.kind not in ("adjust", "override")}
    for job_id, users in owners.items():  # before or after the hold, as a real pipeline might
        if len(users) == 1 and job_id not in seeded and job_id != "ghost" and rng.random() < 0.7:
            tasks.insert(rng.randint(0, len(tasks)), Task("create-job", (job_id, next(iter(users)), rng.choice(MODELS), 0)))
    opened = sorted({task.args[0] for task in setup if task.kind == "adjust" and task.args[1]})
    if not opened:
        return
    if rng.random() < 0.4:
        for number in range(rng.randint(1, 2)):
            _whole_save(rng, setup, tasks, f"saved-{number}", rng.choice(opened))
    if rng.random() < 0.35:
        for number in range(rng.randint(1, 2)):
            _hand_written_hold(rng, tasks, f"hand-{number}", rng.choice(opened))
    if rng.random() < 0.25:
        setup.append(Task("unfunded-hold", ("unfunded-0", rng.choice(opened), "test", rng.choice([500, 1000]), rng.choice(TERMINAL))))
        event = terminal_event(rng.choice(TERMINAL), "unfunded-0", setup[-1].args[1], "e-unfunded-0", rng)
        tasks.insert(rng.randint(0, len(tasks)), Task("event", (event,), "valid"))
    if rng.random() < 0.25:
        user = rng.choice(opened)
        setup.append(Task("legacy-hold", ("v3-0", user, rng.choice(MODELS), rng.choice([1, 5]), rng.choice(["rendering", "rendered", "failed"]))))
        tasks.insert(rng.randint(0, len(tasks)), Task("event", (terminal_event(rng.choice(TERMINAL), "v3-0", user, "e-v3-0", rng),), "valid"))


def _whole_save(rng: random.Random, setup: list[Task], tasks: list[Task], job_id: str, user: str) -> None:
    """A job the pipeline created hours ago, maybe held, settled; then saved whole (its own fields only, the
    unsettled marker maybe put back, its own old or new update time), redelivered, contradicted, and scanned: one
    worker's sequence, among the others' tasks."""
    model = rng.choice(MODELS)
    setup.append(Task("create-job", (job_id, user, model, 2)))
    if rng.random() < 0.5:
        tasks.insert(rng.randint(0, len(tasks)), Task("reserve", (job_id, user, model, rng.choice([1, 5]))))
    first = terminal_event(rng.choice(TERMINAL), job_id, user, f"e-{job_id}", rng)
    other = terminal_event("failed" if first["detail-type"] == "video.rendered" else "rendered", job_id, user, f"e-{job_id}-other", rng)
    status = rng.choice([first["detail-type"].removeprefix("video."), "rendered", "rendering"])
    save = Task("save-whole", (job_id, user, model, status, rng.random() < 0.7, rng.random() < 0.3))
    steps = (Task("event", (first,), "valid"), save, Task("event", (first,), "valid"), Task("event", (other,), "valid"), Task("scan"), Task("scan"))
    tasks.insert(rng.randint(0, len(tasks)), Task("sequence", steps))


def _hand_written_hold(rng: random.Random, tasks: list[Task], job_id: str, user: str) -> None:
    """A hold the pipeline wrote by hand on a Jobs item created after the cut-off (with or without reservedAs, with
    or without moving the balance itself): it moves no money, and its job settles as one never held."""
    hold = Task("hand-hold", (job_id, user, rng.choice(MODELS), rng.choice([2, 7]), rng.random() < 0.5, rng.random() < 0.5))
    at = rng.randint(0, len(tasks))
    tasks.insert(at, hold)
    if rng.random() < 0.85:
        event = terminal_event(rng.choice(TERMINAL), job_id, user, f"e-{job_id}", rng)
        tasks.insert(rng.randint(at + 1, len(tasks)), Task("event", (event,), "valid"))


class Pipeline:
    """The pipeline's writes of its Jobs table (and, for a hand-written hold, of a balance): faults may hit them like
    any other call; what AWS answered is applied to the books (`on_write`, in commit order)."""

    def __init__(self, run: Run) -> None:
        self.run, self.h, self.books, self.covered = run, run.h, run.books, run.result.covered
        self.jobs = run.h.resources.tables["Jobs"]
        self.jobs_writes = 0  # the pipeline's writes of Jobs items so far
        self.last_write: dict[str, tuple[int, str, bool]] = {}  # job id -> (its number, kind, whether a scan can repair it)
        self.hand_written: set[str] = set()
        self.pipeline_writes: dict[str, tuple[str, bool]] = {}  # status writes: job -> (status, after its settlement?)

    def execute(self, task: Task) -> None:
        writes: dict[str, Callable[..., None]] = {"create-job": self._create, "pipeline": self._status, "save-whole": self._save_whole}
        write = writes.get(task.kind, self._hand_hold)
        try:
            write(*task.args)
        except (Exception, SimulatedTimeout) as error:  # noqa: BLE001 - the pipeline's call failed or its answer was lost; its write landed or not
            if task.kind == "pipeline":
                self.pipeline_writes.pop(task.args[0], None)
                self.pipeline_writes[task.args[0] + "?"] = (task.args[1], True)
            self.covered[f"pipeline:write-failed:{type(error).__name__}"] += 1

    def _create(self, job_id: str, user: str, model: str, hours_old: float) -> None:
        """A new job, as the pipeline creates it; refused when its item exists already (a settlement created it)."""
        at = hours_ago(hours_old)
        item = {"jobId": job_id, "userId": user, "model": model, "status": "submitted", "createdAt": at, "updatedAt": at, "unsettled": "PENDING"}
        self.books.jobs.setdefault(job_id, OracleJob(user))
        try:
            self.h.dynamodb.put_item(TableName=self.jobs, Item=_item(item), ConditionExpression="attribute_not_exists(jobId)")
        except self.h.dynamodb.exceptions.ConditionalCheckFailedException:
            self.covered["pipeline:job-created-after-its-settlement"] += 1

    def _status(self, job_id: str, status: str) -> None:
        old = self.h.dynamodb.update_item(
            TableName=self.jobs,
            Key={"jobId": {"S": job_id}},
            ReturnValues="ALL_OLD",
            UpdateExpression="SET #s = :s, updatedAt = :now",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": status}, ":now": {"S": hours_ago(0)}},
        ).get("Attributes", {})
        self.pipeline_writes[job_id] = (status, "settledAs" in old)

    def _save_whole(self, job_id: str, user: str, model: str, status: str, marker: bool, fresh: bool) -> None:
        """The item saved whole from what the pipeline knows (an ORM's PutItem): the settlement it never knew is gone."""
        item: dict[str, Any] = {"jobId": job_id, "userId": user, "model": model, "status": status, "createdAt": hours_ago(2)}
        item["updatedAt"] = hours_ago(0) if fresh else hours_ago(1)
        if status == "rendered":
            item["seconds"] = 7
        if marker:
            item["unsettled"] = "PENDING"
        self.h.dynamodb.put_item(TableName=self.jobs, Item=_item(item))

    def _hand_hold(self, job_id: str, user: str, model: str, credits: int, reserved_as: bool, by_hand: bool) -> None:
        """A hold written by hand (docs/pipeline.md says never): the job with reservedCredits, maybe reservedAs, and
        maybe the balance moved remaining -> held in the same TransactWriteItems, with no condition. It counts as
        hand-written once AWS applied it (`on_write`): one refused, or lost to a fault before it arrived, left no hold."""
        self.books.jobs.setdefault(job_id, OracleJob(user))
        at = hours_ago(1)
        job: dict[str, Any] = {"jobId": job_id, "userId": user, "model": model, "status": "submitted", "createdAt": at, "updatedAt": at}
        job.update(unsettled="PENDING")
        job.update({"reservedCredits": credits, **({"reservedAs": "hold"} if reserved_as else {})})
        put: dict[str, Any] = {"Put": {"TableName": self.jobs, "Item": _item(job), "ConditionExpression": "attribute_not_exists(jobId)"}}
        balance: dict[str, Any] = {
            "Update": {
                "TableName": self.h.resources.tables["Credits"],
                "Key": {"userId": {"S": user}},
                "UpdateExpression": "SET remaining = remaining - :c, held = if_not_exists(held, :zero) + :c",
                "ExpressionAttributeValues": {":c": {"N": str(credits)}, ":zero": {"N": "0"}},
            }
        }
        items: list[Any] = [put, balance] if by_hand else [put]
        self.h.dynamodb.transact_write_items(TransactItems=items)

    def on_write(self, task: Task, operation: str, params: dict) -> None:
        """What AWS answered to one of the pipeline's writes (also when a fault then lost the answer)."""
        if operation == "TransactWriteItems":
            job_id, user, _, credits, reserved_as, by_hand = task.args
            self.hand_written.add(job_id)
            if by_hand:
                self.books.adjust(user, -credits)
                self.books.held[user] += credits
                self.books.by_hand[user] += credits
                self.run.commits.balance_committed(user)
            self.covered[
                f"pipeline:hand-written-holds:{'reservedAs' if reserved_as else 'no-reservedAs'}:{'by-hand' if by_hand else 'no-balance'}"
            ] += 1
        job_id = task.args[0]
        self.jobs_writes += 1
        repairable = False
        if task.kind == "save-whole":
            settled = bool(self.books.jobs.get(job_id) and self.books.jobs[job_id].settled)
            _, _, _, status, marker, fresh = task.args
            repairable = settled and marker and status in TERMINAL and not fresh
            self.covered[f"pipeline:whole-saves{'-after-settlement' if settled else ''}"] += 1
            self.covered["pipeline:whole-saves-the-scan-can-repair"] += repairable
        self.last_write[job_id] = (self.jobs_writes, task.kind, repairable)


def _item(values: dict[str, Any]) -> dict:
    from reconciler.repository.dynamodb import to_item

    return to_item(values)


# --- the invariants --------------------------------------------------------------------------------------------


def every_settled_jobs_item_mirrors_its_record(run: Run, tables: Tables) -> Iterator[str]:
    """every settled job's Jobs item mirrors its settlement record (settled attributes, status, no unsettled marker), unless the
    pipeline wrote the item after the reconciler last did; a whole save that put the unsettled marker back on a finished job is
    written back by the timer scan"""
    from simulator.commits import SETTLED_ATTRIBUTES

    mirrors, pipeline = run.commits.mirrors_written, run.pipeline
    for job_id, record in tables.records.items():
        if not record.get("settledAs"):
            continue
        item = tables.jobs.get(job_id, {})
        matches = {name: item.get(name) for name in SETTLED_ATTRIBUTES} == {name: record.get(name) for name in SETTLED_ATTRIBUTES}
        matches = matches and "unsettled" not in item and item.get("status") == record["settledAs"]
        number, kind, repairable = pipeline.last_write.get(job_id, (0, "", False))
        if number <= mirrors.get(job_id, 0):
            if not matches:
                yield f"the Jobs item of {job_id!r} does not mirror its settlement record: {_shown(item)} against {_shown(record)}"
        elif repairable and run.closing_scan:
            yield f"the pipeline saved {job_id!r} whole after its settlement (unsettled marker back, finished), and no scan wrote the mirror back"
        else:
            run.result.covered[f"pipeline:mirrors-left-as-the-pipeline-wrote-them:{kind}"] += 1


def hand_written_holds_move_no_money(run: Run, tables: Tables) -> Iterator[str]:
    """a hold written by hand on a Jobs item created after the cut-off releases and refunds nothing when its job settles; a Jobs
    item from before the cut-off that claims a hold its balance never had is refused (a DamagedJob dead letter naming it), never
    settled"""
    for job_id in run.pipeline.hand_written:
        record = tables.records.get(job_id, {})
        if record.get("releasedCredits") or record.get("refundedCredits") or record.get("heldCredits"):
            yield f"the hand-written hold of {job_id!r} moved money at its settlement: {_shown(record)}"
    for task, summary in run.outcomes:
        if task.kind != "event" or task.expect != "valid" or not generated_event(task.args[0]).job_id.startswith("unfunded-"):
            continue
        if (summary.get("outcome"), summary.get("field")) != ("rejected", "job"):
            yield f"an event of a job claiming an unfunded hold ended {summary.get('outcome')} ({summary.get('field')}), not as a damaged job"
        run.result.covered["pipeline:unfunded-holds-dead-lettered"] += 1


def _shown(item: dict) -> str:
    return str(
        {name: item.get(name) for name in ("settledAs", "status", "settledByEvent", "chargedCredits", "unsettled", "heldCredits") if name in item}
    )


PIPELINE_CHECKS = (every_settled_jobs_item_mirrors_its_record, hand_written_holds_move_no_money)
