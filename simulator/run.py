"""One run of a scenario: its set-up written into the tables, then its tasks on the seed's workers (the real
handler under Lambda's asynchronous retries, the timer scan through the same handler, `reserve()`, the CLI's
`Adjuster`, the pipeline's own writes) with faults, races and stale reads injected; then the invariants, then
the balance-events delivery and its invariants.
"""

from __future__ import annotations

import io
import random
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from reconciler import json_text
from reconciler.repository.sqs_dead_letters import escape_for_sqs
from simulator import edges
from simulator.clock import simulated_time
from simulator.commits import CommitOracle
from simulator.config_changes import deploy_prices
from simulator.credits_in import CreditsIn
from simulator.direct_calls import DirectCalls
from simulator.edges import EDGE_SETUP
from simulator.expiries import Expiries
from simulator.faults import MAX_MONEY_PATH_FAULTS, RETRIED_BY_THE_CODE, RETRIED_OPERATIONS, SimulatedTimeout, money_path_fault
from simulator.harness import STAGE, Harness
from simulator.operators import OPERATOR_KINDS, Operators
from simulator.oracle import LEGACY, REJECTED, Books, generated_event
from simulator.pipeline import PIPELINE_KINDS, Pipeline
from simulator.races import Races
from simulator.records import Attempt, Invocation, ReserveCall
from simulator.scenario import Scenario, Task, terminal_event
from simulator.scheduler import Scheduler
from simulator.world import World

UNBOUNDED_REMAINING_MS = 10**12  # what the simulated Lambda context says is left of an invocation: see Run.context


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
        self.faults_left = MAX_MONEY_PATH_FAULTS
        self.sns_faults = 0
        self.alert_attempts: list[str] = []
        self.request_numbers = iter(range(1, 10**6))
        self.killed_scans: set[str] = set()
        self.failed_requests: set[str] = set()  # invocations whose every attempt failed: Lambda's on-failure destination
        self.invocations: list[Invocation] = []
        self.calls: list[tuple[Task, Attempt]] = []  # reserve() and the Adjuster
        self.reserve_calls: list[ReserveCall] = []
        self.closing = False  # the closing phase: every open job's terminal event, without faults (see close_open_jobs)
        self.closing_tasks: list[Task] = []
        self.books = Books()
        self.local = threading.local()  # per worker: its task, its last job read, the race injected before its write
        self.books_found: list[tuple[str, dict]] = []  # (table, entry) of both ledgers, as the check read them
        self.emitted = io.StringIO()  # what Powertools printed: its EMF metrics
        self.commits = CommitOracle(self)
        self.races = Races(self)
        self.world = World(harness, self.books, self.result.covered)
        self.pipeline = Pipeline(self)
        self.operators = Operators(self)
        self.closing_scan = False
        self.ticks = 0  # the closing phase ended with a timer-scan tick (after whole saves of jobs)
        # Eventually consistent reads of a job answer an earlier version (fidelity.py, 7.) at this run's rate; its
        # own stream too. A third of the runs read only current versions, as moto would.
        self.stale_rng = random.Random(f"{scenario.seed}-stale")
        self.stale_rate = self.stale_rng.choice((0.0, 0.3, 0.7))
        self.direct = DirectCalls(self)
        self.prices = self.direct.stage_prices()
        self.expiries = Expiries(self)
        self.credits_in = CreditsIn(self)

    # --- faults, at the botocore boundary ---------------------------------------------------------------
    def stale_read_plan(self, table: str, available: int) -> int:
        """How many versions back a worker's eventually consistent read of a job goes (0: the current one)."""
        if getattr(self.scheduler.local, "index", None) is None or self.closing or self.stale_rng.random() >= self.stale_rate:
            return 0
        self.result.covered["stale:reads-served"] += 1
        self.local.stale_read = True
        attempt = getattr(self.local, "attempt", None)
        if attempt is not None:
            attempt.stale_reads += 1
        return self.stale_rng.randint(1, available)

    def plan(self, service: str, operation: str, params: dict) -> Any:
        if getattr(self.scheduler.local, "index", None) is None:
            return None  # set-up, checks, and the concurrent writer of a race: not a worker, no switch, no fault
        if operation == "Scan" and not self.s.expiries and "holdExpiresAt" in params.get("ExpressionAttributeNames", {}).values():
            # A tick's look for expired holds in a run without an expiry phase: it finds none, and must not change
            # the run (no hand-over, no fault), so every seed without one runs as it did before hold expiry.
            return None
        self.local.race = None
        if service == "dynamodb":
            # The prices the worker decided on since its last call: a deploy can come only at a hand-over.
            self.local.epoch = self.books.epoch
            self.ticks += 1  # the run's logical clock: lagging indexes count their lag in it
            self.scheduler.switch_point()
            if operation == "TransactWriteItems" and not self.closing:
                self.races.before_a_transaction(params)
            if getattr(self.local, "raced_by", None) is not None:
                self.operators.before_a_write(operation, params)
        rng = self.fault_rngs.get(service)
        if getattr(self.local, "no_faults", False):
            return None  # an operator's process: no Lambda around it
        if self.closing or rng is None or self.faults_left <= 0 or rng.random() >= self.s.fault_rate:
            return None
        self.faults_left -= 1
        fault = money_path_fault(service, operation, params, rng)
        if fault is None:
            return None
        if service == "sns":
            self.sns_faults += 1
        label, make = fault
        self.result.covered[f"fault:{label}"] += 1
        made = make()
        attempt = getattr(self.local, "attempt", None)
        if attempt is not None:
            attempt.faults.append(label)
            attempt.fault_errors.extend([made.error] if made.error is not None else [])
            if made.error is not None and label in RETRIED_BY_THE_CODE and operation in RETRIED_OPERATIONS:
                attempt.retried_fault_errors.append((f"{label} on {operation}", made.error))
        return made

    def call_epoch(self) -> int:
        """The price deploys in force when the running worker made its decision (before its last hand-over); for an
        operator's replay in its own process, those of when it started (simulator.operators)."""
        fixed = getattr(self.local, "fixed_epoch", None)
        return fixed if fixed is not None else getattr(self.local, "epoch", self.books.epoch)

    # --- tasks ------------------------------------------------------------------------------------------
    def context(self, request_id: str) -> Any:
        class Context:
            function_name = f"cc-agent-reconciler-{STAGE}"
            function_version = "$LATEST"
            memory_limit_in_mb = 512
            invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:cc-agent-reconciler-{STAGE}"
            aws_request_id = request_id

            def get_remaining_time_in_millis(self) -> int:
                # Time without end: the simulator models no wall time (one worker runs at a time, and a Lambda
                # timeout is a fault it injects). A real 30 s budget made verdicts depend on the machine's load:
                # on a loaded machine seed 5182 ran out of it while other workers ran, and its settlements gave up
                # after one attempt with no fault injected.
                return UNBOUNDED_REMAINING_MS

        return Context()

    def invoke(self, task: Task, event: Any) -> None:
        """Lambda's asynchronous invocation: up to 3 attempts with one request id, then the on-failure destination.
        Lambda retries whatever the handler raises; the invariants judge each error by the faults the simulator
        injected into that attempt."""
        from reconciler.handlers.entry import handler
        from reconciler.observability import metrics

        invocation = Invocation(task, f"req-{self.s.seed}-{next(self.request_numbers)}")
        self.invocations.append(invocation)
        self.local.request_id = invocation.request_id
        self.local.event = "timer-scan" if task.kind == "scan" else event  # what a settlement in this invocation settles
        self.local.invocation_epoch = self.books.epoch
        self.local.stale_read = False  # not carried over from an invocation whose every attempt failed
        for _attempt in range(3):
            attempt = self.attempt_begins()
            invocation.attempts.append(attempt)
            try:
                summary = handler(event, self.context(invocation.request_id))
            except SimulatedTimeout as timeout:
                attempt.error = timeout
                metrics.clear_metrics()  # the killed invocation never flushed
                if task.kind == "scan":
                    self.killed_scans.add(invocation.request_id)
                self.result.covered["lambda-retry-after-timeout"] += 1
            except Exception as error:  # noqa: BLE001 - judged by the invariants: only an injected fault may cause it
                attempt.error = error
                metrics.clear_metrics()
                self.result.covered["lambda-retry-after-error"] += 1
            else:
                self._answered(invocation, summary)
                return
            finally:
                self.attempt_ends(attempt)
        invocation.end = "on-failure-destination"
        self.failed_requests.add(invocation.request_id)
        self.result.covered["lambda-on-failure-destination"] += 1
        self._on_failure_record(invocation, event)

    def _on_failure_record(self, invocation: Invocation, event: Any) -> None:
        """Lambda's record of an invocation whose every attempt failed, in its on-failure destination (the DLQ): Lambda's
        own send, not the worker's call (no hand-over, no fault)."""
        error = invocation.attempts[-1].error
        record = {
            "version": "1.0",
            "requestContext": {"requestId": invocation.request_id, "condition": "RetriesExhausted", "approximateInvokeCount": 3},
            "requestPayload": event,
            "responsePayload": {"errorType": type(error).__name__, "errorMessage": str(error)[:200]},
        }
        worker, self.scheduler.local.index = self.scheduler.local.index, None
        try:
            body = escape_for_sqs(json_text.dumps(record, default=str, ensure_ascii=False))
            self.h.sqs.send_message(QueueUrl=self.h.resources.dlq_url, MessageBody=body)
        finally:
            self.scheduler.local.index = worker

    def _answered(self, invocation: Invocation, summary: dict) -> None:
        """The handler's answer, and the oracle's outcome for the event at that moment (in commit order)."""
        task = invocation.task
        invocation.summary, invocation.end = summary, summary.get("outcome", "scan")
        if task.kind == "event":
            event = generated_event(task.args[0]) if task.expect == "valid" else None
            invocation.expected = REJECTED if event is None else self.books.expected_outcome(event, invocation.request_id)
        elif task.kind == "credits":
            self.credits_in.answered(invocation, summary)
        self.outcomes.append((task, summary))
        self.result.covered[f"outcome:{summary.get('outcome', 'scan')}"] += 1
        if getattr(self.local, "stale_read", False):  # decided after a read of an earlier version
            self.result.covered[f"stale:outcome:{summary.get('outcome', 'scan')}:attempts-{min(summary.get('attempts', 1), 3)}"] += 1
        self.local.stale_read = False

    def settlement_service(self) -> Any:
        return self.direct.settlement_service()

    def attempt_begins(self) -> Attempt:
        self.local.attempt = Attempt(writes_before=self.commits.writes)
        return self.local.attempt

    def attempt_ends(self, attempt: Attempt) -> None:
        attempt.writes_after = self.commits.writes
        self.local.attempt = None

    def execute_queue(self, queue: list[Task]) -> None:
        for task in queue:
            self.execute(task)

    def execute(self, task: Task) -> None:
        self.result.covered[f"task:{task.kind}"] += 1
        self.local.task = task
        try:
            self._execute(task)
        except Exception as error:  # noqa: BLE001 - the simulator's own: each task records the errors of the code under test
            where = traceback.extract_tb(error.__traceback__)[-1]
            self.result.failures.append(
                f"{task.kind} raised {type(error).__name__}: {str(error)[:200]} (at {where.filename}:{where.lineno}) for {task.describe()[:200]}"
            )

    def _execute(self, task: Task) -> None:
        if task.kind in ("event", "credits"):
            self.invoke(task, task.args[0])
        elif task.kind == "scan":
            self.invoke(task, {"source": "aws.events", "detail-type": "Scheduled Event", "id": "tick", "detail": {}})
        elif task.kind == "reserve":
            self.direct.reserve(task)
        elif task.kind == "adjust":
            self.direct.adjust(task)
        elif task.kind == "release":
            self.direct.release(task)
        elif task.kind in PIPELINE_KINDS:
            self.pipeline.execute(task)
        elif task.kind in OPERATOR_KINDS:
            self.operators.execute(task)
        elif task.kind == "deploy-prices":
            deploy_prices(self)
        elif task.kind == "sequence":
            for step in task.args:
                self.execute(step)

    def backoff(self, *_: Any) -> Any:
        return self._backoff()

    def _backoff(self, *_: Any) -> Any:
        from reconciler.service.retrying import Backoff

        return Backoff(sleep=lambda _: None, random_fraction=self.rng.random)

    def execute_all(self) -> None:
        """The set-up, then the tasks on the seed's workers; then the closing phase: a terminal event for every
        job still holding credits (a hold, or a v2 reservation), delivered by one worker without faults, races or
        stale reads, so every hold must end settled or released."""
        from simulator.invariants import read_tables, the_operators_audit_finds_the_books_clean

        for task in self.s.setup:
            if task.kind in PIPELINE_KINDS:
                self.pipeline.execute(task)
            elif task.kind == "damage-books":
                self.operators.damage(task)
            elif task.kind in EDGE_SETUP:
                edges.arrange(self, task)
            else:
                self.world.arrange(task)
        queues: list[list[Task]] = [[] for _ in range(self.s.workers)]
        for task in self.s.tasks:
            queues[self.rng.randrange(self.s.workers)].append(task)
        with self._observed():
            finished = self.scheduler.run([partial(self.execute_queue, queue) for queue in queues])
            finished = self.expiries.run_phase() and finished
            finished = self.credits_in.run_phase() and finished
            # The audit with the holds still open (after the closing phase none is)
            self.h.fidelity.catch_up_indexes()  # the books are judged, not the lag (the fixes and the scan met it)
            self.result.failures.extend(the_operators_audit_finds_the_books_clean(self, read_tables(self)))
            self.closing, self.closing_tasks = True, self._closing_tasks()
            self.result.covered["closing:events"] += len(self.closing_tasks)
            finished = finished and self.scheduler.run([partial(self.execute_queue, self.closing_tasks)])
        self.result.handovers = self.scheduler.handovers
        if not finished:
            self.result.failures.append("a worker never finished (deadlock or livelock)")

    @contextmanager
    def _observed(self) -> Iterator[None]:
        """The concurrent part's instruments: faults, stale reads, the commit oracle, the metrics printed, the
        alert attempts counted (the notifier stays the real one)."""
        from reconciler.notify.notifier import Notifier

        original_notify = Notifier.notify_outcome

        def spied(notifier: Any, outcome: Any, *args: Any, **kwargs: Any) -> Any:
            self.alert_attempts.append(outcome.kind)
            return original_notify(notifier, outcome, *args, **kwargs)

        Notifier.notify_outcome = spied  # type: ignore[method-assign,assignment]  # the import path stays the real one; only the attempt is counted
        stdout = sys.stdout
        sys.stdout = self.emitted  # Powertools prints its EMF metrics here
        self.h.fidelity.violations.clear()
        self.h.fidelity.item_corrections.clear()
        self.h.fidelity.set_fault_plan(self.plan)
        self.h.fidelity.set_index_lag(*self._index_lag())
        self.h.fidelity.set_stale_reads(self.stale_read_plan, frozenset({self.h.resources.tables["Settlements"]}))
        stop_observing = (self.h.fidelity.observe_results(self.commits.on_result), self.h.fidelity.observe_errors(self.commits.on_error))
        try:
            yield
        finally:
            for stop in stop_observing:
                stop()
            self.h.fidelity.set_fault_plan(None)
            self.h.fidelity.set_stale_reads(None)
            self.h.fidelity.set_index_lag(None)
            sys.stdout = stdout
            Notifier.notify_outcome = original_notify  # type: ignore[method-assign]

    def _index_lag(self) -> tuple[Any, Any, Any]:
        """Global secondary indexes that lag their table in half of the runs (the seed's choice), in logical steps (the
        workers' DynamoDB calls): Ledger's by-user index, which the audit and its fix read (a fix must see that the
        index lacks the balance's last entry); in some runs also the unsettled-jobs and open-holds indexes (the timer
        scan's, the audit's), but not where operators fix the books: their fix waits --min-age for those, in time this
        simulator does not model."""
        rng = random.Random(f"{self.s.seed}-index-lag")
        mode, steps = rng.choice([None, None, "ledger", "all"]), rng.choice([3, 10, 30])
        if mode is None:
            return None, None, None
        fixes = any(task.kind == "audit-fix" for task in self.s.tasks)
        lagging = {"Ledger"} if mode == "ledger" or fixes else {"Ledger", "Jobs", "Settlements"}
        self.result.covered[f"index-lag:{'+'.join(sorted(lagging))}:{steps}-steps"] += 1
        tables = frozenset(self.h.resources.tables[name] for name in lagging)
        return self.h.fidelity.index_lag_missing_writes_younger_than(steps), tables, lambda: self.ticks

    def _closing_tasks(self) -> list[Task]:
        """A render or a failure of every job the books say still holds credits: as the pipeline's status says
        when it is finished (the simulator wrote it), else the seed's choice."""
        rng = random.Random(f"{self.s.seed}-closing")
        tasks: list[Task] = []
        for job_id, job in self.books.jobs.items():
            if not job.holding and (job.kind != LEGACY or job.settled):
                continue
            stored = self.h.fidelity.read_item(self.h.dynamodb, self.h.resources.tables["Jobs"], {"jobId": {"S": job_id}}) or {}
            status = stored.get("status", {}).get("S")
            outcome = status if status in ("rendered", "failed") else rng.choice(["rendered", "failed"])
            tasks.append(Task("event", (terminal_event(outcome, job_id, job.user, f"e-close-{len(tasks)}", rng),), "valid"))
        if any(task.kind == "sequence" for task in self.s.tasks):  # a tick to write back the mirrors whole saves lost
            tasks.append(Task("scan"))
            self.closing_scan = True
        return tasks

    @property
    def delivered(self) -> list[Task]:
        """Every task of the run, the closing phase's included, and the steps of every sequence."""
        return [step for task in self.s.tasks + self.closing_tasks for step in (task.args if task.kind == "sequence" else (task,))]


def run_scenario(harness: Harness, scenario: Scenario) -> RunResult:
    from simulator.balance_events import BalanceEventRun
    from simulator.discrepancies import damage_and_audit
    from simulator.invariants import check

    with simulated_time():  # the product's and the world's timestamps: the run's own clock, not the machine's
        harness.reset()
        run = Run(harness, scenario)
        run.execute_all()
        check(run)
        BalanceEventRun(run).deliver_and_check()
        damage_and_audit(run)
    return run.result
