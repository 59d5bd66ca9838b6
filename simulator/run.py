"""One run of a scenario: its set-up written into the tables, then its tasks on the seed's workers (the real
handler under Lambda's asynchronous retries, the timer scan through the same handler, `reserve()`, the CLI's
`Adjuster`, the pipeline's own writes) with faults, races and stale reads injected; then the invariants, then
the balance-events delivery and its invariants.
"""

from __future__ import annotations

import contextlib
import io
import random
import sys
import threading
import traceback
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from simulator.commits import CommitOracle
from simulator.faults import MAX_MONEY_PATH_FAULTS, SimulatedTimeout, lambda_should_retry, money_path_fault
from simulator.harness import STAGE, Harness
from simulator.oracle import Books
from simulator.races import Races
from simulator.scenario import Scenario, Task
from simulator.scheduler import Scheduler
from simulator.world import World, hours_ago


@dataclass
class RunResult:
    seed: int
    failures: list[str] = field(default_factory=list)
    covered: Counter = field(default_factory=Counter)
    handovers: list[int] = field(default_factory=list)  # the scheduler's picks, in order


class Run:
    def __init__(self, harness: Harness, scenario: Scenario) -> None:
        self.h = harness
        self.s = scenario
        self.rng = random.Random(scenario.seed * 7919 + 1)
        # One stream per service: how many alerts the notifier publishes depends on its time windows, and
        # must not change which DynamoDB calls fail.
        self.fault_rngs = {service: random.Random(f"{scenario.seed}-{service}") for service in ("dynamodb", "sqs", "sns")}
        self.scheduler = Scheduler(self.rng)
        self.result = RunResult(scenario.seed)
        self.outcomes: list[tuple[Task, dict]] = []
        self.lambda_dead_letters: list[Task] = []
        self.faults_left = MAX_MONEY_PATH_FAULTS
        self.sns_faults = 0
        self.alert_attempts: list[str] = []
        self.pipeline_writes: dict[str, tuple[str, bool]] = {}
        self.request_numbers = iter(range(1, 10**6))
        self.killed_scans: set[str] = set()
        self.failed_requests: set[str] = set()  # invocations whose every attempt failed: Lambda's on-failure destination
        self.retried: list[tuple[str, str, str]] = []
        self.books = Books()
        self.local = threading.local()  # per worker: its task, its last job read, the race injected before its write
        self.books_found: list[tuple[str, dict]] = []  # (table, entry) of both ledgers, as the check read them
        self.emitted = io.StringIO()  # what Powertools printed: its EMF metrics
        self.commits = CommitOracle(self)
        self.races = Races(self)
        self.world = World(harness, self.books, self.result.covered)
        # Eventually consistent reads of a job answer an earlier version (fidelity.py, 7.) at this run's rate; its
        # own stream too. A third of the runs read only current versions, as moto would.
        self.stale_rng = random.Random(f"{scenario.seed}-stale")
        self.stale_rate = self.stale_rng.choice((0.0, 0.3, 0.7))

    # --- faults, at the botocore boundary ---------------------------------------------------------------
    def stale_read_plan(self, table: str, available: int) -> int:
        """How many versions back a worker's eventually consistent read of a job goes (0: the current one)."""
        if getattr(self.scheduler.local, "index", None) is None or self.stale_rng.random() >= self.stale_rate:
            return 0
        self.result.covered["stale:reads-served"] += 1
        self.local.stale_read = True
        return self.stale_rng.randint(1, available)

    def plan(self, service: str, operation: str, params: dict) -> Any:
        if getattr(self.scheduler.local, "index", None) is None:
            return None  # set-up, checks, and the concurrent writer of a race: not a worker, no switch, no fault
        self.local.race = None
        if service == "dynamodb":
            self.scheduler.switch_point()
            if operation == "TransactWriteItems":
                self.races.before_a_transaction(params)
        rng = self.fault_rngs.get(service)
        if rng is None or getattr(self.scheduler.local, "index", None) is None or self.faults_left <= 0 or rng.random() >= self.s.fault_rate:
            return None
        self.faults_left -= 1
        fault = money_path_fault(service, operation, params, rng)
        if fault is None:
            return None
        if service == "sns":
            self.sns_faults += 1
        label, make = fault
        self.result.covered[f"fault:{label}"] += 1
        return make()

    # --- tasks ------------------------------------------------------------------------------------------
    def context(self, request_id: str) -> Any:
        class Context:
            function_name = f"cc-agent-reconciler-{STAGE}"
            function_version = "$LATEST"
            memory_limit_in_mb = 512
            invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:cc-agent-reconciler-{STAGE}"
            aws_request_id = request_id

            def get_remaining_time_in_millis(self) -> int:
                return 30_000

        return Context()

    def invoke(self, task: Task, event: Any) -> None:
        """Lambda's asynchronous invocation: up to 3 attempts with one request id, then the on-failure destination."""
        from reconciler.handlers.entry import handler
        from reconciler.observability import metrics

        request_id = f"req-{self.s.seed}-{next(self.request_numbers)}"
        self.local.stale_read = False  # not carried over from an invocation whose every attempt failed
        for _attempt in range(3):
            try:
                summary = handler(event, self.context(request_id))
                self.outcomes.append((task, summary))
                self.result.covered[f"outcome:{summary.get('outcome', 'scan')}"] += 1
                if getattr(self.local, "stale_read", False):  # decided after a read of an earlier version
                    self.result.covered[f"stale:outcome:{summary.get('outcome', 'scan')}:attempts-{min(summary.get('attempts', 1), 3)}"] += 1
                self.local.stale_read = False
                return
            except SimulatedTimeout:
                metrics.clear_metrics()  # the killed invocation never flushed
                if task.kind == "scan":
                    self.killed_scans.add(request_id)
                self.result.covered["lambda-retry-after-timeout"] += 1
            except Exception as error:  # noqa: BLE001 - judged below: a bug unless Lambda retries it
                metrics.clear_metrics()
                if not lambda_should_retry(error):
                    where = traceback.extract_tb(error.__traceback__)[-1]
                    self.result.failures.append(
                        f"the handler raised {type(error).__name__}: {str(error)[:200]} (at {where.filename}:{where.lineno}) for "
                        f"{task.describe()[:300]}"
                    )
                    return
                self.result.covered["lambda-retry-after-error"] += 1
                self.retried.append((task.kind, request_id, f"{type(error).__name__}: {error}"[:300]))
        self.lambda_dead_letters.append(task)
        self.failed_requests.add(request_id)
        self.result.covered["lambda-on-failure-destination"] += 1

    def execute_queue(self, queue: list[Task]) -> None:
        for task in queue:
            self.execute(task)

    def execute(self, task: Task) -> None:
        self.result.covered[f"task:{task.kind}"] += 1
        self.local.task = task
        try:
            self._execute(task)
        except Exception as error:  # noqa: BLE001 - the task's own caller would see this: a bug unless Lambda/pipeline retries it
            if not lambda_should_retry(error):
                where = traceback.extract_tb(error.__traceback__)[-1]
                self.result.failures.append(
                    f"{task.kind} raised {type(error).__name__}: {str(error)[:200]} (at {where.filename}:{where.lineno}) for {task.describe()[:200]}"
                )

    def _execute(self, task: Task) -> None:
        from reconciler.domain.errors import InsufficientCredits, InvalidEvent, ReservationRefused
        from reconciler.ops.adjustments import Adjuster
        from reconciler.ops.operator_error import OpsError
        from reconciler.service.ports import AmbiguousWrite, Contention, RetriesExhausted
        from reconciler.service.reservations import ReservationService

        store = self.h.store
        if task.kind == "event":
            self.invoke(task, task.args[0])
        elif task.kind == "scan":
            self.invoke(task, {"source": "aws.events", "detail-type": "Scheduled Event", "id": "tick", "detail": {}})
        elif task.kind == "reserve":
            try:
                ReservationService(store, backoff=self._backoff).reserve(*task.args)
                if task.expect == "invalid":
                    self.result.failures.append(f"reserve() accepted what settlement refuses: {task.describe()[:200]}")
            except InvalidEvent:
                pass  # refused with the field named; nothing held (the invariants check the books)
            except (InsufficientCredits, ReservationRefused, RetriesExhausted, Contention, AmbiguousWrite):
                pass  # the pipeline is told; nothing moved (the invariants check it)
            except SimulatedTimeout:
                pass  # the pipeline's process died mid-call: the write landed or not, the books must balance either way
        elif task.kind == "adjust":
            user, amount, reference = task.args
            if amount:
                with contextlib.suppress(OpsError, InvalidEvent, RetriesExhausted, Contention, AmbiguousWrite, SimulatedTimeout):
                    Adjuster(store, backoff=self._backoff).adjust(user, amount, "simulated", reference, "sim")
        elif task.kind == "pipeline":
            job_id, status = task.args
            try:
                old = self.h.dynamodb.update_item(
                    TableName=self.h.resources.tables["Jobs"],
                    Key={"jobId": {"S": job_id}},
                    ReturnValues="ALL_OLD",
                    UpdateExpression="SET #s = :s, updatedAt = :now",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":s": {"S": status}, ":now": {"S": hours_ago(0)}},
                ).get("Attributes", {})
                self.pipeline_writes[job_id] = (status, "settledAs" in old)
            except (Exception, SimulatedTimeout):  # noqa: BLE001 - an injected fault: the pipeline's write may or may not have happened
                self.pipeline_writes.pop(job_id, None)
                self.pipeline_writes[job_id + "?"] = (status, True)

    def _backoff(self, *_: Any) -> Any:
        from reconciler.service.retrying import Backoff

        return Backoff(sleep=lambda _: None, random_fraction=self.rng.random)

    def execute_all(self) -> None:
        from reconciler.notify.notifier import Notifier

        for task in self.s.setup:
            self.world.arrange(task)
        original_notify = Notifier.notify_outcome

        def spied(notifier: Any, outcome: Any, *args: Any, **kwargs: Any) -> Any:
            self.alert_attempts.append(outcome.kind)
            return original_notify(notifier, outcome, *args, **kwargs)

        Notifier.notify_outcome = spied  # type: ignore[method-assign,assignment]  # the import path stays the real one; only the attempt is counted
        queues: list[list[Task]] = [[] for _ in range(self.s.workers)]
        for task in self.s.tasks:
            queues[self.rng.randrange(self.s.workers)].append(task)
        stdout = sys.stdout
        sys.stdout = self.emitted  # Powertools prints its EMF metrics here
        self.h.fidelity.violations.clear()
        self.h.fidelity.item_corrections.clear()
        self.h.fidelity.set_fault_plan(self.plan)
        self.h.fidelity.set_stale_reads(self.stale_read_plan, frozenset({self.h.resources.tables["Jobs"]}))
        stop_observing = (self.h.fidelity.observe_results(self.commits.on_result), self.h.fidelity.observe_errors(self.commits.on_error))
        try:
            finished = self.scheduler.run([partial(self.execute_queue, queue) for queue in queues])
        finally:
            for stop in stop_observing:
                stop()
            self.h.fidelity.set_fault_plan(None)
            self.h.fidelity.set_stale_reads(None)
            sys.stdout = stdout
            Notifier.notify_outcome = original_notify  # type: ignore[method-assign]
            self.result.handovers = self.scheduler.handovers
        if not finished:
            self.result.failures.append("a worker never finished (deadlock or livelock)")


def run_scenario(harness: Harness, scenario: Scenario) -> RunResult:
    from simulator.balance_events import BalanceEventRun
    from simulator.invariants import check

    harness.reset()
    run = Run(harness, scenario)
    run.execute_all()
    check(run)
    BalanceEventRun(run).deliver_and_check()
    return run.result
