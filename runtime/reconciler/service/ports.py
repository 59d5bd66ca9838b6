"""What the use cases need from storage and queues, and the failures the adapters report in their terms.

repository/ provides the DynamoDB and SQS versions, tests/fakes.py the in-memory ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from reconciler.domain.credits_in import CreditsApplication, RecordedApplication
from reconciler.domain.holds import HoldRelease, Reservation
from reconciler.domain.ledger import LedgerEntry
from reconciler.domain.records import SettledFacts, SettlementRecord
from reconciler.domain.settlement import Conflict, JobRecord, Settlement, UnreadableJob

if TYPE_CHECKING:
    from reconciler.domain.liability import LiabilitySnapshot


class SettlementStore(Protocol):
    def load_record(self, job_id: str, *, consistent: bool = True) -> SettlementRecord | None: ...
    def load_job(self, job_id: str, *, consistent: bool = True) -> JobRecord | None: ...
    def commit_settlement(self, settlement: Settlement) -> None: ...
    def record_conflict(self, conflict: Conflict) -> None: ...
    def repair_mirror(self, job_id: str, facts: SettledFacts) -> None: ...
    def commit_reservation(self, reservation: Reservation) -> None: ...
    def commit_release(self, release: HoldRelease) -> None: ...
    def commit_adjustment(self, entry: LedgerEntry) -> None: ...
    def unsettled_jobs(self, created_before: str) -> Iterator[JobRecord | UnreadableJob]: ...


class CreditsInStore(Protocol):
    """Credits in (service/credits_application.py): the balance and its Ledger entry in one transaction, refused
    (LedgerEntryTaken) when the entry's id is taken; and the entry under an id with how it was applied (strongly
    consistent)."""

    def commit_credits_in(self, application: CreditsApplication) -> None: ...
    def get_application(self, ledger_id: str) -> RecordedApplication | None: ...


class DeadLetters(Protocol):
    def send(self, original: Any, *, error_type: str, field: str, reason: str, event_id: str | None = None) -> str: ...


# --- the balance-events function's ports (docs/events.md) -----------------------------------------

# BalanceEvents-{stage}: partition key userId, sort key eventKey (the contract's names): the stream sequence number,
# zero-padded to 40 digits so that text order is stream order, then what the crossing is (its detail-type). Keyed by
# what a crossing is, never by its place in the list computed for the change: a retry that computes another list (a
# threshold changed by a deploy in between) must not take one crossing's marker for another's.
SEQUENCE_DIGITS = 40


def balance_event_key(sequence_number: str, detail_type: str) -> str:
    return f"{sequence_number.zfill(SEQUENCE_DIGITS)}#{detail_type}"


@dataclass(frozen=True)
class StreamChange:
    """One Credits stream record, decoded by the adapter: images as plain values (None when absent)."""

    event_name: Any
    sequence_number: Any
    key_user: str | None
    new_image: dict[str, Any] | None
    old_image: dict[str, Any] | None
    undecodable: str | None = None  # why an image could not be decoded (damage: reported, never retried)


class Publisher(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any]) -> str: ...


class EventLog(Protocol):
    def is_published(self, user_id: str, key: str) -> bool: ...

    def record(self, item: dict[str, Any]) -> bool: ...


class Ledger(Protocol):
    def entries_at(self, user_id: str, timestamp: str) -> Any: ...


# --- what an adapter raises when a write or read does not go through -----------------------------


class SnapshotStore(Protocol):
    """The liability snapshot's reads and write (service/liability_snapshot.py): every Credits item's money figures
    (a Scan), and the snapshot put unless a later one is stored (False)."""

    def balances(self) -> Iterator[Mapping[str, Any]]: ...
    def put_snapshot(self, snapshot: LiabilitySnapshot) -> bool: ...


class StaleState(Exception):
    """A condition failed: the job, balance or ledger changed since we read them. Reload and decide again."""


class BalanceChanged(StaleState):
    """Only the balance's condition failed (the job is as read): the balance is not what the decision assumed.

    `balance` is the one DynamoDB returned with the failure (None: the user has none), so the decision is made
    again with it and no read: a settlement then knows it overdraws, a reservation that it is not covered.
    """

    def __init__(self, balance: int | None) -> None:
        super().__init__(f"the balance ({balance if balance is not None else 'none'}) is not as the decision assumed")
        self.balance = balance


class Contention(Exception):
    """DynamoDB refused for now (transaction conflict, throttling): retry the same decision after a backoff."""


class AmbiguousWrite(Exception):
    """The write may or may not have committed (the answer was lost). Reload: the stored state tells."""


class RetriesExhausted(Exception):
    """Contention outlasted the retry budget; raised so that Lambda retries the event later."""
