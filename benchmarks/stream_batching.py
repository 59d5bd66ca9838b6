"""The balance-events function's invocations per million Credits stream records, counted through the local stack's
own event source mapping (emulator/stream_poller.py: Lambda's batching per shard) fed at steady rates on a
simulated clock, with no batching window (before) and the prod mapping's (after); and what one invocation of a
batch costs beside as many invocations of one record, from the real handler on a stubbed store.

The counts are exact and deterministic (no timing: tests/integration/benchmarks/test_bench_stream_batching.py
asserts them); only the CPU ratio of a batch to single records is a timing, a median of interleaved repetitions.
"""

from __future__ import annotations

import io
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from emulator.delivery import handler_output_to
from emulator.invoker import LocalContext
from emulator.stream_poller import StreamPoller, lambda_record

RATES = (0.01, 0.1, 1.0, 10.0, 100.0)  # records a second on one shard
RECORDS_PER_RATE = 20_000
# "Lambda polls shards in your DynamoDB stream for records at a base rate of 4 times per second" (AWS Lambda
# Developer Guide, "Using AWS Lambda with Amazon DynamoDB", Polling and batching streams).
POLL_INTERVAL_S = 0.25
STREAM_ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/Credits-prod/stream/2026-12-08T00:00:00.000"
SHARD_ID = "shardId-00000001765152000000-bench0001"
USERS = 200  # users whose renders the records are; a user's records follow each other in version order
BATCH_RECORDS = 100  # the batched invocation beside as many single ones (the prod mapping's batch size)


@dataclass
class SimulatedClock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def credits_record(index: int) -> dict[str, Any]:
    """The Credits stream record of a render settled by the reconciler, as GetRecords returns it: its user's version
    up by one and the change it made recorded (`lastChange`), so the function finds it explained and crossing
    nothing (a well-funded user: the common case)."""
    user, version = f"user-{index % USERS:04d}-7f3a9c21", index // USERS + 1
    remaining = 100_000 - 20 * version

    def image(left: int, at: int, change: dict[str, Any]) -> dict[str, Any]:
        item = {"userId": {"S": user}, "remaining": {"N": str(left)}, "held": {"N": "0"}, "version": {"N": str(at)}}
        return {**item, "updatedAt": {"S": f"2026-12-08T00:00:{index % 60:02d}.000Z"}, **({"lastChange": {"M": change}} if change else {})}

    change = {"remaining": {"N": "-20"}, "by": {"S": f"job-{index:08d}-4f1c-9a57-2b8e6d0c1a33"}}
    data = {
        "Keys": {"userId": {"S": user}},
        "OldImage": image(remaining + 20, version - 1, {}),
        "NewImage": image(remaining, version, change),
        "SequenceNumber": str(10**20 + index),
        "SizeBytes": 220,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    return {"eventID": f"{index:032x}", "eventName": "MODIFY", "dynamodb": data}


@dataclass
class SimulatedShard:
    """A DynamoDB Streams client of one shard whose records appear at their arrival time on the clock: what the
    poller calls (DescribeStream, GetShardIterator, GetRecords with its 1,000-record limit)."""

    clock: SimulatedClock
    arrivals: list[float]  # each record's arrival time, in order
    records: Callable[[int], dict[str, Any]] = credits_record
    read: int = 0

    def describe_stream(self, **_: Any) -> dict[str, Any]:
        return {"StreamDescription": {"Shards": [{"ShardId": SHARD_ID}]}}

    def get_shard_iterator(self, **_: Any) -> dict[str, Any]:
        return {"ShardIterator": "iterator"}

    def get_records(self, ShardIterator: str, Limit: int = 1000) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        end = self.read
        while end < len(self.arrivals) and end - self.read < Limit and self.arrivals[end] <= self.clock.now:
            end += 1
        found = [self.records(index) for index in range(self.read, end)]
        self.read = end
        return {"Records": found, "NextShardIterator": ShardIterator}

    def next_arrival(self) -> float | None:
        return self.arrivals[self.read] if self.read < len(self.arrivals) else None


@dataclass
class CountingFunction:
    """Stands in for the function where only the invocations count: every record succeeds; the batches are kept
    by sequence number, to check none is lost, repeated or reordered."""

    batches: list[list[int]] = field(default_factory=list)

    def __call__(self, event: dict[str, Any], _context: Any) -> dict[str, Any]:
        self.batches.append([int(r["dynamodb"]["SequenceNumber"]) - 10**20 for r in event["Records"]])
        return {"batchItemFailures": []}


def feed(rate: float, records: int, window_s: float, batch_size: int) -> dict[str, Any]:
    """`records` Credits records arriving at `rate` a second on one shard, polled four times a second by the mapping
    with this window and batch size: its invocations. A poll that can change nothing (nothing pending, nothing
    arrived since the last) is skipped: the mapping does nothing on it, so the counts are those of every poll."""
    clock = SimulatedClock()
    # To the microsecond: an arrival on a poll's instant (a multiple of 0.25 s) is that float exactly.
    shard = SimulatedShard(clock, [round(index / rate, 6) for index in range(records)])
    function = CountingFunction()
    poller = StreamPoller(shard, STREAM_ARN, function, batch_size=batch_size, batching_window_s=window_s, clock=clock)
    tick = 0
    while True:
        clock.now = tick * POLL_INTERVAL_S
        poller.poll()
        upcoming = shard.next_arrival()
        if upcoming is None and not poller.pending:
            break
        tick = tick + 1 if poller.pending or upcoming is None else max(tick + 1, math.ceil(upcoming / POLL_INTERVAL_S - 1e-9))
    delivered = [sequence for batch in function.batches for sequence in batch]
    return {
        "rate_per_s": rate,
        "window_s": window_s,
        "records": records,
        "simulated_s": clock.now,
        "invocations": poller.invocations,
        "per_million": poller.invocations * 1_000_000 / records,
        "largest_batch": max(len(batch) for batch in function.batches),
        "in_order": delivered == list(range(records)),
    }


def invocation_counts(window_s: float, batch_size: int, records: int = RECORDS_PER_RATE, rates: tuple[float, ...] = RATES) -> list[dict]:
    """Each rate with no window (before) and with `window_s` (after)."""
    return [{"before": feed(rate, records, 0, batch_size), "after": feed(rate, records, window_s, batch_size)} for rate in rates]


class StubStore:
    """The function's DynamoDB and EventBridge clients, counting calls (an explained record that crosses nothing
    makes none: any call here is a finding)."""

    def __init__(self) -> None:
        self.calls = 0

    def __getattr__(self, name: str) -> Callable[..., dict]:
        def call(**_: Any) -> dict:
            self.calls += 1
            return {"Items": [], "FailedEntryCount": 0, "Entries": [{"EventId": "stub"}]}

        return call


def batched_against_single(records: int = BATCH_RECORDS, repetitions: int = 15) -> dict[str, Any]:
    """The real handler (reconciler.handlers.balance_stream, composed by bootstrap as in Lambda, its clients stubbed)
    on one batch of `records` explained records and on as many batches of one, interleaved: per record, its own log
    and EMF bytes and AWS calls either way (exact), and the CPU of the batch over the singles' (median and range of
    the repetitions after a first, warming one)."""
    from reconciler import bootstrap
    from reconciler.config import BalanceEventsConfig
    from reconciler.handlers import balance_stream

    store = StubStore()
    service = bootstrap.build_balance_event_service(BalanceEventsConfig.for_stage("prod"), dynamodb=store, events=store)
    context = LocalContext("cc-reconciler-balance-events-prod")
    shaped = [lambda_record(credits_record(index), STREAM_ARN) for index in range(records)]

    def run(batches: list[list[dict]]) -> dict[str, float]:
        output, calls = io.StringIO(), store.calls
        with mock.patch.object(bootstrap, "balance_event_service", return_value=service), handler_output_to(output):
            started = time.process_time_ns()
            failed = sum(len((balance_stream.handler({"Records": batch}, context) or {}).get("batchItemFailures", [])) for batch in batches)
            cpu = time.process_time_ns() - started
        lines = [line for line in output.getvalue().splitlines() if line.strip()]
        emf = [line for line in lines if line.startswith('{"_aws"')]
        return {
            "invocations": len(batches),
            "log_bytes": sum(len(line.encode()) + 1 for line in lines if line not in emf),
            "emf_bytes": sum(len(line.encode()) + 1 for line in emf),
            "calls": store.calls - calls,
            "failed": failed,
            "cpu_ns": cpu,
        }

    ratios, last = [], {}
    for repetition in range(repetitions + 1):
        last = {"batched": run([shaped]), "single": run([[record] for record in shaped])}
        if repetition:  # the first warms the code paths
            ratios.append(last["batched"]["cpu_ns"] / last["single"]["cpu_ns"])
    return {
        "records": records,
        "repetitions": repetitions,
        **{way: {key: value for key, value in figures.items() if key != "cpu_ns"} for way, figures in last.items()},
        "cpu_ratio": statistics.median(ratios),
        "cpu_ratio_range": [min(ratios), max(ratios)],
    }


def stream_batching(quick: bool = False) -> dict[str, Any]:
    """The bench section: the prod mapping's settings from its synthesized template, the counts, the batch cost."""
    from emulator.stack import templates_for
    from emulator.stream_poller import mapping_settings

    settings = mapping_settings(templates_for("prod"))
    counts = invocation_counts(settings["batching_window_s"], settings["batch_size"], records=2_000 if quick else RECORDS_PER_RATE)
    return {
        "stream_batching": {
            "mapping": settings,
            "poll_interval_s": POLL_INTERVAL_S,
            "rates": counts,
            "batch": batched_against_single(repetitions=5 if quick else 15),
        }
    }


def render_stream_batching(r: dict, w: Callable[[str], None]) -> None:
    """docs/benchmarks.md's section: the counts as measured (docs/capacity.md prices them)."""
    found = r.get("stream_batching")
    if not found:
        return
    mapping = found["mapping"]
    runs = [run for row in found["rates"] for run in (row["before"], row["after"])]
    kept = (
        "Every record was delivered once and in order in each run."
        if all(run["in_order"] for run in runs)
        else ("**Some run lost, repeated or reordered records** (in_order false in docs/benchmarks.json).")
    )
    w("## 10. Balance-events batching")
    w("")
    w(
        "`benchmarks/stream_batching.py` (`python -m benchmarks.run --section stream_batching` reruns it alone): the local stack's "
        f"event source mapping (emulator/stream_poller.py), batch size {mapping['batch_size']}, polled every "
        f"{found['poll_interval_s']:g} s on a simulated clock, fed Credits records at a steady rate on one shard, without a "
        f"batching window and with the prod template's {mapping['batching_window_s']} s. Counts, not timings: exact, asserted by "
        f"tests/integration/benchmarks/test_bench_stream_batching.py. {kept}"
    )
    w("")
    w("| records a second | records | simulated time | window | invocations | per million records | largest batch |")
    w("|---|---|---|---|---|---|---|")
    for run in runs:
        w(
            f"| {run['rate_per_s']:g} | {run['records']:,} | {run['simulated_s'] / 3600:,.1f} h | {run['window_s']:g} s | "
            f"{run['invocations']:,} | {run['per_million']:,.0f} | {run['largest_batch']} |"
        )
    batch = found["batch"]
    low, high = batch["cpu_ratio_range"]
    w("")
    w(
        f"One invocation of {batch['records']} explained records that cross nothing against {batch['records']} of one, the real "
        f"handler on stubbed clients: {batch['batched']['calls']} requests and {batch['batched']['log_bytes'] + batch['batched']['emf_bytes']} "
        f"bytes of own lines and EMF either way; CPU {batch['cpu_ratio']:.2f}x the singles' (median of {batch['repetitions']} "
        f"interleaved repetitions, {low:.2f}-{high:.2f})."
    )
    w("")
