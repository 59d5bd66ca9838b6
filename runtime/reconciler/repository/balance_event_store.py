"""AWS adapters of the balance-events function: EventBridge PutEvents, the BalanceEvents table (published
markers, which are also each user's event history), and the lookup of the ledger entries behind a change (in
UserLedger, the job postings, and Ledger, the operators' entries: docs/ledger.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from reconciler.contract import BALANCE_EVENT_KEY as EVENT_KEY
from reconciler.contract import LEDGER_BY_USER_INDEX, USER_LEDGER_SORT_KEY
from reconciler.contract import USER_ID_ATTRIBUTE as USER_KEY
from reconciler.repository.dynamodb import from_item, pages, to_item
from reconciler.service.ports import StreamChange


def decode_stream_record(record: dict[str, Any]) -> StreamChange:
    """A Credits stream record (DynamoDB JSON) as the service reads it; an undecodable image is damage."""
    data = record.get("dynamodb") or {}
    key = (data.get("Keys") or {}).get("userId") or {}
    key_user = key.get("S") if isinstance(key, dict) and isinstance(key.get("S"), str) else None
    try:
        new, old = _image(data.get("NewImage")), _image(data.get("OldImage"))
    except Exception as error:  # noqa: BLE001 - an undecodable image is damage, never a stuck stream
        return StreamChange(record.get("eventName"), data.get("SequenceNumber"), key_user, None, None, type(error).__name__)
    return StreamChange(record.get("eventName"), data.get("SequenceNumber"), key_user, new, old)


def _image(raw: Any) -> dict[str, Any] | None:
    return None if raw is None else from_item(raw)


class PublishFailed(Exception):
    """EventBridge did not accept an event (a failed entry in a 200 answer); the record is retried."""

    def __init__(self, error_code: str, error_message: str) -> None:
        super().__init__(f"PutEvents refused the entry: {error_code}: {error_message}")
        self.error_code = error_code


@dataclass
class EventBridgePublisher:
    client: Any
    source: str
    bus: str = "default"

    def publish(self, detail_type: str, detail: dict[str, Any]) -> str:
        """Puts one event; returns EventBridge's event id. PutEvents answers 200 with per-entry failures
        (FailedEntryCount, ErrorCode): those raise PublishFailed, as any failed call raises its error."""
        entry = {"Source": self.source, "DetailType": detail_type, "Detail": json.dumps(detail, sort_keys=True), "EventBusName": self.bus}
        response = self.client.put_events(Entries=[entry])
        entries = response.get("Entries") or [{}]
        first = entries[0]
        if response.get("FailedEntryCount", 0) or first.get("ErrorCode") or not first.get("EventId"):
            raise PublishFailed(first.get("ErrorCode", "Unknown"), first.get("ErrorMessage", "no event id returned"))
        return first["EventId"]


@dataclass
class BalanceEventLog:
    client: Any
    table: str

    def is_published(self, user_id: str, key: str) -> bool:
        response = self.client.get_item(
            TableName=self.table, Key=to_item({USER_KEY: user_id, EVENT_KEY: key}), ConsistentRead=True, ProjectionExpression=USER_KEY
        )
        return "Item" in response

    def record(self, item: dict[str, Any]) -> bool:
        """Writes a published marker once; False if it was already there (a retry after a lost answer)."""
        try:
            self.client.put_item(
                TableName=self.table, Item=to_item(item), ConditionExpression="attribute_not_exists(#k)", ExpressionAttributeNames={"#k": EVENT_KEY}
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def recent(self, user_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """A user's most recent balance events, newest first (one Query)."""
        response = self.client.query(
            TableName=self.table,
            KeyConditionExpression="#u = :u",
            ExpressionAttributeNames={"#u": USER_KEY},
            ExpressionAttributeValues=to_item({":u": user_id}),
            ScanIndexForward=False,
            Limit=limit,
        )
        return [from_item(item) for item in response.get("Items", [])]


@dataclass
class LedgerLookup:
    client: Any
    table: str  # Ledger: operators' entries (adjustments, audit corrections) and the history before UserLedger
    user_ledger_table: str  # UserLedger: the job postings, keyed by user and `{timestamp}#{ledgerId}`

    def entries_at(self, user_id: str, timestamp: str) -> Iterator[dict[str, Any]]:
        """The user's ledger entries written at exactly `timestamp`, from both tables: one Query of UserLedger on
        the key's prefix (consistent: the change that brought us here is committed) and one of Ledger's
        by-user index."""
        yield from self._query(
            {
                "TableName": self.user_ledger_table,
                "KeyConditionExpression": "userId = :u AND begins_with(#k, :prefix)",
                "ExpressionAttributeNames": {"#k": USER_LEDGER_SORT_KEY},
                "ExpressionAttributeValues": to_item({":u": user_id, ":prefix": f"{timestamp}#"}),
                "ConsistentRead": True,
            }
        )
        yield from self._query(
            {
                "TableName": self.table,
                "IndexName": LEDGER_BY_USER_INDEX,
                "KeyConditionExpression": "userId = :u AND #ts = :t",
                "ExpressionAttributeNames": {"#ts": "timestamp"},
                "ExpressionAttributeValues": to_item({":u": user_id, ":t": timestamp}),
            }
        )

    def _query(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for page in pages(self.client.query, request):
            for item in page.get("Items", []):
                yield from_item(item)
