"""The fidelity layer on what the holds design relies on: a cancelled transaction's reasons carry `Item` as AWS
documents, and a cancelled transaction leaves the table's stream whole (simulator/fidelity.py, 5. and 6.)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from reconciler.local.moto_fixes import stream_reattachments
from simulator import fidelity

STREAMS = "https://streams.dynamodb.us-east-1.amazonaws.com"  # the in-process endpoint (sim.IN_PROCESS_STREAMS)


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="Balances",
            KeySchema=[{"AttributeName": "userId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "userId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        client.put_item(TableName="Balances", Item={"userId": {"S": "ann"}, "remaining": {"N": "5"}})
        fidelity.item_corrections.clear()
        yield client


def debit(user: str, amount: int, return_values: str | None = "ALL_OLD") -> dict:
    """A guarded debit as the settlement writes it: `remaining >= amount`, the item returned if the guard fails."""
    update: dict = {
        "TableName": "Balances",
        "Key": {"userId": {"S": user}},
        "UpdateExpression": "SET remaining = if_not_exists(remaining, :zero) - :amount",
        "ConditionExpression": "remaining >= :amount",
        "ExpressionAttributeValues": {":amount": {"N": str(amount)}, ":zero": {"N": "0"}},
    }
    if return_values:
        update["ReturnValuesOnConditionCheckFailure"] = return_values
    return {"Update": update}


def cancellation(client: Any, *items: dict) -> list[dict]:
    with pytest.raises(ClientError) as raised:
        client.transact_write_items(TransactItems=list(items))
    response: dict = dict(raised.value.response)
    assert response["Error"]["Code"] == "TransactionCanceledException"
    return response["CancellationReasons"]


def test_a_failed_guard_returns_the_item_only_when_all_old_was_asked_and_the_item_exists(dynamodb):
    # Given a balance of 5 and a second item whose condition holds
    fine = {"ConditionCheck": {"TableName": "Balances", "Key": {"userId": {"S": "nobody"}}, "ConditionExpression": "attribute_not_exists(userId)"}}
    checked = fidelity.cancellation_items_checked[0]
    # When a debit of 9 fails its guard: with ALL_OLD, without it, with NONE, and on a user with no item
    asked = cancellation(dynamodb, debit("ann", 9), fine)
    not_asked = cancellation(dynamodb, debit("ann", 9, None), fine)
    none = cancellation(dynamodb, debit("ann", 9, "NONE"), fine)
    missing = cancellation(dynamodb, debit("bob", 9), fine)
    # Then only the first carries the item as it stood; an item whose condition held carries nothing
    assert asked[0] == {
        "Code": "ConditionalCheckFailed",
        "Message": "The conditional request failed",
        "Item": {"userId": {"S": "ann"}, "remaining": {"N": "5"}},
    }
    assert asked[1] == {"Code": "None"}
    assert all("Item" not in reason for reasons in (not_asked, none, missing) for reason in reasons)
    assert [reason["Code"] for reason in missing] == ["ConditionalCheckFailed", "None"]
    assert fidelity.item_corrections == []  # moto 5.2.5 already answers as AWS does
    assert fidelity.cancellation_items_checked[0] == checked + 8  # and each reason was checked


def test_a_wrong_item_from_the_emulator_is_put_right_and_recorded(dynamodb, monkeypatch):
    # Given an emulator that drops the Item of a failed guard (and adds one where none belongs)
    original = fidelity._original

    def unfaithful(client: Any, operation: str, params: dict) -> Any:
        try:
            return original(client, operation, params)
        except ClientError as error:
            reasons: list[dict] = list(error.response.get("CancellationReasons", []))  # type: ignore[arg-type]  # altered in place
            for reason in reasons:
                if "Item" in reason:
                    del reason["Item"]
                else:
                    reason["Item"] = {"userId": {"S": "made-up"}}
            raise

    monkeypatch.setattr(fidelity, "_original", unfaithful)
    monkeypatch.setattr(fidelity, "_botocore", lambda client, operation, params: original(client, operation, params))
    # When a guard fails
    reasons = cancellation(dynamodb, debit("ann", 9), debit("bob", 1, None))
    # Then the caller sees AWS's shape, and the difference is recorded for the simulator to report
    assert reasons[0]["Item"] == {"userId": {"S": "ann"}, "remaining": {"N": "5"}}
    assert "Item" not in reasons[1]
    assert len(fidelity.item_corrections) == 2


def test_the_condition_is_evaluated_as_dynamodb_does(dynamodb):
    guard = debit("ann", 5)["Update"]
    assert fidelity.condition_holds(guard, {"userId": {"S": "ann"}, "remaining": {"N": "5"}})
    assert not fidelity.condition_holds(guard, {"userId": {"S": "ann"}, "remaining": {"N": "4"}})
    assert not fidelity.condition_holds(guard, None)  # no item: `remaining >= 5` does not hold
    assert fidelity.condition_holds({"TableName": "Balances"}, None)  # no condition


def test_the_stream_goes_on_after_a_cancelled_transaction(dynamodb):
    # Given a reader of the table's stream from now on
    streams = boto3.client("dynamodbstreams", region_name="us-east-1", endpoint_url=STREAMS)
    arn = dynamodb.describe_table(TableName="Balances")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    # When a transaction writes one item, then fails on another (moto applies the first, then rolls back),
    # and then a write succeeds
    reasons = cancellation(
        dynamodb,
        {"Put": {"TableName": "Balances", "Item": {"userId": {"S": "cy"}, "remaining": {"N": "1"}}}},
        debit("ann", 9),
    )
    assert [reason["Code"] for reason in reasons] == ["None", "ConditionalCheckFailed"]
    dynamodb.update_item(
        TableName="Balances",
        Key={"userId": {"S": "ann"}},
        UpdateExpression="SET remaining = :r",
        ExpressionAttributeValues={":r": {"N": "2"}},
    )
    # Then the reader sees the successful write, and nothing of the cancelled transaction
    records = streams.get_records(ShardIterator=iterator)["Records"]
    assert [(r["eventName"], r["dynamodb"]["Keys"]["userId"]["S"], r["dynamodb"]["NewImage"]["remaining"]["N"]) for r in records] == [
        ("MODIFY", "ann", "2")
    ]
    assert stream_reattachments[0] > 0


# --- eventually consistent reads (7.) ----------------------------------------------------------------------


@pytest.fixture
def stale_reads() -> Iterator[list[int]]:
    """A stale-read plan going back as far as the list's first value says (then the next value...), per read."""
    backs: list[int] = []
    fidelity.set_stale_reads(lambda table, available: backs.pop(0) if backs else 0)
    yield backs
    fidelity.set_stale_reads(None)


def remaining(client: Any, user: str, consistent: bool | None) -> str | None:
    params: dict = {"TableName": "Balances", "Key": {"userId": {"S": user}}}
    if consistent is not None:
        params["ConsistentRead"] = consistent
    item = client.get_item(**params).get("Item")
    return None if item is None else item["remaining"]["N"]


def test_an_eventually_consistent_read_may_answer_an_earlier_version_or_none(dynamodb, stale_reads):
    # Given an item written twice, and one created
    dynamodb.put_item(TableName="Balances", Item={"userId": {"S": "ann"}, "remaining": {"N": "6"}})
    dynamodb.transact_write_items(
        TransactItems=[debit("ann", 1), {"Put": {"TableName": "Balances", "Item": {"userId": {"S": "bo"}, "remaining": {"N": "1"}}}}]
    )
    # When eventually consistent reads go back 1 and 2 versions, and before the creation
    stale_reads.extend([1, 2, 1])
    answers = [remaining(dynamodb, "ann", None), remaining(dynamodb, "ann", False), remaining(dynamodb, "bo", False)]
    # Then they answer the versions the items had, and none for the item not yet created
    assert answers == ["6", "5", None]
    assert fidelity.stale_reads_served[0] >= 3


def test_a_strongly_consistent_read_and_every_write_see_the_current_item(dynamodb, stale_reads):
    dynamodb.put_item(TableName="Balances", Item={"userId": {"S": "ann"}, "remaining": {"N": "6"}})
    stale_reads.extend([1, 1])
    assert remaining(dynamodb, "ann", True) == "6"
    # a write conditioned on the current value succeeds, whatever an eventually consistent read would say
    dynamodb.transact_write_items(TransactItems=[debit("ann", 6)])
    assert remaining(dynamodb, "ann", True) == "0"


def test_a_cancelled_write_makes_no_version(dynamodb, stale_reads):
    cancellation(dynamodb, debit("ann", 9))
    stale_reads.append(1)
    assert remaining(dynamodb, "ann", False) == "5"  # no earlier version to go back to: the current item


def test_without_a_plan_every_read_is_current(dynamodb):
    dynamodb.put_item(TableName="Balances", Item={"userId": {"S": "ann"}, "remaining": {"N": "6"}})
    assert remaining(dynamodb, "ann", False) == "6"


def test_an_sqs_message_is_held_to_its_queues_maximum_in_bytes_not_characters():
    """moto compares a body's characters with the queue's MaximumMessageSize; SQS compares bytes."""
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        small = sqs.create_queue(QueueName="small", Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
        sqs.send_message(QueueUrl=small, MessageBody="a" * 1024)  # exactly at the limit
        with pytest.raises(ClientError) as refused:
            sqs.send_message(QueueUrl=small, MessageBody="漢" * 400)  # 400 characters, 1,200 bytes
        assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
        default = sqs.create_queue(QueueName="default")["QueueUrl"]
        sqs.send_message(QueueUrl=default, MessageBody="漢" * 300_000)  # 900,000 bytes: under SQS's 1 MiB default
