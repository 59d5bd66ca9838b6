"""The reconciler's tables behind a small interface: load a job's record and item, commit a decision.

Only what the function does; the CLI's reads and repairs are in dynamodb_operations.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError, ConnectionClosedError, ConnectionError, EndpointConnectionError, ReadTimeoutError

from reconciler.config import RuntimeConfig
from reconciler.contract import (
    AMOUNT_PAID_ATTRIBUTE,
    CATEGORY_ATTRIBUTE,
    CREDIT_EXPIRES_AT_ATTRIBUTE,
    CURRENCY_ATTRIBUTE,
    EXPIRY_PENDING_ATTRIBUTE,
    EXPIRY_PENDING_VALUE,
    HELD_AT_ATTRIBUTE,
    HELD_ATTRIBUTE,
    HOLD_EXPIRED,
    HOLD_EXPIRES_AT_ATTRIBUTE,
    HOLD_RELEASED_BY_ATTRIBUTE,
    HOLD_USER_ATTRIBUTE,
    JOBS_UNSETTLED_INDEX,
    LAST_CHANGE_ATTRIBUTE,
    LAST_LEDGER_ENTRY_ATTRIBUTE,
    OPEN_HOLDS_INDEX,
    PAYMENT_REFERENCE_ATTRIBUTE,
    REMAINING_ATTRIBUTE,
    RESERVED_AS_ATTRIBUTE,
    UNSETTLED_ATTRIBUTE,
    UNSETTLED_VALUE,
    USER_LEDGER_SORT_KEY,
    VERSION_ATTRIBUTE,
    user_ledger_key,
)
from reconciler.domain.errors import DamagedBalance, DamagedJob, LedgerEntryTaken
from reconciler.domain.holds import HoldRelease, Reservation
from reconciler.domain.ledger import LedgerEntry, legacy_adjustment_ledger_id
from reconciler.domain.records import SettledFacts, SettlementRecord
from reconciler.domain.settlement import UNREAD, Conflict, JobRecord, Settlement, UnreadableJob
from reconciler.domain.unexplained import change_record
from reconciler.domain.validation import whole_number_problem
from reconciler.service.ports import AmbiguousWrite, BalanceChanged, Contention, StaleState

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

# Error codes of a single request that mean "not now": throttling and transaction contention
# (botocore's dynamodb-2012-08-10 model and AWS's DynamoDB error-handling page).
_CONTENTION_CODES = {
    "TransactionConflictException",
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionInProgressException",
}
# CancellationReasons codes of a TransactionCanceledException that mean the same. They are not the
# request-level codes: an on-demand table throttles a transaction as "ThrottlingError", a provisioned
# one as "ProvisionedThroughputExceeded", and botocore retries neither.
_CONTENTION_REASONS = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
# No answer: the request may or may not have reached DynamoDB (ConnectTimeoutError is an EndpointConnectionError).
_NO_ANSWER_ERRORS = (ReadTimeoutError, ConnectionClosedError, EndpointConnectionError, ConnectionError)

# What each item of a transaction is, so a cancellation can say which condition failed.
BALANCE, LEDGER, JOB, RECORD = "balance", "ledger", "job", "record"


def pages(fetch: Callable[..., dict[str, Any]], request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every page of a Query or Scan: `fetch(**request)` again from each page's LastEvaluatedKey (the one paginator
    of the DynamoDB adapters)."""
    while True:
        page = fetch(**request)
        yield page
        if "LastEvaluatedKey" not in page:
            return
        request = {**request, "ExclusiveStartKey": page["LastEvaluatedKey"]}


def to_item(values: dict[str, Any]) -> dict[str, Any]:  # AttributeValues by name
    return {key: _serializer.serialize(value) for key, value in values.items() if value is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def whole(value: Any) -> int | None:
    return None if value is None else int(Decimal(value))


def job_from_item(values: dict[str, Any]) -> JobRecord:
    """The stored item as a JobRecord; DamagedJob (never a TypeError or ValueError) when it is unusable."""
    return JobRecord(
        job_id=values.get("jobId"),  # type: ignore[arg-type]  # JobRecord checks every type itself
        user_id=values.get("userId"),  # type: ignore[arg-type]
        status=values.get("status"),
        model=values.get("model"),
        seconds=values.get("seconds"),
        reserved_credits=values.get("reservedCredits"),
        created_at=values.get("createdAt"),
        updated_at=values.get("updatedAt"),
        settled_as=values.get("settledAs"),
        settled_by_event=values.get("settledByEvent"),
        conflict_event_ids=_string_set(values.get("conflictEventIds")),
        settled_by_request=values.get("settledByRequest"),
        conflict_request_ids=_string_set(values.get("conflictRequestIds")),
        charged_credits=values.get("chargedCredits", 0),
        released_credits=values.get("releasedCredits", 0),
        refunded_credits=values.get("refundedCredits", 0),
        settled_at=values.get("settledAt"),
        settled_into_overdraft=values.get("settledIntoOverdraft", False),
        reserved_as=values.get(RESERVED_AS_ATTRIBUTE),
        unsettled=values.get(UNSETTLED_ATTRIBUTE) == UNSETTLED_VALUE,
    )


def record_from_item(values: dict[str, Any]) -> SettlementRecord:
    """A Settlements item as a SettlementRecord; DamagedJob when it is unusable (a hand edit, a restore)."""
    return SettlementRecord(
        job_id=values.get("jobId"),  # type: ignore[arg-type]  # SettlementRecord checks every type itself
        user_id=values.get("userId"),  # type: ignore[arg-type]
        held_credits=values.get("heldCredits", 0),
        hold_open=HOLD_USER_ATTRIBUTE in values,
        held_at=values.get(HELD_AT_ATTRIBUTE),
        hold_model=values.get("holdModel"),
        unit_price=values.get("unitPrice"),
        hold_released_at=values.get("holdReleasedAt"),
        hold_expires_at=values.get(HOLD_EXPIRES_AT_ATTRIBUTE),
        hold_released_by=values.get(HOLD_RELEASED_BY_ATTRIBUTE),
        settled_as=values.get("settledAs"),
        settled_at=values.get("settledAt"),
        settled_by_event=values.get("settledByEvent"),
        settled_by_request=values.get("settledByRequest"),
        charged_credits=values.get("chargedCredits", 0),
        released_credits=values.get("releasedCredits", 0),
        refunded_credits=values.get("refundedCredits", 0),
        settled_into_overdraft=values.get("settledIntoOverdraft", False),
        conflict_event_ids=_string_set(values.get("conflictEventIds")),
        conflict_request_ids=_string_set(values.get("conflictRequestIds")),
        reservation=values.get("reservation"),
    )


def readable_record(values: dict[str, Any]) -> SettlementRecord | UnreadableJob:
    """A settlement record, or what is safe to show of one that cannot be read (the audit's open holds)."""
    try:
        return record_from_item(values)
    except DamagedJob as damage:
        job_id, user_id = values.get("jobId"), values.get("userId")
        shown_id = job_id if isinstance(job_id, str) else repr(job_id)
        return UnreadableJob(job_id=shown_id, reason=str(damage), user_id=user_id if isinstance(user_id, str) else "")


def readable_job(values: dict[str, Any]) -> JobRecord | UnreadableJob:
    try:
        return job_from_item(values)
    except DamagedJob as damage:
        job_id, user_id = values.get("jobId"), values.get("userId")
        # Only what is safe to show: an alert about a damaged item must not trip over the damage itself.
        return UnreadableJob(
            job_id=job_id if isinstance(job_id, str) else repr(job_id),
            reason=str(damage),
            user_id=user_id if isinstance(user_id, str) else "",
            **{field: _shown(values.get(attribute)) for field, attribute in _SHOWN_ATTRIBUTES.items()},
        )


_SHOWN_ATTRIBUTES = {"status": "status", "model": "model", "seconds": "seconds", "created_at": "createdAt", "updated_at": "updatedAt"}


def _shown(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else repr(value)[:100]


def _string_set(value: Any) -> Any:
    # A string set deserialises to set(); anything else is passed on for JobRecord to refuse.
    if value is None:
        return frozenset()
    return frozenset(value) if isinstance(value, (set, frozenset)) else value


def ledger_item(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "ledgerId": entry.ledger_id,
        "userId": entry.user_id,
        "timestamp": entry.timestamp,
        "type": entry.type,
        "amount": entry.amount,
        "description": entry.description,
        "reference": entry.reference,
        "eventId": entry.event_id,
        "actor": entry.actor,
    }


def credits_in_ledger_item(entry: LedgerEntry) -> dict[str, Any]:
    """A credits-in entry (domain/credits_in.py): the common attributes, and its category, money and payment reference
    where it has them. Only this writer adds them; every other entry is written as ledger_item writes it."""
    extra = {
        CATEGORY_ATTRIBUTE: entry.category,
        AMOUNT_PAID_ATTRIBUTE: entry.amount_paid,
        CURRENCY_ATTRIBUTE: entry.currency,
        PAYMENT_REFERENCE_ATTRIBUTE: entry.payment_reference,
        CREDIT_EXPIRES_AT_ATTRIBUTE: entry.expires_at,
        # in the sparse expiring-credits index until its expiry is booked (service/credit_expiry.py)
        EXPIRY_PENDING_ATTRIBUTE: EXPIRY_PENDING_VALUE if entry.expires_at else None,
    }
    return {**ledger_item(entry), **_present(extra)}


def user_ledger_item(entry: LedgerEntry) -> dict[str, Any]:
    return {USER_LEDGER_SORT_KEY: user_ledger_key(entry.timestamp, entry.ledger_id), **ledger_item(entry)}


def ledger_from_item(values: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        ledger_id=values["ledgerId"],
        user_id=values["userId"],
        type=values["type"],
        amount=int(values["amount"]),
        description=values.get("description", ""),
        reference=values.get("reference", ""),
        timestamp=values.get("timestamp", ""),
        event_id=values.get("eventId"),
        actor=values.get("actor"),
        category=values.get(CATEGORY_ATTRIBUTE),
        amount_paid=values.get(AMOUNT_PAID_ATTRIBUTE),
        currency=values.get(CURRENCY_ATTRIBUTE),
        payment_reference=values.get(PAYMENT_REFERENCE_ATTRIBUTE),
        expires_at=values.get(CREDIT_EXPIRES_AT_ATTRIBUTE),
    )


class DynamoDBStore:
    """Every DynamoDB request the reconciler makes goes through here."""

    def __init__(self, client: Any, config: RuntimeConfig) -> None:
        self._client = client
        self.config = config  # a store for another concern shares the client and names (bootstrap.build_timer_scan)
        self.jobs_table = config.jobs_table
        self.credits_table = config.credits_table
        self.ledger_table = config.ledger_table
        self.user_ledger_table = config.user_ledger_table
        self.settlements_table = config.settlements_table
        self.legacy_reservations_before = config.legacy_reservations_before

    @property
    def client(self) -> Any:
        return self._client

    # --- reads -------------------------------------------------------------------------------

    def load_job(self, job_id: str, *, consistent: bool = True) -> JobRecord | None:
        """The job: the one read of a settlement or a reservation. Strongly consistent, 1 RRU up to 4 KB; or, with
        `consistent=False`, eventually consistent at half that, and then possibly an earlier version of the job
        (or none, where it was created since): safe only for a decision whose write is conditioned on the job
        as read (SettlementService.settle says why).

        The balance is not read: the write's threshold condition checks it, and returns it when it fails."""
        item = self._call("get_item", TableName=self.jobs_table, Key=to_item({"jobId": job_id}), ConsistentRead=consistent).get("Item")
        return job_from_item(from_item(item)) if item else None

    def load_record(self, job_id: str, *, consistent: bool = True) -> SettlementRecord | None:
        """The job's settlement record: the first read of a settlement (eventually consistent: 0.5 RRU, safe
        because every write is conditioned on the record as read) and of a hold (strongly consistent)."""
        item = self._call("get_item", TableName=self.settlements_table, Key=to_item({"jobId": job_id}), ConsistentRead=consistent).get("Item")
        return record_from_item(from_item(item)) if item else None

    def unsettled_jobs(self, created_before: str) -> Iterator[JobRecord | UnreadableJob]:
        """Jobs still carrying the unsettled marker, created before a moment: a sparse-index query.

        An item the reconciler cannot use comes out as an UnreadableJob, so one bad item never stops the scan.
        """
        query = dict(
            TableName=self.jobs_table,
            IndexName=JOBS_UNSETTLED_INDEX,
            KeyConditionExpression="#u = :pending AND createdAt <= :before",
            ExpressionAttributeNames={"#u": UNSETTLED_ATTRIBUTE},
            ExpressionAttributeValues=to_item({":pending": UNSETTLED_VALUE, ":before": created_before}),
        )
        for item in self._paginate("query", query):
            yield readable_job(from_item(item))

    def expired_holds(self, now: str) -> Iterator[SettlementRecord | UnreadableJob]:
        """Open holds whose expiry is `now` or earlier: a Scan of the sparse open-holds index (only open holds are in
        it, so its cost follows their number), filtered on the expiry. Eventually consistent: every release is
        conditioned on the record as it is, so a hold settled or released since is refused, never released twice."""
        scan = dict(
            TableName=self.settlements_table,
            IndexName=OPEN_HOLDS_INDEX,
            FilterExpression="#expires <= :now",
            ExpressionAttributeNames={"#expires": HOLD_EXPIRES_AT_ATTRIBUTE},
            ExpressionAttributeValues=to_item({":now": now}),
        )
        for item in self._paginate("scan", scan):
            yield readable_record(from_item(item))

    # --- writes ------------------------------------------------------------------------------

    def commit_settlement(self, settlement: Settlement) -> None:
        """Balance, postings, the settlement record and the Jobs item's mirror of it in one TransactWriteItems;
        refused (StaleState) if the record or the job is not as the decision assumed, or (BalanceChanged, with the
        balance) if the balance is not on the side of the overdraft threshold the decision was made on."""
        items = []
        if settlement.entries or settlement.hold_released:
            update = self._balance_update(
                settlement.event.user_id,
                settlement.balance_delta,
                settlement.timestamp,
                _settlement_guard(settlement),
                made_by=settlement.event.job_id,
                held_delta=settlement.held_delta,
            )
            items.append((BALANCE, update))
            items.extend((LEDGER, self._posting_put(entry)) for entry in settlement.entries)
        items.append((RECORD, self._record_settlement(settlement)))
        items.append((JOB, self._job_mirror(settlement)))
        self._transact(items)

    def commit_reservation(self, reservation: Reservation) -> None:
        """The hold and its record in one transaction: `remaining` moves to `held` if it covers the credits (else
        BalanceChanged with the balance); nothing is posted, and the Jobs item (the pipeline's) is not touched."""
        credits = reservation.credits
        hold = self._balance_update(
            reservation.user_id, -credits, reservation.timestamp, ("covers", credits), made_by=reservation.job_id, held_delta=credits
        )
        record = {
            "jobId": reservation.job_id,
            "userId": reservation.user_id,
            "heldCredits": credits,
            HELD_AT_ATTRIBUTE: reservation.timestamp,
            "holdModel": reservation.model,
            "unitPrice": reservation.unit_price,
            HOLD_USER_ATTRIBUTE: reservation.user_id,
            HOLD_EXPIRES_AT_ATTRIBUTE: reservation.expires_at,
        }
        put = {"Put": {"TableName": self.settlements_table, "Item": to_item(_present(record)), "ConditionExpression": "attribute_not_exists(jobId)"}}
        self._transact([(BALANCE, hold), (RECORD, put)])

    def commit_release(self, release: HoldRelease) -> None:
        """A hold given back (its job will not render, or its expiry passed): `held` to `remaining` (held >= released,
        in the same transaction) and the record's hold closed, if it is still the open, unsettled hold the release was
        decided on; an expiry's release also only if the hold still has that expiry and it has passed."""
        credits = release.credits
        balance = self._balance_update(release.user_id, credits, release.timestamp, ("none", None), made_by=release.job_id, held_delta=-credits)
        values: dict[str, Any] = {":now": release.timestamp, ":user": release.user_id, ":held": credits}
        names = {"#open": HOLD_USER_ATTRIBUTE}
        update, condition = "SET holdReleasedAt = :now", _OPEN_HOLD
        if release.expired_at is not None:
            update += ", #by = :by"
            condition += " AND #expires = :expires AND #expires <= :now"
            names.update({"#by": HOLD_RELEASED_BY_ATTRIBUTE, "#expires": HOLD_EXPIRES_AT_ATTRIBUTE})
            values.update({":by": HOLD_EXPIRED, ":expires": release.expired_at})
        close = {
            "Update": {
                "TableName": self.settlements_table,
                "Key": to_item({"jobId": release.job_id}),
                "UpdateExpression": f"{update} REMOVE #open",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": to_item(values),
            }
        }
        self._transact([(BALANCE, balance), (RECORD, close)])

    def commit_adjustment(self, entry: LedgerEntry) -> None:
        """An operator's adjustment: balance and its ledger entry in one transaction (once per ledger id, and
        never again if the same reference was applied under v2.0's id, checked in the same transaction)."""
        balance = self._balance_update(
            entry.user_id, entry.signed_amount, entry.timestamp, ("none", None), made_by=entry.ledger_id, ledger_entry=entry.ledger_id
        )
        items = [(BALANCE, balance), (LEDGER, self._ledger_put(entry))]
        if entry.reference:
            legacy_check = {
                "TableName": self.ledger_table,
                "Key": to_item({"ledgerId": legacy_adjustment_ledger_id(entry.reference)}),
                "ConditionExpression": "attribute_not_exists(ledgerId)",
            }
            items.append((LEDGER, {"ConditionCheck": legacy_check}))
        self._transact(items)

    def record_conflict(self, conflict: Conflict) -> None:
        """Notes a contradicting event where the settlement is recorded (idempotent per event id): the settlement
        record, or the Jobs item of a job settled before records existed. Moves no credits."""
        table = self.settlements_table if conflict.settled.source == "record" else self.jobs_table
        self._write(
            "update_item",
            TableName=table,
            Key=to_item({"jobId": conflict.event.job_id}),
            UpdateExpression=(
                "ADD conflictEventIds :ids, conflictCount :one"
                + (", conflictRequestIds :requests" if conflict.request_id else "")
                + " SET lastConflictAt = :now, lastConflictType = :kind"
            ),
            ConditionExpression="settledAs = :settled AND NOT contains(conflictEventIds, :id)",
            ExpressionAttributeValues=to_item(
                {
                    ":ids": {conflict.event.event_id},
                    ":id": conflict.event.event_id,
                    ":one": 1,
                    ":now": conflict.timestamp,
                    ":kind": conflict.event.kind,
                    ":settled": conflict.settled.settled_as,
                    ":requests": {conflict.request_id} if conflict.request_id else None,
                }
            ),
        )

    def repair_mirror(self, job_id: str, facts: SettledFacts) -> None:
        """Writes a settlement back onto a Jobs item that lost it (a whole-item save by another writer): the
        settlement attributes, the status, and no unsettled marker, so the timer scan stops finding the job."""
        outcome = _present(_mirrored(facts))
        sets = ", ".join(f"{name} = :{name}" for name in outcome)
        self._write(
            "update_item",
            TableName=self.jobs_table,
            Key=to_item({"jobId": job_id}),
            UpdateExpression=f"SET {sets}, #status = :settledAs REMOVE #u",
            ConditionExpression="attribute_exists(jobId)",
            ExpressionAttributeNames={"#status": "status", "#u": UNSETTLED_ATTRIBUTE},
            ExpressionAttributeValues=to_item({f":{name}": value for name, value in outcome.items()}),
        )

    # --- transaction parts -------------------------------------------------------------------

    def _balance_update(
        self,
        user_id: str,
        delta: int,
        timestamp: str,
        guard: tuple[str, int | None],
        *,
        made_by: str,
        held_delta: int = 0,
        ledger_entry: str | None = None,
        came_in: tuple[str, int] | None = None,
    ) -> dict:
        """ADD `delta` to `remaining` (and `held_delta` to `held`, `came_in` to a credits-in total; a missing figure
        counts as 0) and 1 to the version, and set the change record (`lastChange`: those changes and `made_by`, the
        job or entry behind them: domain/unexplained.py), naming `ledger_entry`, the Ledger entry written with it,
        if any, under a guard:

        ("none", _)          always: credits and operator adjustments.
        ("covers", n)        remaining is at least n: a debit that leaves it >= 0, or a reservation.
        ("short-of", n)      remaining is below n (or missing): a debit that overdraws it.
        ("equals", seen)     remaining is exactly what was read (None: there is none): audit corrections.
        ("version", v)       the item is at the version its books were read at (0: none yet): a credit's expiry, decided
                             on the whole ledger, so any other write since makes it decide again.

        The threshold guards make the overdraft decision exact without reading the balance first and without
        serialising a user's settlements: a concurrent change fails them only when it moves the balance across
        the threshold, and a failed guard returns the item (ALL_OLD), whose balance the decision is made on again.
        """
        kind, amount = guard
        values: dict[str, Any] = {":delta": delta, ":now": timestamp, ":zero": 0, ":number": "N", ":one": 1}
        guard_condition = _guard_condition(kind, amount)
        # Every figure the update adds to must be a number: text or a boolean would make DynamoDB refuse the update
        # expression itself, which says nothing of which item or attribute; as a condition, its failure returns the
        # item (ALL_OLD), and the damage is named (DamagedBalance) instead of raising on every retry.
        # The type first: a comparison of text with a number is merely false on AWS, but moto fails it with a
        # "TypeError" reason that AWS never gives.
        checked = [_is_number_or_absent("remaining"), _is_number_or_absent(VERSION_ATTRIBUTE), guard_condition]
        if held_delta:
            checked.append(_is_number_or_absent(HELD_ATTRIBUTE))
        if held_delta < 0:
            # A release never takes more than is held: a job that claims a hold the balance never had (written by
            # another writer, restored from a backup) must not hand out credits nobody paid (_unfunded_release).
            checked.append(f"{HELD_ATTRIBUTE} >= :released")
            values[":released"] = -held_delta
        if ":amount" in (guard_condition or ""):
            values[":amount"] = amount
        expression = "SET remaining = if_not_exists(remaining, :zero) + :delta, updatedAt = :now"
        if held_delta:
            expression += f", {HELD_ATTRIBUTE} = if_not_exists({HELD_ATTRIBUTE}, :zero) + :held"
            values[":held"] = held_delta
        if ledger_entry is not None:
            expression += f", {LAST_LEDGER_ENTRY_ATTRIBUTE} = :entry"
            values[":entry"] = ledger_entry
        changes = {REMAINING_ATTRIBUTE: delta, HELD_ATTRIBUTE: held_delta}
        expression += f", {LAST_CHANGE_ATTRIBUTE} = :change ADD {VERSION_ATTRIBUTE} :one"
        names: dict[str, str] = {}
        if came_in is not None:
            expression += ", #came :came"
            names["#came"], values[":came"] = came_in
            changes[came_in[0]] = came_in[1]
            checked.append(_is_number_or_absent("#came"))  # a category's running total, added to like the others
        values[":change"] = change_record(changes, made_by)
        update = {
            "TableName": self.credits_table,
            "Key": to_item({"userId": user_id}),
            "UpdateExpression": expression,
            "ConditionExpression": " AND ".join(condition for condition in checked if condition),
            "ExpressionAttributeValues": to_item(values),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            **({"ExpressionAttributeNames": names} if names else {}),
        }
        return {"Update": update}

    def _posting_put(self, entry: LedgerEntry) -> dict:
        """A job's posting in UserLedger. Its uniqueness comes from the job's condition in the same transaction
        (a job settles once); the key's condition only refuses to overwrite."""
        return {
            "Put": {
                "TableName": self.user_ledger_table,
                "Item": to_item(user_ledger_item(entry)),
                "ConditionExpression": f"attribute_not_exists({USER_LEDGER_SORT_KEY})",
            }
        }

    def _ledger_put(self, entry: LedgerEntry) -> dict:
        return {
            "Put": {
                "TableName": self.ledger_table,
                "Item": to_item(ledger_item(entry)),
                "ConditionExpression": "attribute_not_exists(ledgerId)",
            }
        }

    def _record_settlement(self, settlement: Settlement) -> dict:
        """The settlement record: created with the settlement, or the hold's record settled, under the condition
        that it is still as the decision read it (no settlement; the same hold, open or not)."""
        outcome = _present(_settled_attributes(settlement))
        record = settlement.record_before
        if record is None:
            item = {"jobId": settlement.event.job_id, "userId": settlement.event.user_id, **outcome}
            return {"Put": {"TableName": self.settlements_table, "Item": to_item(item), "ConditionExpression": "attribute_not_exists(jobId)"}}
        values: dict[str, Any] = {f":{name}": value for name, value in outcome.items()}
        values.update({":user": record.user_id, ":held_seen": record.held_credits})
        condition = "attribute_exists(jobId) AND attribute_not_exists(settledAs) AND userId = :user AND "
        condition += "(heldCredits = :held_seen OR attribute_not_exists(heldCredits))" if not record.held_credits else "heldCredits = :held_seen"
        condition += f" AND attribute_{'exists' if record.hold_open else 'not_exists'}(#open)"
        return {
            "Update": {
                "TableName": self.settlements_table,
                "Key": to_item({"jobId": settlement.event.job_id}),
                "UpdateExpression": "SET " + ", ".join(f"{name} = :{name}" for name in outcome) + " REMOVE #open",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#open": HOLD_USER_ATTRIBUTE},
                "ExpressionAttributeValues": to_item(values),
            }
        }

    def _job_mirror(self, settlement: Settlement) -> dict:
        """The Jobs item's copy of the settlement (created from the event if the pipeline never wrote the job), its
        status set and its unsettled marker removed, under the condition that the item is what the decision
        assumed: as read; or, not read (a first attempt), absent or the event user's, settled by no one before
        settlement records existed, and holding no reservation made before them (domain/settlement.py)."""
        event, job = settlement.event, settlement.job_before
        outcome = _present(_mirrored(_facts_of(settlement)))
        values: dict[str, Any] = {f":{name}": value for name, value in outcome.items()}
        values.update({":user": event.user_id, ":now": settlement.timestamp})
        sets = [f"{name} = :{name}" for name in outcome] + ["#status = :settledAs", "userId = :user", "createdAt = if_not_exists(createdAt, :now)"]
        for attribute, value in (
            ("model", getattr(event, "model", None)),
            ("seconds", getattr(event, "seconds", None)),
            ("failureReason", getattr(event, "reason", None)),
        ):
            if value is not None:
                sets.append(f"{attribute} = if_not_exists({attribute}, :{attribute})")
                values[f":{attribute}"] = value
        names = {"#status": "status", "#u": UNSETTLED_ATTRIBUTE}
        condition = self._job_condition(job, values, names)
        return {
            "Update": {
                "TableName": self.jobs_table,
                "Key": to_item({"jobId": event.job_id}),
                "UpdateExpression": "SET " + ", ".join(sets) + " REMOVE #u",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": to_item(values),
            }
        }

    def _job_condition(self, job: Any, values: dict[str, Any], names: dict[str, str]) -> str:
        if job is None:
            return "attribute_not_exists(jobId)"
        if job is UNREAD:
            unclaimed = "userId = :user AND attribute_not_exists(settledAs)"
            if self.legacy_reservations_before:
                values[":legacy_before"] = self.legacy_reservations_before
                unclaimed += " AND (attribute_not_exists(reservedCredits) OR NOT (createdAt < :legacy_before))"
            return f"attribute_not_exists(jobId) OR ({unclaimed})"
        # Read: the pipeline's fields as the decision saw them, so a status or update written since (the pipeline
        # changing its mind under the timer scan) fails the write and the decision is made again.
        names.update({"#updatedAt": "updatedAt", "#as": RESERVED_AS_ATTRIBUTE})
        condition = "attribute_exists(jobId) AND attribute_not_exists(settledAs) AND userId = :user"
        for attribute, seen in (("status", job.status), ("updatedAt", job.updated_at)):
            condition += _as_seen(f"#{attribute}", f":seen_{attribute}", seen, values)
        condition += _as_seen("reservedCredits", ":reserved", job.reserved_credits, values)
        condition += _as_seen("#as", ":reserved_as", job.reserved_as, values)
        return condition

    # --- plumbing ----------------------------------------------------------------------------

    def _transact(self, items: list[tuple[str, dict]]) -> None:
        self._write("transact_write_items", [role for role, _ in items], TransactItems=[item for _, item in items])

    def _write(self, operation: str, roles: list[str] | None = None, **request: Any) -> None:
        try:
            getattr(self._client, operation)(**request)
        except _NO_ANSWER_ERRORS as error:
            raise AmbiguousWrite(f"{type(error).__name__}: {error}") from error
        except ClientError as error:
            mapped = _map_error(error, roles, request)
            if mapped is error and _is_server_error(error):
                # botocore already retried the 5xx; whether the write landed is unknown, so re-read.
                raise AmbiguousWrite(str(error)) from error
            if mapped is error:
                raise
            raise mapped from error

    def _call(self, operation: str, **request: Any) -> dict:
        """A read: whatever failed transiently (throttling, timeouts, 5xx) is Contention: read again later."""
        try:
            return getattr(self._client, operation)(**request)
        except _NO_ANSWER_ERRORS as error:
            raise Contention(f"{type(error).__name__}: {error}") from error
        except ClientError as error:
            mapped = _map_error(error)
            if isinstance(mapped, Contention):
                raise mapped from error
            if _is_server_error(error):
                raise Contention(str(error)) from error
            raise

    def _paginate(self, operation: str, request: dict) -> Iterator[dict]:
        for page in pages(lambda **page_request: self._call(operation, **page_request), request):
            yield from page.get("Items", [])


# A release's condition on the record: the hold is still open, of its user and amount, and its job not settled.
_OPEN_HOLD = "#open = :user AND heldCredits = :held AND attribute_not_exists(settledAs)"


def _settled_attributes(settlement: Settlement) -> dict[str, Any]:
    """What a settlement records (on its settlement record, and mirrored on the Jobs item)."""
    return {
        "settledAs": settlement.settled_as,
        "settledAt": settlement.timestamp,
        "settledByEvent": settlement.event.event_id,
        "chargedCredits": settlement.charged,
        "releasedCredits": settlement.released,
        "refundedCredits": settlement.refunded,
        "settledIntoOverdraft": settlement.is_overdraft,
        "settledByRequest": settlement.request_id,
        "chargedUnitPrice": settlement.unit_price,
        "reservation": settlement.reservation,  # on the record only: how its release or refund was made
    }


def _facts_of(settlement: Settlement) -> SettledFacts:
    attributes = _settled_attributes(settlement)
    return SettledFacts(
        settled_as=attributes["settledAs"],
        settled_by_event=attributes["settledByEvent"],
        settled_by_request=attributes["settledByRequest"],
        settled_at=attributes["settledAt"],
        charged_credits=settlement.charged,
        released_credits=settlement.released,
        refunded_credits=settlement.refunded,
        settled_into_overdraft=settlement.is_overdraft,
    )


def _mirrored(facts: SettledFacts) -> dict[str, Any]:
    """The settlement as the Jobs item shows it to the pipeline and to operators."""
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


def _present(values: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB stores no attribute for None."""
    return {name: value for name, value in values.items() if value is not None}


def _as_seen(name: str, placeholder: str, seen: Any, values: dict[str, Any]) -> str:
    if seen is None:
        return f" AND attribute_not_exists({name})"
    values[placeholder] = seen
    return f" AND {name} = {placeholder}"


def _settlement_guard(settlement: Settlement) -> tuple[str, int | None]:
    """The balance condition under which the settlement's overdraft decision stays true."""
    if settlement.balance_delta >= 0:
        return ("none", None)
    needed = -settlement.balance_delta
    return ("short-of", needed) if settlement.is_overdraft else ("covers", needed)


def _guard_condition(kind: str, amount: int | None) -> str | None:
    """The balance guard's condition (DynamoDBStore._balance_update lists them); `:amount` is the guard's figure."""
    return {
        "none": None,
        "covers": "remaining >= :amount",
        "short-of": "(attribute_not_exists(remaining) OR remaining < :amount)",
        "equals": "attribute_not_exists(remaining)" if amount is None else "remaining = :amount",
        "version": f"attribute_not_exists({VERSION_ATTRIBUTE})" if not amount else f"{VERSION_ATTRIBUTE} = :amount",
    }[kind]


def _is_number_or_absent(attribute: str) -> str:
    return f"(attribute_not_exists({attribute}) OR attribute_type({attribute}, :number))"


def _taken_ledger_ids(roles: list[str], reasons: list[str], request: dict) -> list[str]:
    taken = []
    for role, reason, item in zip(roles, reasons, request.get("TransactItems", []), strict=False):
        if role == LEDGER and reason == "ConditionalCheckFailed":
            operation = item.get("Put") or item.get("ConditionCheck") or {}
            key = operation.get("Item") or operation.get("Key") or {}
            taken.append(str(key.get("ledgerId", {}).get("S", "?")))
    return taken


def _returned_balance(reasons: list[Any], roles: list[str], request: dict) -> int | None:
    """`remaining` from the balance's cancellation reason (ReturnValuesOnConditionCheckFailure=ALL_OLD); None when
    there is no Credits item (DynamoDB then returns no Item). DamagedBalance when the item holds a figure that is
    not a whole number: a decision on it would be wrong (a fraction truncated) or impossible (text). DamagedJob when
    the write released a hold larger than what the balance holds."""
    items = request.get("TransactItems", [])
    for role, reason, item in zip(roles, reasons, items, strict=False):
        if role == BALANCE and reason.get("Code") == "ConditionalCheckFailed":
            values = from_item(reason.get("Item") or {})
            update = item["Update"]
            user_id = str(from_item(update["Key"]).get("userId"))
            added_to = update.get("ExpressionAttributeNames", {}).values()  # a credits-in category's running total
            for attribute in ("remaining", HELD_ATTRIBUTE, VERSION_ATTRIBUTE, *added_to):
                problem = whole_number_problem(values.get(attribute))
                if problem:
                    raise DamagedBalance(user_id, attribute, problem)
            _unfunded_release(values, update, _job_id(roles, items))
            return whole(values.get("remaining"))
    return None


def _unfunded_release(balance: dict[str, Any], update: dict[str, Any], job_id: str) -> None:
    """DamagedJob when the write released more than the balance holds: the job claims a hold nobody paid for."""
    released = from_item(update.get("ExpressionAttributeValues", {})).get(":released")
    held = whole(balance.get(HELD_ATTRIBUTE)) or 0
    if released is not None and held < released:
        raise DamagedJob(job_id, f"it releases a hold of {released} credits but the balance holds only {held}: no hold of it was ever paid")


def _job_id(roles: list[str], items: list[dict]) -> str:
    for role, item in zip(roles, items, strict=False):
        if role == JOB:
            operation = item.get("Update") or item.get("Put") or {}
            key = operation.get("Key") or operation.get("Item") or {}
            return str(key.get("jobId", {}).get("S", "?"))
    return "?"


def _is_server_error(error: ClientError) -> bool:
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500


def _map_error(error: ClientError, roles: list[str] | None = None, request: dict | None = None) -> Exception:
    code = error.response.get("Error", {}).get("Code", "")
    if code == "ConditionalCheckFailedException":
        return StaleState(str(error))
    if code == "TransactionCanceledException":
        reasons = [reason.get("Code") or "None" for reason in error.response.get("CancellationReasons", [])]
        failed = {role for role, reason in zip(roles or [], reasons, strict=False) if reason == "ConditionalCheckFailed"}
        if failed == {BALANCE} and reasons.count("ConditionalCheckFailed") == 1:
            # Only the balance's guard failed: the job is as read, and the balance came back with the failure.
            return BalanceChanged(_returned_balance(error.response.get("CancellationReasons", []), roles or [], request or {}))
        if failed and failed <= {LEDGER}:
            # Only a ledger id is taken, while the job and the balance are as decided: not a race
            # (a racing settlement fails the job's condition too), so reading again cannot help.
            return LedgerEntryTaken(_taken_ledger_ids(roles or [], reasons, request or {}))
        if "ConditionalCheckFailed" in reasons:
            return StaleState(f"transaction cancelled: {reasons}")
        if any(reason in _CONTENTION_REASONS for reason in reasons):
            return Contention(f"transaction cancelled: {reasons}")
        return error
    if code in _CONTENTION_CODES:
        return Contention(code)
    return error
