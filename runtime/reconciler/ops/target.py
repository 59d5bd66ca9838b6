"""The operators' composition root: where the operations run (a deployed stage, through the standard credential
chain, or a local endpoint) and every operator use case built for it from its adapters.

The CLI asks a Target for a use case (adjuster, auditor, books, job view, replayer, stage controls, telemetry, the
timer scan, the hold service, the balance-event history) and calls it; it builds no client itself. This module does
not import the emulator: the stack that `python -m emulator up` runs is known here only through its state file (one
per stage), a small JSON contract that emulator/stack.py writes.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.exceptions import ClientError

from reconciler import bootstrap
from reconciler.config import RuntimeConfig
from reconciler.contract import ConfigError, ResourceNames, writes_dimensionless
from reconciler.ops.adjustments import Adjuster
from reconciler.ops.audit import Auditor
from reconciler.ops.aws import (
    CloudWatchAdjustmentCount,
    CloudWatchAlarms,
    CloudWatchTelemetry,
    DynamoDBBackups,
    EventBridgeArchive,
    LambdaFunctions,
    LambdaInvoker,
    SqsQueue,
    rejection,
)
from reconciler.ops.books import Books
from reconciler.ops.control import StageControls
from reconciler.ops.dead_letter_replay import Replayer
from reconciler.ops.jobs import JobView
from reconciler.ops.operator_error import NotFound
from reconciler.ops.operator_ports import Invoke, InvokeResult, NoAdjustmentCount
from reconciler.ops.scanning import DryRunStore, OperatorScan
from reconciler.ops.statements import Statements
from reconciler.ops.telemetry import Telemetry
from reconciler.repository.balance_event_store import BalanceEventLog
from reconciler.repository.dynamodb_operations import OperationsStore
from reconciler.repository.liability_store import LiabilitySnapshotTable
from reconciler.service.event_settlement import REJECTED, EventProcessor

if TYPE_CHECKING:
    from reconciler.ops.migration import Migration
    from reconciler.ops.shadow import Shadow
    from reconciler.service.reservations import ReservationService
    from reconciler.service.timer_scan import TimerScan

# Where `--local` finds the stacks `python -m emulator up` saved: a directory, one `{stage}.json` each
# (tests point it at a temporary directory).
STATE_DIR_ENV = "RECONCILER_LOCAL_STATE_DIR"

# A RequestResponse invoke waits for the whole function run (30 s timeout).
INVOKE_CONFIG = bootstrap.CLIENT_CONFIG.merge(Config(read_timeout=60, retries={"mode": "standard", "max_attempts": 1}))


_BOTOCORE_SESSION: Any = None


def _shared_botocore_session() -> Any:
    """One botocore session (its loaded service models) for local stacks, whose credentials are explicit."""
    global _BOTOCORE_SESSION
    if _BOTOCORE_SESSION is None:
        import botocore.session

        _BOTOCORE_SESSION = botocore.session.get_session()
    return _BOTOCORE_SESSION


def local_state_dir() -> Path:
    configured = os.environ.get(STATE_DIR_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "credit-reconciler"


def local_state_path(stage: str) -> Path:
    return local_state_dir() / f"{stage}.json"


@dataclass(frozen=True)
class LocalEndpoint:
    """What the CLI needs of a running local stack (the state file `python -m emulator up` writes)."""

    stage: str
    endpoint: str
    region: str
    credentials: dict[str, str]
    dlq_url: str
    runtime_environment: dict[str, str] = field(default_factory=dict)
    pid: int | None = None

    @classmethod
    def load(cls, stage: str) -> LocalEndpoint:
        path = local_state_path(stage)
        if not path.exists():
            running = sorted(p.stem for p in local_state_dir().glob("*.json"))
            hint = f" (running: {', '.join(running)}; pass --stage)" if running else ""
            raise NotFound(f"no local {stage} stack is running: start one with `python -m emulator --stage {stage} up` in a checkout{hint}")
        data = json.loads(path.read_text())
        return cls(
            stage=data["stage"],
            endpoint=data["endpoint"],
            region=data["region"],
            credentials=data["credentials"],
            dlq_url=data["dlqUrl"],
            runtime_environment=data.get("runtimeEnvironment", {}),
            pid=data.get("pid"),
        )


@dataclass
class Target:
    stage: str
    endpoint_url: str | None = None
    local: LocalEndpoint | None = None
    profile: str | None = None
    region: str | None = None
    notes: list[str] = field(default_factory=list)  # said on stderr by the CLI

    @classmethod
    def resolve(
        cls, stage: str, endpoint_url: str | None = None, use_local: bool = False, profile: str | None = None, region: str | None = None
    ) -> Target:
        RuntimeConfig.for_stage(stage)  # unknown stage -> ConfigError
        if use_local:
            stack = LocalEndpoint.load(stage)
            return cls(stage, endpoint_url or stack.endpoint, stack)
        return cls(stage, endpoint_url, profile=profile, region=region)

    @property
    def names(self) -> ResourceNames:
        return ResourceNames(self.stage)

    @property
    def is_local(self) -> bool:
        """An endpoint override means no real Lambda: replay and the scan run the code in-process."""
        return self.endpoint_url is not None

    @cached_property
    def session(self) -> Any:
        if self.local is not None:
            return bootstrap.aws_session(credentials=self.local.credentials, region=self.local.region, botocore_session=_shared_botocore_session())
        return bootstrap.aws_session(profile=self.profile, region=self.region)

    def client(self, service: str, config: Config = bootstrap.CLIENT_CONFIG) -> Any:
        """A client of this target (for tools beside the CLI, such as the smoke test; the CLI asks for use cases)."""
        return bootstrap.aws_client(service, session=self.session, endpoint_url=self.endpoint_url, config=config)

    @cached_property
    def store(self) -> OperationsStore:
        """The books' reads and repairs (the adapter behind the adjuster, the auditor, the books and the job view)."""
        return bootstrap.operations_store(RuntimeConfig.for_stage(self.stage), self.client("dynamodb"))

    @cached_property
    def actor(self) -> str:
        """Who is acting, recorded on every entry this tool writes."""
        if self.is_local:
            return f"local:{getpass.getuser()}"
        return self.client("sts").get_caller_identity()["Arn"]

    @cached_property
    def dlq_url(self) -> str:
        if self.local is not None:
            return self.local.dlq_url
        return self.client("sqs").get_queue_url(QueueName=self.names.dead_letter_queue)["QueueUrl"]

    def runtime_config(self) -> RuntimeConfig:
        """The function's configuration (prices, scan timings) as deployed, so the CLI decides as it does.

        Locally: the local stack's own environment; behind a bare --endpoint-url, the function's
        configuration there if it has one, else the stage's defaults (said in a note)."""
        environment = self._function_environment
        if environment is None:
            self.notes.append(
                f"no function {self.names.function} at {self.endpoint_url}: using the {self.stage} stage's default prices and scan timings"
            )
            return RuntimeConfig.for_stage(self.stage, dlq_url=self.dlq_url)
        return RuntimeConfig.from_env(environment)

    @cached_property
    def _function_environment(self) -> dict[str, str] | None:
        """The function's environment as deployed (None behind a bare --endpoint-url without the function)."""
        if self.local is not None:
            return dict(self.local.runtime_environment)
        try:
            response = self.client("lambda").get_function_configuration(FunctionName=self.names.function)
        except ClientError as error:
            if not self.is_local or error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            return None
        return response.get("Environment", {}).get("Variables", {})

    def _adjustments_metric(self) -> CloudWatchAdjustmentCount:
        """The Adjustments metric, in the series the stage's function writes (its dimensionless copy only where it does)."""
        return CloudWatchAdjustmentCount(
            self.client("cloudwatch"),
            self.stage,
            lambda: writes_dimensionless(self._function_environment or {}),
            self.notes.append,
        )

    # --- the use cases ----------------------------------------------------------------------------------------

    def adjuster(self) -> Adjuster:
        return Adjuster(self.store, counted=self._adjustments_metric())

    def auditor(self) -> Auditor:
        return Auditor(self.store, self.store, legacy_before=self.store.legacy_reservations_before, counted=self._adjustments_metric())

    def books(self) -> Books:
        return Books(self.store, (self.names.user_ledger_table, self.names.ledger_table))

    def statements(self) -> Statements:
        """`statement` and `liability`: what finance reads (ops/statements.py)."""
        snapshots = LiabilitySnapshotTable(self.client("dynamodb"), self.names.credits_table, self.names.balance_events_table)
        return Statements(self.store, snapshots)

    def job_view(self) -> JobView:
        return JobView(self.store, self._dead_letter_queue())

    def replayer(self) -> Replayer:
        return Replayer(self._dead_letter_queue(), self._invoker, self._function_paused)

    def _function_paused(self) -> bool:
        """Whether the function's reserved concurrency is 0 (behind a bare endpoint with no function there: no)."""
        try:
            return LambdaFunctions(self.client("lambda")).reserved_concurrency(self.names.function) == 0
        except ClientError as error:
            if self.is_local and error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return False
            raise

    def controls(self) -> StageControls:
        return StageControls(
            self.names,
            CloudWatchAlarms(self.client("cloudwatch")),
            LambdaFunctions(self.client("lambda")),
            DynamoDBBackups(self.client("dynamodb")),
            EventBridgeArchive(self.client("events")),
        )

    def telemetry(self) -> Telemetry:
        return Telemetry(self.names, CloudWatchTelemetry(self.client("logs"), self.client("cloudwatch")))

    def timer_scan(self, dry_run: bool = False) -> TimerScan:
        """The timer scan with the function's prices and timings (runtime_config); a dry run writes nothing."""
        return bootstrap.build_timer_scan(DryRunStore(self.store) if dry_run else self.store, self.runtime_config())

    def operator_scan(self, dry_run: bool = False) -> OperatorScan:
        """`reconciler scan`: the timer scan, its settlements' postings counted in the Adjustments metric."""
        return OperatorScan(self.timer_scan(dry_run), NoAdjustmentCount() if dry_run else self._adjustments_metric())

    def holds(self) -> ReservationService:
        """The hold service, as the hold function builds it (the pipeline's holds, for rehearsals and tests)."""
        return bootstrap.build_reservations(self.store, self.runtime_config())

    def balance_events(self) -> BalanceEventLog:
        """The balance-events function's published markers, each user's history of balance events."""
        return BalanceEventLog(self.client("dynamodb"), self.names.balance_events_table)

    def migration(self, actor: str | None, reason: str) -> Migration:
        """`reconciler migrate`: v1's jobs and books read as v1 left them, the marks written through the migration's store;
        the jobs whose events wait in the DLQ are named (read once, every message left in the queue)."""
        from reconciler.ops.migration import Migration, jobs_waiting_in
        from reconciler.repository.migration_store import MigrationStore

        store = MigrationStore(self.client("dynamodb"), RuntimeConfig.for_stage(self.stage))
        auditor = Auditor(store, store, legacy_before=store.legacy_reservations_before)
        return Migration(store, auditor, actor or self.actor, reason, dead_letter_jobs=jobs_waiting_in(self._dead_letter_queue()))

    def shadow(self, directory: Path) -> Shadow:
        """`reconciler shadow`: v2's settlement as deployed (runtime_config), deciding against the live tables and writing nothing."""
        from reconciler.ops.shadow import Shadow
        from reconciler.repository.shadow_log import DynamoDBShadowLog

        deployed = DynamoDBShadowLog(self.client("dynamodb"), self.names.shadow_table)
        return Shadow(self.store, lambda store: bootstrap.settlement_service(store, self._shadow_config()), directory, deployed)

    def _shadow_config(self) -> RuntimeConfig:
        """v2's settings as deployed; beside a live v1 the stage's function is v1's, whose environment is not v2's:
        then the stage's contract settings (prices without overrides), said in a note. Read only when deciding."""
        try:
            return self.runtime_config()
        except ConfigError as error:
            self.notes.append(f"{self.names.function} is not v2's ({error}): deciding with the {self.stage} stage's contract settings")
            return RuntimeConfig.for_stage(self.stage)

    def _dead_letter_queue(self) -> SqsQueue:
        return SqsQueue(self.client("sqs"), self.dlq_url)

    def _invoker(self) -> Invoke:
        """The deployed function (RequestResponse), or its code in this process behind --local / --endpoint-url."""
        if self.is_local:
            return InProcessInvoker(
                bootstrap.build_processor(self.runtime_config(), dynamodb=self.client("dynamodb"), dead_letters=RecordingDeadLetters())
            )
        return LambdaInvoker(self.client("lambda", INVOKE_CONFIG), self.names.function)


@dataclass
class RecordingDeadLetters:
    """A dead-letter sink that keeps what it is given: a replay must not add copies to the queue it drains."""

    sent: list[dict] = field(default_factory=list)

    def send(self, original: Any, *, error_type: str, field: str, reason: str, event_id: str | None = None) -> str:
        self.sent.append({"errorType": error_type, "field": field, "reason": reason, "eventId": event_id})
        return f"not-sent-{len(self.sent)}"


@dataclass
class InProcessInvoker:
    """The handler's own use case (EventProcessor), built as the container builds it, but with a recording
    dead-letter sink: a rejected event stays as the one copy already in the queue."""

    processor: EventProcessor

    def __call__(self, event: dict) -> InvokeResult:
        try:
            outcome = self.processor.process(event)
        except Exception as error:  # noqa: BLE001 - what the function would report as a FunctionError
            return InvokeResult(False, f"function error: {type(error).__name__}: {error}")
        if outcome.kind == REJECTED:
            return InvokeResult(False, rejection(outcome.summary()))
        return InvokeResult(True, outcome.kind)
