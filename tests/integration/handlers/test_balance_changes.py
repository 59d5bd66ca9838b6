"""Every balance change explained, and the liability kept, by the real balance-events handler on the Credits stream
(in-process moto): a direct write is counted, logged and alerted; a change made with a ledger entry never is; the
book's running totals equal every balance's allocation, whatever the stream redelivers."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest

from emulator.fidelity import IN_PROCESS_STREAMS
from emulator.stream_poller import StreamPoller, balance_function_environment
from reconciler import bootstrap
from reconciler.config import load_balance_config
from reconciler.domain.ledger import adjustment_entry, iso_timestamp
from reconciler.domain.liability import LIABILITY_CATEGORIES, allocation
from reconciler.handlers import balance_stream
from reconciler.repository.balance_event_store import LiabilityBookTable
from reconciler.repository.dynamodb import from_item, to_item
from simulator.sim import emitted_metrics
from tests.events import LambdaContext, envelope, rendered


@pytest.fixture
def stream(aws, dev_templates):
    aws.activate()
    os.environ.update(balance_function_environment(dev_templates, aws.resources.tables, aws.resources.ops_topic_arn))
    bootstrap.reset_container()
    dynamodb = aws.client("dynamodb")
    stream_arn = dynamodb.describe_table(TableName=aws.resources.tables["Credits"])["Table"]["LatestStreamArn"]
    poller = StreamPoller(
        aws.session.client("dynamodbstreams", endpoint_url=IN_PROCESS_STREAMS), stream_arn, balance_stream.handler, max_retry_attempts=3
    )
    aws.read_ops_topic()
    aws.poller = poller
    yield aws
    bootstrap.reset_container()
    load_balance_config.cache_clear()


def credits_in(detail_type: str, event_id: str, **detail) -> dict:
    return envelope(detail_type, detail, event_id=event_id, source="credits.billing")


def book_and_balances(aws) -> tuple[dict, dict]:
    totals = LiabilityBookTable(aws.client("dynamodb"), aws.resources.tables["BalanceEvents"]).totals()
    items = [from_item(item) for item in aws.client("dynamodb").scan(TableName=aws.resources.tables["Credits"])["Items"]]
    summed = dict.fromkeys(LIABILITY_CATEGORIES, 0)
    for item in items:
        for category, amount in allocation(item).items():
            summed[category] += amount
    return {category: totals.get(category, 0) for category in LIABILITY_CATEGORIES}, summed


def test_a_direct_write_is_counted_logged_and_alerted_with_the_user_the_change_and_the_commands(stream, capsys):
    from reconciler.handlers.entry import handler

    stream.seed_balance("ann", 100)
    handler(credits_in("credits.purchased", "e1", userId="ann", credits=500, reference="pi_1", amountPaid="19.99", currency="USD"), LambdaContext())
    handler(rendered("job-1", "ann", seconds=7), LambdaContext())
    stream.poller.drain(idle_polls=1)
    assert emitted_metrics(capsys.readouterr().out).get("UnexplainedBalanceChanges", 0) == 0  # every change had its entry
    assert stream.published() == []
    # Billing's old way: a write straight to the balance
    credits = stream.resources.tables["Credits"]
    stream.client("dynamodb").update_item(
        TableName=credits, Key=to_item({"userId": "ann"}), UpdateExpression="ADD remaining :d", ExpressionAttributeValues=to_item({":d": 1000})
    )
    stream.poller.drain(idle_polls=1)
    output = capsys.readouterr().out
    assert emitted_metrics(output)["UnexplainedBalanceChanges"] == 1
    (alert,) = stream.published()
    document = alert.document
    assert "ann" in alert.subject and "+1000" in alert.subject
    assert document["facts"]["userId"] == "ann" and document["facts"]["change"] == 1000
    commands = " ".join(command["command"] for command in document["commands"])
    assert "audit ann --fix --trust balance" in commands and "audit ann --fix --trust ledger" in commands


def test_changes_made_with_entries_are_never_flagged_holds_included(stream, capsys):
    from reconciler.handlers.entry import handler

    stream.seed_balance("bo", 50)
    stream.holds().reserve("job-h", "bo", "test", 20)
    handler(rendered("job-h", "bo", seconds=3), LambdaContext())
    handler(credits_in("credits.granted", "g1", userId="bo", credits=30, reference="t-1", category="goodwill"), LambdaContext())
    handler(credits_in("credits.revoked", "r1", userId="bo", credits=500, reference="cb-1", category="chargeback"), LambdaContext())  # overdraws
    stream.store().commit_adjustment(adjustment_entry("bo", 7, "support", "adj-bo", "op", iso_timestamp()))
    stream.poller.drain(idle_polls=1)
    assert emitted_metrics(capsys.readouterr().out).get("UnexplainedBalanceChanges", 0) == 0


def test_the_book_equals_every_balances_allocation_even_when_the_stream_delivers_records_again(stream):
    from reconciler.handlers.entry import handler

    stream.seed_balance("cy", 40)
    handler(credits_in("credits.purchased", "p1", userId="cy", credits=100, reference="pi_c", amountPaid="5", currency="EUR"), LambdaContext())
    handler(credits_in("credits.granted", "g2", userId="cy", credits=25, reference="promo-1", category="promotional"), LambdaContext())
    handler(rendered("job-c", "cy", seconds=50), LambdaContext())
    handler(credits_in("credits.revoked", "r2", userId="dee", credits=10, reference="re-d", category="refund"), LambdaContext())
    records = stream.poller.drain(idle_polls=1)
    book, summed = book_and_balances(stream)
    assert book == summed and records >= 5
    assert book["paid"] == 100 and book["overdrawn"] == -10 and sum(book.values()) == 40 + 100 + 25 - 50 - 10
    # The same records again (a retried batch): applied once
    service = bootstrap.balance_change_service()
    change = bootstrap.stream_change(
        {
            "eventName": "MODIFY",
            "dynamodb": {
                "Keys": {"userId": {"S": "cy"}},
                "SequenceNumber": "1",
                "NewImage": to_item({"userId": "cy", "remaining": Decimal(1)}),
                "OldImage": to_item({"userId": "cy", "remaining": Decimal(0)}),
            },
        }
    )
    assert service.handle(change).liability_applied is False  # an older sequence number than the user's last: refused
    assert book_and_balances(stream)[0] == book
