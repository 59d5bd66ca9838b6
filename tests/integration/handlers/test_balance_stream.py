"""The balance-events function against moto: the Credits table's real stream, the real handler (through the local
stream poller, which stands in for Lambda's event source mapping), EventBridge with a rule that captures what was
published. Every captured event is validated against its JSON Schema in docs/schemas/."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from botocore.exceptions import ClientError

from emulator.fidelity import IN_PROCESS_STREAMS, drop_key_only_inserts
from emulator.stream_poller import (
    StreamPoller,
    balance_function_environment,
    capture_published_events,
    lambda_record,
    mapping_settings,
    read_captured,
)
from reconciler import bootstrap
from reconciler.config import load_balance_config
from reconciler.domain.crossings import Thresholds
from reconciler.domain.ledger import adjustment_entry, iso_timestamp, job_ledger_id
from reconciler.domain.stream_filter import balance_event_filters
from reconciler.handlers import balance_stream
from simulator.sim import emitted_metrics
from tests.events import LambdaContext, rendered

SCHEMAS = Path(__file__).resolve().parents[3] / "docs" / "schemas"


def validate(event: dict) -> None:
    schema = json.loads((SCHEMAS / f"{event['detail-type']}.json").read_text())
    jsonschema.validate(event["detail"], schema, format_checker=jsonschema.FormatChecker())


@dataclass
class Balances:
    aws: Any
    poller: StreamPoller
    capture_url: str

    def adjust(self, user: str, amount: int, reference: str) -> None:
        entry = adjustment_entry(user, amount, "test", f"{user}-{reference}", "test", iso_timestamp())  # references are global
        self.aws.store().commit_adjustment(entry)

    def put_item(self, **item: Any) -> None:
        from reconciler.repository.dynamodb import to_item

        self.aws.client("dynamodb").put_item(TableName=self.aws.resources.tables["Credits"], Item=to_item(item))

    def drain(self) -> int:
        return self.poller.drain(idle_polls=1)

    def published(self) -> list[dict]:
        events = read_captured(self.aws.client("sqs"), self.capture_url)
        for event in events:
            assert event["source"] == "credits.reconciler"
            validate(event)
        return events

    def history(self, user: str) -> list[dict]:
        from reconciler.repository.balance_event_store import BalanceEventLog

        return BalanceEventLog(self.aws.client("dynamodb"), self.aws.resources.tables["BalanceEvents"]).recent(user, 50)


@pytest.fixture
def balances(aws, dev_templates) -> Balances:
    aws.activate()
    os.environ.update(balance_function_environment(dev_templates, aws.resources.tables))
    load_balance_config.cache_clear()
    bootstrap.balance_event_service.cache_clear()
    dynamodb = aws.client("dynamodb")
    stream_arn = dynamodb.describe_table(TableName=aws.resources.tables["Credits"])["Table"]["LatestStreamArn"]
    streams = aws.session.client("dynamodbstreams", endpoint_url=IN_PROCESS_STREAMS)
    poller = StreamPoller(streams, stream_arn, balance_stream.handler, max_retry_attempts=3)
    capture = capture_published_events(aws.client("events"), aws.client("sqs"), "credits.reconciler")
    yield Balances(aws, poller, capture)
    bootstrap.balance_event_service.cache_clear()
    load_balance_config.cache_clear()


def kinds(events: list[dict]) -> list[tuple[str, int | None, int]]:
    return [(e["detail-type"], e["detail"]["balanceBefore"], e["detail"]["balanceAfter"]) for e in events]


def test_the_smoke_test_users_balance_never_becomes_a_balance_event(balances):
    # Given the smoke test's user and another user, each charged across every threshold
    for user in ("smoke-test-user", "u-control"):
        balances.adjust(user, 12, "open")
        balances.adjust(user, -14, "charge")  # 12 -> -2: low, exhausted, overdrawn
    # When the stream is drained through the handler
    balances.drain()
    # Then only the other user's crossings are published and recorded
    events = balances.published()
    assert {e["detail"]["userId"] for e in events} == {"u-control"} and len(events) == 3
    assert balances.history("smoke-test-user") == [] and len(balances.history("u-control")) == 3


def test_low_exhausted_overdrawn_and_restored_each_once_in_balance_order(balances):
    balances.adjust("u1", 30, "open")  # created above the threshold (10): nothing
    balances.adjust("u1", -15, "a")  # 15: still above
    balances.adjust("u1", -7, "b")  # 8: low
    balances.adjust("u1", -3, "c")  # 5: still low, nothing more
    balances.adjust("u1", -5, "d")  # 0: exhausted
    balances.adjust("u1", -4, "e")  # -4: overdrawn
    balances.adjust("u1", -1, "f")  # -5: nothing more
    balances.adjust("u1", 20, "top-up")  # 15: restored
    balances.drain()
    events = balances.published()
    assert kinds(events) == [
        ("credits.low", 15, 8),
        ("credits.exhausted", 5, 0),
        ("credits.overdrawn", 0, -4),
        ("credits.restored", -5, 15),
    ]
    assert [e["detail"]["threshold"] for e in events] == [10, 0, 0, 10]
    assert len({e["detail"]["crossingId"] for e in events}) == 4
    sequences = [int(e["detail"]["sequence"]) for e in events]
    assert sequences == sorted(sequences)
    restored = events[-1]["detail"]
    # The ledger entry behind the change, found by the item's updatedAt (= the entry's timestamp).
    assert [entry["reference"] for entry in restored["ledgerEntries"]] == ["u1-top-up"]
    assert restored["ledgerEntriesExact"] is True
    assert [h["detailType"] for h in balances.history("u1")] == ["credits.restored", "credits.overdrawn", "credits.exhausted", "credits.low"]


def test_the_templates_batching_window_holds_the_streams_records_then_delivers_them_in_one_invocation_in_order(balances, dev_templates):
    from benchmarks.stream_batching import SimulatedClock

    clock = SimulatedClock()
    balances.poller.batching_window_s = mapping_settings(dev_templates)["batching_window_s"]  # dev: 5 s
    balances.poller.clock = clock
    balances.adjust("u7", 30, "open")
    balances.adjust("u7", -22, "low")  # 30 -> 8: low
    balances.adjust("u7", -8, "out")  # 8 -> 0: exhausted
    assert balances.poller.batching_window_s == 5
    assert balances.poller.poll() == 0 and balances.poller.pending == 3 and balances.poller.invocations == 0
    clock.now = 4.9
    assert balances.poller.poll() == 0 and balances.published() == []
    clock.now = 5
    assert balances.poller.poll() == 3 and balances.poller.invocations == 1
    assert kinds(balances.published()) == [("credits.low", 30, 8), ("credits.exhausted", 8, 0)]


def test_the_threshold_filters_keep_every_crossing_and_only_changes_that_can_cross(balances):
    # The threshold filters (reconciler.domain.stream_filter), applied as Lambda applies them; the deployed mapping
    # filters nothing (every change is checked against the ledger), but these still keep every crossing.
    balances.poller.filters = balance_event_filters(Thresholds(10, 0)) or []
    balances.adjust("u9", 30, "open")  # created at 30: no side below 10, filtered out
    balances.adjust("u9", -15, "a")  # 30 -> 15: filtered out
    balances.adjust("u9", -7, "b")  # 15 -> 8: low
    balances.adjust("u9", -3, "c")  # 8 -> 5: delivered (a side below 10), nothing to publish
    balances.adjust("u9", -10, "d")  # 5 -> -5: exhausted, overdrawn
    balances.adjust("u9", 40, "top-up")  # -5 -> 35: restored
    balances.adjust("u9", 5, "more")  # 35 -> 40: filtered out
    delivered = balances.drain()
    assert kinds(balances.published()) == [
        ("credits.low", 15, 8),
        ("credits.exhausted", 5, -5),
        ("credits.overdrawn", 5, -5),
        ("credits.restored", -5, 35),
    ]
    assert (delivered, balances.poller.filtered) == (4, 3)


def test_one_change_across_every_threshold_emits_each_crossing_in_order(balances):
    balances.adjust("u2", 50, "open")
    balances.adjust("u2", -70, "big")
    balances.adjust("u2", 100, "back")
    balances.drain()
    assert kinds(balances.published()) == [
        ("credits.low", 50, -20),
        ("credits.exhausted", 50, -20),
        ("credits.overdrawn", 50, -20),
        ("credits.restored", -20, 80),
    ]


def test_a_settlement_into_overdraft_without_an_item_creates_it_in_every_condition(aws, balances):
    from reconciler.handlers.entry import handler

    result = handler(rendered("job-x", "newbie", 3), LambdaContext())
    assert result["outcome"] == "settled"
    balances.drain()
    events = balances.published()
    assert kinds(events) == [("credits.low", None, -3), ("credits.exhausted", None, -3), ("credits.overdrawn", None, -3)]
    # The cause is the job's posting, found in UserLedger at the item's updatedAt, and it explains the change
    (posting,) = events[0]["detail"]["ledgerEntries"]
    assert (posting["ledgerId"], posting["type"], posting["amount"]) == (job_ledger_id("job-x", "charge"), "debit", 3)
    assert events[0]["detail"]["ledgerEntriesExact"] is True


def test_a_crossing_names_the_postings_of_a_held_jobs_render_and_none_for_the_hold_itself(aws, balances):
    from reconciler.handlers.entry import handler
    from reconciler.service.reservations import ReservationService

    # Given 12 credits (an adjustment, in Ledger), then a hold of 5: remaining 7 is below the low threshold of 10
    balances.adjust("u5", 12, "open")
    ReservationService(aws.store()).reserve("job-h", "u5", "test", 5)
    # When the job renders for 12 credits (the hold goes, one debit is posted): remaining 7 -> 0
    assert handler(rendered("job-h", "u5", 12), LambdaContext())["outcome"] == "settled"
    # And an operator then takes 1 more: 0 -> -1
    balances.adjust("u5", -1, "claw-back")
    balances.drain()
    low, exhausted, overdrawn = balances.published()
    assert kinds([low, exhausted, overdrawn]) == [("credits.low", 12, 7), ("credits.exhausted", 7, 0), ("credits.overdrawn", 0, -1)]
    # Then the hold's crossing names no entry (a hold posts nothing)
    assert low["detail"]["ledgerEntries"] == [] and low["detail"]["ledgerEntriesExact"] is False
    # And the render's names its posting in UserLedger, the operator's its entry in Ledger
    assert [(e["ledgerId"], e["amount"]) for e in exhausted["detail"]["ledgerEntries"]] == [(job_ledger_id("job-h", "charge"), 12)]
    # (exact: the charge of 12 is the posted balance's change, remaining + held: 7 + 5 -> 0 + 0)
    assert exhausted["detail"]["ledgerEntriesExact"] is True
    assert [e["reference"] for e in overdrawn["detail"]["ledgerEntries"]] == ["u5-claw-back"]
    assert overdrawn["detail"]["ledgerEntriesExact"] is True


def test_no_event_for_changes_on_the_same_side_of_every_threshold(balances, capsys):
    balances.adjust("u3", 100, "open")
    for n in range(10):
        balances.adjust("u3", -1, f"small-{n}")  # 99 ... 90: above
    balances.adjust("u3", -85, "low")  # 5: low
    for n in range(4):
        balances.adjust("u3", -1, f"tiny-{n}")  # 4 ... 1: still low, not exhausted
    balances.drain()
    assert kinds(balances.published()) == [("credits.low", 90, 5)]
    assert emitted_metrics(capsys.readouterr().out).get("BalanceEventsPublished") == 1


def test_a_batch_that_crosses_nothing_warns_of_no_empty_metrics_and_a_crossing_still_publishes(balances, capsys):
    import warnings

    from reconciler.observability import EMPTY_METRICS_WARNING

    balances.adjust("u4", 100, "open")
    balances.drain()
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # every warning recorded, even one already shown in this process
        balances.adjust("u4", -1, "quiet")  # 100 -> 99: crosses nothing
        assert balances.drain() == 1
        quiet = capsys.readouterr().out
        balances.adjust("u4", -90, "low")  # 99 -> 9: low
        balances.drain()
        crossing = capsys.readouterr().out
        warnings.warn(EMPTY_METRICS_WARNING, UserWarning, stacklevel=1)  # the filter is the handler's own, not this test's
    assert [str(w.message) for w in caught] == [EMPTY_METRICS_WARNING]
    assert emitted_metrics(quiet) == {} and "BalanceEventsPublished" not in quiet
    assert emitted_metrics(crossing).get("BalanceEventsPublished") == 1


def test_per_user_overrides_and_a_bad_override_falls_back_and_is_reported(balances, capsys, caplog):
    balances.put_item(userId="vip", remaining=500, lowBalanceThreshold=200, overdraftAlertLevel=-50)
    balances.put_item(userId="odd", remaining=500, lowBalanceThreshold="lots")
    balances.drain()
    assert balances.published() == []  # created above every threshold
    balances.adjust("vip", -350, "a")  # 150 < 200: low (the default 10 would say nothing)
    balances.adjust("vip", -170, "b")  # -20: exhausted, not overdrawn (alert level -50)
    balances.adjust("vip", -40, "c")  # -60: overdrawn
    balances.adjust("odd", -495, "a")  # 5 < the default 10: low
    balances.drain()
    events = balances.published()
    assert kinds(events) == [("credits.low", 500, 150), ("credits.exhausted", 150, -20), ("credits.overdrawn", -20, -60), ("credits.low", 500, 5)]
    assert events[0]["detail"]["thresholds"] == {"low": 200, "overdraftAlertLevel": -50}
    assert events[2]["detail"]["threshold"] == -50
    assert events[3]["detail"]["thresholds"] == {"low": 10, "overdraftAlertLevel": 0}
    out = capsys.readouterr().out
    assert emitted_metrics(out)["BadThresholdOverrides"] >= 2  # the odd item's records, each reported
    assert "unusable threshold override; stage default used" in caplog.text


def stream_batch(balances: Any) -> list[dict]:
    """Every record of the Credits stream so far, as one Lambda batch (what the event source mapping would send)."""
    streams, arn = balances.poller.streams, balances.poller.stream_arn
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return [lambda_record(r, arn) for r in drop_key_only_inserts(streams.get_records(ShardIterator=iterator))["Records"]]


def test_a_retried_batch_publishes_nothing_twice(balances, capsys):
    balances.adjust("u4", 20, "open")
    balances.adjust("u4", -15, "low")
    balances.adjust("u4", 30, "top-up")
    records = stream_batch(balances)
    event = {"Records": records}
    first = balance_stream.handler(event, LambdaContext())
    second = balance_stream.handler(event, LambdaContext())  # Lambda delivers the same batch again
    assert first == second == {"batchItemFailures": []}
    events = balances.published()
    assert kinds(events) == [("credits.low", 20, 5), ("credits.restored", 5, 35)]
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["BalanceEventsPublished"] == 2 and metrics["BalanceEventsAlreadyPublished"] == 2


class FlakyEvents:
    """Wraps the function's EventBridge client: the first `failures` PutEvents fail in the given way."""

    def __init__(self, real: Any, failures: int, how: str) -> None:
        self.real, self.failures, self.how, self.calls = real, failures, how, 0

    def put_events(self, **request: Any) -> dict:
        self.calls += 1
        if self.calls <= self.failures:
            if self.how == "failed-entry":  # HTTP 200, the entry refused
                return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}]}
            raise ClientError({"Error": {"Code": "InternalException", "Message": "boom"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "PutEvents")
        return self.real.put_events(**request)


@pytest.mark.parametrize("how", ["failed-entry", "server-error"])
def test_a_publish_failure_is_reported_with_every_later_record_and_retried_from_itself(balances, capsys, how):
    balances.adjust("u5", 20, "open")
    balances.adjust("u5", -15, "low")  # crossing: its publish fails once
    balances.adjust("u6", 3, "open")  # a later record (another user): not handled before the failed one
    service = bootstrap.balance_event_service()
    service.publisher.client = FlakyEvents(service.publisher.client, failures=1, how=how)
    records = stream_batch(balances)
    response = balance_stream.handler({"Records": records}, LambdaContext())
    sequences = [r["dynamodb"]["SequenceNumber"] for r in records]
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == sequences[1:]
    assert balances.published() == []  # nothing out of order: u6's low waits for u5's
    assert balances.history("u5") == []  # no marker for what was not published
    # Lambda retries from the failed record:
    assert balance_stream.handler({"Records": records[1:]}, LambdaContext()) == {"batchItemFailures": []}
    assert kinds(balances.published()) == [("credits.low", 20, 5), ("credits.low", None, 3)]
    assert emitted_metrics(capsys.readouterr().out)["BalanceEventFailures"] == 1


def test_publish_failures_never_touch_settlement(aws, balances):
    """Settlement writes what it always wrote (no extra write, no event call); a broken EventBridge only
    delays the events, which follow once publishing works."""
    from reconciler.handlers.entry import handler

    balances.adjust("u7", 12, "open")
    service = bootstrap.balance_event_service()
    service.publisher.client = FlakyEvents(service.publisher.client, failures=10**6, how="server-error")
    assert handler(rendered("job-7", "u7", 5), LambdaContext())["outcome"] == "settled"
    assert aws.balance("u7") == 7
    balances.poller.max_retry_attempts = 10**6
    for _ in range(3):
        balances.poller.poll()
    assert balances.published() == []
    service.publisher.client = service.publisher.client.real
    balances.drain()
    assert kinds(balances.published()) == [("credits.low", 12, 7)]


def test_damaged_records_are_reported_and_skipped_and_removals_emit_nothing(balances, capsys, caplog):
    balances.put_item(userId="broken", remaining="not a number")
    balances.put_item(userId="fraction", remaining=Decimal("3.5"))
    balances.adjust("fine", 4, "open")  # after the damaged ones: still handled
    balances.aws.client("dynamodb").delete_item(TableName=balances.aws.resources.tables["Credits"], Key={"userId": {"S": "fine"}})
    balances.drain()
    assert kinds(balances.published()) == [("credits.low", None, 4)]
    assert balances.poller.given_up == []
    out = capsys.readouterr().out
    assert emitted_metrics(out)["DamagedBalanceRecords"] == 2
    assert caplog.text.count("damaged Credits stream record reported and skipped") == 2


def test_a_text_balance_is_damage_as_settlement_says_not_a_number_to_publish_on(balances, aws, capsys, caplog):
    """A `remaining` stored as text, even "5", is unusable to settlement (it dead-letters the user's renders naming
    `balance`): the stream reports it as damage, never publishes `credits.low` on it nor `restored` from it."""
    balances.put_item(userId="typed", remaining="5")  # a stray write: 5 (under the low threshold) as a String attribute
    balances.put_item(userId="typed", remaining=Decimal(100))  # the operator's repair, from "5"
    balances.drain()
    assert balances.published() == []
    assert emitted_metrics(capsys.readouterr().out)["DamagedBalanceRecords"] == 2
    assert caplog.text.count("damaged Credits stream record reported and skipped") == 2
    assert balances.history("typed") == []


def test_a_record_that_keeps_failing_is_given_up_to_the_failure_queue_after_the_retries(balances):
    sqs = balances.aws.client("sqs")
    queue = next(url for name, url in balances.aws.resources.queues.items() if name.startswith("cc-reconciler-balance-events-failures-"))
    balances.poller.sqs, balances.poller.failure_queue_url = sqs, queue
    balances.adjust("u8", 5, "open")
    service = bootstrap.balance_event_service()
    service.publisher.client = FlakyEvents(service.publisher.client, failures=10**6, how="failed-entry")
    balances.drain()
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    assert len(messages) == 1
    assert json.loads(messages[0]["Body"])["DDBStreamBatchInfo"]["batchSize"] == 1
    assert service.publisher.client.calls == 1 + balances.poller.max_retry_attempts
