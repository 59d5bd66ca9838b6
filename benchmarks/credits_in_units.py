"""Credits in (purchases, grants, revocations): the DynamoDB requests and units of each path, as
tests/integration/benchmarks/test_bench_credits_in_units.py measures them exactly (it asserts these figures), and their section
of docs/capacity.md."""

from __future__ import annotations

import math
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
# The balance-events function's work per Credits stream record for the change check (service/balance_changes.py),
# measured by tests/integration/benchmarks/test_bench_credits_in_units.py: (requests, RRU, WRU) by the write behind it.
STREAM_UNITS: dict[str, tuple[dict[str, int], float, float]] = {
    "purchase": ({}, 0.0, 0.0),
    "hold": ({}, 0.0, 0.0),
    "render (held)": ({}, 0.0, 0.0),
    "render (no hold)": ({}, 0.0, 0.0),
}
STREAM_ITEMS = {
    "purchase": "nothing: the record carries its explanation (version + 1, lastChange: domain/unexplained.py)",
    "hold": "the same",
    "render (held)": "the same",
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


def render_credits_in(w: Any, r: dict) -> None:
    w("## Credits in")
    w("")
    w(
        'Purchases, grants and revocations (docs/events.md, "Credits in"): DynamoDB per event, **measured** by '
        "tests/integration/benchmarks/test_bench_credits_in_units.py (exact; in-process, the fidelity layer's own read of a cancelled "
        "item aside), priced at on-demand list prices. The render paths above are unchanged by them, and "
        "the balance-events function reads and writes nothing more per record (below)."
    )
    w("")
    _table(w, "event", CREDITS_IN_UNITS, ITEMS)
    w(
        "Lambda's retry of an invocation whose application committed (docs/events.md, \"Lambda's retry of the same "
        'invocation") costs what a delivery again costs (the cancelled transaction, 4 WRU, and the one strong GetItem, '
        "1 RRU), and is answered as the application from that read: no request more. The entry's record of its "
        "application (`appliedByRequest`, a request id of 36 characters; `overdraft` and `appliedBalanceBefore` on an "
        "overdraft) adds at most about 80 bytes to the Ledger item and its index copy, which stay under 1 KB at the "
        "measured figures above (the test measures the entries with them); only an entry whose description already "
        "sits within 80 bytes of a 1 KB step costs one WRU more per copy."
    )
    w("")
    w(
        "Every balance change explained costs the balance-events function nothing per Credits stream record: each "
        "reconciler write sets its change record (`lastChange`) in the update it already makes, and the item stays under "
        "1 KB, so no write's units move (the render paths above are unchanged, exactly). The liability costs nothing per "
        "event either: a credits-in transaction writes its category's total on the Credits item it updates anyway "
        "(+0 WRU), and the book's totals are a scheduled snapshot (below). Every record reaches the function (the "
        "mapping filters nothing, so nothing can hide a change); its batching window amortises the invocations."
    )
    w("")
    _table(w, "record of", STREAM_UNITS, STREAM_ITEMS)
    _stream_function(w, r)
    _liability_snapshot(w)


def _stream_function(w: Any, r: dict) -> None:
    """What delivering every record costs the balance-events function (Lambda and its logs), from the cost model."""
    from benchmarks.requests import OURS

    row = r["cost"][f"reserved/{OURS}"]  # one Credits record, no crossing: the common case
    per_record = row["items"]["balance_events"] / row["stream_records"]
    window = int(r["function"]["balance_events"]["batching_window_s"])
    w(
        f"What it costs instead is invocations: at one invocation a record (a quiet shard, the most it can be) **${per_record:.3f} "
        "per million Credits records** that cross no threshold (Lambda's request and GB-seconds, its log lines; "
        '"What the cuts save" above), where the filters the mapping had before credits in delivered none of a well-funded user\'s '
        f"settlements. That is the most it costs: {_batched(r, window)} A record that crosses a threshold costs its "
        "crossing's requests and events besides (the low-balance row above)."
    )
    w("")


def _batched(r: dict, window: int) -> str:
    """What the batching window makes of it, as measured (benchmarks/stream_batching.py), at one record a second on a
    shard and at the busiest rate measured."""
    from benchmarks.cost import batched_balance_usd

    rates = (r.get("stream_batching") or {}).get("rates")
    if not rates:
        return f"on a busy shard the {window} s batching window shares one invocation among the records gathered (not measured in this run)."
    one = next(row["after"] for row in rates if row["after"]["rate_per_s"] == 1)
    busiest = rates[-1]["after"]
    return (
        f"measured, the {window} s batching window brings it to ${batched_balance_usd(one['per_million'], r)['usd']:.3f} at one "
        f"record a second on a shard ({one['per_million']:,.0f} invocations per million records) and "
        f"${batched_balance_usd(busiest['per_million'], r)['usd']:.3f} at {busiest['rate_per_s']:g} a second "
        f"({busiest['per_million']:,.0f}: full batches)."
    )


# A Credits item as the paths leave it, in DynamoDB's bytes (tests/integration/benchmarks/test_bench_credits_in_units.py
# bounds it under 512 with 64-character ids): the liability snapshot's Scan reads whole items.
CREDITS_ITEM_BYTES = 300
SNAPSHOT_USERS = (10_000, 100_000, 1_000_000)


def _liability_snapshot(w: Any) -> None:
    rru = price("dynamodb_rru")
    w(
        '**The liability snapshot** (docs/events.md, "The liability") costs nothing per event. Per run: an eventually '
        "consistent Scan of Credits, 0.5 RRU per 4 KB of whole items read (the projection to the money figures lowers the "
        "bytes sent, not the units), one PutItem of the snapshot (1 WRU) and one invocation of the reconciler function. "
        f"With items of about {CREDITS_ITEM_BYTES} bytes:"
    )
    w("")
    w("| users | RRU per run | USD per run | USD per month, hourly (prod, staging) | USD per month, every 6 h (dev) |")
    w("|---|---|---|---|---|")
    for users in SNAPSHOT_USERS:
        units = math.ceil(users * CREDITS_ITEM_BYTES / 4096) * 0.5
        run = units * rru + price("dynamodb_wru")
        w(f"| {users:,} | {units:,.0f} | {run:.5f} | {run * 730:.3f} | {run * 730 / 6:.3f} |")
    w("")
    w(
        "Against the per-record totals it replaces (4 WRU, $2.50 per million, on every Credits stream record that "
        "moved a category: a render, a purchase), an hourly snapshot of a million users costs about $3.34 a month "
        "whatever the event rate: it is the cheaper one from about 1.3 million events a month for a million users, and "
        "the one that does not grow with traffic. The scan runs inside the function's 30 s timeout at about 1 MB per "
        "Scan page; how many users that covers on AWS is not measured here (moto's speed says nothing of AWS's), and a "
        "book too large for it needs parallel scan segments (not built)."
    )
    w("")


def _table(w: Any, first: str, units: dict[str, tuple[dict[str, int], float, float]], items: dict[str, str]) -> None:
    rru, wru = price("dynamodb_rru"), price("dynamodb_wru")
    w(f"| {first} | requests | RRU | WRU | DynamoDB USD per million | item by item |")
    w("|---|---|---|---|---|---|")
    for path, (requests, reads, writes) in units.items():
        shown = ", ".join(f"{name} {count}" for name, count in requests.items()) or "none"
        w(f"| {path} | {shown} | {reads:g} | {writes:g} | {(reads * rru + writes * wru) * 1e6:.3f} | {items[path]} |")
    w("")
