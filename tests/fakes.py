"""In-memory fakes of the service's ports (reconciler/service/ports.py), for service tests that need no AWS.

InMemorySettlementStore holds what DynamoDBStore holds, under the tables' own attribute names (Jobs items by
jobId, Credits items by userId with `remaining` and `held`, Ledger entries by ledgerId, UserLedger postings by
userId and entryKey), and answers as it does:

* settlements, reservations and adjustments are each one transaction: every condition is checked against the
  state before it, then all of its writes happen, or none;
* a failed condition is StaleState; when only the balance's guard failed it is BalanceChanged carrying the
  balance (DynamoDB's ALL_OLD on a failed condition); when only ledger ids are taken (the job and the balance
  are as the decision read them), LedgerEntryTaken, naming those ids;
* a conflict is recorded once per event id (StaleState the second time);
* a stored job the domain cannot use is a DamagedJob from load and an UnreadableJob from unsettled_jobs.

InMemoryDeadLetters records what was sent. tests/contract/ runs the same scenarios against these fakes and
the AWS adapters on moto, so neither can drift from the other.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from reconciler.contract import (
    HELD_AT_ATTRIBUTE,
    HELD_ATTRIBUTE,
    HOLD_EXPIRED,
    HOLD_EXPIRES_AT_ATTRIBUTE,
    HOLD_RELEASED_BY_ATTRIBUTE,
    HOLD_USER_ATTRIBUTE,
    LAST_LEDGER_ENTRY_ATTRIBUTE,
    RESERVED_AS_ATTRIBUTE,
    STAGE_LIMITS,
    UNSETTLED_ATTRIBUTE,
    UNSETTLED_VALUE,
    VERSION_ATTRIBUTE,
    user_ledger_key,
)
from reconciler.domain.errors import DamagedBalance, DamagedJob, LedgerEntryTaken
from reconciler.domain.holds import HoldRelease, Reservation
from reconciler.domain.ledger import LedgerEntry, legacy_adjustment_ledger_id
from reconciler.domain.records import SettledFacts, SettlementRecord
from reconciler.domain.settlement import UNREAD, Conflict, JobRecord, Settlement, UnreadableJob
from reconciler.domain.stored import StoredBalance
from reconciler.domain.validation import whole_number_problem
from reconciler.service.ports import BalanceChanged, StaleState

BALANCE, LEDGER, JOB, RECORD = "balance", "ledger", "job", "record"
_JOB_FIELDS = frozenset(field.name for field in dataclasses.fields(JobRecord))


@dataclass(frozen=True)
class _Write:
    """One item of a transaction: whether its condition holds on the state as read, and the write itself."""

    role: str
    holds: bool
    apply: Callable[[], None]
    ledger_id: str | None = None
    item_before: Any = None  # what a failed condition returns (ALL_OLD): the balance, for a balance write
    damage: tuple[str, str, str] | None = None  # a balance write's item holds a figure that is not a whole number
    released: int = 0  # a balance write's release of a hold: it needs held >= released
    held_before: Any = 0
    job_id: str = "?"  # the job a settlement's balance write releases a hold for


class InMemorySettlementStore:
    """The SettlementStore port in memory, with DynamoDBStore's conditions, errors and atomicity."""

    def __init__(self, legacy_reservations_before: str = STAGE_LIMITS["dev"].legacy_reservations_before) -> None:
        self.legacy_reservations_before = legacy_reservations_before
        self.jobs: dict[str, dict[str, Any]] = {}
        self.records: dict[str, dict[str, Any]] = {}  # Settlements: the reconciler's record of each job, by jobId
        self.balances: dict[str, dict[str, Any]] = {}
        self.entries: dict[str, LedgerEntry] = {}  # Ledger: operators' entries and history before UserLedger
        self.postings: dict[tuple[str, str], LedgerEntry] = {}  # UserLedger: (userId, entryKey)
        self.earlier_versions: dict[str, dict[str, Any] | None] = {}  # what the next eventually consistent read sees
        self.reads: list[tuple[str, bool]] = []  # (jobId, consistent) of every load_job
        self.record_reads: list[tuple[str, bool]] = []  # (jobId, consistent) of every load_record

    # --- the port ----------------------------------------------------------------------------

    def load_job(self, job_id: str, *, consistent: bool = True) -> JobRecord | None:
        self.reads.append((job_id, consistent))
        item = self.jobs.get(job_id)
        if not consistent and job_id in self.earlier_versions:
            item = self.earlier_versions.pop(job_id)  # an eventually consistent read sees an earlier version, once
        return None if item is None else _record(item)

    def load_record(self, job_id: str, *, consistent: bool = True) -> SettlementRecord | None:
        self.record_reads.append((job_id, consistent))
        item = self.records.get(job_id)
        if not consistent and job_id in self.earlier_versions:
            item = self.earlier_versions.pop(job_id)  # an eventually consistent read sees an earlier version, once
        return None if item is None else _settlement_record(item)

    def serve_earlier_version(self, job_id: str, item: dict[str, Any] | None) -> None:
        """The next eventually consistent read of the job's settlement record answers `item` (None: no record),
        as DynamoDB may."""
        self.earlier_versions[job_id] = copy.deepcopy(item)

    def commit_settlement(self, settlement: Settlement) -> None:
        writes = []
        if settlement.entries or settlement.hold_released:
            user_id = settlement.event.user_id
            holds = self._usable(user_id) and _decision_holds(settlement, self.balance_of(user_id))
            balance = self._balance_write(user_id, settlement.balance_delta, settlement.timestamp, holds, settlement.held_delta)
            writes.append(dataclasses.replace(balance, job_id=settlement.event.job_id))
            writes.extend(self._posting_write(entry) for entry in settlement.entries)
        writes.append(self._record_settlement(settlement))
        writes.append(self._job_mirror(settlement))
        self._transact(writes)

    def commit_reservation(self, reservation: Reservation) -> None:
        user_id, job_id, timestamp = reservation.user_id, reservation.job_id, reservation.timestamp
        remaining = self.balance_of(user_id)
        covered = self._usable(user_id) and remaining is not None and remaining >= reservation.credits
        writes = [self._balance_write(user_id, -reservation.credits, timestamp, covered, reservation.credits)]
        record = {
            "jobId": job_id,
            "userId": user_id,
            "heldCredits": reservation.credits,
            HELD_AT_ATTRIBUTE: timestamp,
            "holdModel": reservation.model,
            "unitPrice": reservation.unit_price,
            HOLD_USER_ATTRIBUTE: user_id,
            HOLD_EXPIRES_AT_ATTRIBUTE: reservation.expires_at,
        }
        writes.append(_Write(RECORD, job_id not in self.records, lambda: self.records.__setitem__(job_id, _present(record))))
        self._transact(writes)

    def commit_release(self, release: HoldRelease) -> None:
        balance = self._balance_write(release.user_id, release.credits, release.timestamp, self._usable(release.user_id), -release.credits)
        item = self.records.get(release.job_id, {})
        still_open = item.get(HOLD_USER_ATTRIBUTE) == release.user_id and item.get("heldCredits") == release.credits and "settledAs" not in item
        if release.expired_at is not None:  # an expiry's release: still of that expiry, and it has passed
            expiry = item.get(HOLD_EXPIRES_AT_ATTRIBUTE)
            still_open = still_open and expiry == release.expired_at and expiry <= release.timestamp

        def close() -> None:
            closed = {**item, "holdReleasedAt": release.timestamp}
            if release.expired_at is not None:
                closed[HOLD_RELEASED_BY_ATTRIBUTE] = HOLD_EXPIRED
            closed.pop(HOLD_USER_ATTRIBUTE, None)
            self.records[release.job_id] = closed

        self._transact([dataclasses.replace(balance, job_id=release.job_id), _Write(RECORD, still_open, close)])

    def repair_mirror(self, job_id: str, facts: SettledFacts) -> None:
        item = self.jobs.get(job_id)
        if item is None:
            raise StaleState(f"job {job_id} is not there")
        repaired = {**item, **_present(_mirrored(facts)), "status": facts.settled_as}
        repaired.pop(UNSETTLED_ATTRIBUTE, None)
        self._put_job(repaired)

    def commit_adjustment(self, entry: LedgerEntry) -> None:
        balance = self._balance_write(entry.user_id, entry.signed_amount, entry.timestamp, self._usable(entry.user_id), ledger_entry=entry.ledger_id)
        writes = [balance, self._ledger_write(entry)]
        if entry.reference:  # the same reference applied under v2.0's id counts as applied
            legacy_id = legacy_adjustment_ledger_id(entry.reference)
            writes.append(_Write(LEDGER, legacy_id not in self.entries, lambda: None, legacy_id))
        self._transact(writes)

    def record_conflict(self, conflict: Conflict) -> None:
        """On the settlement record, or on the Jobs item of a job settled before records existed."""
        table = self.records if conflict.settled.source == "record" else self.jobs
        job_id, event_id = conflict.event.job_id, conflict.event.event_id
        item = table.get(job_id)
        if item is None or item.get("settledAs") != conflict.settled.settled_as or event_id in item.get("conflictEventIds", ()):
            raise StaleState(f"job {job_id}: conflict {event_id} already recorded, or the job is not as read")
        recorded = {
            **item,
            "conflictEventIds": frozenset(item.get("conflictEventIds", ())) | {event_id},
            "conflictCount": item.get("conflictCount", 0) + 1,
            "lastConflictAt": conflict.timestamp,
            "lastConflictType": conflict.event.kind,
        }
        if conflict.request_id:
            recorded["conflictRequestIds"] = frozenset(item.get("conflictRequestIds", ())) | {conflict.request_id}
        table[job_id] = recorded

    def unsettled_jobs(self, created_before: str) -> Iterator[JobRecord | UnreadableJob]:
        """The sparse index: items with the marker and a string createdAt up to the cutoff, oldest first."""
        indexed = [
            item
            for item in self.jobs.values()
            if item.get(UNSETTLED_ATTRIBUTE) == UNSETTLED_VALUE and isinstance(item.get("createdAt"), str) and item["createdAt"] <= created_before
        ]
        for item in sorted(indexed, key=lambda item: item["createdAt"]):
            yield _readable(item)

    def expired_holds(self, now: str) -> Iterator[SettlementRecord | UnreadableJob]:
        """The open-holds index filtered on the expiry (hold_expiry.ExpiringHolds)."""
        for item in list(self.records.values()):
            expiry = item.get(HOLD_EXPIRES_AT_ATTRIBUTE)
            if HOLD_USER_ATTRIBUTE in item and isinstance(expiry, str) and expiry <= now:
                yield _settlement_record(item)

    # --- what the CLI's Adjuster reads (OperationsStore's names) -------------------------------

    def get_balance(self, user_id: str) -> StoredBalance | None:
        item = self.balances.get(user_id)
        if item is None:
            return None
        return StoredBalance(
            user_id=user_id,
            remaining=item.get("remaining"),
            held=item.get(HELD_ATTRIBUTE, 0),
            version=item.get(VERSION_ATTRIBUTE, 0),
            updated_at=item.get("updatedAt"),
            last_ledger_entry=item.get(LAST_LEDGER_ENTRY_ATTRIBUTE),
        )

    def get_ledger_entry(self, ledger_id: str) -> LedgerEntry | None:
        return self.entries.get(ledger_id)

    # --- arrange and inspect (tests only) -------------------------------------------------------

    def put_job(self, **attributes: Any) -> None:
        """A Jobs item written as the pipeline (or damage) would write it, attribute names as in the table."""
        self._put_job({name: value for name, value in attributes.items() if value is not None})

    def put_ledger_entry(self, entry: LedgerEntry) -> None:
        """A ledger entry written outside the reconciler (a v1 manual entry, a restored backup)."""
        self.entries[entry.ledger_id] = entry

    def balance_of(self, user_id: str) -> int | None:
        item = self.balances.get(user_id)
        return None if item is None else item["remaining"]

    def held_of(self, user_id: str) -> int:
        return self.balances.get(user_id, {}).get(HELD_ATTRIBUTE, 0)

    def ledger_of(self, user_id: str) -> list[LedgerEntry]:
        """Both tables' entries of a user, oldest first (as the CLI merges them)."""
        entries = [entry for entry in self.entries.values() if entry.user_id == user_id]
        entries += [entry for (user, _), entry in self.postings.items() if user == user_id]
        return sorted(entries, key=lambda entry: (entry.timestamp, entry.ledger_id))

    def job(self, job_id: str) -> JobRecord | None:
        item = self.jobs.get(job_id)
        return None if item is None else _record(item)

    def job_item(self, job_id: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.jobs.get(job_id))

    def record_item(self, job_id: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.records.get(job_id))

    def open_hold_total(self, user_id: str) -> int:
        """What the user's open holds hold: recorded holds, and holds made on Jobs items before the cut-off."""
        recorded = sum(item["heldCredits"] for item in self.records.values() if item.get(HOLD_USER_ATTRIBUTE) == user_id)
        legacy = sum(
            item["reservedCredits"]
            for item in self.jobs.values()
            if item.get("userId") == user_id
            and item.get(RESERVED_AS_ATTRIBUTE) == "hold"
            and "settledAs" not in item
            and item.get("createdAt", "") < self.legacy_reservations_before
        )
        return recorded + legacy

    # --- transactions ------------------------------------------------------------------------

    def _transact(self, writes: list[_Write]) -> None:
        failed = [write for write in writes if not write.holds]
        if [write.role for write in failed] == [BALANCE]:
            balance = failed[0]
            if balance.damage:
                raise DamagedBalance(*balance.damage)
            held = balance.held_before or 0
            if balance.released and held < balance.released:
                raise DamagedJob(balance.job_id, f"it releases a hold of {balance.released} credits but the balance holds only {held}")
            raise BalanceChanged(balance.item_before)
        if failed and all(write.role == LEDGER for write in failed):
            raise LedgerEntryTaken([write.ledger_id or "?" for write in failed])
        if failed:
            raise StaleState(f"transaction cancelled: the conditions of {', '.join(write.role for write in failed)} failed")
        for write in writes:
            write.apply()

    def _balance_write(self, user_id: str, delta: int, timestamp: str, holds: bool, held_delta: int = 0, ledger_entry: str | None = None) -> _Write:
        """A missing balance (or hold) counts as 0; the write creates it. A figure it adds to that is not a number
        fails the write's condition, as the adapter's type conditions do."""
        item = self.balances.get(user_id, {})
        figures = ("remaining", HELD_ATTRIBUTE) if held_delta else ("remaining",)
        numbers = all(_is_number_or_absent(item.get(attribute)) for attribute in figures)
        released = max(-held_delta, 0)
        funded = not released or (numbers and item.get(HELD_ATTRIBUTE) is not None and item[HELD_ATTRIBUTE] >= released)

        def apply() -> None:
            updated = {
                **item,
                "remaining": item.get("remaining", 0) + delta,
                "updatedAt": timestamp,
                VERSION_ATTRIBUTE: item.get(VERSION_ATTRIBUTE, 0) + 1,
            }
            if held_delta:
                updated[HELD_ATTRIBUTE] = item.get(HELD_ATTRIBUTE, 0) + held_delta
            if ledger_entry is not None:
                updated[LAST_LEDGER_ENTRY_ATTRIBUTE] = ledger_entry
            self.balances[user_id] = updated

        damage = self._damage(user_id, held=bool(held_delta))
        before = self.balance_of(user_id)
        held = item.get(HELD_ATTRIBUTE)
        return _Write(BALANCE, holds and numbers and funded, apply, item_before=before, damage=damage, released=released, held_before=held)

    def _damage(self, user_id: str, held: bool = True) -> tuple[str, str, str] | None:
        """(user, attribute, problem) when the Credits item holds a figure that is not a whole number: the item a
        failed condition returns names the damage (DamagedBalance)."""
        item = self.balances.get(user_id, {})
        for attribute in ("remaining", HELD_ATTRIBUTE) if held else ("remaining",):
            problem = whole_number_problem(item.get(attribute))
            if problem:
                return user_id, attribute, problem
        return None

    def _usable(self, user_id: str) -> bool:
        """remaining can be compared with a number (the adapter's guards then decide; text never passes them)."""
        return _is_number_or_absent(self.balances.get(user_id, {}).get("remaining"))

    def _ledger_write(self, entry: LedgerEntry) -> _Write:
        return _Write(LEDGER, entry.ledger_id not in self.entries, lambda: self.put_ledger_entry(entry), entry.ledger_id)

    def _posting_write(self, entry: LedgerEntry) -> _Write:
        key = (entry.user_id, user_ledger_key(entry.timestamp, entry.ledger_id))
        return _Write(LEDGER, key not in self.postings, lambda: self.postings.__setitem__(key, entry), entry.ledger_id)

    def _record_settlement(self, settlement: Settlement) -> _Write:
        """The settlement record: created, or the hold's record settled, if still as the decision read it."""
        job_id, seen = settlement.event.job_id, settlement.record_before
        outcome = _present(_settled(settlement))
        item = self.records.get(job_id)
        if seen is None:
            new = {"jobId": job_id, "userId": settlement.event.user_id, **outcome}
            return _Write(RECORD, item is None, lambda: self.records.__setitem__(job_id, new))
        as_seen = (
            item is not None
            and "settledAs" not in item
            and item.get("userId") == seen.user_id
            and item.get("heldCredits", 0) == seen.held_credits
            and (HOLD_USER_ATTRIBUTE in item) == seen.hold_open
        )
        settled = {**(item or {}), **outcome}
        settled.pop(HOLD_USER_ATTRIBUTE, None)
        return _Write(RECORD, as_seen, lambda: self.records.__setitem__(job_id, settled))

    def _job_mirror(self, settlement: Settlement) -> _Write:
        """The Jobs item's copy of the settlement, under the adapter's conditions (DynamoDBStore._job_condition)."""
        event, seen = settlement.event, settlement.job_before
        mirrored = {**_present(_mirrored(_facts_of(settlement))), "status": settlement.settled_as, "userId": event.user_id}
        from_event = _present(
            {"model": getattr(event, "model", None), "seconds": getattr(event, "seconds", None), "failureReason": getattr(event, "reason", None)}
        )
        item = self.jobs.get(event.job_id)
        settled = {"jobId": event.job_id, "createdAt": settlement.timestamp, **from_event, **(item or {}), **mirrored}
        settled.pop(UNSETTLED_ATTRIBUTE, None)
        return _Write(JOB, self._job_as_assumed(item, seen, event.user_id), lambda: self._put_job(settled))

    def _job_as_assumed(self, item: dict[str, Any] | None, seen: Any, user_id: str) -> bool:
        if seen is None:
            return item is None
        if seen is UNREAD:
            if item is None:
                return True
            legacy = "reservedCredits" in item and isinstance(item.get("createdAt"), str) and item["createdAt"] < self.legacy_reservations_before
            return item.get("userId") == user_id and "settledAs" not in item and not legacy
        return (
            item is not None
            and "settledAs" not in item
            and item.get("userId") == user_id
            and item.get("status") == seen.status
            and item.get("updatedAt") == seen.updated_at
            and item.get("reservedCredits") == seen.reserved_credits
            and item.get(RESERVED_AS_ATTRIBUTE) == seen.reserved_as
        )

    def _put_job(self, item: dict[str, Any]) -> None:
        # Every write stores a new dict, so an item handed out earlier (a scan's page) is a snapshot.
        self.jobs[item["jobId"]] = item


def _is_number_or_absent(value: Any) -> bool:
    """DynamoDB's attribute_type(x, N), or no attribute: a fraction is a number, text and booleans are not."""
    return value is None or (isinstance(value, (int, Decimal)) and not isinstance(value, bool))


def _settled(settlement: Settlement) -> dict[str, Any]:
    return {
        "settledAs": settlement.settled_as,
        "settledAt": settlement.timestamp,
        "settledIntoOverdraft": settlement.is_overdraft,
        "settledByEvent": settlement.event.event_id,
        "settledByRequest": settlement.request_id,
        "chargedCredits": settlement.charged,
        "releasedCredits": settlement.released,
        "refundedCredits": settlement.refunded,
        "chargedUnitPrice": settlement.unit_price,
        "reservation": settlement.reservation,
    }


def _facts_of(settlement: Settlement) -> SettledFacts:
    return SettledFacts(
        settled_as=settlement.settled_as,
        settled_by_event=settlement.event.event_id,
        settled_by_request=settlement.request_id,
        settled_at=settlement.timestamp,
        charged_credits=settlement.charged,
        released_credits=settlement.released,
        refunded_credits=settlement.refunded,
        settled_into_overdraft=settlement.is_overdraft,
    )


def _mirrored(facts: SettledFacts) -> dict[str, Any]:
    return {
        "settledAs": facts.settled_as,
        "settledAt": facts.settled_at,
        "settledByEvent": facts.settled_by_event,
        "settledByRequest": facts.settled_by_request,
        "chargedCredits": facts.charged_credits,
        "releasedCredits": facts.released_credits,
        "refundedCredits": facts.refunded_credits,
        "settledIntoOverdraft": facts.settled_into_overdraft,
    }


def _settlement_record(item: dict[str, Any]) -> SettlementRecord:
    """A Settlements item as a SettlementRecord (DamagedJob when unusable, as the adapter's)."""
    return SettlementRecord(
        job_id=item.get("jobId"),  # type: ignore[arg-type]
        user_id=item.get("userId"),  # type: ignore[arg-type]
        held_credits=item.get("heldCredits", 0),
        hold_open=HOLD_USER_ATTRIBUTE in item,
        held_at=item.get(HELD_AT_ATTRIBUTE),
        hold_model=item.get("holdModel"),
        unit_price=item.get("unitPrice"),
        hold_released_at=item.get("holdReleasedAt"),
        hold_expires_at=item.get(HOLD_EXPIRES_AT_ATTRIBUTE),
        hold_released_by=item.get(HOLD_RELEASED_BY_ATTRIBUTE),
        settled_as=item.get("settledAs"),
        settled_at=item.get("settledAt"),
        settled_by_event=item.get("settledByEvent"),
        settled_by_request=item.get("settledByRequest"),
        charged_credits=item.get("chargedCredits", 0),
        released_credits=item.get("releasedCredits", 0),
        refunded_credits=item.get("refundedCredits", 0),
        settled_into_overdraft=item.get("settledIntoOverdraft", False),
        conflict_event_ids=frozenset(item.get("conflictEventIds", ())),
        conflict_request_ids=frozenset(item.get("conflictRequestIds", ())),
        reservation=item.get("reservation"),
    )


def _decision_holds(settlement: Settlement, remaining: int | None) -> bool:
    """The settlement's overdraft decision is still true of the balance: a debit decided as covered needs the
    balance to cover it, one decided as an overdraft needs it to fall short (or be missing)."""
    needed = -settlement.balance_delta
    if needed <= 0:
        return True
    if settlement.is_overdraft:
        return remaining is None or remaining < needed
    return remaining is not None and remaining >= needed


def _present(values: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB stores no attribute for None."""
    return {name: value for name, value in values.items() if value is not None}


def _field_name(attribute: str) -> str:
    """The JobRecord field a Jobs attribute fills: settledByEvent -> settled_by_event."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", attribute).lower()


def _record(item: dict[str, Any]) -> JobRecord:
    """The item as a JobRecord; DamagedJob when the domain cannot use it (JobRecord checks every field)."""
    values: dict[str, Any] = {"job_id": None, "user_id": None}
    for attribute, value in item.items():
        name = _field_name(attribute)
        if name in _JOB_FIELDS:
            values[name] = frozenset(value) if isinstance(value, set) else value
    values["unsettled"] = item.get(UNSETTLED_ATTRIBUTE) == UNSETTLED_VALUE  # the marker, as the adapter reads it
    return JobRecord(**values)


def _readable(item: dict[str, Any]) -> JobRecord | UnreadableJob:
    try:
        return _record(item)
    except DamagedJob as damage:
        job_id, user_id = item.get("jobId"), item.get("userId")
        shown = {
            field: _shown(item.get(attribute))
            for field, attribute in (
                ("status", "status"),
                ("model", "model"),
                ("seconds", "seconds"),
                ("created_at", "createdAt"),
                ("updated_at", "updatedAt"),
            )
        }
        return UnreadableJob(
            job_id=job_id if isinstance(job_id, str) else repr(job_id),
            reason=str(damage),
            user_id=user_id if isinstance(user_id, str) else "",
            **shown,
        )


def _shown(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else repr(value)[:100]


@dataclass(frozen=True)
class SentDeadLetter:
    message_id: str
    original: Any
    error_type: str
    field: str
    reason: str
    event_id: str | None = None


class InMemoryDeadLetters:
    """The DeadLetters port in memory: records each message (a copy of the original, as SQS keeps its own)."""

    def __init__(self) -> None:
        self.sent: list[SentDeadLetter] = []
        self._numbers = itertools.count(1)

    def send(self, original: Any, *, error_type: str, field: str, reason: str, event_id: str | None = None) -> str:
        if isinstance(original, bytes):  # a queue holds text: bytes are read back decoded, as SqsDeadLetters sends them
            original = original.decode("utf-8", errors="surrogateescape")
        message_id = f"dead-letter-{next(self._numbers)}"
        self.sent.append(SentDeadLetter(message_id, copy.deepcopy(original), error_type, field, reason, event_id))
        return message_id


# --- the balance-events function's ports ----------------------------------------------------------


class RecordingPublisher:
    """The Publisher port: keeps each published event, in order, and answers with an event id."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []

    def publish(self, detail_type: str, detail: dict[str, Any]) -> str:
        self.published.append((detail_type, copy.deepcopy(detail)))
        return f"event-{len(self.published)}"


class InMemoryEventLog:
    """The EventLog port: BalanceEvents markers by (userId, eventKey), written once (a conditional put)."""

    def __init__(self) -> None:
        self.markers: dict[tuple[str, str], dict[str, Any]] = {}

    def is_published(self, user_id: str, key: str) -> bool:
        return (user_id, key) in self.markers

    def record(self, item: dict[str, Any]) -> bool:
        key = (item["userId"], item["eventKey"])
        if key in self.markers:
            return False
        self.markers[key] = copy.deepcopy(item)
        return True


class InMemoryLedgerLookup:
    """The Ledger port of the balance-events function: a user's entries (as stored items) at a timestamp."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def entries_at(self, user_id: str, timestamp: str) -> list[dict[str, Any]]:
        return [entry for entry in self.entries if entry.get("userId") == user_id and entry.get("timestamp") == timestamp]
