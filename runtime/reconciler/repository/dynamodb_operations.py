"""The CLI's reads and repairs of the reconciler's tables: never on the event path, not in the function's role.

A user's ledger lives in two tables (docs/ledger.md): UserLedger holds the job postings (keyed by user and
time), Ledger the operators' entries (adjustments, audit corrections) and every entry written before UserLedger
existed. Every read here merges the two: one user's history (a Query of UserLedger and one of Ledger's by-user
index), whole-table scans (audit), single items. And the two audit repairs (a correcting ledger entry, or a
balance set back to its books), each under a condition that the balance is still what the audit read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from reconciler.contract import (
    HELD_ATTRIBUTE,
    HOLD_USER_ATTRIBUTE,
    JOBS_UNSETTLED_INDEX,
    LAST_AUDIT_FIX_ATTRIBUTE,
    LAST_CHANGE_ATTRIBUTE,
    LAST_LEDGER_ENTRY_ATTRIBUTE,
    LEDGER_BY_USER_INDEX,
    OPEN_HOLDS_INDEX,
    REMAINING_ATTRIBUTE,
    UNSETTLED_ATTRIBUTE,
    UNSETTLED_VALUE,
    USER_LEDGER_SORT_KEY,
    VERSION_ATTRIBUTE,
)
from reconciler.domain.errors import DamagedJob
from reconciler.domain.ledger import LedgerEntry
from reconciler.domain.liability import CAME_IN_ATTRIBUTES
from reconciler.domain.records import SettlementRecord
from reconciler.domain.settlement import JobRecord, UnreadableJob
from reconciler.domain.stored import AuditFix, LedgerWindow, StoredBalance, StoredJob
from reconciler.domain.unexplained import change_record
from reconciler.repository.dynamodb import (
    BALANCE,
    LEDGER,
    DynamoDBStore,
    from_item,
    job_from_item,
    ledger_from_item,
    pages,
    readable_job,
    readable_record,
    record_from_item,
    to_item,
    whole,
)
from reconciler.service.ports import StaleState

# UserLedger's sort key is `{timestamp}#{ledgerId}`. '$' is the character after '#', so every key of a timestamp
# t sorts below t + '$' and above any earlier timestamp's keys: `entryKey < until + '$'` is `timestamp <= until`.
_AFTER_SEPARATOR = "$"
# What an `audit --fix --trust ledger` names as the maker of its change (lastChange): no ledger entry is written.
RESTORED_BY = "audit-fix"


def oldest_first(entries: list[LedgerEntry]) -> list[LedgerEntry]:
    """The merged order of both tables: by timestamp, then ledger id (two postings of one job share a moment)."""
    return sorted(entries, key=lambda entry: (entry.timestamp, entry.ledger_id))


def stored_balance(item: dict[str, Any]) -> StoredBalance:
    """A Credits item (DynamoDB JSON) as the operators read it; held and version absent are 0."""
    values = from_item(item)
    last_entry, updated_at = values.get(LAST_LEDGER_ENTRY_ATTRIBUTE), values.get("updatedAt")
    return StoredBalance(
        user_id=values["userId"],
        remaining=whole(values.get("remaining")),
        held=whole(values.get(HELD_ATTRIBUTE)) or 0,
        version=whole(values.get(VERSION_ATTRIBUTE)) or 0,
        updated_at=updated_at if isinstance(updated_at, str) else None,
        last_ledger_entry=last_entry if isinstance(last_entry, str) else None,
        came_in={category: whole(values[name]) or 0 for category, name in CAME_IN_ATTRIBUTES.items() if isinstance(values.get(name), Decimal)},
        last_audit_fix=_audit_fix(values.get(LAST_AUDIT_FIX_ATTRIBUTE)),
    )


def _audit_fix(value: Any) -> AuditFix | None:
    """`lastAuditFix` as restore_balance writes it (below)."""
    if not isinstance(value, dict):
        return None
    found = value.get("previous")
    previous: dict = found if isinstance(found, dict) else {}
    text = lambda key: value.get(key) if isinstance(value.get(key), str) else None  # noqa: E731
    return AuditFix(text("at"), text("actor"), text("reason"), whole(previous.get("remaining")), whole(previous.get(HELD_ATTRIBUTE)))


class OperationsStore(DynamoDBStore):
    """The settlement store's writes (adjustments and the timer scan use them) plus what only operators need."""

    # --- single items ----------------------------------------------------------------------------

    def get_job(self, job_id: str) -> JobRecord | None:
        item = self._call("get_item", TableName=self.jobs_table, Key=to_item({"jobId": job_id}), ConsistentRead=True).get("Item")
        return job_from_item(from_item(item)) if item else None

    def get_balance(self, user_id: str) -> StoredBalance | None:
        """The user's Credits item (consistent read), or None for a user with no balance."""
        item = self._call("get_item", TableName=self.credits_table, Key=to_item({"userId": user_id}), ConsistentRead=True).get("Item")
        return stored_balance(item) if item else None

    def stored_job(self, job_id: str) -> StoredJob:
        """The job's Jobs item and settlement record as stored (consistent reads, one each), and as read: what `job
        show` shows. A damaged item is still shown, and named."""
        key = to_item({"jobId": job_id})
        item, record_item = (
            self._call("get_item", TableName=table, Key=key, ConsistentRead=True).get("Item") for table in (self.jobs_table, self.settlements_table)
        )
        stored = StoredJob(from_item(item) if item else None, from_item(record_item) if record_item else None)
        job, record, damage = None, None, []
        try:
            job = job_from_item(stored.item) if stored.item else None
        except DamagedJob as damaged:
            damage.append(f"Jobs item: {damaged}")
        try:
            record = record_from_item(stored.record_item) if stored.record_item else None
        except DamagedJob as damaged:
            damage.append(f"settlement record: {damaged}")
        return replace(stored, job=job, record=record, damage=tuple(damage))

    def get_ledger_entry(self, ledger_id: str) -> LedgerEntry | None:
        """An entry of Ledger by its id (operators' entries and history; the Adjuster's idempotency check)."""
        item = self._call("get_item", TableName=self.ledger_table, Key=to_item({"ledgerId": ledger_id}), ConsistentRead=True).get("Item")
        return ledger_from_item(from_item(item)) if item else None

    # --- one user ----------------------------------------------------------------------------------

    def ledger_for_user(self, user_id: str, since: str | None = None, until: str | None = None) -> Iterator[LedgerEntry]:
        """One user's entries of both tables, oldest first (timestamp, then ledger id); never a scan.

        UserLedger: a consistent Query of the user's partition. Ledger: a Query of its by-user index, which is
        eventually consistent (an entry committed a moment ago may not be there yet)."""
        entries = list(self._user_postings(user_id, since, until))
        entries += self._legacy_ledger(user_id, since, until)
        yield from oldest_first(entries)

    def postings_at(self, user_id: str, timestamp: str) -> list[LedgerEntry]:
        """The user's UserLedger postings written at exactly `timestamp` (a job's settlement writes all of its
        postings at its settledAt): one consistent Query on the key's prefix."""
        query = dict(
            TableName=self.user_ledger_table,
            KeyConditionExpression="userId = :u AND begins_with(#k, :prefix)",
            ExpressionAttributeNames={"#k": USER_LEDGER_SORT_KEY},
            ExpressionAttributeValues=to_item({":u": user_id, ":prefix": f"{timestamp}#"}),
            ConsistentRead=True,
        )
        return [ledger_from_item(from_item(item)) for item in self._paginate("query", query)]

    def _user_postings(self, user_id: str, since: str | None, until: str | None) -> Iterator[LedgerEntry]:
        condition = "userId = :u"
        values: dict[str, Any] = {":u": user_id}
        if since and until:
            condition += " AND #k BETWEEN :since AND :until"
            values.update({":since": since, ":until": until + _AFTER_SEPARATOR})
        elif since:
            condition += " AND #k >= :since"
            values[":since"] = since
        elif until:
            condition += " AND #k < :until"
            values[":until"] = until + _AFTER_SEPARATOR
        query: dict[str, Any] = dict(
            TableName=self.user_ledger_table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=to_item(values),
            ConsistentRead=True,
        )
        if "#k" in condition:
            query["ExpressionAttributeNames"] = {"#k": USER_LEDGER_SORT_KEY}
        for item in self._paginate("query", query):
            yield ledger_from_item(from_item(item))

    def _legacy_ledger(self, user_id: str, since: str | None, until: str | None) -> Iterator[LedgerEntry]:
        condition = "userId = :u"
        values: dict[str, Any] = {":u": user_id}
        if since and until:
            condition += " AND #ts BETWEEN :since AND :until"
            values.update({":since": since, ":until": until})
        elif since:
            condition += " AND #ts >= :since"
            values[":since"] = since
        elif until:
            condition += " AND #ts <= :until"
            values[":until"] = until
        query = dict(
            TableName=self.ledger_table,
            IndexName=LEDGER_BY_USER_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=to_item(values),
        )
        if "#ts" in condition:
            query["ExpressionAttributeNames"] = {"#ts": "timestamp"}
        for item in self._paginate("query", query):
            yield ledger_from_item(from_item(item))

    def open_reservations(self, user_id: str | None = None) -> Iterator[JobRecord | UnreadableJob]:
        """The unsettled jobs (every reserved job not yet settled carries the marker), of one user or of all:
        a Query of the sparse unsettled index, which holds only jobs in flight. The index is eventually
        consistent: a reservation made a moment ago may not be there yet (the audit's --min-age covers it)."""
        query: dict[str, Any] = dict(
            TableName=self.jobs_table,
            IndexName=JOBS_UNSETTLED_INDEX,
            KeyConditionExpression="#u = :pending",
            ExpressionAttributeNames={"#u": UNSETTLED_ATTRIBUTE},
            ExpressionAttributeValues=to_item({":pending": UNSETTLED_VALUE, ":user": user_id}),
        )
        if user_id is not None:
            query["FilterExpression"] = "userId = :user"
        for item in self._paginate("query", query):
            yield readable_job(from_item(item))

    def open_holds(self, user_id: str | None = None) -> Iterator[SettlementRecord | UnreadableJob]:
        """The settlement records holding an open hold, of one user (a Query) or of all (a Scan): the sparse
        open-holds index holds only those. Eventually consistent: a hold made a moment ago may not be there yet
        (every hold and release changes the balance's updatedAt, which the audit's --min-age waits for)."""
        if user_id is None:
            pages = self._paginate("scan", {"TableName": self.settlements_table, "IndexName": OPEN_HOLDS_INDEX})
        else:
            query = dict(
                TableName=self.settlements_table,
                IndexName=OPEN_HOLDS_INDEX,
                KeyConditionExpression="#open = :user",
                ExpressionAttributeNames={"#open": HOLD_USER_ATTRIBUTE},
                ExpressionAttributeValues=to_item({":user": user_id}),
            )
            pages = self._paginate("query", query)
        for item in pages:
            yield readable_record(from_item(item))

    def get_record(self, job_id: str) -> SettlementRecord | None:
        """A job's settlement record (`job show`): strongly consistent."""
        return self.load_record(job_id)

    # --- whole tables (audit) ------------------------------------------------------------------------

    def scan_balances(self) -> Iterator[StoredBalance]:
        """Every Credits item: for whole-table audits only, never on the event path."""
        for item in self._paginate("scan", {"TableName": self.credits_table, "ConsistentRead": True}):
            yield stored_balance(item)

    def scan_ledger(self) -> Iterator[LedgerEntry]:
        """Every entry of both ledgers, UserLedger then Ledger: for whole-table audits only."""
        for table in (self.user_ledger_table, self.ledger_table):
            for item in self._paginate("scan", {"TableName": table, "ConsistentRead": True}):
                yield ledger_from_item(from_item(item))

    def ledger_window(self, since: str, until: str | None, progress: Callable[[int], None] = lambda n: None) -> LedgerWindow:
        """Every user's entries of both tables in a time window, oldest first (timestamp, then ledger id): a full
        Scan of each (neither has an index by time alone, as v1's runbook scanned), with what it read and cost."""
        window = LedgerWindow()
        condition = "#ts >= :since" + (" AND #ts <= :until" if until else "")
        values = {":since": since, **({":until": until} if until else {})}
        for table in (self.user_ledger_table, self.ledger_table):
            request: dict[str, Any] = dict(
                TableName=table,
                FilterExpression=condition,
                ExpressionAttributeNames={"#ts": "timestamp"},
                ExpressionAttributeValues=to_item(values),
                ReturnConsumedCapacity="TOTAL",
            )
            for page in pages(self._client.scan, request):
                window.scanned += page.get("ScannedCount", 0)
                window.capacity_units += float((page.get("ConsumedCapacity") or {}).get("CapacityUnits") or 0)
                window.entries.extend(ledger_from_item(from_item(item)) for item in page.get("Items", []))
                progress(page.get("ScannedCount", 0))
        window.entries.sort(key=lambda entry: (entry.timestamp, entry.ledger_id))
        return window

    # --- audit repairs -----------------------------------------------------------------------------------

    def commit_correction(self, entry: LedgerEntry, balance_seen: int | None, held_seen: int = 0, version_seen: int = 0) -> None:
        """An audit correction: a Ledger entry that explains the balance, which itself must not have moved.

        The balance update adds 0 on condition that the balance is exactly as the audit read it: remaining, held and
        its version, which every posting, hold, adjustment and repair moves. A correction changes remaining by
        nothing, so only the version lets a second run that read the same books see that this one booked (its
        correction, under the id of that version, is refused too); a settlement or reservation landing between the
        audit's read and this write cancels it as well."""
        condition, values = _balance_as_seen(balance_seen, held_seen, version_seen)
        update = {
            "TableName": self.credits_table,
            "Key": to_item({"userId": entry.user_id}),
            "UpdateExpression": "SET remaining = if_not_exists(remaining, :zero) + :nothing, updatedAt = :now, "
            f"{LAST_LEDGER_ENTRY_ATTRIBUTE} = :entry, {LAST_CHANGE_ATTRIBUTE} = :change ADD {VERSION_ATTRIBUTE} :one",
            "ConditionExpression": condition,
            "ExpressionAttributeValues": to_item(
                {
                    **values,
                    ":zero": 0,
                    ":nothing": 0,
                    ":now": entry.timestamp,
                    ":entry": entry.ledger_id,
                    ":one": 1,
                    ":change": change_record({}, entry.ledger_id),
                }
            ),
        }
        self._transact([(BALANCE, {"Update": update}), (LEDGER, self._ledger_put(entry))])

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
    ) -> None:
        """`audit --fix --trust ledger`: sets a balance back to its books (remaining = ledger sum - held, held =
        the open holds), on condition that remaining, held and the version are still what the audit read (else
        StaleState: the audit reads again). Records who did it and why, and the figures it replaced, on the item."""
        condition, values = _balance_as_seen(seen, held_seen, version_seen)
        previous = {"remaining": seen, HELD_ATTRIBUTE: held_seen}
        values.update(
            {
                ":value": remaining,
                ":held": held,
                ":now": timestamp,
                ":one": 1,
                ":fix": {"actor": actor, "reason": reason, "previous": previous, "at": timestamp},
                # The net change, exact: the condition holds remaining and held at what the audit read.
                ":change": change_record({REMAINING_ATTRIBUTE: remaining - (seen or 0), HELD_ATTRIBUTE: held - held_seen}, RESTORED_BY),
            }
        )
        try:
            self._client.update_item(
                TableName=self.credits_table,
                Key=to_item({"userId": user_id}),
                UpdateExpression=(
                    f"SET remaining = :value, #held = :held, updatedAt = :now, {LAST_AUDIT_FIX_ATTRIBUTE} = :fix, "
                    f"{LAST_CHANGE_ATTRIBUTE} = :change ADD {VERSION_ATTRIBUTE} :one"
                ),
                ConditionExpression=condition,
                ExpressionAttributeNames={"#held": HELD_ATTRIBUTE},
                ExpressionAttributeValues=to_item(values),
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise StaleState(f"the balance of {user_id} moved since the audit read it") from error
            raise


def _balance_as_seen(remaining: int | None, held: int, version: int) -> tuple[str, dict[str, Any]]:
    """The condition that a Credits item is as the audit read it: no item, or this remaining, this held and this
    version (held 0, or version 0, also matches an item that never had the attribute: v1's, or one written by hand)."""
    if remaining is None:
        return "attribute_not_exists(userId)", {}
    values = {":seen": remaining, ":held_seen": held, ":version_seen": version}
    held_as_seen = f"(attribute_not_exists({HELD_ATTRIBUTE}) OR {HELD_ATTRIBUTE} = :held_seen)" if held == 0 else f"{HELD_ATTRIBUTE} = :held_seen"
    version_as_seen = (
        f"(attribute_not_exists({VERSION_ATTRIBUTE}) OR {VERSION_ATTRIBUTE} = :version_seen)"
        if version == 0
        else f"{VERSION_ATTRIBUTE} = :version_seen"
    )
    return f"remaining = :seen AND {held_as_seen} AND {version_as_seen}", values
