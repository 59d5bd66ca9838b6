"""The liability snapshot on DynamoDB (service/liability_snapshot.py): the Credits scan it sums, and its one item in
BalanceEvents, in a partition no user can have (an id never holds a control character: domain/validation.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from reconciler.contract import BALANCE_EVENT_KEY, MONEY_ATTRIBUTES, USER_ID_ATTRIBUTE
from reconciler.domain.liability import LIABILITY_CATEGORIES, BookLiability, LiabilitySnapshot
from reconciler.repository.dynamodb import from_item, pages, to_item

LIABILITY_PARTITION = "\x1eliability"
SNAPSHOT_KEY = "snapshot"
# What the scan asks for: the figures the allocation reads (a projection lowers the bytes sent, not the units read).
SCANNED_ATTRIBUTES = (USER_ID_ATTRIBUTE, *MONEY_ATTRIBUTES)


@dataclass
class LiabilitySnapshotTable:
    client: Any
    credits_table: str
    balance_events_table: str

    def balances(self) -> Iterator[dict[str, Any]]:
        """Every Credits item's money figures: an eventually consistent Scan (0.5 RRU per 4 KB read)."""
        names = {f"#a{i}": name for i, name in enumerate(SCANNED_ATTRIBUTES)}
        request: dict[str, Any] = {"TableName": self.credits_table, "Select": "SPECIFIC_ATTRIBUTES", "ProjectionExpression": ", ".join(names)}
        request["ExpressionAttributeNames"] = names
        for page in pages(self.client.scan, request):
            for item in page.get("Items", []):
                yield from_item(item)

    def put_snapshot(self, snapshot: LiabilitySnapshot) -> bool:
        """One PutItem, unless a snapshot taken later is there already (two runs overlapping: the later one stays)."""
        book = snapshot.book
        item = {
            USER_ID_ATTRIBUTE: LIABILITY_PARTITION,
            BALANCE_EVENT_KEY: SNAPSHOT_KEY,
            "takenAt": snapshot.taken_at,
            "finishedAt": snapshot.finished_at,
            "byCategory": book.by_category,
            "balancesTotal": book.balances_total,
            "users": book.users,
            "damaged": book.damaged,
        }
        try:
            self.client.put_item(
                TableName=self.balance_events_table,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(takenAt) OR takenAt <= :taken",
                ExpressionAttributeValues=to_item({":taken": snapshot.taken_at}),
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def latest(self) -> LiabilitySnapshot | None:
        """The stored snapshot (strongly consistent GetItem, 1 RRU), or None before the first run."""
        key = to_item({USER_ID_ATTRIBUTE: LIABILITY_PARTITION, BALANCE_EVENT_KEY: SNAPSHOT_KEY})
        item = self.client.get_item(TableName=self.balance_events_table, Key=key, ConsistentRead=True).get("Item")
        if not item:
            return None
        found = from_item(item)
        stored = found.get("byCategory") or {}
        book = BookLiability(
            {category: int(stored.get(category, 0)) for category in LIABILITY_CATEGORIES},
            int(found.get("balancesTotal", 0)),
            int(found.get("users", 0)),
            int(found.get("damaged", 0)),
        )
        return LiabilitySnapshot(book, str(found.get("takenAt", "")), str(found.get("finishedAt", "")))
