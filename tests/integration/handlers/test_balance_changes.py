"""Every balance change explained by the real balance-events handler on the Credits stream (in-process moto): a direct
write and a stale whole-item save are counted, logged and alerted; a change the reconciler made never is; and the
function's scheduled liability snapshot equals every balance's allocation at a quiet point."""

from __future__ import annotations

import os

import pytest

from emulator.fidelity import IN_PROCESS_STREAMS
from emulator.stream_poller import StreamPoller, balance_function_environment
from reconciler import bootstrap
from reconciler.config import load_balance_config
from reconciler.domain.ledger import adjustment_entry, iso_timestamp
from reconciler.domain.liability import LIABILITY_CATEGORIES, allocation
from reconciler.handlers import balance_stream
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


def balances_allocated(aws) -> dict:
    items = [from_item(item) for item in aws.client("dynamodb").scan(TableName=aws.resources.tables["Credits"])["Items"]]
    summed = dict.fromkeys(LIABILITY_CATEGORIES, 0)
    for item in items:
        for category, amount in allocation(item).items():
            summed[category] += amount
    return summed


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


def test_a_stale_whole_item_save_and_a_delete_are_flagged_and_the_save_of_the_current_image_back_too(stream, capsys):
    from reconciler.handlers.entry import handler

    stream.seed_balance("eve", 100)
    dynamodb, credits = stream.client("dynamodb"), stream.resources.tables["Credits"]
    stale = dynamodb.get_item(TableName=credits, Key=to_item({"userId": "eve"}))["Item"]
    handler(rendered("job-e1", "eve", seconds=5), LambdaContext())
    handler(rendered("job-e2", "eve", seconds=5), LambdaContext())
    current = dynamodb.get_item(TableName=credits, Key=to_item({"userId": "eve"}))["Item"]
    stream.poller.drain(idle_polls=1)
    assert emitted_metrics(capsys.readouterr().out).get("UnexplainedBalanceChanges", 0) == 0
    dynamodb.put_item(TableName=credits, Item=stale)  # another system saves the image it read two writes ago
    dynamodb.put_item(TableName=credits, Item=current)  # and the current one back: a jump of two versions
    dynamodb.delete_item(TableName=credits, Key=to_item({"userId": "eve"}))
    stream.poller.drain(idle_polls=1)
    output = capsys.readouterr().out
    assert emitted_metrics(output)["UnexplainedBalanceChanges"] == 3
    (alert,) = stream.published()  # one alert per user and grouping window; the metric counts all three
    assert alert.document["facts"]["change"] == 10


def test_the_liability_snapshot_equals_every_balances_allocation_at_a_quiet_point(stream):
    from reconciler.handlers.entry import handler

    stream.seed_balance("cy", 40)
    handler(credits_in("credits.purchased", "p1", userId="cy", credits=100, reference="pi_c", amountPaid="5", currency="EUR"), LambdaContext())
    handler(credits_in("credits.granted", "g2", userId="cy", credits=25, reference="promo-1", category="promotional"), LambdaContext())
    handler(rendered("job-c", "cy", seconds=50), LambdaContext())
    handler(credits_in("credits.revoked", "r2", userId="dee", credits=10, reference="re-d", category="refund"), LambdaContext())
    summary = handler({"job": "liability-snapshot"}, LambdaContext())  # what its schedule sends
    assert summary["stored"] is True and summary["byCategory"] == balances_allocated(stream)
    assert summary["byCategory"]["paid"] == 100 and summary["byCategory"]["overdrawn"] == -10
    assert summary["total"] == 40 + 100 + 25 - 50 - 10 and summary["users"] == 2
