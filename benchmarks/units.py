"""Capacity units of DynamoDB calls on real on-demand DynamoDB, computed by AWS's published rules from what each
call did (moto's ConsumedCapacity is a constant, so it cannot be read off the answers).

Sources (DynamoDB Developer Guide and API Reference, read 2026-12-07 from stored copies):
- "DynamoDB read and write operations" (developerguide/read-write-operations.html): a strongly consistent read is
  1 RRU per 4 KB, an eventually consistent one 0.5, a transactional one 2; a write 1 WRU per 1 KB, 2 in a
  transaction; an item that is not there still costs one 4 KB step; BatchGetItem is each item as a GetItem.
- "Query operations" / "Scan operations" (Query.ReadConsumption, Scan.ReadConsumption) and the API Reference's
  Scan (APIReference/API_Scan.html): "A single Scan operation first reads up to the maximum number of items set (if
  using the Limit parameter) or a maximum of 1 MB of data and then applies any filtering"; "A FilterExpression is
  applied after the items have already been read; the process of filtering does not consume any additional read
  capacity units": a page is charged on the total size of the items it read, rounded up to 4 KB, whatever the
  filter keeps; a projection does not reduce it either (the whole item is read).
- "Amazon DynamoDB Transactions: how it works", capacity management (transaction-apis.html): 2 units per item, a
  ConditionCheck included.
- "Global secondary indexes", provisioned throughput considerations (GSI.html): index writes.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from benchmarks.common import item_size
from reconciler.repository.dynamodb import pages

READ_STEP, WRITE_STEP = 4096, 1024
# What a Query or Scan reads is the page before these apply; the meter reads the page again without them.
NARROWING = ("FilterExpression", "ProjectionExpression", "Select", "AttributesToGet", "ScanFilter", "QueryFilter", "ConditionalOperator", "Limit")


@dataclass(frozen=True)
class _Index:
    name: str | None  # None: the table itself
    keys: tuple[str, ...]  # partition key first
    projection: str = "ALL"  # ALL | KEYS_ONLY | INCLUDE
    included: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Shape:
    table: _Index
    indexes: tuple[_Index, ...]
    expires: bool = False  # a TTL attribute is set: what it stores goes away by itself
    streams: bool = False  # a DynamoDB stream records every change of an item


def read_steps(size: int) -> int:
    """4 KB steps of one read: at least one, also for an item that is not there."""
    return max(1, math.ceil(size / READ_STEP))


def per_step(params: dict) -> float:
    """RRU per 4 KB: 1 for a strongly consistent read, 0.5 for an eventually consistent one (the default)."""
    return 1.0 if params.get("ConsistentRead") else 0.5


def page_read_units(items_read: list[dict], params: dict) -> float:
    """A Query or Scan page: the total size of every item it read (before any filter or projection), rounded up to
    4 KB once for the page, at the request's consistency."""
    return read_steps(sum(item_size(item) for item in items_read)) * per_step(params)


def batch_get_read_units(params: dict, parsed: dict) -> float:
    """BatchGetItem: each key as its own GetItem (at the table's consistency); unprocessed keys cost nothing."""
    units = 0.0
    for table, request in params.get("RequestItems", {}).items():
        unprocessed = len(parsed.get("UnprocessedKeys", {}).get(table, {}).get("Keys", []))
        found = parsed.get("Responses", {}).get(table, [])
        missing = len(request.get("Keys", [])) - unprocessed - len(found)
        units += (sum(read_steps(item_size(item)) for item in found) + missing) * per_step(request)
    return units


class UnitMeter:
    """Read and write request units of DynamoDB calls:

    reads    GetItem 0.5 (eventually consistent) or 1 per 4 KB of the whole item (a projection does not reduce it),
             a transactional read 2 per 4 KB, at least one 4 KB step per item asked for; BatchGetItem as its
             GetItems; Query/Scan per page, by the bytes of every item the page read, before its filter and
             projection (read again through the same client, uncounted), at the request's consistency.
    writes   1 per 1 KB of the larger of the item before and after (also when a condition fails), 2 in a
             transaction (ConditionCheck included); plus, per global secondary index, 1 to put an item into it,
             1 to delete it, 2 when an index key changes, 1 when only a projected attribute changes.
    The images before and after a write, and the pages read again, go through the same client, uncounted (`busy`).
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.busy = False
        self._shapes: dict[str, _Shape] = {}
        # Per table with a stream: the records DynamoDB Streams would carry for the writes metered (NEW_AND_OLD_IMAGES).
        self.stream_records: defaultdict[str, list[dict]] = defaultdict(list)

    def shape(self, table: str) -> _Shape:
        if table not in self._shapes:
            description = self._quiet(self.client.describe_table, TableName=table)["Table"]

            def keys(schema: list[dict]) -> tuple[str, ...]:
                return tuple(k["AttributeName"] for k in sorted(schema, key=lambda k: k["KeyType"] != "HASH"))

            indexes = tuple(
                _Index(
                    index["IndexName"],
                    keys(index["KeySchema"]),
                    index["Projection"].get("ProjectionType", "ALL"),
                    tuple(index["Projection"].get("NonKeyAttributes", ())),
                )
                for index in description.get("GlobalSecondaryIndexes", [])
            )
            ttl = self._quiet(self.client.describe_time_to_live, TableName=table).get("TimeToLiveDescription", {})
            streams = bool(description.get("StreamSpecification", {}).get("StreamEnabled"))
            self._shapes[table] = _Shape(_Index(None, keys(description["KeySchema"])), indexes, ttl.get("TimeToLiveStatus") == "ENABLED", streams)
        return self._shapes[table]

    def _quiet(self, call: Any, **request: Any) -> Any:
        self.busy = True
        try:
            return call(**request)
        finally:
            self.busy = False

    def image(self, table: str, key: dict) -> dict | None:
        return self._quiet(self.client.get_item, TableName=table, Key=key, ConsistentRead=True).get("Item")

    def key_of(self, table: str, item: dict) -> dict:
        return {name: item[name] for name in self.shape(table).table.keys}

    # -- what a call reads

    def items_read(self, operation: str, params: dict, parsed: dict) -> list[dict]:
        """Every item a Query or Scan page read: its answer, or, when the request narrowed the answer (a filter, a
        projection, a Select, a Limit), the same range read again without narrowing: from the page's start up to
        and including its LastEvaluatedKey (to the end when it has none)."""
        if not any(name in params for name in NARROWING):
            return list(parsed.get("Items", []))
        request = {name: value for name, value in params.items() if name not in NARROWING}
        _keep_referenced_placeholders(request)
        last = parsed.get("LastEvaluatedKey")
        read: list[dict] = []
        call = getattr(self.client, "query" if operation == "Query" else "scan")
        for page in pages(lambda **page_request: self._quiet(call, **page_request), request):
            for item in page.get("Items", []):
                read.append(item)
                if last is not None and all(item.get(name) == value for name, value in last.items()):
                    return read
        return read

    def read_units(self, operation: str, params: dict, parsed: dict) -> float:
        if operation == "GetItem":
            item = parsed.get("Item")
            if item is not None and "ProjectionExpression" in params:
                item = self.image(params["TableName"], params["Key"])  # charged on the whole item
            return read_steps(item_size(item or {})) * per_step(params)
        if operation == "TransactGetItems":
            whole = [self.image(part["Get"]["TableName"], part["Get"]["Key"]) for part in params["TransactItems"]]
            return sum(2.0 * read_steps(item_size(item or {})) for item in whole)
        if operation == "BatchGetItem":
            return batch_get_read_units(params, parsed)
        if operation in ("Query", "Scan"):
            return page_read_units(self.items_read(operation, params, parsed), params)
        return 0.0

    # -- what a call writes, before it runs

    def writes_of(self, operation: str, params: dict) -> list[tuple[str, str, dict, dict | None]]:
        """(kind, table, key, item put) of every item the call may write."""
        if operation == "PutItem":
            return [("Put", params["TableName"], self.key_of(params["TableName"], params["Item"]), params["Item"])]
        if operation in ("UpdateItem", "DeleteItem"):
            return [(operation[:-4], params["TableName"], params["Key"], None)]
        if operation == "TransactWriteItems":
            out = []
            for part in params.get("TransactItems", []):
                ((kind, body),) = part.items()
                key = self.key_of(body["TableName"], body["Item"]) if kind == "Put" else body["Key"]
                out.append((kind, body["TableName"], key, body.get("Item")))
            return out
        if operation == "BatchWriteItem":
            out = []
            for table, requests in params.get("RequestItems", {}).items():
                for request in requests:
                    if "PutRequest" in request:
                        item = request["PutRequest"]["Item"]
                        out.append(("Put", table, self.key_of(table, item), item))
                    else:
                        out.append(("Delete", table, request["DeleteRequest"]["Key"], None))
            return out
        return []

    # -- the units, after it ran

    def units(
        self, operation: str, params: dict, parsed: dict, before: list[tuple[str, str, dict, dict | None, dict | None]]
    ) -> tuple[float, float, dict[str, float], dict[str, int]]:
        """(RRU, WRU, WRU per partition, bytes stored per table: "Table" for items, "Table/index" for index entries)."""
        rru = self.read_units(operation, params, parsed)
        wru = 0.0
        stored: defaultdict[str, int] = defaultdict(int)
        partitions: defaultdict[str, float] = defaultdict(float)
        for kind, table, key, put, old in before:
            new = self.image(table, key)
            factor = 2.0 if operation == "TransactWriteItems" else 1.0
            size = max(item_size(old or {}), item_size(new or {}), item_size(put or {}))
            table_wru = factor * max(1, math.ceil(size / WRITE_STEP))
            wru += table_wru
            shape = self.shape(table)
            partitions[_partition(table, None, shape.table.keys, new or old or put or key)] += table_wru
            if kind == "ConditionCheck":
                continue
            if shape.streams and old != new:  # an unchanged item writes no stream record
                self.stream_records[table].append(stream_record(key, old, new))
            if not shape.expires:
                for name, size in _stored(table, shape, new).items():
                    stored[name] += size
                for name, size in _stored(table, shape, old).items():
                    stored[name] -= size
            for index in shape.indexes:
                index_wru = _index_writes(index, shape.table, old, new)
                if index_wru:
                    wru += index_wru
                    partitions[_partition(table, index.name, index.keys, new if new and _in_index(index, new) else old or {})] += index_wru
        return rru, wru, partitions, dict(stored)


def stream_record(key: dict, old: dict | None, new: dict | None) -> dict:
    """The record DynamoDB Streams writes for a change, as Lambda hands it over (images in DynamoDB JSON)."""
    data: dict[str, Any] = {"Keys": key, **({"NewImage": new} if new else {}), **({"OldImage": old} if old else {})}
    return {"eventName": "INSERT" if old is None else "REMOVE" if new is None else "MODIFY", "dynamodb": data}


def _keep_referenced_placeholders(request: dict) -> None:
    """Drops the expression names and values only the removed expressions used (DynamoDB refuses unused ones)."""
    used = set(re.findall(r"[#:][A-Za-z0-9_]+", request.get("KeyConditionExpression", "")))
    for field in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
        kept = {name: value for name, value in request.get(field, {}).items() if name in used}
        if kept:
            request[field] = kept
        else:
            request.pop(field, None)


def _stored(table: str, shape: _Shape, item: dict | None) -> dict[str, int]:
    """Billable storage of an item and its index entries: raw size + 100 bytes each (DynamoDB's item overhead)."""
    if item is None:
        return {}
    sizes = {table: item_size(item) + 100}
    for index in shape.indexes:
        if _in_index(index, item):
            keep = set(shape.table.keys) | set(index.keys) | set(index.included)
            projected = item if index.projection == "ALL" else {name: value for name, value in item.items() if name in keep}
            sizes[f"{table}/{index.name}"] = item_size(projected) + 100
    return sizes


def _partition(table: str, index: str | None, keys: tuple[str, ...], item: dict) -> str:
    value = item.get(keys[0], {})
    return f"{table}{'/' + index if index else ''} {keys[0]}={next(iter(value.values()), '?') if value else '?'}"


def _in_index(index: _Index, item: dict | None) -> bool:
    return item is not None and all(name in item for name in index.keys)


def _index_writes(index: _Index, table: _Index, old: dict | None, new: dict | None) -> int:
    was, now = _in_index(index, old), _in_index(index, new)
    if not was and not now:
        return 0
    if was != now:
        return 1  # put into the index, or deleted from it
    if old is None or new is None:  # unreachable: both in the index (for mypy)
        return 0
    if any(old[name] != new[name] for name in index.keys):
        return 2  # an index key changed: delete and put
    if index.projection == "ALL":
        projected = set(old) | set(new)
    else:
        projected = set(table.keys) | set(index.keys) | set(index.included if index.projection == "INCLUDE" else ())
    return 1 if any(old.get(name) != new.get(name) for name in projected) else 0
