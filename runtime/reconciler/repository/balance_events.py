"""AWS adapters of the balance-events function: EventBridge PutEvents, the BalanceEvents table (published
markers, which are also each user's event history), and the Ledger lookup of the entries behind a change."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator

from botocore.exceptions import ClientError

from reconciler.config import LEDGER_BY_USER_INDEX
from reconciler.repository.dynamodb import from_item, to_item

# BalanceEvents-{stage}: partition key userId, sort key eventKey (the stream sequence number, zero-padded to 40
# digits so that text order is stream order, then the crossing's position within its change).
USER_KEY = "userId"
EVENT_KEY = "eventKey"
SEQUENCE_DIGITS = 40


def event_key(sequence_number: str, position: int) -> str:
    return f"{sequence_number.zfill(SEQUENCE_DIGITS)}#{position}"


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
            self.client.put_item(TableName=self.table, Item=to_item(item), ConditionExpression="attribute_not_exists(#k)",
                                 ExpressionAttributeNames={"#k": EVENT_KEY})
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
    table: str

    def entries_at(self, user_id: str, timestamp: str) -> Iterator[dict[str, Any]]:
        """The user's ledger entries written at exactly `timestamp` (one Query of the by-user index)."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": LEDGER_BY_USER_INDEX,
            "KeyConditionExpression": "userId = :u AND #ts = :t",
            "ExpressionAttributeNames": {"#ts": "timestamp"},
            "ExpressionAttributeValues": to_item({":u": user_id, ":t": timestamp}),
        }
        while True:
            response = self.client.query(**request)
            for item in response.get("Items", []):
                yield from_item(item)
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
