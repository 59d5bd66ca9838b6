"""What the operators' use cases need from AWS, in their own terms.

The use cases (adjustments, audit, books, dead letters, jobs, stage controls, telemetry) import no boto3: the
operators' composition root (ops/target.py) builds them from these ports, and the CLI only calls them. The store's
side is repository/dynamodb_operations.py (in-memory: tests/fakes.py); the rest is ops/aws.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from reconciler.domain.ledger import LedgerEntry
from reconciler.domain.liability import LiabilitySnapshot
from reconciler.domain.records import SettlementRecord
from reconciler.domain.settlement import JobRecord, UnreadableJob
from reconciler.domain.stored import LedgerWindow, StoredBalance, StoredJob

# --- the books ---------------------------------------------------------------------------------------------


class AdjustmentStore(Protocol):
    """What an adjustment reads and writes: the balance it moves, its ledger id (taken already?), the commit."""

    def get_balance(self, user_id: str) -> StoredBalance | None: ...
    def get_ledger_entry(self, ledger_id: str) -> LedgerEntry | None: ...
    def commit_adjustment(self, entry: LedgerEntry) -> None: ...


class BalanceRestorer(Protocol):
    def restore(
        self,
        user_id: str,
        seen: int | None,
        held_seen: int,
        remaining: int,
        held: int,
        timestamp: str,
        actor: str,
        reason: str,
        version_seen: int = 0,
    ) -> None: ...


class AuditStore(Protocol):
    """What the audit reads (balances, both ledgers, open holds and the reservations made on Jobs items before
    settlement records) and the correction it books."""

    def get_balance(self, user_id: str) -> StoredBalance | None: ...
    def ledger_for_user(self, user_id: str, since: str | None = None, until: str | None = None) -> Iterable[LedgerEntry]: ...
    def open_holds(self, user_id: str | None = None) -> Iterable[SettlementRecord | UnreadableJob]: ...
    def open_reservations(self, user_id: str | None = None) -> Iterable[JobRecord | UnreadableJob]: ...
    def scan_balances(self) -> Iterable[StoredBalance]: ...
    def scan_ledger(self) -> Iterable[LedgerEntry]: ...
    def commit_correction(self, entry: LedgerEntry, balance_seen: int | None, held_seen: int = 0, version_seen: int = 0) -> None: ...


class BookStore(Protocol):
    """The reads behind `balance`, `ledger` and `job show`."""

    def get_balance(self, user_id: str) -> StoredBalance | None: ...
    def get_ledger_entry(self, ledger_id: str) -> LedgerEntry | None: ...
    def ledger_for_user(self, user_id: str, since: str | None = None, until: str | None = None) -> Iterable[LedgerEntry]: ...
    def postings_at(self, user_id: str, timestamp: str) -> list[LedgerEntry]: ...
    def ledger_window(self, since: str, until: str | None, progress: Callable[[int], None]) -> LedgerWindow: ...
    def stored_job(self, job_id: str) -> StoredJob: ...


class StatementStore(Protocol):
    """The reads behind `statement` (one user's ledger and open holds) and `liability`."""

    def ledger_for_user(self, user_id: str, since: str | None = None, until: str | None = None) -> Iterable[LedgerEntry]: ...
    def open_holds(self, user_id: str | None = None) -> Iterable[SettlementRecord | UnreadableJob]: ...
    def scan_balances(self) -> Iterable[StoredBalance]: ...
    def scan_ledger(self) -> Iterable[LedgerEntry]: ...


class LiabilitySnapshots(Protocol):
    """The scheduled liability snapshot (the function's job) and, for a check, every Credits item's money figures."""

    def latest(self) -> LiabilitySnapshot | None: ...
    def balances(self) -> Iterable[Mapping[str, Any]]: ...


# --- the dead-letter queue and the function behind it ----------------------------------------------------


class DeadLetterQueue(Protocol):
    def receive(self, max_messages: int, visibility_seconds: int) -> list[dict]: ...
    def delete(self, receipt_handle: str) -> None: ...
    def release(self, receipt_handle: str) -> None: ...
    def depth(self) -> dict[str, int]: ...
    def purge(self) -> None: ...


@dataclass(frozen=True)
class InvokeResult:
    ok: bool
    detail: str  # the outcome ("settled", "duplicate", ...) or why it failed
    replaced_by: str | None = None  # id of the new DLQ copy the function wrote, if it wrote one


# Sends one event through the reconciler: the deployed function, or its code in this process.
Invoke = Callable[[dict], InvokeResult]


# --- the stage's controls ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alarm:
    name: str
    state: str | None
    actions_enabled: bool | None
    reason: str | None


@dataclass(frozen=True)
class AlarmChange:
    timestamp: Any
    alarm: str
    type: str | None
    summary: str | None


class Alarms(Protocol):
    def with_prefix(self, prefix: str) -> list[Alarm]: ...
    def set_actions(self, alarm_names: list[str], enabled: bool) -> None: ...
    def history(self, since: datetime, until: datetime) -> Iterator[AlarmChange]: ...


@dataclass(frozen=True)
class FunctionState:
    function_name: str
    reserved_concurrency: int | None
    max_event_age_seconds: int


class Functions(Protocol):
    def state(self, function_name: str) -> FunctionState: ...
    def set_concurrency(self, function_name: str, concurrency: int) -> None: ...


class Backups(Protocol):
    def create(self, table: str, backup_name: str) -> tuple[str, str]: ...  # (name, ARN)


class Archive(Protocol):
    def arns(self, archive_name: str, rule_name: str) -> tuple[str, str, str]: ...  # (archive, its bus, the rule)
    def start_replay(self, request: dict[str, Any]) -> None: ...


# --- the Adjustments metric ---------------------------------------------------------------------------------


class AdjustmentCount(Protocol):
    def count(self, adjustments: int) -> None:
        """Adds what an operator just changed to the stage's Adjustments metric (v1's rate alarm). Never raises: the
        change is committed, a failed count is said, not fatal."""


class NoAdjustmentCount:
    """Counts nothing (tests and tools that write no stage's books)."""

    def count(self, adjustments: int) -> None:
        pass


# --- telemetry -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricQuery:
    label: str
    namespace: str
    name: str
    dimensions: tuple[dict, ...]
    statistic: str = "Sum"


class LogsAndMetrics(Protocol):
    def log_events(self, group: str, since: datetime, until: datetime | None, pattern: str | None) -> Iterator[dict]: ...
    def metric_series(self, query: MetricQuery, since: datetime, until: datetime, period: timedelta) -> list[dict]: ...
