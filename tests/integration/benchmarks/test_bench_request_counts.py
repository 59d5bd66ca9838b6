"""Exact DynamoDB/SQS request counts per event (issue #5): ours against the v1-style baseline and that baseline
made idempotent with Powertools' idempotency utility.

Deterministic: counted at the botocore level against in-process moto, so they hold on any machine.
"""

from __future__ import annotations

import pytest

from benchmarks.requests import count_requests
from benchmarks.units import _Index, _index_writes
from reconciler.domain.crossings import Thresholds
from reconciler.domain.stream_filter import balance_event_filters, matches


@pytest.fixture
def counts(aws):
    return count_requests(aws.client("dynamodb"), aws.client("sqs"), aws.config, events=aws.client("events")), aws.config


def test_settlement_with_reservation_is_one_read_and_one_transactional_write(counts):
    results, _ = counts
    ours = results["reserved"]["ours"]
    assert ours.outcome == "settled"
    assert ours.dynamodb == {"GetItem": 1, "TransactWriteItems": 1}
    assert ours.sqs == {}


def test_settlement_without_job_record_is_two_requests(counts):
    results, _ = counts
    assert results["no_job"]["ours"].outcome == "settled"
    assert results["no_job"]["ours"].dynamodb == {"GetItem": 1, "TransactWriteItems": 1}


def test_duplicate_is_one_read_and_no_write(counts):
    results, _ = counts
    assert results["duplicate"]["ours"].outcome == "duplicate"
    assert results["duplicate"]["ours"].dynamodb == {"GetItem": 1}


def test_conflict_is_one_read_and_one_conflict_record(counts):
    results, _ = counts
    assert results["conflict"]["ours"].outcome == "conflict"
    assert results["conflict"]["ours"].dynamodb == {"GetItem": 1, "UpdateItem": 1}


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
    v1 = {scenario: results[scenario]["v1"] for scenario in results if "v1" in results[scenario]}
    # GetItem job (duplicate check), GetItem balance, UpdateItem balance, PutItem per ledger entry, UpdateItem job.
    assert v1["reserved"].dynamodb == {"GetItem": 2, "UpdateItem": 2, "PutItem": 2}
    assert v1["no_job"].dynamodb == {"GetItem": 2, "UpdateItem": 2, "PutItem": 1}
    assert v1["failed_reserved"].dynamodb == {"GetItem": 2, "UpdateItem": 2, "PutItem": 1}  # the refund
    assert v1["duplicate"].dynamodb == {"GetItem": 1}
    assert v1["conflict"].dynamodb == {"GetItem": 1}  # skipped silently: nothing recorded
    assert v1["invalid"].dynamodb == {} and v1["invalid"].sqs == {}
    assert [v1[s].dynamodb_total for s in ("reserved", "no_job", "duplicate", "conflict")] == [6, 5, 1, 1]


def test_capacity_units_per_event(counts):
    results, _ = counts
    units = {s: {who: results[s][who].units for who in ("ours", "v1")} for s in ("reserved", "no_job", "duplicate", "conflict")}
    # ours: one eventually consistent GetItem of the job's settlement record (0.5 RRU); TransactWriteItems 2 WRU
    # per item, no index write for a posting (UserLedger is keyed by user). Since settlement records (issue #21,
    # docs/ledger.md): the record is one item more (+2), and a held job leaves two sparse indexes (+1 each): the
    # record's open holds and the pipeline's unsettled jobs.
    assert units["reserved"]["ours"] == (0.5, 4 * 2 + 2)  # balance, the charge, the record, the job; two index deletes
    assert units["no_job"]["ours"] == (0.5, 4 * 2)  # balance, the charge, the new record, the new job
    assert units["duplicate"]["ours"] == (0.5, 0)  # what v1 pays to find out it has nothing to do
    assert units["conflict"]["ours"] == (0.5, 1)  # one UpdateItem of the record
    # v1: 2 eventually consistent reads; 1 WRU per write + 1 per ledger GSI write, + 1 because its job update
    # changes attributes the sparse unsettled index projects (v1 does not know the marker, so the job stays in it).
    assert units["reserved"]["v1"] == (1, 4 + 2 + 1)
    assert units["no_job"]["v1"] == (1, 3 + 1)
    assert units["duplicate"]["v1"] == (0.5, 0)
    assert units["conflict"]["v1"] == (0.5, 0)


def test_a_held_jobs_failure_and_the_hold_itself_are_one_read_and_one_transaction_without_a_posting(counts):
    results, _ = counts
    failure, hold = results["failed_reserved"]["ours"], results["reservation"]["ours"]
    assert (failure.outcome, failure.dynamodb) == ("settled", {"GetItem": 1, "TransactWriteItems": 1})
    assert (hold.outcome, hold.dynamodb) == ("reserved", {"GetItem": 2, "TransactWriteItems": 1})
    # The failure: balance, record and job (3 x 2) and two index deletes (open holds, unsettled jobs). The hold:
    # balance and record (2 x 2) and the open-holds index put; the Jobs item is the pipeline's and is not touched.
    # The settlement's read is eventually consistent (0.5 RRU); the hold's of the record is strong (1 RRU): a hold
    # found already in place writes nothing, so an earlier version could answer "in place" for a job settled since.
    # A job with no record has its Jobs item read too, eventually consistent (0.5 RRU): a reservation made there
    # before the cut-off is the job's hold already.
    assert failure.units == (0.5, 3 * 2 + 2)
    assert hold.units == (1.5, 2 * 2 + 1)


def test_powertools_baseline_adds_its_record_to_every_path(counts):
    results, _ = counts
    pt = {scenario: results[scenario]["powertools"] for scenario in results if "powertools" in results[scenario]}
    v1 = {scenario: results[scenario]["v1"] for scenario in pt}
    # A first delivery: the in-progress PutItem, v1's own calls, then the UpdateItem that stores the answer.
    for scenario in ("reserved", "no_job", "failed_reserved", "conflict"):
        extra = {"PutItem": 1, "UpdateItem": 1}
        assert pt[scenario].dynamodb == {op: v1[scenario].dynamodb.get(op, 0) + extra.get(op, 0) for op in v1[scenario].dynamodb | extra}
        assert pt[scenario].units == (v1[scenario].units[0], v1[scenario].units[1] + 2)
        assert pt[scenario].outcome == v1[scenario].outcome
    # A redelivery: the PutItem fails its condition and carries the stored record back (ALL_OLD): 1 WRU, no read.
    assert pt["duplicate"].dynamodb == {"PutItem": 1}
    assert (pt["duplicate"].outcome, pt["duplicate"].units) == ("replayed", (0, 1))
    # v1 raises: the record is deleted so Lambda's retry can run it again; the error still reaches Lambda.
    assert pt["invalid"].dynamodb == {"PutItem": 1, "DeleteItem": 1}
    assert (pt["invalid"].outcome, pt["invalid"].units) == ("raised KeyError('userId')", (0, 2))
    assert all(c.sqs == {} for c in pt.values())


def test_a_hot_users_partition_is_its_balance_item(counts):
    results, config = counts
    for who in ("ours", "v1", "powertools"):
        settled = results["no_job"][who]
        balance = f"{config.credits_table} userId={settled.user}"
        assert settled.partitions[balance] == (2 if who == "ours" else 1)  # transactional writes count twice
        assert settled.user_partition_wru() == max(w for name, w in settled.partitions.items() if name.endswith(f"={settled.user}"))
        assert results["duplicate"][who].user_partition_wru() == 0


def test_index_write_rules():
    """AWS's rules for global secondary index writes (DynamoDB Developer Guide, GSI throughput considerations)."""
    table = _Index(None, ("jobId",))
    sparse = _Index("unsettled-index", ("unsettled", "createdAt"), "ALL")
    keys_only = _Index("by-user", ("userId",), "KEYS_ONLY")
    job = {"jobId": {"S": "j"}, "userId": {"S": "u"}, "createdAt": {"S": "t"}, "status": {"S": "submitted"}}
    marked = {**job, "unsettled": {"S": "PENDING"}}
    assert _index_writes(sparse, table, None, job) == 0  # never in the sparse index
    assert _index_writes(sparse, table, None, marked) == 1  # put into it
    assert _index_writes(sparse, table, marked, job) == 1  # deleted from it
    assert _index_writes(sparse, table, marked, {**marked, "createdAt": {"S": "t2"}}) == 2  # key change: delete + put
    assert _index_writes(sparse, table, marked, {**marked, "status": {"S": "rendered"}}) == 1  # projected attribute
    assert _index_writes(sparse, table, marked, marked) == 0  # a failed condition writes no index
    assert _index_writes(keys_only, table, job, {**job, "status": {"S": "rendered"}}) == 0  # not projected


def test_the_credits_stream_records_of_each_path_and_what_the_filter_delivers(counts):
    results, config = counts
    records = {scenario: results[scenario]["ours"].stream_records.get(config.credits_table, []) for scenario in results}
    # A settlement or a hold changes the balance item once; a duplicate, a conflict and a rejection do not touch it.
    assert {scenario: len(found) for scenario, found in records.items()} == {
        "reserved": 1,
        "no_job": 1,
        "failed_reserved": 1,
        "duplicate": 0,
        "conflict": 0,
        "invalid": 0,
        "reservation": 1,
        "low_balance": 1,
    }
    [settled] = records["no_job"]
    assert settled["eventName"] == "MODIFY" and int(settled["dynamodb"]["NewImage"]["remaining"]["N"]) < 1000
    # Only the Credits table streams; the bench's users stay far above the low threshold, so nothing is delivered,
    # but the low-balance render's change.
    assert all(set(results[s]["ours"].stream_records) <= {config.credits_table} for s in results)
    filters = balance_event_filters(Thresholds(10, 0))
    delivered = {scenario for scenario, found in records.items() for record in found if matches(filters, record)}
    assert delivered == {"low_balance"}


def test_the_balance_function_runs_on_each_credits_record_ours_writes(counts):
    results, config = counts
    for scenario in ("reserved", "no_job", "failed_reserved", "duplicate", "conflict", "invalid"):
        ours = results[scenario]["ours"]
        assert len(ours.balance_runs) == len(ours.stream_records.get(config.credits_table, [])), scenario
    settled = results["reserved"]["ours"].balance_runs
    assert len(settled) == 1  # one balance change: one record, one invocation at low traffic
    assert settled[0]["failed"] == 0 and settled[0]["entries"] == 0  # 1,000 credits left: no crossing, nothing put
    assert results["duplicate"]["ours"].balance_runs == []  # a duplicate writes no balance
    assert results["reserved"]["v1"].balance_runs == []  # the baselines have no balance events


def test_a_render_below_the_low_threshold_is_measured_through_the_function(counts):
    results, _ = counts
    low = results["low_balance"]["ours"]
    assert low.outcome == "settled"
    (run,) = low.balance_runs
    assert run["failed"] == 0
    assert run["entries"] >= 1 and run["events"] == {"PutEvents": run["entries"]}  # a PutEvents of one entry per crossing
    assert sum(run["dynamodb"].values()) >= 1 and run["units"][1] > 0  # what it reads and records is metered
    assert run["log_bytes"] > 0 and run["emf_bytes"] > 0
