"""Credits in through the real Lambda handler against the dev stage's resources in moto (in-process): purchases,
grants and revocations applied once with their ledger entries; bad input dead-lettered with nothing written."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from reconciler import bootstrap
from reconciler.domain.ledger import adjustment_entry
from reconciler.handlers.entry import handler
from simulator.sim import emitted_metrics
from tests.events import LambdaContext, envelope


@pytest.fixture
def live(aws):
    aws.activate()
    # What a person would get: a queue subscribed to the ops topic.
    sqs = aws.client("sqs")
    aws.alerts_queue_url = sqs.create_queue(QueueName="test-ops-alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=aws.alerts_queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.client("sns").subscribe(TopicArn=aws.resources.ops_topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return aws


def credits_event(detail_type: str, event_id: str = "evt-c1", **detail) -> dict:
    return envelope(detail_type, detail, event_id=event_id, source="credits.billing")


def purchase(user: str = "ann", credits: int = 500, reference: str = "pi_1", event_id: str = "evt-p1", **extra) -> dict:
    return credits_event(
        "credits.purchased", event_id, userId=user, credits=credits, reference=reference, amountPaid="19.99", currency="USD", **extra
    )


def invoke(event):
    return handler(event, LambdaContext())


def ledger_item(live, ledger_id: str) -> dict:
    item = live.client("dynamodb").get_item(TableName=live.config.ledger_table, Key={"ledgerId": {"S": ledger_id}}, ConsistentRead=True)["Item"]
    return {name: next(iter(value.values())) for name, value in item.items()}


def ops_alerts(live) -> list[dict]:
    """What reached the ops topic (the local stack subscribes a queue to it)."""
    sqs = live.client("sqs")
    messages = sqs.receive_message(QueueUrl=live.alerts_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
    return [json.loads(json.loads(message["Body"])["Message"]) for message in messages]


def test_a_purchase_is_applied_with_a_paid_entry_carrying_its_payment(live, capsys):
    result = invoke(purchase())
    assert result["outcome"] == "applied" and result["balanceDelta"] == 500 and result["ledgerId"] == "purchase:4:pi_1"
    assert live.balance("ann") == 500 == live.ledger_sum("ann")
    item = ledger_item(live, "purchase:4:pi_1")
    assert (item["type"], item["amount"], item["category"], item["reference"]) == ("credit", "500", "paid", "pi_1")
    assert (Decimal(item["amountPaid"]), item["currency"], item["eventId"]) == (Decimal("19.99"), "USD", "evt-p1")
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["CreditsInApplied"] == 1 and metrics["CreditsAdded"] == 500


def test_a_purchase_delivered_again_under_another_event_id_adds_nothing(live, capsys):
    invoke(purchase())
    capsys.readouterr()
    again = invoke(purchase(event_id="evt-p1-redelivered"))
    assert again["outcome"] == "duplicate"
    assert live.balance("ann") == 500 and live.all_ledger_ids() == ["purchase:4:pi_1"]
    assert emitted_metrics(capsys.readouterr().out)["DuplicateEvents"] == 1


@pytest.mark.parametrize("category", ["promotional", "goodwill"])
def test_a_grant_is_booked_under_its_category(live, category):
    result = invoke(credits_event("credits.granted", userId="ann", credits=50, reference="ticket-9", category=category, reason="outage"))
    assert result["outcome"] == "applied"
    item = ledger_item(live, "grant:8:ticket-9")
    assert (item["category"], item["amount"], "amountPaid" in item) == (category, "50", False)
    assert "outage" in item["description"]


def test_a_refund_within_the_balance_debits_it_without_an_alert(live):
    invoke(purchase())
    result = invoke(
        credits_event("credits.revoked", "evt-r1", userId="ann", credits=200, reference="re_1", category="refund", paymentReference="pi_1")
    )
    assert result["outcome"] == "applied" and result["balanceDelta"] == -200 and not result["overdraft"]
    assert live.balance("ann") == 300 == live.ledger_sum("ann")
    item = ledger_item(live, "revocation:4:re_1")
    assert (item["type"], item["category"], item["paymentReference"]) == ("debit", "refund", "pi_1")
    assert ops_alerts(live) == []


def test_a_chargeback_beyond_the_balance_is_applied_as_an_overdraft_and_alerted(live, capsys):
    # Given ann bought 500 credits and spent all but 30 of them (an operator's debit stands in for the renders)
    invoke(purchase())
    live.store().commit_adjustment(adjustment_entry("ann", -470, "spent", "spent-1", "test", "2026-11-28T12:00:00.000Z"))
    capsys.readouterr()
    # When the card holder's bank takes the 500 back
    result = invoke(credits_event("credits.revoked", "evt-cb", userId="ann", credits=500, reference="dp_1", category="chargeback"))
    # Then it is applied in full: the balance is overdrawn, counted and alerted
    assert result["outcome"] == "applied" and result["overdraft"] is True and result["balanceAfter"] == -470
    assert live.balance("ann") == -470 == live.ledger_sum("ann")
    assert emitted_metrics(capsys.readouterr().out)["Overdrafts"] == 1
    [alert] = ops_alerts(live)
    assert alert["kind"] == "revocation-overdraft" and alert["users"] == ["ann"] and alert["creditsInvolved"] == 500
    assert alert["facts"]["balanceAfter"] == -470 and any("ledger ann" in c["command"] for c in alert["commands"])


def test_lambdas_retry_after_a_fault_past_an_overdrawing_revocations_commit_alerts_and_counts_it(live, capsys):
    # Given a chargeback that overdrew ann and committed, whose invocation then failed before its alert and metrics
    invoke(purchase())
    live.store().commit_adjustment(adjustment_entry("ann", -470, "spent", "spent-1", "test", "2026-11-28T12:00:00.000Z"))
    chargeback = credits_event("credits.revoked", "evt-cb", userId="ann", credits=500, reference="dp_1", category="chargeback")
    bootstrap.credits_in_service().process(chargeback, None, "request-retried")
    capsys.readouterr()
    # When Lambda retries that invocation (the same request id)
    result = handler(chargeback, LambdaContext("request-retried"))
    # Then it answers as the first attempt would have: applied into overdraft, counted and alerted, applied once
    assert (result["outcome"], result["overdraft"], result["recovered"], result["balanceAfter"]) == ("applied", True, True, -470)
    metrics = emitted_metrics(capsys.readouterr().out)
    assert (metrics["Overdrafts"], metrics["CreditsInApplied"], metrics["CreditsRevoked"]) == (1, 1, 500)
    [alert] = ops_alerts(live)
    assert alert["kind"] == "revocation-overdraft" and alert["facts"]["balanceBefore"] == 30 and alert["facts"]["balanceAfter"] == -470
    item = ledger_item(live, "revocation:4:dp_1")
    assert (item["appliedByRequest"], item["overdraft"], item["appliedBalanceBefore"]) == ("request-retried", True, "30")
    # While another delivery (another request) is a duplicate, with no second alert
    assert invoke(chargeback)["outcome"] == "duplicate" and ops_alerts(live) == [alert]
    assert live.balance("ann") == -470 == live.ledger_sum("ann")


def test_a_revocation_for_a_user_without_a_balance_overdraws_from_zero(live):
    result = invoke(credits_event("credits.revoked", "evt-r0", userId="nobody", credits=5, reference="re_0", category="refund"))
    assert result["overdraft"] is True and live.balance("nobody") == -5 == live.ledger_sum("nobody")


@pytest.mark.parametrize(
    ("case", "detail", "field"),
    [
        ("no amount", {"userId": "ann", "credits": 5, "reference": "pi_x"}, "amountPaid"),
        ("fractional credits", {"userId": "ann", "credits": 2.5, "reference": "pi_x", "amountPaid": "1", "currency": "USD"}, "credits"),
        ("binary float money", {"userId": "ann", "credits": 5, "reference": "pi_x", "amountPaid": "1e3", "currency": "USD"}, "amountPaid"),
        ("bad currency", {"userId": "ann", "credits": 5, "reference": "pi_x", "amountPaid": "1.00", "currency": "usd"}, "currency"),
        ("negative credits", {"userId": "ann", "credits": -5, "reference": "pi_x", "amountPaid": "1.00", "currency": "USD"}, "credits"),
        ("no reference", {"userId": "ann", "credits": 5, "amountPaid": "1.00", "currency": "USD"}, "reference"),
    ],
)
def test_bad_input_writes_nothing_and_is_dead_lettered_with_its_reason(live, case, detail, field):
    result = invoke(credits_event("credits.purchased", "evt-bad", **detail))
    assert result["outcome"] == "rejected" and result["field"] == field, case
    assert live.balance("ann") is None and live.all_ledger_ids() == []
    [letter] = live.dead_letters()
    assert letter["field"] == field and json.loads(letter["body"])["id"] == "evt-bad"
    [alert] = ops_alerts(live)
    assert alert["kind"] == "invalid-credits-event"


def test_a_reference_reused_for_other_credits_is_refused_and_books_nothing_more(live):
    invoke(purchase())
    result = invoke(purchase(credits=900, event_id="evt-p2"))
    assert result["outcome"] == "rejected" and result["field"] == "reference"
    assert live.balance("ann") == 500 and live.all_ledger_ids() == ["purchase:4:pi_1"]
    assert len(live.dead_letters()) == 1


def test_a_grant_and_a_revocation_may_share_a_payments_reference(live):
    invoke(purchase(reference="pay-7"))
    invoke(credits_event("credits.revoked", "evt-r7", userId="ann", credits=100, reference="pay-7", category="refund"))
    assert live.all_ledger_ids() == ["purchase:5:pay-7", "revocation:5:pay-7"] and live.balance("ann") == 400


def test_a_renders_postings_and_an_adjustments_entry_carry_none_of_the_credits_in_attributes(live):
    from tests.events import rendered

    live.seed_balance("ann", 100)
    assert invoke(rendered("job-r", "ann", seconds=3))["outcome"] == "settled"
    items = live.client("dynamodb").scan(TableName=live.config.user_ledger_table)["Items"]
    items += live.client("dynamodb").scan(TableName=live.config.ledger_table)["Items"]
    assert len(items) == 2  # the render's posting and the opening adjustment
    assert all(not {"category", "amountPaid", "currency", "paymentReference"} & set(item) for item in items)


@pytest.mark.parametrize(("attribute", "stored"), [("paidCredits", "500"), ("version", True)], ids=["total-as-text", "version-as-boolean"])
def test_a_purchase_for_a_balance_whose_total_or_version_is_damaged_is_dead_lettered_naming_it(live, attribute, stored):
    # Another writer stored a running total or the change record's version as text or a boolean: DynamoDB would
    # refuse the update expression itself (no item, no attribute named) on every retry; the guard names it instead.
    live.client("dynamodb").put_item(
        TableName=live.config.credits_table, Item={"userId": {"S": "ann"}, "remaining": {"N": "10"}, **_typed(attribute, stored)}
    )
    result = invoke(purchase())
    assert result["outcome"] == "rejected" and result["field"] == "balance"
    [letter] = live.dead_letters()
    assert f"unusable: {attribute}" in letter["reason"]
    assert live.balance("ann") == 10 and live.all_ledger_ids() == []


def _typed(attribute: str, stored: object) -> dict:
    return {attribute: {"BOOL": stored} if isinstance(stored, bool) else {"S": str(stored)}}
