"""Operators' commands during a run (issue #20): `audit --fix` trusting the balance or the ledger (a restore), on books
damaged before the run, two at once on one user, concurrent with settlements, holds and their releases; DLQ replays
through the in-process invoker, and the corrected replay of a dead letter. Each is built as the CLI builds it.

The generator (`operator_tasks`, a stream of its own), the commands (`Operators`), what their commits do to the
oracle's books (in commit order), and the invariants that judge them: of two fixes of one discrepancy one applies,
a fix never decides on a lagging index or on books that moved since it read them (the user's books are exactly clean
after every fix that applied), every replayed event ends as the oracle classifies it.
"""

from __future__ import annotations

import io
import itertools
import json
import random
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from simulator.discrepancies import inject
from simulator.faults import SimulatedTimeout
from simulator.oracle import REJECTED, generated_event
from simulator.scenario import Task

if TYPE_CHECKING:
    from simulator.run import Run
    from simulator.tables import Tables

OPERATOR_KINDS = ("audit-fix", "replay", "replay-corrected")
TRUSTS = ("balance", "ledger")
IN_RUN_DAMAGES = (("balance", (5, -3, 12)), ("extra-entry", (4, -6)), ("delete-entry", (0.0, 0.99)), ("held", (2, 9)))


def operator_tasks(rng: random.Random, setup: list[Task], tasks: list[Task]) -> None:
    """Books damaged before the run, fixed during it (sometimes twice at once, either trust); releases of holds; DLQ
    replays. Users whose Jobs items claim unfunded holds are left alone: a restore would fund the claim."""
    claimed = {task.args[1] for task in setup if task.kind == "unfunded-hold"}
    opened = sorted({task.args[0] for task in setup if task.kind == "adjust" and task.args[1]} - claimed)
    if opened and rng.random() < 0.45:
        for user in rng.sample(opened, min(len(opened), rng.choice([1, 1, 2]))):
            kind, amounts = rng.choice(IN_RUN_DAMAGES)
            setup.append(Task("damage-books", (kind, user, rng.choice(amounts))))
            fixes = [Task("audit-fix", (user, rng.choice(TRUSTS))) for _ in range(rng.choice([1, 2, 2, 3]))]
            at = rng.randint(0, len(tasks))
            for number, fix in enumerate(fixes):  # near one another: concurrent on several workers
                tasks.insert(min(len(tasks), at + number * rng.randint(0, 2)), fix)
        if rng.random() < 0.5:
            tasks.insert(rng.randint(0, len(tasks)), Task("audit-fix", (rng.choice(opened), rng.choice(TRUSTS))))
    held = sorted({(task.args[0], task.args[1]) for task in tasks if task.kind == "reserve" and task.expect != "invalid"})
    for job_id, user in rng.sample(held, min(len(held), rng.choice([0, 0, 1, 2]))):
        tasks.insert(rng.randint(0, len(tasks)), Task("release", (job_id, user)))
    for _ in range(rng.choice([0, 0, 1, 2])):
        tasks.insert(rng.randint(len(tasks) // 2, len(tasks)), Task("replay", (rng.choice([3, 10]),)))


class Operators:
    """The operators' commands (no Lambda around them: an operator's process, so no fault is injected into its calls)."""

    def __init__(self, run: Run) -> None:
        self.run, self.books, self.covered = run, run.books, run.result.covered
        self.fixes: list[tuple[Task, str]] = []  # (task, status or what it raised)
        self.replayed: list[tuple[dict, str, str | None]] = []  # (event, outcome, the oracle's outcome or None: unknown)
        self.left_in_the_dlq: list[str] = []  # old copies of messages a replay re-dead-lettered, still in the DLQ after it
        self.requests = itertools.count(1)
        self.invokers = random.Random(f"{run.s.seed}-replay-invokers")
        self.generated = {_key(step.args[0]): step.expect for step in run.delivered if step.kind == "event"}

    def damage(self, task: Task) -> None:
        """Books damaged before the run (a stray write, a restored backup): what the damage does to the oracle's books."""
        kind, user, amount = task.args
        found = inject(self.run, task, before_the_run=True)
        if kind == "balance":
            self.books.remaining[user] += amount
        elif kind == "held":
            self.books.remaining[user] -= amount
            self.books.held[user] += amount
            self.books.by_hand[user] += amount
        self.books.off_ledger[user] += found.ledger
        self.covered[f"operators:books-damaged:{kind}"] += 1

    def execute(self, task: Task) -> None:
        self.run.local.no_faults = True
        commands: dict[str, Callable[..., None]] = {"audit-fix": self._fix, "replay": self._replay, "replay-corrected": self._replay_corrected}
        try:
            commands[task.kind](*task.args)
        finally:
            self.run.local.no_faults = False

    def _fix(self, user: str, trust: str, raced_by: str | None = None) -> None:
        """`reconciler audit USER --fix --trust TRUST`, as cli/book_commands.py builds the Auditor (no --min-age wait:
        the run's indexes lag in logical steps, and the fix must protect itself against what it reads). `raced_by`: the
        trust of another operator's fix of the same user, run whole just before this one's write (`before_a_write`)."""
        from simulator.tables import operators_auditor

        self.run.local.raced_by = raced_by
        auditor = operators_auditor(self.run)
        auditor.backoff = self.run.backoff
        try:
            result = auditor.fix(user, "simulated repair", "sim-operator", False, timedelta(0), trust)
            status = "nothing to fix" if result is None else result.status
        except (Exception, SimulatedTimeout) as error:  # noqa: BLE001 - judged below: an operator's fix never raises
            status = f"raised {type(error).__name__}: {error}"
        finally:
            self.run.local.raced_by = None  # a fix that never wrote is raced by nobody after it
        self.fixes.append((Task("audit-fix", (user, trust)), status))
        self.covered[f"operators:fixes:{trust}{':raced' if raced_by else ''}:{status.split(':')[0]}"] += 1

    def before_a_write(self, operation: str, params: dict) -> None:
        """Just before a fix's write of a balance (its correction's transaction, or its restore), the fix that races it:
        another operator's fix of the same user, run whole (it reads the books as they still are, and writes first)."""
        raced_by = getattr(self.run.local, "raced_by", None)
        credits = self.run.h.resources.tables["Credits"]
        writes = [op for entry in params.get("TransactItems", []) for op in entry.values()] if operation == "TransactWriteItems" else [params]
        if raced_by is None or operation not in ("TransactWriteItems", "UpdateItem") or not any(op.get("TableName") == credits for op in writes):
            return
        self.run.local.raced_by = None  # once, and the racing fix is not raced itself
        user = self.run.local.task.args[0]  # the raced fix's task (raced_by is set only while it runs)
        self.covered[f"operators:fixes-raced:{raced_by}"] += 1
        self._fix(user, raced_by)

    def corrected(self, task: Task, params: dict) -> None:
        """A correction committed (trusting the balance): a Ledger entry explains the posted balance, which moves by 0."""
        entry = next(op["Item"] for item in params["TransactItems"] for kind, op in item.items() if kind == "Put")
        user, amount = entry["userId"]["S"], int(entry["amount"]["N"])
        self.books.off_ledger[user] -= amount if entry["type"]["S"] == "credit" else -amount
        self._clean_after_a_fix(user, "balance")

    def restored(self, task: Task, params: dict) -> None:
        """A restore committed (trusting the ledger): remaining and held set back to what the fix read of the books."""
        user = params["Key"]["userId"]["S"]
        values = params["ExpressionAttributeValues"]
        remaining, held = int(values[":value"]["N"]), int(values[":held"]["N"])
        self.books.off_ledger[user] += remaining + held - self.books.remaining[user] - self.books.held[user]
        self.books.remaining[user], self.books.held[user] = remaining, held
        self.books.by_hand[user] = held - self.books.open_holds()[user]
        self.run.commits.balance_committed(user)
        self._clean_after_a_fix(user, "ledger")

    def _clean_after_a_fix(self, user: str, trust: str) -> None:
        """Right after a fix commits (in commit order), its user's books must be exactly clean: a fix that decided on a
        lagging index, or on books another fix changed since it read them, leaves them off."""
        off, held = self.books.off_ledger[user], self.books.by_hand[user]
        if off or held:
            self.run.result.failures.append(
                f"a fix of {user!r} trusting the {trust} committed and left its books off: ledger by {off}, held by {held} (it decided on "
                "books that were not as they are: a lagging index, or another fix since its read)"
            )
        self.covered[f"operators:fixes-applied:{trust}"] += 1

    # --- DLQ replays -----------------------------------------------------------------------------------------
    def _replay(self, max_messages: int) -> None:
        """`reconciler dlq replay --max N` with the in-process invoker."""
        from reconciler.ops.aws import SqsQueue
        from reconciler.ops.dead_letter_replay import peek, replay

        queue = SqsQueue(self.run.h.sqs, self.run.h.resources.dlq_url)
        deployed = self.invokers.random() < 0.5  # the deployed function (it dead-letters a rejection again), or --local
        report = replay(queue, self._deployed_function() if deployed else self._invoker(), max_messages)
        for status, count in report.summary().items():
            self.covered[f"operators:replays:{status}"] += count
        replaced = {item.letter.message_id: item.detail for item in report.items if "re-dead-lettered as" in item.detail}
        if replaced:  # the old copy of each message the function dead-lettered again is gone: only its new copy is left
            left = {letter.message_id for letter in peek(queue, 1000)} & set(replaced)
            self.left_in_the_dlq += [f"message {message_id} ({replaced[message_id][:160]})" for message_id in sorted(left)]
            self.covered["operators:replays-re-dead-lettered"] += len(replaced)

    def _replay_corrected(self, event_id: str, detail: dict) -> None:
        """`reconciler dlq replay MESSAGE --payload corrected.json`: the dead letter of `event_id`, with its detail fixed."""
        from reconciler.ops.aws import SqsQueue
        from reconciler.ops.dead_letter_replay import corrected_event, find, peek, replay_one

        queue = SqsQueue(self.run.h.sqs, self.run.h.resources.dlq_url)
        letter = next((letter for letter in peek(queue, 100) if letter.event_id == event_id), None)
        if letter is None:  # its delivery never reached the DLQ (a fault sent it to the on-failure destination)
            self.covered["operators:corrected-replays-not-found"] += 1
            return
        found = find(queue, letter.message_id, 100)
        event = corrected_event(found.letter, detail)
        self.generated[_key(event)] = "valid"  # a new event, the oracle's to classify
        item = replay_one(found, self._invoker(), event)
        self.covered[f"operators:corrected-replays:{item.status}"] += 1

    def _invoker(self) -> Any:
        """The CLI's InProcessInvoker around the container's use case, with deterministic request ids and the oracle's
        classification of each answer."""
        from reconciler.ops.target import InProcessInvoker, RecordingDeadLetters
        from reconciler.service.event_settlement import EventProcessor

        settlement = self.run.settlement_service()
        # The operator's own process prices with what it read when it started: a deploy since does not reach it.
        processor = EventProcessor(settlement, RecordingDeadLetters())
        return InProcessInvoker(_Classified(self, processor, epoch=self.books.epoch))  # type: ignore[arg-type]  # its process()

    def _deployed_function(self) -> Any:
        """The CLI's LambdaInvoker (RequestResponse) of the deployed function, whose invoke runs the function's use case
        in this process with its real dead-letter queue: a rejection is dead-lettered again, and named in its answer."""
        from reconciler import bootstrap
        from reconciler.ops.aws import LambdaInvoker
        from reconciler.repository.sqs_dead_letters import SqsDeadLetters
        from reconciler.service.event_settlement import EventProcessor
        from simulator.harness import STAGE

        # The function's container (its prices are the deploys'), with its real dead-letter queue.
        h, container = self.run.h, bootstrap.event_processor()
        processor = EventProcessor(container.settlement, SqsDeadLetters(h.sqs, h.resources.dlq_url, STAGE))
        return LambdaInvoker(_SimulatedLambda(_Classified(self, processor)), f"cc-agent-reconciler-{STAGE}")

    def classify(self, event: dict, outcome: str, request_id: str) -> None:
        expect = self.generated.get(_key(event))
        expected = None if expect is None else REJECTED if expect == "invalid" else self.books.expected_outcome(generated_event(event), request_id)
        self.replayed.append((event, outcome, expected))
        self.covered[f"operators:replayed:{outcome}"] += 1


class _Classified:
    """The use case the in-process invoker calls, with the operator's request id and the oracle told of each answer."""

    def __init__(self, operators: Operators, processor: Any, epoch: int | None = None) -> None:
        self.operators, self.processor = operators, processor
        self.epoch = epoch  # the price deploys its prices are from, when deploys do not reach it (the operator's process)

    def process(self, event: Any, deadline: float | None = None, request_id: str | None = None) -> Any:
        run = self.operators.run
        request_id = f"replay-{run.s.seed}-{next(self.operators.requests)}"
        run.local.event, run.local.request_id, run.local.fixed_epoch = event, request_id, self.epoch
        try:
            outcome = self.processor.process(event, deadline, request_id)
        finally:
            run.local.fixed_epoch = None
        self.operators.classify(event, outcome.kind, request_id)
        return outcome


class _SimulatedLambda:
    """Lambda's synchronous invoke, answered by the function's use case in this process (its summary as the payload)."""

    def __init__(self, use_case: _Classified) -> None:
        self.use_case = use_case

    def invoke(self, FunctionName: str, InvocationType: str, Payload: str) -> dict:  # noqa: N803 - boto3's names
        from reconciler import json_text

        outcome = self.use_case.process(json.loads(Payload))
        self.use_case.operators.covered["operators:replays-through-the-deployed-function"] += 1
        return {"StatusCode": 200, "Payload": io.BytesIO(json_text.dumps(outcome.summary(), default=str).encode())}


def _key(event: Any) -> str:
    from reconciler import json_text

    return json_text.dumps(event, sort_keys=True, default=str)


# --- the invariants --------------------------------------------------------------------------------------------


def operators_commands_end_as_designed(run: Run, tables: Tables) -> Iterator[str]:
    """an operator's fix never raises (it is fixed, finds nothing, or says why not: recently changed, index behind, not fixable);
    every replayed event ends as the oracle classifies it (settled, duplicate, conflict, rejected), and a replay never raises"""
    for task, status in run.operators.fixes:
        if status.startswith("raised"):
            yield f"{task.describe()} {status}"
    for event, outcome, expected in run.operators.replayed:
        if expected is not None and outcome != expected:
            yield f"a replayed event ended {outcome}; the oracle classifies it {expected}: {json.dumps(event, default=str)[:200]}"


def a_replay_the_function_dead_letters_again_leaves_one_copy(run: Run, tables: Tables) -> Iterator[str]:
    """a DLQ replay that the function dead-letters again (a new copy, with its reason) deletes the message it replayed: the DLQ
    never holds the old copy beside the new one"""
    for left in run.operators.left_in_the_dlq:
        yield f"a replay re-dead-lettered {left}, and left the old copy in the DLQ"


OPERATOR_CHECKS = (operators_commands_end_as_designed, a_replay_the_function_dead_letters_again_leaves_one_copy)
