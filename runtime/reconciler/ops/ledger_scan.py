"""The ledger of a time window across all users: a full Scan of each ledger table (v1's runbook did this).

The ledger lives in two tables (UserLedger: the job postings; Ledger: the operators' entries and the history
before UserLedger), and neither has an index by time alone, so this reads every item of both; the caller
states that, with the read capacity consumed, before showing the entries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from reconciler.domain.ledger import LedgerEntry
from reconciler.repository.dynamodb import from_item, ledger_from_item, to_item


@dataclass
class LedgerWindow:
    entries: list[LedgerEntry] = field(default_factory=list)
    scanned: int = 0
    capacity_units: float = 0.0


def scan_ledger_window(
    dynamodb: Any, tables: Iterable[str], since: str, until: str | None, progress: Callable[[int], None] = lambda n: None
) -> LedgerWindow:
    """The entries of every table in the window, merged oldest first (timestamp, then ledger id)."""
    window = LedgerWindow()
    condition = "#ts >= :since" + (" AND #ts <= :until" if until else "")
    values = {":since": since, **({":until": until} if until else {})}
    for table in tables:
        request: dict[str, Any] = dict(
            TableName=table,
            FilterExpression=condition,
            ExpressionAttributeNames={"#ts": "timestamp"},
            ExpressionAttributeValues=to_item(values),
            ReturnConsumedCapacity="TOTAL",
        )
        while True:
            page = dynamodb.scan(**request)
            window.scanned += page.get("ScannedCount", 0)
            window.capacity_units += float((page.get("ConsumedCapacity") or {}).get("CapacityUnits") or 0)
            window.entries.extend(ledger_from_item(from_item(item)) for item in page.get("Items", []))
            progress(page.get("ScannedCount", 0))
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    window.entries.sort(key=lambda entry: (entry.timestamp, entry.ledger_id))
    return window
