"""Input at the edges (issue #20): ids at DynamoDB's byte limits in one- to four-byte characters, durations at every
documented DynamoDB number edge, invalid events of EventBridge's full size in non-ASCII text, balances stored damaged,
and the corrected replay of a dead letter whose event id has the maximum length.

The generator (`edge_tasks`, a stream of its own), the set-up it needs (`arrange`), and the invariants that judge
them. An edge event's task carries what it is: `Task("event", (envelope, "edge:FIELD"))`, FIELD the attribute a
refusal must name ("" for one that must settle).
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from simulator.oracle import OracleJob
from simulator.scenario import Task, envelope
from simulator.world import before_the_cut_off

if TYPE_CHECKING:
    from simulator.run import Run
    from simulator.tables import Tables

# Ids at the limit of 768 bytes of UTF-8 (and 256 characters): (id, valid?). validation.py says why 768.
ID_EDGES: tuple[tuple[str, bool], ...] = (
    ("x" * 256, True),  # 256 one-byte characters
    ("é" * 256, True),  # 512 bytes of two-byte characters
    ("漢" * 256, True),  # 768 bytes of three-byte characters: the limit exactly
    ("\U0001f600" * 192, True),  # 768 bytes of four-byte characters
    ("\U0001f600" * 191 + "漢x", True),  # 768 bytes, mixed
    ("\U0001f600" * 193, False),  # 772 bytes in 193 characters
    ("\U0001f600" * 256, False),  # 1,024 bytes in 256 characters: a key built from it outgrows DynamoDB's sort key
    ("漢" * 255 + "\U0001f600", False),  # 769 bytes in 256 characters
    ("é" * 257, False),  # 257 characters
)
# Durations at DynamoDB's documented number edges (38 significant digits, magnitude 1E-130 to 9.99...E+125), as JSON
# text so every digit arrives: (text, valid?). A valid duration is positive and at most 14,400 s.
NUMBER_EDGES: tuple[tuple[str, bool], ...] = (
    ("1E-130", True),
    ("1.0000000000000000000000000000000000001", True),  # 38 significant digits
    ("9999.9999999999999999999999999999999999", True),  # 38 digits
    ("1.00000000000000000000000000000000000001", False),  # 39 digits
    ("1E-131", False),
    ("1E-150", False),
    ("1E-165", False),  # a subnormal boto3 would let through
    ("1E-166", False),
    ("9.9999999999999999999999999999999999999E+125", False),  # storable, but no render lasts that long
    ("1E+126", False),
    ("-1E-130", False),
)
EVENTBRIDGE_MAX_BYTES = 256 * 1024  # an event (PutEvents entry) is at most 256 KB
DAMAGES = (("remaining", {"S": "25"}), ("remaining", {"BOOL": True}), ("remaining", {"N": "2.5"}), ("held", {"S": "5"}), ("held", {"N": "4.5"}))
EDGE_SETUP = ("damaged-balance",)


def edge_tasks(rng: random.Random, setup: list[Task], tasks: list[Task]) -> None:
    """Edge events among the workload's tasks; each class in some runs, drawn by this stream alone."""
    users = sorted({task.args[0] for task in setup if task.kind == "adjust" and task.args[1]})
    if not users:
        return
    if rng.random() < 0.5:
        for number in range(rng.randint(1, 3)):
            _id_edge(rng, tasks, rng.choice(users), number)
    if rng.random() < 0.4:
        for number, (text, valid) in enumerate(rng.sample(NUMBER_EDGES, rng.randint(1, 3))):
            detail = f'{{"jobId": "num-{number}", "userId": {json.dumps(rng.choice(users))}, "seconds": {text}, "model": "test"}}'
            edge = Task(
                "event",
                (envelope("video.rendered", detail, f"e-num-{number}"), "edge:" + ("" if valid else "seconds")),
                "valid" if valid else "invalid",
            )
            tasks.insert(rng.randint(0, len(tasks)), edge)
    if rng.random() < 0.2:
        tasks.insert(rng.randint(0, len(tasks)), Task("event", (_full_size_event(rng, rng.choice(users)), "edge:seconds"), "invalid"))
    if rng.random() < 0.25:
        _damaged_balance(rng, setup, tasks)
    if rng.random() < 0.25:
        _corrected_replay(rng, tasks, rng.choice(users))


def _id_edge(rng: random.Random, tasks: list[Task], user: str, number: int) -> None:
    value, valid = rng.choice(ID_EDGES)
    field = rng.choice(["jobId", "userId", "id"])
    job_id = _own_job_id(value, number) if field == "jobId" else f"id-edge-{number}"
    user_id, event_id = (value if field == "userId" else user), f"e-id-{number}"
    if field == "id":
        event_id = value
    event = envelope("video.rendered", {"jobId": job_id, "userId": user_id, "seconds": 3, "model": "test"}, event_id)
    at = rng.randint(0, len(tasks))
    tasks.insert(at, Task("event", (event, "edge:" + ("" if valid else field)), "valid" if valid else "invalid"))
    if field != "id" and rng.random() < 0.5:  # a hold of it first: what can be held can be settled, and the reverse
        tasks.insert(at, Task("reserve", (job_id, user_id, "test", 3), "" if valid else "invalid"))


def _own_job_id(value: str, number: int) -> str:
    """The edge id as a job id of this edge alone: its last character swapped for one of as many UTF-8 bytes that
    names `number`, so lengths stay at the edge. Two edges (or scenario.EDGE_IDS' "x" * 256) of different users must
    not name one job: the second user's render would be refused as another user's job, rightly (seed 498)."""
    width = len(value[-1].encode())
    return value[:-1] + chr({1: ord("0"), 2: 0xE0, 3: 0x4E00, 4: 0x1F680}[width] + number)


def _full_size_event(rng: random.Random, user: str) -> dict:
    """An invalid render (its duration is text) of EventBridge's full size, nearly all of it three-byte characters, a few
    that SQS refuses among them."""
    event = envelope("video.rendered", {"jobId": "big-0", "userId": user, "seconds": "7", "model": "test", "notes": ""}, "e-big-0")
    room = EVENTBRIDGE_MAX_BYTES - len(json.dumps(event, ensure_ascii=False).encode()) - 64
    event["detail"]["notes"] = "\x07\ufffe" + "漢字かな" * (room // 12) + rng.choice(["", "\x1b", "\uffff"])
    return event


def _damaged_balance(rng: random.Random, setup: list[Task], tasks: list[Task]) -> None:
    """A user whose Credits item a stray write damaged: the events that write the figure at fault are refused naming the
    balance (a render, for `remaining`; releasing a hold, for `held`); the others settle (a failure of a job never held
    writes no balance; a render of one never held does not write `held`)."""
    attribute, value = rng.choice(DAMAGES)
    user = f"dmg-{attribute}"
    setup.append(Task("damaged-balance", (user, attribute, json.dumps(value))))
    # standard-v1: at least 6 credits whatever prices are deployed, more than a fractional 2.5 covers
    render = {"jobId": f"{user}-r", "userId": user, "seconds": 3, "model": "standard-v1"}
    events = [(envelope("video.rendered", render, f"e-{user}-r"), attribute == "remaining")]
    events.append((envelope("video.failed", {"jobId": f"{user}-f", "userId": user}, f"e-{user}-f"), False))
    if attribute == "held":  # the hold of the code before records, on a Jobs item: releasing it needs held
        held = {"jobId": f"{user}-held", "userId": user, "seconds": 3, "model": "test"}
        events.append((envelope(rng.choice(["video.rendered", "video.failed"]), held, f"e-{user}-h"), True))
    for event, refused in events:
        tasks.insert(rng.randint(0, len(tasks)), Task("event", (event, "edge:balance" if refused else "edge:"), "valid"))
    if attribute == "remaining" or value.get("S"):
        tasks.insert(rng.randint(0, len(tasks)), Task("reserve", (f"{user}-x", user, "test", 3), "invalid"))


def _corrected_replay(rng: random.Random, tasks: list[Task], user: str) -> None:
    """An invalid render whose event id has the maximum length, dead-lettered; then the operator's corrected replay of it
    (its id `corrected:` and a digest: the readable form would not be a valid id), which settles."""
    event_id = rng.choice(["\U0001f600" * 192, "漢" * 256, "x" * 256])
    detail = {"jobId": "fixed-0", "userId": user, "seconds": "12", "model": "test"}
    corrected = {**detail, "seconds": 12}
    steps = (
        Task("event", (envelope("video.rendered", detail, event_id), "edge:seconds"), "invalid"),
        Task("replay-corrected", (event_id, corrected)),
    )
    tasks.insert(rng.randint(0, len(tasks)), Task("sequence", steps))


def arrange(run: Run, task: Task) -> None:
    """A damaged Credits item (written as a stray put-item would), and for damaged `held` a hold of the code before
    records on a Jobs item, which only `held` can release."""
    from reconciler.repository.dynamodb import to_item

    user, attribute, value = task.args
    item = {"userId": {"S": user}, "remaining": {"N": "50"}, attribute: json.loads(value)}
    run.h.dynamodb.put_item(TableName=run.h.resources.tables["Credits"], Item=item)
    run.books.damaged_balances.add(user)
    run.books.adjust(user, 50 if attribute == "held" else 0)  # a numeric remaining the oracle can follow
    run.books.jobs[user + ("-r" if attribute == "remaining" else "-held")] = OracleJob(user, damaged="balance")
    if attribute == "held":
        job = {"jobId": f"{user}-held", "userId": user, "status": "rendering", "createdAt": before_the_cut_off(2), "reservedCredits": 5}
        run.h.dynamodb.put_item(TableName=run.h.resources.tables["Jobs"], Item=to_item({**job, "reservedAs": "hold", "unsettled": "PENDING"}))
    run.result.covered[f"edges:damaged-balances:{attribute}:{next(iter(json.loads(value)))}"] += 1


# --- the invariants --------------------------------------------------------------------------------------------


def edge_events_end_as_their_edge_says(run: Run, tables: Tables) -> Iterator[str]:
    """every edge event ends settled when valid, and dead-lettered naming the field at fault when not (jobId, userId or id over
    768 bytes or 256 characters; seconds beyond DynamoDB's number range or precision, or text; a damaged balance as `balance`)"""
    for task, summary in run.outcomes:
        if task.kind != "event" or len(task.args) < 2:
            continue
        field, outcome = task.args[1].removeprefix("edge:"), summary.get("outcome")
        if field and (outcome, summary.get("field")) != ("rejected", field):
            why = f"{summary.get('field')}: {summary.get('reason')}"
            yield f"an edge event ended {outcome} ({why}), not refused naming {field}: {task.describe()[:160]}"
        elif not field and outcome not in ("settled", "duplicate", "conflict"):
            yield f"a valid edge event ended {outcome} ({summary.get('field')}: {summary.get('reason')}): {task.describe()[:160]}"
        run.result.covered[f"edges:{_class_of(task)}:{'refused' if field else 'settled'}"] += 1


def _class_of(task: Task) -> str:
    event_id = str(task.args[0].get("id"))
    return "numbers" if event_id.startswith("e-num-") else "full-size" if event_id == "e-big-0" else "balances" if "dmg-" in event_id else "ids"


def full_size_events_are_dead_lettered_whole(run: Run, tables: Tables) -> Iterator[str]:
    """an invalid event of EventBridge's full size in non-ASCII text is dead-lettered whole (no bodyTruncated) and replayable: the
    dead letter gives back exactly the event"""
    from reconciler.ops.dead_letter_replay import parse_message

    sent = [task.args[0] for task in run.delivered if task.kind == "event" and task.args[0].get("id") == "e-big-0"]
    if not sent or not any(summary.get("outcome") == "rejected" for task, summary in run.outcomes if task.args and task.args[0] is sent[0]):
        return
    letters = [message for message in tables.dead_letters if parse_message(message).event_id == "e-big-0"]
    if not letters:
        yield "the full-size invalid event was rejected but is not in the DLQ"
    for message in letters:
        if "bodyTruncated" in message.get("MessageAttributes", {}) or parse_message(message).event != _as_json(sent[0]):
            yield f"the full-size invalid event was dead-lettered cut or changed ({len(message['Body'].encode())} bytes of body)"
        run.result.covered["edges:full-size-dead-letters-whole"] += 1


_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u([0-9a-fA-F]{4})")


def dead_letters_escape_only_what_sqs_refuses(run: Run, tables: Tables) -> Iterator[str]:
    """a dead letter's body escapes only characters SQS refuses (every `\\uXXXX` in it stands for one): every event EventBridge
    accepts, non-ASCII text included, fits the queue as it arrived"""
    from reconciler.repository.sqs_dead_letters import sqs_allowed

    for message in tables.dead_letters:
        codes = [int(code, 16) for code in _ESCAPE.findall(message.get("Body", ""))]
        pairs = [
            chr(0x10000 + (high - 0xD800) * 0x400 + (low - 0xDC00))
            for high, low in itertools.pairwise(codes)
            if 0xD800 <= high < 0xDC00 <= low < 0xE000
        ]
        escaped = [chr(code) for code in codes if not 0xD800 <= code < 0xE000] + pairs
        needless = sorted({char for char in escaped if sqs_allowed(char)})
        if needless:
            yield f"a dead letter escapes characters SQS accepts: {[f'U+{ord(char):04X}' for char in needless[:5]]}"


def corrected_replays_of_the_longest_ids_settle(run: Run, tables: Tables) -> Iterator[str]:
    """a corrected replay of a dead letter whose event id has the maximum length settles its job, under an id that is valid (the
    digest form where `corrected:` and the id would not be)"""
    from reconciler.domain.validation import is_identifier

    for job_id, record in tables.records.items():
        if job_id == "fixed-0" and not is_identifier(record.get("settledByEvent")):
            yield f"the corrected replay settled {job_id!r} under an id that is not valid: {str(record.get('settledByEvent'))[:80]}"
    if run.result.covered["operators:corrected-replays:replayed"] and not tables.records.get("fixed-0", {}).get("settledAs"):
        yield "a corrected replay succeeded but its job is not settled"


def _as_json(event: Any) -> Any:
    return json.loads(json.dumps(event, default=str))


EDGE_CHECKS = (
    edge_events_end_as_their_edge_says,
    full_size_events_are_dead_lettered_whole,
    dead_letters_escape_only_what_sqs_refuses,
    corrected_replays_of_the_longest_ids_settle,
)
EDGE_CLASSES = {"ids": "ids at the byte limits", "numbers": "numbers at DynamoDB's edges", "full-size": "full-size invalid events"}
__all__ = ["EDGE_CHECKS", "EDGE_SETUP", "arrange", "edge_tasks"]
