"""The cost model computes from what a run measured: request counts, units and the function's settings."""

from __future__ import annotations

import pytest

from benchmarks.capacity import ASSUMED_REQUEST_MS, PRICES, events_per_second, per_million

SETTINGS = {"memory_mb": 512, "architecture": "arm64", "async_retries": 2}


def test_a_settling_path_costs_its_units_its_round_trips_and_one_invocation():
    counts = {"total": 2, "sqs": {}, "units": [4.0, 7.0], "outcome": "settled"}
    row = per_million(counts, cpu_ms=0.4, settings=SETTINGS)
    assert row["invocations"] == 1e6
    assert row["duration_ms"] == 21  # 0.4 ms CPU + 2 x 10 ms, rounded up
    assert row["dynamodb_usd"] == pytest.approx(4 * 0.125 + 7 * 0.625)
    assert row["lambda_usd"] == pytest.approx(0.5 * 0.021 * 1e6 * PRICES["lambda_gb_s_arm"] + 0.20)
    assert row["sqs_usd"] == 0
    assert row["total_usd"] == pytest.approx(row["dynamodb_usd"] + row["lambda_usd"])


def test_a_path_that_raises_is_retried_by_lambda_then_parked_in_the_dlq():
    counts = {"total": 2, "sqs": {}, "units": [0.0, 2.0], "outcome": "raised KeyError('userId')"}
    row = per_million(counts, cpu_ms=0.3, settings=SETTINGS)
    assert row["invocations"] == 3e6  # the first attempt + 2 asynchronous retries
    assert row["wru"] == 6e6  # every attempt makes the same writes
    assert row["sqs_requests"] == 1e6  # Lambda's on-failure destination
    assert row["sqs_usd"] == pytest.approx(0.40)


def test_our_invalid_path_sends_its_own_dead_letter_once():
    counts = {"total": 0, "sqs": {"SendMessage": 1}, "units": [0.0, 0.0], "outcome": "rejected"}
    row = per_million(counts, cpu_ms=0.3, settings=SETTINGS)
    assert (row["invocations"], row["sqs_requests"], row["duration_ms"]) == (1e6, 1e6, 11)


def test_events_per_second_follow_duration_and_invocations():
    assert events_per_second({"duration_ms": 20, "invocations": 1e6}, concurrency=10) == 500
    assert events_per_second({"duration_ms": 20, "invocations": 2e6}, concurrency=10) == 250
    assert ASSUMED_REQUEST_MS > 0
