"""Credits in (purchases, grants, revocations): the DynamoDB requests and units of each path, as
tests/integration/benchmarks/test_bench_credits_in_units.py measures them exactly (it asserts these figures), and their section
of docs/capacity.md."""

from __future__ import annotations

from typing import Any

from benchmarks.prices import price

# path: (requests, RRU, WRU) on AWS, by DynamoDB's rules (transactional items 2x, the Ledger's by-user index 1).
CREDITS_IN_UNITS: dict[str, tuple[dict[str, int], float, float]] = {
    "purchase": ({"TransactWriteItems": 1}, 0.0, 5.0),
    "grant": ({"TransactWriteItems": 1}, 0.0, 5.0),
    "refund within the balance": ({"TransactWriteItems": 1}, 0.0, 5.0),
    "purchase delivered again": ({"TransactWriteItems": 1, "GetItem": 1}, 1.0, 4.0),
    "chargeback into overdraft": ({"TransactWriteItems": 2}, 0.0, 9.0),
    "invalid": ({}, 0.0, 0.0),
}
# The balance-events function's work per Credits stream record (service/balance_changes.py), measured by
# tests/integration/benchmarks/test_bench_credits_in_units.py: (requests, RRU, WRU) by the write behind the record.
STREAM_UNITS: dict[str, tuple[dict[str, int], float, float]] = {
    "purchase": ({"GetItem": 1, "TransactWriteItems": 1}, 1.0, 4.0),
    "hold": ({}, 0.0, 0.0),
    "render (held)": ({"Query": 1, "TransactWriteItems": 1}, 1.0, 4.0),
    "render (no hold)": ({"Query": 1, "TransactWriteItems": 1}, 1.0, 4.0),
}
STREAM_ITEMS = {
    "purchase": "the entry it names (lastLedgerEntry), one strong GetItem of Ledger; the liability: the user's item 2 + the book's shard 2",
    "hold": "nothing: a hold moves no posted balance (remaining to held) and no category",
    "render (held)": "the job's postings at updatedAt, one consistent Query of UserLedger; the liability as a purchase's",
    "render (no hold)": "the same",
}
ITEMS = {
    "purchase": "Credits 2 + Ledger entry 2 + Ledger's userId-timestamp-index 1; no read",
    "grant": "the same",
    "refund within the balance": "the same, under the `covers` guard",
    "purchase delivered again": "the transaction cancelled on the entry's condition (its items billed: 4), one strong GetItem of the entry",
    "chargeback into overdraft": "the covered decision cancelled on the balance's guard (4; ALL_OLD returns the balance), then the overdraft's (5)",
    "invalid": "nothing: refused before any request; one SQS SendMessage to the DLQ and an alert",
}


def render_credits_in(w: Any) -> None:
    w("## Credits in")
    w("")
    w(
        'Purchases, grants and revocations (docs/events.md, "Credits in"): DynamoDB per event, **measured** by '
        "tests/integration/benchmarks/test_bench_credits_in_units.py (exact; in-process, the fidelity layer's own read of a cancelled "
        "item aside), priced at on-demand list prices. The render paths above are unchanged by them; "
        "the balance-events function reads and writes more per record (below)."
    )
    w("")
    _table(w, "event", CREDITS_IN_UNITS, ITEMS)
    w(
        "The liability's running totals and the check that every balance change is explained cost the balance-events "
        "function, per Credits stream record, what follows (nothing in the settlement's or the hold's own requests; a "
        "credits-in transaction writes its category's running total on the Credits item it updates anyway: +0 WRU). "
        "Every record now reaches the function (the mapping filters nothing), so its invocations follow the stream's "
        "batches rather than the threshold crossings."
    )
    w("")
    _table(w, "record of", STREAM_UNITS, STREAM_ITEMS)


def _table(w: Any, first: str, units: dict[str, tuple[dict[str, int], float, float]], items: dict[str, str]) -> None:
    rru, wru = price("dynamodb_rru"), price("dynamodb_wru")
    w(f"| {first} | requests | RRU | WRU | DynamoDB USD per million | item by item |")
    w("|---|---|---|---|---|---|")
    for path, (requests, reads, writes) in units.items():
        shown = ", ".join(f"{name} {count}" for name, count in requests.items()) or "none"
        w(f"| {path} | {shown} | {reads:g} | {writes:g} | {(reads * rru + writes * wru) * 1e6:.3f} | {items[path]} |")
    w("")
