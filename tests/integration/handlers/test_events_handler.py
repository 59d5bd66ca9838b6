"""The real Lambda handler against the dev stage's resources in moto (in-process)."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from botocore.exceptions import ClientError

from emulator.stream_poller import capture_published_events, read_captured
from reconciler.contract import BALANCE_EVENT_SOURCE, HOLD_EXPIRED_DETAIL_TYPE
from reconciler.domain.ledger import iso_timestamp
from reconciler.handlers.entry import handler
from simulator.sim import emitted_metrics
from tests.events import LambdaContext, envelope, failed, rendered
from tests.unit.domain.test_events import BAD_INPUTS


@pytest.fixture
def live(aws):
    aws.activate()
    return aws


def invoke(event):
    return handler(event, LambdaContext())


def test_a_render_with_reservation_settles_atomically_with_its_ledger(live, capsys):
    # Given alice has 100 credits and a hold of 20 for job a1 (remaining 80, held 20, nothing posted)
    live.seed_balance("alice", 100)
    live.holds().reserve("a1", "alice", "test", 20)
    assert (live.balance("alice"), live.store().get_balance("alice").held, live.ledger_sum("alice")) == (80, 20, 100)
    # When the render of 7 seconds on `test` arrives
    result = invoke(rendered("a1", "alice", seconds=7))
    # Then the hold is released and the cost posted, one entry: the ledger explains the posted balance
    assert result["outcome"] == "settled" and result["balanceDelta"] == 13 and len(result["ledgerIds"]) == 1
    assert live.balance("alice") == 93 == live.ledger_sum("alice") and live.store().get_balance("alice").held == 0
    job = live.job("a1")
    assert (job.settled_as, job.settled_by_event, job.status) == ("rendered", "evt-r-a1", "rendered")
    metrics = emitted_metrics(capsys.readouterr().out)
    # One posting; a released hold is no refund (nothing was posted for it)
    assert metrics["Adjustments"] == 1 and metrics["CreditsDebited"] == 7 and metrics["CreditsRefunded"] == 0


def test_the_settled_job_leaves_the_unsettled_index_and_its_hold_the_open_holds(live):
    # Given the pipeline's job with its unsettled marker, and a hold placed for it
    live.seed_balance("u", 10)
    live.put_job(jobId="j", userId="u", status="rendering", createdAt="2026-12-07T09:00:00.000Z", unsettled="PENDING")
    live.holds().reserve("j", "u", "test", 5)
    assert [job.job_id for job in live.store().unsettled_jobs("9999")] == ["j"]
    assert [record.job_id for record in live.store().open_holds("u")] == ["j"]
    invoke(failed("j", "u"))
    assert list(live.store().unsettled_jobs("9999")) == [] and list(live.store().open_holds("u")) == []


def test_a_duplicate_delivery_is_a_counted_no_op(live, capsys):
    live.seed_balance("bob", 10)
    invoke(rendered("b1", "bob", seconds=3))
    before = (live.balance("bob"), live.all_ledger_ids())
    capsys.readouterr()
    result = invoke(rendered("b1", "bob", seconds=3, event_id="another-delivery"))
    assert result["outcome"] == "duplicate"
    assert (live.balance("bob"), live.all_ledger_ids()) == before
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["DuplicateEvents"] == 1 and "Adjustments" not in metrics


def test_a_conflicting_terminal_event_is_recorded_counted_and_moves_nothing(live, capsys):
    live.seed_balance("carol", 10)
    live.holds().reserve("c1", "carol", "test", 4)
    invoke(failed("c1", "carol"))
    balance = live.balance("carol")
    capsys.readouterr()
    result = invoke(rendered("c1", "carol", seconds=2))
    assert result["outcome"] == "conflict"
    assert live.balance("carol") == balance == live.ledger_sum("carol")
    assert live.store().get_record("c1").conflict_event_ids == {"evt-r-c1"}
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["ConflictingEvents"] == 1 and "Adjustments" not in metrics
    # The same conflicting delivery again is only a duplicate: recorded once.
    assert invoke(rendered("c1", "carol", seconds=2))["outcome"] == "duplicate"


def test_an_event_for_an_unknown_job_settles_on_the_event_and_records_the_job(live):
    invoke(rendered("ghost", "dave", seconds=2, model="standard-v1"))
    job = live.job("ghost")
    assert (job.user_id, job.status, job.settled_as, job.model) == ("dave", "rendered", "rendered", "standard-v1")
    assert live.balance("dave") == -4 == live.ledger_sum("dave")


def test_failed_without_reservation_records_the_job_and_moves_nothing(live):
    live.put_job(jobId="f1", userId="erin", status="rendering", createdAt="2026-01-01T00:00:00.000Z")
    assert invoke(failed("f1", "erin"))["outcome"] == "settled"
    assert live.job("f1").settled_as == "failed"
    assert live.ledger("erin") == [] and live.balance("erin") is None


def test_settlement_never_refuses_for_lack_of_balance_and_counts_the_overdraft(live, capsys):
    live.seed_balance("frank", 2)
    result = invoke(rendered("x1", "frank", seconds=5))
    assert result["overdraft"] is True and live.balance("frank") == -3 == live.ledger_sum("frank")
    assert emitted_metrics(capsys.readouterr().out)["Overdrafts"] == 1


def test_a_scheduled_tick_runs_the_timer_scan(live):
    scheduled = envelope("Scheduled Event", {}, source="aws.events")
    assert handler(scheduled, LambdaContext())["examined"] == 0


def test_a_scheduled_tick_releases_an_expired_hold_counts_it_and_announces_it_on_the_bus(live, capsys):
    # Given a hold whose expiry passed a second ago (set back on its record), and a rule capturing our events
    live.seed_balance("gina", 30)
    live.holds().reserve("late", "gina", "test", 12)
    expired = iso_timestamp(datetime.now(UTC) - timedelta(seconds=1))
    live.client("dynamodb").update_item(
        TableName=live.config.settlements_table,
        Key={"jobId": {"S": "late"}},
        UpdateExpression="SET holdExpiresAt = :t",
        ExpressionAttributeValues={":t": {"S": expired}},
    )
    capture = capture_published_events(live.client("events"), live.client("sqs"), BALANCE_EVENT_SOURCE)
    # When the schedule ticks
    summary = handler(envelope("Scheduled Event", {}, source="aws.events"), LambdaContext())
    # Then the hold is back in remaining, counted, and announced once as its schema says
    assert summary["holdsExpired"] == ["late"] and (live.balance("gina"), live.held("gina")) == (30, 0)
    assert emitted_metrics(capsys.readouterr().out)["HoldsExpired"] == 1
    (event,) = read_captured(live.client("sqs"), capture)
    assert event["detail-type"] == HOLD_EXPIRED_DETAIL_TYPE
    schema = json.loads((Path(__file__).resolve().parents[3] / "docs" / "schemas" / "credits.hold.expired.json").read_text())
    jsonschema.validate(event["detail"], schema)
    assert (event["detail"]["jobId"], event["detail"]["credits"], event["detail"]["expiresAt"]) == ("late", 12, expired)
    # And the next tick finds nothing to release
    assert handler(envelope("Scheduled Event", {}, source="aws.events"), LambdaContext())["holdsExpired"] == []


@pytest.mark.parametrize(("case", "raw", "field"), BAD_INPUTS, ids=[case for case, _, _ in BAD_INPUTS])
def test_bad_input_writes_nothing_and_lands_in_the_dlq_with_its_reason(live, capsys, caplog, case, raw, field):
    # Given a stage with one user and nothing else
    live.seed_balance("u", 10)
    counts = live.item_counts()
    # When the bad event arrives
    result = invoke(raw)
    # Then nothing is written, the error names the field, and the original event is in the DLQ
    assert result["outcome"] == "rejected" and result["field"] == field
    assert live.item_counts() == counts
    [message] = live.dead_letters()
    assert message["field"] == field and message["reason"] and message["errorType"] == "InvalidEvent"
    assert message["body"] == (raw if isinstance(raw, str) else json.dumps(raw, separators=(",", ":")))
    output = capsys.readouterr().out
    metrics = emitted_metrics(output)
    assert metrics["InvalidEvents"] == 1 and "Adjustments" not in metrics
    [log] = [record for record in caplog.records if getattr(record, "outcome", None) == "rejected"]
    assert log.levelname == "ERROR" and log.field == field and log.outcome == "rejected", "a structured error log names the field"


def test_an_event_for_another_users_job_is_rejected_without_a_write(live):
    live.seed_balance("owner", 10)
    live.holds().reserve("j", "owner", "test", 5)
    counts = live.item_counts()
    result = invoke(rendered("j", "intruder"))
    assert result["outcome"] == "rejected" and result["field"] == "userId"
    assert live.item_counts() == counts and live.balance("owner") == 5
    assert live.dead_letters()[0]["field"] == "userId"


def test_an_unknown_model_is_rejected_without_a_write(live):
    counts = live.item_counts()
    assert invoke(rendered("j", "u", model="mystery"))["field"] == "model"
    assert live.item_counts() == counts


def test_a_transient_fault_raises_so_lambda_retries(live, monkeypatch):
    # A DLQ that cannot be reached must not swallow the event: Lambda's retries and on-failure route take it.
    monkeypatch.setenv("DLQ_URL", live.resources.dlq_url + "-missing")
    with pytest.raises(ClientError, match="NonExistentQueue"):
        invoke(rendered("j", "u", seconds=-1))
