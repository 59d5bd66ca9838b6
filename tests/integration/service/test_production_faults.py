"""Each class of bug the production-fault review found (issue #9), as AWS shapes it: each test failed before its fix."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from emulator import fidelity
from reconciler.domain.errors import InvalidEvent
from reconciler.domain.ledger import adjustment_entry, iso_timestamp
from reconciler.handlers.entry import handler
from reconciler.service.reservations import ReservationService
from reconciler.service.timer_scan import TimerScan
from simulator.sim import emitted_metrics
from tests.events import LambdaContext, envelope, failed, rendered
from tests.integration.service.test_faults import FaultyClient

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def ago(**delta: Any) -> str:
    return iso_timestamp(NOW - timedelta(**delta))


@pytest.fixture
def live(aws):
    aws.activate()
    return aws


def scan_of(aws, dynamodb=None) -> TimerScan:
    processor = aws.processor(dynamodb)
    return TimerScan(processor.settlement.store, processor.settlement, grace=timedelta(minutes=15), stuck_after=timedelta(hours=6), now=lambda: NOW)


def finished_job(aws, job_id: str, status: str = "failed", **extra: Any) -> None:
    aws.put_job(jobId=job_id, userId="u", model="test", status=status, createdAt=ago(hours=2), updatedAt=ago(hours=1), unsettled="PENDING", **extra)


# --- one bad Jobs item never halts the timer scan ---------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [{"reservedCredits": Decimal("-5")}, {"reservedCredits": Decimal("1.5")}, {"reservedCredits": "ten"}, {"updatedAt": Decimal(17)}],
    ids=["negative", "fractional", "non-numeric", "numeric-timestamp"],
)
def test_a_damaged_job_is_reported_unsettleable_and_the_jobs_behind_it_settle(aws, damage):
    # Given a damaged job that the index returns first, and a healthy finished job behind it
    aws.seed_balance("u", 10)
    item = {
        "jobId": "a-damaged",
        "userId": "u",
        "status": "failed",
        "createdAt": ago(hours=3),
        "updatedAt": ago(hours=2),
        "unsettled": "PENDING",
        "model": "test",
    }
    aws.put_job(**{**item, **damage})
    finished_job(aws, "b-healthy")
    # When the scan runs, twice
    first, second = scan_of(aws).run(), scan_of(aws).run()
    # Then the damaged job is reported with its reason, every tick, and the healthy one is settled once
    assert [job.job_id for job, _ in first.unsettleable] == ["a-damaged"] == [job.job_id for job, _ in second.unsettleable]
    assert "stored job 'a-damaged' is unusable" in first.unsettleable[0][1]
    assert [o.event.job_id for o in first.settled] == ["b-healthy"] and aws.job("b-healthy").settled_as == "failed"


def test_the_scan_handler_counts_unsettleable_jobs_and_alerts(live, capsys):
    live.put_job(
        jobId="broken",
        userId="u",
        status="rendered",
        seconds="soon",
        model="test",
        createdAt="2020-01-01T00:00:00.000Z",
        updatedAt="2020-01-01T00:00:00.000Z",
        unsettled="PENDING",
    )
    summary = handler({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}, LambdaContext())
    assert [entry["jobId"] for entry in summary["unsettleable"]] == ["broken"]
    assert emitted_metrics(capsys.readouterr().out)["UnsettleableJobs"] == 1


def test_an_event_for_a_damaged_job_goes_to_the_dlq_with_its_reason_and_writes_nothing(live):
    # A reservation from before settlement records (created before the cut-off), stored as a fraction
    live.put_job(jobId="j", userId="u", status="rendering", reservedCredits=Decimal("2.5"), createdAt="2026-11-01T00:00:00.000Z")
    counts = live.item_counts()
    result = handler(failed("j", "u"), LambdaContext())
    assert result["outcome"] == "rejected" and result["field"] == "job"
    [letter] = live.dead_letters()
    assert letter["errorType"] == "DamagedJob" and "reservedCredits" in letter["reason"]
    assert live.item_counts() == counts


# --- the scan settles only on the job state it decided on --------------------------------------------------------


class PipelineWritesAroundTheCommit(FaultyClient):
    """Lets the pipeline write the job around the reconciler's first transactional write: just before it, or
    just after it committed (and then loses the commit's answer, so the reconciler reads the job again)."""

    def __init__(self, real: Any, pipeline_write: Any, *, after_commit: bool = False) -> None:
        super().__init__(real)
        self.pipeline_write = pipeline_write
        self.after_commit = after_commit

    def __getattr__(self, operation: str) -> Any:
        call = super().__getattr__(operation)
        if operation != "transact_write_items" or self.pipeline_write is None:
            return call

        def write(**request: Any) -> Any:
            pipeline_write, self.pipeline_write = self.pipeline_write, None
            if not self.after_commit:
                pipeline_write()
                return call(**request)
            call(**request)
            pipeline_write()
            raise fidelity.read_timeout()

        return write


def test_the_scan_does_not_settle_a_job_the_pipeline_changed_between_its_read_and_its_write(aws):
    # Given a job the pipeline had marked failed an hour ago, with a reservation
    aws.seed_balance("u", 10)
    aws.put_job(jobId="flip", userId="u", model="test", status="rendering", createdAt=ago(hours=2), unsettled="PENDING")
    ReservationService(aws.store()).reserve("flip", "u", "test", 4)
    aws.client("dynamodb").update_item(
        TableName="Jobs-dev",
        Key={"jobId": {"S": "flip"}},
        UpdateExpression="SET #s = :s, updatedAt = :t, createdAt = :c",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "failed"}, ":t": {"S": ago(hours=1)}, ":c": {"S": ago(hours=2)}},
    )

    def pipeline_says_rendered() -> None:
        aws.client("dynamodb").update_item(
            TableName="Jobs-dev",
            Key={"jobId": {"S": "flip"}},
            UpdateExpression="SET #s = :s, updatedAt = :t, seconds = :n",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": "rendered"}, ":t": {"S": ago(minutes=1)}, ":n": {"N": "3"}},
        )

    # When the pipeline writes "rendered" between the scan's read and its write
    report = scan_of(aws, PipelineWritesAroundTheCommit(aws.client("dynamodb"), pipeline_says_rendered)).run()
    # Then nothing is refunded as a failure and the pipeline's write stands; the job waits for its event
    job = aws.job("flip")
    assert report.settled == [] and job.settled_as is None and job.status == "rendered"
    # (the hold of 4 stays: what can be spent plus what is held is still the ledger)
    assert (aws.balance("u"), aws.held("u")) == (6, 4) and aws.ledger_sum("u") == 10


# --- throttling and timeouts as AWS sends them ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "read_throttle"),
    [
        (fidelity.THROTTLING_REASON, "ThrottlingException"),
        (fidelity.PROVISIONED_REASON, "ProvisionedThroughputExceededException"),
        (fidelity.CONFLICT_REASON, "RequestLimitExceeded"),
    ],
    ids=lambda value: value[0] if isinstance(value, tuple) else value,
)
def test_a_transaction_cancelled_for_throttling_or_conflict_and_a_throttled_read_are_retried(aws, reason, read_throttle):
    aws.seed_balance("u", 50)
    code, message = reason
    client = FaultyClient(
        aws.client("dynamodb"),
        transact_write_items=[fidelity.transaction_cancelled("TransactWriteItems", 3, code, message, 1)],
        get_item=[fidelity.single_request_throttle("GetItem", read_throttle)],
    )
    outcome = aws.processor(client).process(rendered("j", "u", seconds=4))
    assert outcome.kind == "settled" and outcome.attempts == 3
    assert aws.balance("u") == 46 == aws.ledger_sum("u")


def test_a_read_that_times_out_after_botocores_retries_is_read_again(aws):
    aws.seed_balance("u", 50)
    client = FaultyClient(aws.client("dynamodb"), get_item=[fidelity.read_timeout(), fidelity.connect_timeout()])
    outcome = aws.processor(client).process(rendered("j", "u", seconds=4))
    assert outcome.kind == "settled" and outcome.attempts == 3


# --- a lost reply and Lambda's own retry are the settlement they were -----------------------------------------------


def test_lambdas_retry_after_a_timeout_that_followed_the_commit_counts_the_settlement_once(live, capsys):
    # Given an invocation that committed and then timed out before emitting its metrics
    live.seed_balance("u", 50)
    live.processor().process(rendered("j", "u", seconds=4), request_id="request-retried")
    capsys.readouterr()
    # When Lambda retries it, with the same request id
    result = handler(rendered("j", "u", seconds=4), LambdaContext("request-retried"))
    # Then it is that settlement, and its metrics are emitted (once: the first attempt emitted none)
    assert result["outcome"] == "settled" and result["recovered"] is True
    metrics = emitted_metrics(capsys.readouterr().out)
    assert (metrics["Settlements"], metrics["CreditsDebited"]) == (1, 4)
    # While a redelivery by EventBridge (a new request) is a duplicate
    assert handler(rendered("j", "u", seconds=4), LambdaContext())["outcome"] == "duplicate"
    assert live.balance("u") == 46


def test_a_conflict_whose_record_answer_was_lost_is_still_a_conflict(aws):
    aws.seed_balance("u", 50)
    aws.processor().process(failed("j", "u"))
    client = FaultyClient(aws.client("dynamodb"), update_item=["lose-answer"])
    outcome = aws.processor(client).process(rendered("j", "u", seconds=4))
    assert outcome.kind == "conflict" and outcome.attempts == 2
    assert aws.store().get_record("j").conflict_event_ids == {"evt-r-j"}


# --- ledger ids never collide across writers -----------------------------------------------------------------------


def test_a_job_named_adjustment_and_an_adjustment_referenced_charge_both_apply(aws):
    aws.seed_balance("u", 50)
    outcome = aws.processor().process(rendered("adjustment", "u", seconds=4))
    aws.store().commit_adjustment(adjustment_entry("u", -7, "chargeback", "charge", "ops", iso_timestamp()))
    assert outcome.kind == "settled"
    assert aws.balance("u") == 50 - 4 - 7 == aws.ledger_sum("u")
    assert {"job:10:adjustment:charge", "adjustment:6:charge"} <= set(aws.all_ledger_ids())


def test_an_adjustment_applied_under_the_old_id_is_not_applied_again(aws):
    dynamodb = aws.client("dynamodb")
    dynamodb.put_item(
        TableName="Ledger-dev",
        Item={
            "ledgerId": {"S": "adjustment#INC-1"},
            "userId": {"S": "u"},
            "timestamp": {"S": iso_timestamp()},
            "type": {"S": "credit"},
            "amount": {"N": "5"},
            "reference": {"S": "INC-1"},
        },
    )
    from reconciler.domain.errors import LedgerEntryTaken

    with pytest.raises(LedgerEntryTaken):
        aws.store().commit_adjustment(adjustment_entry("u", 5, "goodwill", "INC-1", "ops", iso_timestamp()))
    assert aws.balance("u") is None


def test_a_v1_entry_under_a_postings_id_in_ledger_neither_blocks_nor_doubles_the_settlement(live):
    # Given a hand-written v1 entry that happens to carry the id the render's charge will have
    live.client("dynamodb").put_item(
        TableName="Ledger-dev",
        Item={
            "ledgerId": {"S": "job:1:j:charge"},
            "userId": {"S": "u"},
            "timestamp": {"S": iso_timestamp()},
            "type": {"S": "debit"},
            "amount": {"N": "1"},
            "reference": {"S": "j"},
        },
    )
    live.seed_balance("u", 50)
    # Then the settlement posts its charge to UserLedger (exactly once comes from the job's condition), and a
    # redelivery is a duplicate
    assert handler(rendered("j", "u", seconds=4), LambdaContext())["outcome"] == "settled"
    assert handler(rendered("j", "u", seconds=4), LambdaContext())["outcome"] == "duplicate"
    assert live.balance("u") == 46 and live.job("j").charged_credits == 4 and live.dead_letters() == []


# --- numbers and strings at the edges ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seconds",
    [Decimal("1e-200"), 10**5000, Decimal("1." + "1" * 40), float("nan")],
    ids=["underflows-dynamodb", "5000-digits", "39-significant-digits", "nan"],
)
def test_numbers_dynamodb_cannot_store_are_refused_with_a_reason(live, seconds):
    result = handler(rendered("j", "u", seconds=seconds), LambdaContext())
    assert result["outcome"] == "rejected" and result["field"] == "seconds"
    assert live.item_counts()["Jobs-dev"] == 0 and live.dead_letters()


def test_a_duration_with_30_significant_digits_in_a_json_detail_is_charged_its_exact_ceiling(live):
    detail = '{"jobId": "j", "userId": "u", "seconds": 1.00000000000000000000000000001, "model": "test"}'
    result = handler(envelope("video.rendered", detail, "evt-long"), LambdaContext())
    assert result["outcome"] == "settled" and result["balanceDelta"] == -2


@pytest.mark.parametrize("job_id", ["lone\ud800", "bell\x07", "x" * 257], ids=["lone-surrogate", "control-character", "257-characters"])
def test_crafted_ids_reach_the_dlq_in_a_form_sqs_accepts(live, job_id):
    raw = json.dumps({**rendered("j", "u"), "detail": {"jobId": job_id, "userId": "u", "seconds": 1, "model": "test"}})
    result = handler(json.loads(raw), LambdaContext())
    assert result["outcome"] == "rejected" and result["field"] == "jobId"
    [letter] = live.dead_letters()
    assert json.loads(letter["body"])["detail"]["jobId"] == job_id  # the original, exactly
    assert fidelity.violations == [] or all("SendMessage" not in v for v in fidelity.violations)


def test_a_text_body_with_control_characters_is_dead_lettered_as_a_json_string(aws):
    from reconciler.repository.sqs_dead_letters import SqsDeadLetters

    SqsDeadLetters(aws.client("sqs"), aws.resources.dlq_url, "dev").send(
        "not json\x00\x1b", error_type="InvalidEvent", field="event", reason="is not JSON\x07"
    )
    [letter] = aws.dead_letters()
    assert letter["bodyEncoding"] == "json-string" and json.loads(letter["body"]) == "not json\x00\x1b"
    assert letter["reason"] == "is not JSON\\u0007"


def test_the_fidelity_layer_refuses_what_sqs_refuses(aws):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as refused:
        aws.client("sqs").send_message(QueueUrl=aws.resources.dlq_url, MessageBody="bell\x07")
    assert refused.value.response["Error"]["Code"] == "InvalidMessageContents"
    with pytest.raises(ClientError):
        aws.client("sqs").send_message(
            QueueUrl=aws.resources.dlq_url, MessageBody="x", MessageAttributes={"reason": {"DataType": "String", "StringValue": ""}}
        )


# --- reserve() validates as settlement does ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job_id", "model", "credits", "field"),
    [
        ("job\x01", "test", 5, "jobId"),
        ("x" * 2000, "test", 5, "jobId"),
        ("lone\ud800", "test", 5, "jobId"),
        ("j", "no-such-model", 5, "model"),
        ("j", "test", 10**13, "credits"),
    ],
    ids=["unprintable-id", "2000-characters", "lone-surrogate-refused-before-any-read", "unknown-model", "too-many-credits"],
)
def test_reserve_refuses_what_settlement_would_refuse_and_holds_nothing(aws, job_id, model, credits, field):
    aws.seed_balance("u", 50)
    with pytest.raises(InvalidEvent) as refused:
        ReservationService(aws.store()).reserve(job_id, "u", model, credits)
    assert refused.value.field == field
    assert aws.balance("u") == 50 and aws.item_counts()["Jobs-dev"] == 0


def test_a_scan_settlement_whose_answer_was_lost_is_reported_as_settled(aws):
    # Given a finished job whose event was lost, and a commit whose answer never comes back
    finished_job(aws, "quiet")
    client = FaultyClient(aws.client("dynamodb"), transact_write_items=["lose-answer"])
    # When the scan settles it and reads it again
    report = scan_of(aws, client).run()
    # Then it is this tick's settlement (counted), not a job left waiting
    assert [o.event.job_id for o in report.settled] == ["quiet"] and report.settled[0].decision.recovered
    assert report.waiting == []


def test_a_scan_settlement_stays_its_own_when_the_pipeline_writes_before_the_re_read(aws):
    # Given a finished job, whose scan settlement commits while its answer is lost
    finished_job(aws, "late")

    def pipeline_touches_the_job() -> None:
        aws.client("dynamodb").update_item(
            TableName="Jobs-dev",
            Key={"jobId": {"S": "late"}},
            UpdateExpression="SET updatedAt = :t",
            ExpressionAttributeValues={":t": {"S": ago(minutes=1)}},
        )

    # When the pipeline writes the job (within the grace period) before the scan reads it again
    report = scan_of(aws, PipelineWritesAroundTheCommit(aws.client("dynamodb"), pipeline_touches_the_job, after_commit=True)).run()
    # Then the scan still reports (and counts) its own settlement, instead of a job left waiting
    assert [o.event.job_id for o in report.settled] == ["late"] and report.waiting == []
