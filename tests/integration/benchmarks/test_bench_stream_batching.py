"""The balance-events invocations per million Credits records (benchmarks/stream_batching.py) are counts, exact and
deterministic: the local event source mapping fed at a steady rate on a simulated clock, polled four times a second.
Each figure below follows from Lambda's documented batching (emulator/stream_poller.py); and the price of a million
records follows the invocations they take."""

from __future__ import annotations

import math

import pytest

from benchmarks.cost import batched_balance_usd, lambda_usd, logs_usd, per_invocation_and_per_record, platform_log_bytes
from benchmarks.stream_batching import batched_against_single, invocation_counts

RECORDS = 600


@pytest.fixture(scope="module")
def counts() -> dict[float, dict]:
    return {row["before"]["rate_per_s"]: row for row in invocation_counts(30, 100, records=RECORDS)}


def test_every_record_is_delivered_once_in_order_at_every_rate_and_window(counts):
    assert all(row[way]["in_order"] and row[way]["records"] == RECORDS for row in counts.values() for way in ("before", "after"))


def test_without_a_window_each_poll_sends_what_it_read(counts):
    # At 1 a second or less a poll finds one record at most; at 10, 2 or 3 (first 1, then 5 every 2 polls); at 100, 25.
    assert [counts[rate]["before"]["invocations"] for rate in (0.01, 0.1, 1.0)] == [RECORDS] * 3
    assert counts[10.0]["before"]["invocations"] == 1 + math.ceil((RECORDS - 1) / 2.5)
    assert counts[100.0]["before"]["invocations"] == 1 + math.ceil((RECORDS - 1) / 25)
    assert counts[100.0]["before"]["largest_batch"] == 25


def test_a_30_s_window_gathers_what_came_since_the_last_invocation_up_to_a_full_batch(counts):
    assert counts[0.01]["after"]["invocations"] == RECORDS  # a record every 100 s: each after its window ended
    # At 0.1 a second: the first window (0 to 30 s) gathers 4 records (0, 10, 20, 30 s), each later one 3.
    assert counts[0.1]["after"]["invocations"] == 1 + math.ceil((RECORDS - 4) / 3)
    assert counts[1.0]["after"]["invocations"] == 1 + math.ceil((RECORDS - 31) / 30)
    assert counts[10.0]["after"]["invocations"] == counts[100.0]["after"]["invocations"] == RECORDS // 100  # full batches
    assert counts[1.0]["after"]["per_million"] == counts[1.0]["after"]["invocations"] * 1e6 / RECORDS


def test_a_batch_costs_no_more_per_record_than_single_invocations_in_requests_and_bytes():
    found = batched_against_single(records=10, repetitions=1)
    assert (found["batched"]["invocations"], found["single"]["invocations"]) == (1, 10)
    for way in ("batched", "single"):  # an explained record that crosses nothing: no request, no line, nothing failed
        assert (found[way]["calls"], found[way]["log_bytes"], found[way]["emf_bytes"], found[way]["failed"]) == (0, 0, 0, 0)
    assert found["cpu_ratio_range"][0] <= found["cpu_ratio"] <= found["cpu_ratio_range"][1]


def test_a_figure_splits_into_its_part_per_invocation_and_per_record():
    # 10 invocations of one record spent 10 x (3 + 2) = 50; one of ten, 3 + 10 x 2 = 23.
    assert per_invocation_and_per_record(50, 23, 10) == pytest.approx((3, 2))


def results(cpu_ratio: float) -> dict:
    batch = {"records": 100, "cpu_ratio": cpu_ratio, "single": {"log_bytes": 0, "emf_bytes": 0}, "batched": {"log_bytes": 0, "emf_bytes": 0}}
    return {
        "stream_batching": {"batch": batch},
        "function": {"balance_events": {"memory_mb": 256, "architecture": "arm64"}},
        "telemetry": {"balance": {"no_crossing": {"cpu_ms": 0.5}}},
        "memory": {"balance_events": {"max_memory_mb": 55}},
    }


def test_a_million_records_cost_their_invocations_each_billed_to_the_millisecond():
    single = batched_balance_usd(1e6, results(0.41))
    assert single["duration_ms"] == 1
    assert single["usd"] == pytest.approx(lambda_usd(1, 256, "arm64", 1) + logs_usd(platform_log_bytes(256, 1, 55)))
    # CPU 0.41x at 100 records: 0.5 ms an invocation of one = 0.298 ms + 0.202 ms a record; 100 records: 20.5 ms -> 21.
    full = batched_balance_usd(10_000, results(0.41))
    assert (full["cpu_invocation_ms"], full["cpu_record_ms"]) == pytest.approx((0.5 - 0.5 * 40 / 99, 0.5 * 40 / 99))
    assert full["duration_ms"] == 21
    assert full["usd"] == pytest.approx(lambda_usd(0.01, 256, "arm64", 21) + logs_usd(platform_log_bytes(256, 21, 55) * 0.01))
    assert full["usd"] < single["usd"] / 10
