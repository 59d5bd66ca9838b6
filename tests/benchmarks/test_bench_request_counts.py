"""Exact DynamoDB/SQS request counts per event (issue #5): ours against the v1-style baseline.

Deterministic: counted at the botocore level against in-process moto, so they hold on any machine.
"""

from __future__ import annotations

import pytest

from benchmarks.requests import capacity_units, count_requests


@pytest.fixture
def counts(aws):
    dynamodb, sqs, config = aws
    return count_requests(dynamodb, sqs, config), config


def test_settlement_with_reservation_is_one_read_and_one_transactional_write(counts):
    results, _ = counts
    ours = results["reserved"]["ours"]
    assert ours.outcome == "settled"
    assert ours.dynamodb == {"TransactGetItems": 1, "TransactWriteItems": 1}
    assert ours.sqs == {}


def test_settlement_without_job_record_is_two_requests(counts):
    results, _ = counts
    assert results["no_job"]["ours"].outcome == "settled"
    assert results["no_job"]["ours"].dynamodb == {"TransactGetItems": 1, "TransactWriteItems": 1}


def test_duplicate_is_one_read_and_no_write(counts):
    results, _ = counts
    assert results["duplicate"]["ours"].outcome == "duplicate"
    assert results["duplicate"]["ours"].dynamodb == {"TransactGetItems": 1}


def test_conflict_is_one_read_and_one_conflict_record(counts):
    results, _ = counts
    assert results["conflict"]["ours"].outcome == "conflict"
    assert results["conflict"]["ours"].dynamodb == {"TransactGetItems": 1, "UpdateItem": 1}


def test_invalid_event_makes_no_dynamodb_request_and_one_sqs_send(counts):
    results, _ = counts
    assert results["invalid"]["ours"].outcome == "rejected"
    assert results["invalid"]["ours"].dynamodb == {}
    assert results["invalid"]["ours"].sqs == {"SendMessage": 1}


def test_no_retries_in_the_uncontended_scenarios(counts):
    results, _ = counts
    assert all(results[s]["ours"].attempts == 1 for s in results)


def test_baseline_request_counts(counts):
    results, _ = counts
    v1 = {scenario: results[scenario]["v1"] for scenario in results}
    # GetItem job (duplicate check), GetItem balance, UpdateItem balance, PutItem per ledger entry, UpdateItem job.
    assert v1["reserved"].dynamodb == {"GetItem": 2, "UpdateItem": 2, "PutItem": 2}
    assert v1["no_job"].dynamodb == {"GetItem": 2, "UpdateItem": 2, "PutItem": 1}
    assert v1["duplicate"].dynamodb == {"GetItem": 1}
    assert v1["conflict"].dynamodb == {"GetItem": 1}  # skipped silently: nothing recorded
    assert v1["invalid"].dynamodb == {} and v1["invalid"].sqs == {}
    assert [v1[s].dynamodb_total for s in ("reserved", "no_job", "duplicate", "conflict")] == [6, 5, 1, 1]


def test_capacity_units_per_event(counts):
    results, config = counts
    units = {s: {who: capacity_units(results[s][who].writes, config.ledger_table) for who in ("ours", "v1")} for s in results}
    # ours: TransactGetItems 2 items x 2 RRU; TransactWriteItems 2 WRU per item + 1 per ledger GSI write
    # (+1 for removing a reserved job from the sparse unsettled index).
    assert units["reserved"]["ours"] == (4, 4 * 2 + 2 + 1)
    assert units["no_job"]["ours"] == (4, 3 * 2 + 1)
    assert units["duplicate"]["ours"] == (4, 0)
    assert units["conflict"]["ours"] == (4, 1)
    assert units["reserved"]["v1"] == (1, 4 + 2)
    assert units["no_job"]["v1"] == (1, 3 + 1)
    assert units["duplicate"]["v1"] == (0.5, 0)
