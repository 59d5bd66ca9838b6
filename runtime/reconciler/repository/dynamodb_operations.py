"""The CLI's reads and repairs of the reconciler's tables: never on the event path, not in the function's role.

Whole-table scans (audit), one user's history through the ledger's by-user index, single items, and the two
audit repairs (a correcting ledger entry, or a balance set back to its ledger sum), each under a condition
that the balance is still what the audit read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from reconciler.contract import LEDGER_BY_USER_INDEX
from reconciler.domain.ledger import LedgerEntry
from reconciler.domain.settlement import JobRecord
from reconciler.repository.dynamodb import BALANCE, LEDGER, DynamoDBStore, from_item, job_from_item, ledger_from_item, to_item, whole
from reconciler.service.ports import StaleState


class OperationsStore(DynamoDBStore):
    """The settlement store's writes (adjustments use them) plus what only operators need."""

    def get_job(self, job_id: str) -> JobRecord | None:
        item = self._call("get_item", TableName=self.jobs_table, Key=to_item({"jobId": job_id}), ConsistentRead=True).get("Item")
        return job_from_item(from_item(item)) if item else None

    def get_balance(self, user_id: str) -> dict[str, Any] | None:
        """The Credits item as stored (remaining as int), or None for a user with no balance."""
        item = self._call("get_item", TableName=self.credits_table, Key=to_item({"userId": user_id}), ConsistentRead=True).get("Item")
        if not item:
            return None
        values = from_item(item)
        values["remaining"] = whole(values.get("remaining"))
        return values

    def ledger_for_user(self, user_id: str, since: str | None = None, until: str | None = None) -> Iterator[LedgerEntry]:
        """One user's entries oldest first, through the userId/timestamp index (never a scan)."""
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

    def get_ledger_entry(self, ledger_id: str) -> LedgerEntry | None:
        item = self._call("get_item", TableName=self.ledger_table, Key=to_item({"ledgerId": ledger_id}), ConsistentRead=True).get("Item")
        return ledger_from_item(from_item(item)) if item else None

    def scan_balances(self) -> Iterator[dict[str, Any]]:
        """Every Credits item (remaining as int): for whole-table audits only, never on the event path."""
        for item in self._paginate("scan", {"TableName": self.credits_table, "ConsistentRead": True}):
            values = from_item(item)
            values["remaining"] = whole(values.get("remaining"))
            yield values

    def scan_ledger(self) -> Iterator[LedgerEntry]:
        """Every ledger entry: for whole-table audits only."""
        for item in self._paginate("scan", {"TableName": self.ledger_table, "ConsistentRead": True}):
            yield ledger_from_item(from_item(item))

    def commit_correction(self, entry: LedgerEntry, balance_seen: int | None) -> None:
        """An audit correction: a ledger entry that explains the balance, which itself must not have moved.

        The balance update adds 0 on condition that the balance is exactly what the audit read, so a
        settlement that lands between the audit's read and this write cancels the correction.
        """
        self._transact(
            [(BALANCE, self._balance_update(entry.user_id, 0, entry.timestamp, ("equals", balance_seen))), (LEDGER, self._ledger_put(entry))]
        )

    def restore(self, user_id: str, seen: int | None, value: int, timestamp: str, actor: str, reason: str) -> None:
        """`audit --fix --trust ledger`: sets a balance back to its ledger sum, on condition that it is still the
        value the audit read (else StaleState: the audit reads again). Records who did it and why on the item."""
        values = {":value": value, ":now": timestamp, ":fix": {"actor": actor, "reason": reason, "previous": seen, "at": timestamp}}
        if seen is None:
            condition = "attribute_not_exists(userId)"
        else:
            condition, values[":seen"] = "remaining = :seen", seen
        try:
            self._client.update_item(
                TableName=self.credits_table,
                Key=to_item({"userId": user_id}),
                UpdateExpression="SET remaining = :value, updatedAt = :now, lastAuditFix = :fix",
                ConditionExpression=condition,
                ExpressionAttributeValues=to_item(values),
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise StaleState(f"the balance of {user_id} moved since the audit read it") from error
            raise
