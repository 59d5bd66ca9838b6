"""The fidelity layer on what the holds design relies on: a cancelled transaction's reasons carry `Item` as AWS
documents, and a cancelled transaction leaves the table's stream whole (emulator/fidelity.py, 5. and 6.)."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from moto import mock_aws

from emulator import fidelity
from emulator.fidelity import stream_reattachments

STREAMS = fidelity.IN_PROCESS_STREAMS


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


# --- DynamoDB's limits (1.): each refused in AWS's words where moto accepts it, and accepted at the limit -------

KEYED = "Keyed"
KEY = {"pk": {"S": "p"}, "sk": {"S": "s"}}
HASH_TOO_LONG = "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of 2048 bytes"
RANGE_TOO_LONG = "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes"
INDEX_KEY_TOO_LONG_BY_UPDATE = "The update expression attempted to update the secondary index key beyond allowed size limits"


@pytest.fixture
def keyed() -> Iterator[Any]:
    """A table with a partition and a sort key, a global index (g, gs) and a local one (pk, ls); all keys strings."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=KEYED,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "g", "gs", "ls")],
            BillingMode="PAY_PER_REQUEST",
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-g",
                    "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "gs", "KeyType": "RANGE"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            LocalSecondaryIndexes=[
                {
                    "IndexName": "by-ls",
                    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "ls", "KeyType": "RANGE"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
        yield client


@pytest.fixture
def moto_alone(monkeypatch) -> Callable[[], Any]:
    """Turns the fidelity layer (and the suite's call recorder) off for the rest of the test: calls go to moto alone."""

    def turn_off() -> None:
        call = fidelity._original
        while hasattr(call, "__wrapped__"):
            call = call.__wrapped__
        monkeypatch.setattr(BaseClient, "_make_api_call", call)

    return turn_off


def of_bytes(size: int) -> str:
    """A string of exactly `size` bytes of UTF-8, in two-byte characters: about half as many characters as bytes."""
    return "é" * (size // 2) + "x" * (size % 2)


def refusal(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


def put(**attributes: str) -> Callable[[Any, str], Any]:
    return lambda client, value: client.put_item(TableName=KEYED, Item={**KEY, **{name: {"S": value} for name in attributes}})


def with_key(call: Callable[[Any, dict], Any], attribute: str) -> Callable[[Any, str], Any]:
    return lambda client, value: call(client, {**KEY, attribute: {"S": value}})


def set_attribute(attribute: str) -> Callable[[Any, str], Any]:
    return lambda client, value: client.update_item(
        TableName=KEYED, Key=KEY, UpdateExpression=f"SET {attribute} = :v", ExpressionAttributeValues={":v": {"S": value}}
    )


def query(condition: str, index: str | None = None) -> Callable[[Any, str], Any]:
    def call(client: Any, value: str) -> Any:
        extra = {"IndexName": index} if index else {}
        values = {":p": {"S": "p"}, ":v": {"S": value}}
        return client.query(TableName=KEYED, KeyConditionExpression=condition, ExpressionAttributeValues=values, **extra)

    return call


def transact(kind: str, **op: Any) -> Callable[[Any, dict], Any]:
    return lambda client, key: client.transact_write_items(TransactItems=[{kind: {"TableName": KEYED, "Key": key, **op}}])


# (what, call with a key value, its limit in bytes, AWS's message, whether moto alone accepts one byte more)
KEY_CASES = [
    ("PutItem partition key", put(pk=""), 2048, HASH_TOO_LONG, False),
    ("PutItem sort key", put(sk=""), 1024, RANGE_TOO_LONG, False),
    ("PutItem global index partition key", put(g=""), 2048, HASH_TOO_LONG, False),
    ("PutItem global index sort key", put(gs=""), 1024, RANGE_TOO_LONG, False),
    ("PutItem local index sort key", put(ls=""), 1024, RANGE_TOO_LONG, True),
    ("UpdateItem Key", with_key(lambda c, k: c.update_item(TableName=KEYED, Key=k, UpdateExpression="REMOVE a"), "sk"), 1024, RANGE_TOO_LONG, False),
    ("UpdateItem setting a global index partition key", set_attribute("g"), 2048, INDEX_KEY_TOO_LONG_BY_UPDATE, True),
    ("UpdateItem setting a global index sort key", set_attribute("gs"), 1024, INDEX_KEY_TOO_LONG_BY_UPDATE, True),
    ("UpdateItem setting a local index sort key", set_attribute("ls"), 1024, INDEX_KEY_TOO_LONG_BY_UPDATE, True),
    ("DeleteItem Key", with_key(lambda c, k: c.delete_item(TableName=KEYED, Key=k), "sk"), 1024, RANGE_TOO_LONG, True),
    ("GetItem partition key", with_key(lambda c, k: c.get_item(TableName=KEYED, Key=k), "pk"), 2048, HASH_TOO_LONG, True),
    ("GetItem sort key", with_key(lambda c, k: c.get_item(TableName=KEYED, Key=k), "sk"), 1024, RANGE_TOO_LONG, True),
    ("Query partition key", query("pk = :v"), 2048, HASH_TOO_LONG, True),
    ("Query sort key", query("pk = :p AND sk BETWEEN :p AND :v"), 1024, RANGE_TOO_LONG, True),
    ("Query global index partition key", query("g = :v", "by-g"), 2048, HASH_TOO_LONG, True),
    ("Query global index sort key", query("g = :p AND begins_with(gs, :v)", "by-g"), 1024, RANGE_TOO_LONG, True),
    (
        "TransactWriteItems Put",
        lambda c, v: c.transact_write_items(TransactItems=[{"Put": {"TableName": KEYED, "Item": {**KEY, "sk": {"S": v}}}}]),
        1024,
        RANGE_TOO_LONG,
        False,
    ),
    ("TransactWriteItems Update", with_key(transact("Update", UpdateExpression="REMOVE a"), "sk"), 1024, RANGE_TOO_LONG, False),
    ("TransactWriteItems Delete", with_key(transact("Delete"), "sk"), 1024, RANGE_TOO_LONG, True),
    (
        "TransactWriteItems ConditionCheck",
        with_key(transact("ConditionCheck", ConditionExpression="attribute_not_exists(pk)"), "sk"),
        1024,
        RANGE_TOO_LONG,
        True,
    ),
    (
        "TransactGetItems",
        with_key(lambda c, k: c.transact_get_items(TransactItems=[{"Get": {"TableName": KEYED, "Key": k}}]), "pk"),
        2048,
        HASH_TOO_LONG,
        True,
    ),
    (
        "BatchWriteItem Put",
        lambda c, v: c.batch_write_item(RequestItems={KEYED: [{"PutRequest": {"Item": {**KEY, "ls": {"S": v}}}}]}),
        1024,
        RANGE_TOO_LONG,
        True,
    ),
    (
        "BatchWriteItem Delete",
        with_key(lambda c, k: c.batch_write_item(RequestItems={KEYED: [{"DeleteRequest": {"Key": k}}]}), "sk"),
        1024,
        RANGE_TOO_LONG,
        True,
    ),
    ("BatchGetItem", with_key(lambda c, k: c.batch_get_item(RequestItems={KEYED: {"Keys": [k]}}), "sk"), 1024, RANGE_TOO_LONG, True),
]


@pytest.mark.parametrize(("what", "call", "limit", "message", "moto_accepts"), KEY_CASES, ids=[case[0] for case in KEY_CASES])
def test_a_key_one_byte_over_its_limit_in_bytes_is_refused_on_every_path(keyed, moto_alone, what, call, limit, message, moto_accepts):
    # Given a key value of one byte more than its limit, in far fewer characters than that
    over = of_bytes(limit + 1)
    assert len(over) < limit
    # When the request is sent: AWS refuses it in its words, and writes nothing
    assert refusal(lambda: call(keyed, over)) == ("ValidationException", message)
    assert keyed.scan(TableName=KEYED)["Items"] == []
    assert fidelity.violations[-1].endswith(message)
    # Then moto alone accepts it (where it does; where not, moto refuses too)
    moto_alone()
    if moto_accepts:
        call(keyed, over)
    else:
        assert refusal(lambda: call(keyed, over))[0] == "ValidationException"


@pytest.mark.parametrize(("what", "call", "limit", "message", "moto_accepts"), KEY_CASES, ids=[case[0] for case in KEY_CASES])
def test_a_key_of_exactly_its_limit_in_bytes_is_accepted_on_every_path(keyed, what, call, limit, message, moto_accepts):
    call(keyed, of_bytes(limit))


def test_an_update_that_sets_an_index_key_to_another_type_is_refused_alone_and_cancels_a_transaction(keyed):
    message = "The update expression attempted to update the secondary index key to unsupported type"
    number = {"UpdateExpression": "SET gs = :n", "ExpressionAttributeValues": {":n": {"N": "1"}}}
    assert refusal(lambda: keyed.update_item(TableName=KEYED, Key=KEY, **number)) == ("ValidationException", message)
    with pytest.raises(ClientError) as raised:
        keyed.transact_write_items(TransactItems=[{"Update": {"TableName": KEYED, "Key": KEY, **number}}])
    assert raised.value.response["CancellationReasons"] == [{"Code": "ValidationError", "Message": message}]  # type: ignore[typeddict-item]
    assert keyed.scan(TableName=KEYED)["Items"] == []


def test_an_empty_key_is_refused_as_aws_refuses_it(keyed):
    assert refusal(lambda: put(ls="")(keyed, "")) == (
        "ValidationException",
        "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a "
        "key attribute cannot contain an empty string value. IndexName: by-ls, IndexKey: ls",
    )
    assert refusal(lambda: query("pk = :v")(keyed, "")) == (
        "ValidationException",
        "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: pk",
    )


def moto_measure(item: dict) -> int:
    """moto's own measure of an item (its limit: 405,000): numbers by their text, no list or map overheads."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    return int(Item(DynamoType(item["pk"]), DynamoType(item["sk"]), item).size())


def every_kind_of_value(pad: int) -> dict:
    """An item of 43 + `pad` bytes as DynamoDB counts ("Item sizes and formats"): names and strings in UTF-8 bytes, a
    number 1 byte per two significant digits plus 1, a binary its bytes, a list or map 3 bytes plus 1 per element."""
    return {
        "pk": {"S": "p"},  # 2 + 1
        "sk": {"S": "s"},  # 2 + 1
        "ñ": {"N": "-0012.3400"},  # 2 + (4 significant digits: 2) + 1
        "l": {"L": [{"BOOL": True}, {"NULL": True}, {"S": "ab"}]},  # 1 + 3 + (1 + 1) + (1 + 1) + (1 + 2)
        "m": {"M": {"k": {"N": "7"}}},  # 1 + 3 + (1 + 1 + 2)
        "ss": {"SS": ["a", "bé"]},  # 2 + 1 + 3
        "b": {"B": b"\x00\x01\x02"},  # 1 + 3
        "pad": {"S": "x" * pad},  # 3 + pad
    }


def test_an_item_is_measured_as_dynamodb_measures_it_up_to_400_kb(keyed):
    # Given items of exactly 400 KB (409,600 bytes) and one byte more, as DynamoDB counts them
    at_limit, over = every_kind_of_value(409_600 - 43), every_kind_of_value(409_600 - 43 + 1)
    # Then the first is stored, the second refused in AWS's words
    keyed.put_item(TableName=KEYED, Item=at_limit)
    assert refusal(lambda: keyed.put_item(TableName=KEYED, Item=over)) == ("ValidationException", "Item size has exceeded the maximum allowed size")
    # and moto's own measure would have refused both (its limit, 405,000, is below AWS's as it measures): the layer
    # holds items to AWS's limit in moto's place
    assert moto_measure(at_limit) > 405_000


def with_bools(pad: int, bools: int) -> dict:
    """An item whose list of booleans weighs 2 bytes per element to DynamoDB (a boolean and its element overhead) and 1
    to moto: 6 + (3 + pad) + (1 + 3 + 2 * bools) bytes as DynamoDB counts."""
    return {**KEY, "pad": {"S": "x" * pad}, "l": {"L": [{"BOOL": True}] * bools}}


def test_an_item_that_moto_measures_under_its_limit_and_dynamodb_over_400_kb_is_refused(keyed, moto_alone):
    item = with_bools(400_000, 4_800)  # 6 + 400,003 + 9,604 = 409,613 bytes
    assert moto_measure(item) < 405_000
    assert refusal(lambda: keyed.put_item(TableName=KEYED, Item=item)) == ("ValidationException", "Item size has exceeded the maximum allowed size")
    moto_alone()
    keyed.put_item(TableName=KEYED, Item=item)


def growing(bools: int) -> dict:
    """An update of KEY's item that appends `bools` booleans (2 bytes each) to its list."""
    return {
        "TableName": KEYED,
        "Key": KEY,
        "UpdateExpression": "SET l = list_append(l, :more)",
        "ExpressionAttributeValues": {":more": {"L": [{"BOOL": True}] * bools}},
    }


def grow(client: Any, bools: int) -> Any:
    return client.update_item(**growing(bools))


def test_an_update_is_held_to_400_kb_by_the_item_it_leaves_and_refused_without_writing(keyed, moto_alone):
    # Given an item of 409,600 - 8 bytes: 6 + 400,002 + (1 + 3 + 2 * 4,790)
    keyed.put_item(TableName=KEYED, Item=with_bools(399_999, 4_790))
    # When an update would add 5 booleans (10 bytes): refused in AWS's words, and the item stays as it was
    assert refusal(lambda: grow(keyed, 5)) == ("ValidationException", "Item size to update has exceeded the maximum allowed size")
    assert len(keyed.get_item(TableName=KEYED, Key=KEY)["Item"]["l"]["L"]) == 4_790
    # Then 4 booleans (8 bytes) leave exactly 400 KB: accepted
    grow(keyed, 4)
    assert len(keyed.get_item(TableName=KEYED, Key=KEY)["Item"]["l"]["L"]) == 4_794
    # and moto alone would have accepted the 10 bytes more (its measure is under its own limit)
    moto_alone()
    grow(keyed, 1)


def test_a_transaction_whose_update_outgrows_400_kb_is_cancelled_with_a_validation_error_and_writes_nothing(keyed):
    keyed.put_item(TableName=KEYED, Item=with_bools(399_999, 4_790))  # 409,600 - 8 bytes
    other = {"Put": {"TableName": KEYED, "Item": {"pk": {"S": "other"}, "sk": {"S": "s"}}}}
    assert cancellation(keyed, other, {"Update": growing(5)}) == [
        {"Code": "None"},
        {"Code": "ValidationError", "Message": "Item size to update has exceeded the maximum allowed size"},
    ]
    assert "Item" not in keyed.get_item(TableName=KEYED, Key={"pk": {"S": "other"}, "sk": {"S": "s"}})


def test_a_cancellation_for_an_outgrown_item_gives_every_action_its_reason_as_aws_does(keyed):
    keyed.put_item(TableName=KEYED, Item=with_bools(399_999, 4_790))
    guarded = {**KEY, "pk": {"S": "guarded"}}
    keyed.put_item(TableName=KEYED, Item=guarded)
    check = {"TableName": KEYED, "Key": guarded, "ConditionExpression": "attribute_not_exists(pk)", "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
    assert cancellation(keyed, {"ConditionCheck": check}, {"Update": growing(5)}) == [
        {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed", "Item": guarded},
        {"Code": "ValidationError", "Message": "Item size to update has exceeded the maximum allowed size"},
    ]


# --- transactions: 100 items, 4 MB, one action per item --------------------------------------------------------


def padded(pk: str, size: int) -> dict:
    """An item of `size` bytes: pk (2 + its value), sk "s" (3), pad (3 + the rest)."""
    return {"pk": {"S": pk}, "sk": {"S": "s"}, "pad": {"S": "x" * (size - 2 - len(pk) - 3 - 3)}}


def four_megabytes(extra: int = 0) -> list[dict]:
    """Eleven items of together exactly 4 MB (4,194,304 bytes), plus `extra` bytes."""
    return [padded(f"p{i:02}", 381_300) for i in range(10)] + [padded("p10", 381_304 + extra)]


def puts(items: list[dict]) -> list[dict]:
    return [{"Put": {"TableName": KEYED, "Item": item}} for item in items]


def test_a_transaction_of_more_than_4_mb_is_refused(keyed, moto_alone):
    assert refusal(lambda: keyed.transact_write_items(TransactItems=puts(four_megabytes(extra=1))))[0] == "ValidationException"
    assert fidelity.violations[-1].startswith("TransactWriteItems: ValidationException: Transaction size has exceeded")
    assert keyed.scan(TableName=KEYED, Select="COUNT")["Count"] == 0
    keyed.transact_write_items(TransactItems=puts(four_megabytes()))  # exactly 4 MB
    moto_alone()
    keyed.transact_write_items(TransactItems=puts([padded(f"q{i:02}", 390_000) for i in range(11)]))  # 4.29 MB


def test_a_transaction_counts_the_items_its_updates_leave_and_the_items_it_checks(keyed):
    # Given ten stored items of 381,300 bytes and one of 381,304 (4 MB together)
    for item in four_megabytes():
        keyed.put_item(TableName=KEYED, Item=item)
    checks = [
        {"ConditionCheck": {"TableName": KEYED, "Key": {"pk": item["pk"], "sk": item["sk"]}, "ConditionExpression": "attribute_exists(pk)"}}
        for item in four_megabytes()
    ]
    grow_last = {"Update": {**checks[-1]["ConditionCheck"], "UpdateExpression": "SET more = :b", "ExpressionAttributeValues": {":b": {"BOOL": True}}}}
    del grow_last["Update"]["ConditionExpression"]
    # When a transaction checks them all: exactly 4 MB, accepted; when its last action adds 5 bytes instead: refused
    keyed.transact_write_items(TransactItems=checks)
    assert refusal(lambda: keyed.transact_write_items(TransactItems=[*checks[:-1], grow_last]))[0] == "ValidationException"
    assert "more" not in keyed.get_item(TableName=KEYED, Key={"pk": {"S": "p10"}, "sk": {"S": "s"}})["Item"]


def test_a_transaction_of_more_than_100_actions_is_refused_in_aws_words(keyed):
    items = [{"pk": {"S": f"p{i}"}, "sk": {"S": "s"}} for i in range(101)]
    assert refusal(lambda: keyed.transact_write_items(TransactItems=puts(items))) == (
        "ValidationException",
        "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to 100",
    )
    keyed.transact_write_items(TransactItems=puts(items[:100]))
    assert keyed.scan(TableName=KEYED, Select="COUNT")["Count"] == 100


def test_two_actions_on_one_item_are_refused_in_aws_words(keyed):
    check = {"ConditionCheck": {"TableName": KEYED, "Key": KEY, "ConditionExpression": "attribute_not_exists(pk)"}}
    assert refusal(lambda: keyed.transact_write_items(TransactItems=[*puts([{**KEY, "a": {"S": "x"}}]), check])) == (
        "ValidationException",
        "Transaction request cannot include multiple operations on one item",
    )
    assert keyed.scan(TableName=KEYED, Select="COUNT")["Count"] == 0
    keyed.transact_write_items(TransactItems=[*puts([{"pk": {"S": "other"}, "sk": {"S": "s"}}]), check])  # two items: accepted


def gets(keys: list[dict]) -> list[dict]:
    return [{"Get": {"TableName": KEYED, "Key": key}} for key in keys]


def test_a_transactional_read_holds_100_items_and_4_mb(keyed):
    for item in four_megabytes():
        keyed.put_item(TableName=KEYED, Item=item)
    keyed.put_item(TableName=KEYED, Item={"pk": {"S": "small"}, "sk": {"S": "s"}})
    stored = [{"pk": item["pk"], "sk": item["sk"]} for item in four_megabytes()]
    assert len(keyed.transact_get_items(TransactItems=gets(stored))["Responses"]) == 11  # exactly 4 MB
    over = gets([*stored, {"pk": {"S": "small"}, "sk": {"S": "s"}}])
    assert refusal(lambda: keyed.transact_get_items(TransactItems=over))[0] == "ValidationException"
    # 100 items: accepted (moto alone refuses more than 25, AWS's limit before 2022), 101: refused in AWS's words
    keys = [{"pk": {"S": f"k{i}"}, "sk": {"S": "s"}} for i in range(101)]
    assert len(keyed.transact_get_items(TransactItems=gets(keys[:100]))["Responses"]) == 100
    assert refusal(lambda: keyed.transact_get_items(TransactItems=gets(keys))) == (
        "ValidationException",
        "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to 100",
    )


# --- numbers: 38 significant digits, 1E-130 to 9.99...E+125 in magnitude ------------------------------------------

OVERFLOW = "Number overflow. Attempting to store a number with magnitude larger than supported range"
UNDERFLOW = "Number underflow. Attempting to store a number with magnitude smaller than supported range"
PRECISION = "Attempting to store more than 38 significant digits in a Number"
AT_THE_EDGES = [
    "1E-130",
    "-1E-130",
    "9.9999999999999999999999999999999999999E+125",
    "-9.9999999999999999999999999999999999999E+125",
    "1" * 38,
    "0.000" + "1" * 38,
    "100" + "0" * 123,
]
# what moto alone stores though DynamoDB refuses it (moto compares in floats and never counts digits)
REFUSED = [
    ("1E+126", OVERFLOW),
    ("-1E+126", OVERFLOW),
    ("9.99999999999999999999E-131", UNDERFLOW),
    ("1" * 39, PRECISION),
    ("1.000" + "1" * 35, PRECISION),
]


def store_number(client: Any, text: str) -> Any:
    return client.put_item(TableName=KEYED, Item={**KEY, "n": {"N": text}})


@pytest.mark.parametrize("text", AT_THE_EDGES)
def test_a_number_at_the_edges_of_dynamodb_s_range_and_precision_is_stored(keyed, text):
    store_number(keyed, text)
    assert keyed.get_item(TableName=KEYED, Key=KEY)["Item"]["n"] == {"N": text}


@pytest.mark.parametrize(("text", "message"), REFUSED)
def test_a_number_beyond_them_is_refused_in_aws_words(keyed, moto_alone, text, message):
    assert refusal(lambda: store_number(keyed, text)) == ("ValidationException", message)
    moto_alone()
    store_number(keyed, text)


def test_a_subnormal_that_boto3_serializes_is_refused(keyed):
    from boto3.dynamodb.types import TypeSerializer

    assert TypeSerializer().serialize(Decimal("1E-140")) == {"N": "1E-140"}  # boto3's decimal context lets it through
    assert refusal(lambda: store_number(keyed, "1E-140")) == ("ValidationException", UNDERFLOW)


def test_a_number_in_an_expression_value_is_held_to_the_same_rules(keyed, moto_alone):
    def guarded(limit: str) -> Any:
        return keyed.put_item(
            TableName=KEYED, Item=KEY, ConditionExpression="attribute_not_exists(n) OR n < :limit", ExpressionAttributeValues={":limit": {"N": limit}}
        )

    assert refusal(lambda: guarded("1E+126")) == ("ValidationException", OVERFLOW)
    guarded("9.9999999999999999999999999999999999999E+125")
    moto_alone()
    guarded("1E+126")


def add(client: Any, text: str) -> Any:
    return client.update_item(TableName=KEYED, Key=KEY, UpdateExpression="ADD n :d", ExpressionAttributeValues={":d": {"N": text}})


def test_an_add_whose_result_leaves_the_range_or_precision_is_refused_without_writing(keyed, moto_alone):
    # Given a number of 38 nines followed by 88 zeros (9.99...E+125, the largest there is)
    largest = "9" * 38 + "0" * 88
    store_number(keyed, largest)
    # When 1E+88 is added (1E+126: overflow) or 1 (39 significant digits): refused, the number stays as it was
    assert refusal(lambda: add(keyed, "1" + "0" * 88)) == ("ValidationException", OVERFLOW)
    assert refusal(lambda: add(keyed, "1")) == ("ValidationException", PRECISION)
    assert keyed.get_item(TableName=KEYED, Key=KEY)["Item"]["n"] == {"N": largest}
    # Then subtracting 1E+88 stays within both
    add(keyed, "-1" + "0" * 88)
    assert keyed.get_item(TableName=KEYED, Key=KEY)["Item"]["n"] == {"N": "9" * 37 + "8" + "0" * 88}
    # and moto alone adds past the range
    moto_alone()
    add(keyed, "2" + "0" * 88)
    assert keyed.get_item(TableName=KEYED, Key=KEY)["Item"]["n"] == {"N": "1" + "0" * 38 + "0" * 87 + "0"}


def test_an_overflowing_add_in_a_transaction_cancels_it_with_a_validation_error(keyed):
    store_number(keyed, "9" * 38 + "0" * 88)
    action = {"Update": {"TableName": KEYED, "Key": KEY, "UpdateExpression": "SET n = n + :d", "ExpressionAttributeValues": {":d": {"N": "1E+88"}}}}
    with pytest.raises(ClientError) as raised:
        keyed.transact_write_items(TransactItems=[action])
    assert raised.value.response["CancellationReasons"] == [{"Code": "ValidationError", "Message": OVERFLOW}]  # type: ignore[typeddict-item]


# --- expressions: 4 KB each, 255-byte placeholders, 2 MB of substitutions, 300 operators, 100 IN operands ------------


def padded_to(text: str, size: int) -> str:
    return text + " " * (size - len(text.encode()))


EXPRESSIONS = [
    ("ConditionExpression", lambda c, e: c.put_item(TableName=KEYED, Item=KEY, ConditionExpression=e), "attribute_not_exists(pk) OR pk = pk"),
    ("UpdateExpression", lambda c, e: c.update_item(TableName=KEYED, Key=KEY, UpdateExpression=e), "REMOVE a"),
    (
        "KeyConditionExpression",
        lambda c, e: c.query(TableName=KEYED, KeyConditionExpression=e, ExpressionAttributeValues={":p": {"S": "p"}}),
        "pk = :p",
    ),
    ("FilterExpression", lambda c, e: c.scan(TableName=KEYED, FilterExpression=e), "attribute_exists(pk)"),
    ("ProjectionExpression", lambda c, e: c.get_item(TableName=KEYED, Key=KEY, ProjectionExpression=e), "pk"),
]


@pytest.mark.parametrize(("parameter", "call", "expression"), EXPRESSIONS, ids=[case[0] for case in EXPRESSIONS])
def test_an_expression_of_more_than_4_kb_is_refused_and_of_4_kb_accepted(keyed, moto_alone, parameter, call, expression):
    call(keyed, padded_to(expression, 4096))
    assert refusal(lambda: call(keyed, padded_to(expression, 4097))) == (
        "ValidationException",
        f"Invalid {parameter}: Expression size has exceeded the maximum allowed size; expression size: 4097",
    )
    moto_alone()
    call(keyed, padded_to(expression, 4097))


def named(placeholder: str) -> Any:
    return lambda client: client.put_item(
        TableName=KEYED, Item=KEY, ConditionExpression=f"attribute_not_exists({placeholder})", ExpressionAttributeNames={placeholder: "pk"}
    )


def test_a_placeholder_of_more_than_255_bytes_is_refused(keyed, moto_alone):
    named("#" + "n" * 254)(keyed)
    code, message = refusal(lambda: named("#" + "n" * 255)(keyed))
    assert code == "ValidationException" and message.startswith("ExpressionAttributeNames contains invalid key")
    moto_alone()
    keyed.delete_item(TableName=KEYED, Key=KEY)
    named("#" + "n" * 255)(keyed)


def substituting(size: int) -> Any:
    """A condition whose names and values come to `size` bytes: #n -> pk (4 bytes), :a..:f (2 bytes each) -> strings."""
    strings = [400_000] * 5 + [size - 4 - 6 * 2 - 5 * 400_000]
    values = {f":{chr(ord('a') + i)}": {"S": "x" * length} for i, length in enumerate(strings)}
    condition = " AND ".join(f"NOT contains(#n, {placeholder})" for placeholder in values)
    return lambda client: client.put_item(
        TableName=KEYED, Item=KEY, ConditionExpression=condition, ExpressionAttributeNames={"#n": "pk"}, ExpressionAttributeValues=values
    )


def test_names_and_values_of_more_than_2_mb_together_are_refused(keyed, moto_alone):
    substituting(2 * 1024 * 1024)(keyed)
    code, message = refusal(lambda: substituting(2 * 1024 * 1024 + 1)(keyed))
    assert code == "ValidationException" and "2097152" in message
    moto_alone()
    substituting(2 * 1024 * 1024 + 1)(keyed)


def adding_ones(operators: int) -> Any:
    return lambda client: client.update_item(
        TableName=KEYED, Key=KEY, UpdateExpression="SET n = :one" + " + :one" * operators, ExpressionAttributeValues={":one": {"N": "1"}}
    )


def test_an_update_of_more_than_300_operators_is_refused(keyed, moto_alone, monkeypatch):
    monkeypatch.setattr(sys, "getrecursionlimit", sys.getrecursionlimit)  # restored after the test
    sys.setrecursionlimit(4000)  # moto's expression parser recurses once per operator
    try:
        adding_ones(300)(keyed)
        assert keyed.get_item(TableName=KEYED, Key=KEY)["Item"]["n"] == {"N": "301"}
        code, message = refusal(lambda: adding_ones(301)(keyed))
        assert code == "ValidationException" and message.endswith("operator count: 301")
        moto_alone()
        adding_ones(301)(keyed)
    finally:
        sys.setrecursionlimit(1000)


def one_of(operands: int) -> Any:
    values = {f":v{i}": {"S": "p" if i == 0 else str(i)} for i in range(operands)}
    return lambda client: client.put_item(
        TableName=KEYED, Item=KEY, ConditionExpression=f"attribute_not_exists(pk) OR pk IN ({', '.join(values)})", ExpressionAttributeValues=values
    )


def test_an_in_of_more_than_100_operands_is_refused(keyed, moto_alone):
    one_of(100)(keyed)
    assert refusal(lambda: one_of(101)(keyed)) == (
        "ValidationException",
        "Invalid ConditionExpression: The IN operator is provided with too many operands; number of operands: 101",
    )
    moto_alone()
    one_of(101)(keyed)


# --- nesting, batches, global index reads -------------------------------------------------------------------------


def nested(levels: int) -> dict:
    value: dict = {"S": "x"}
    for _ in range(levels):
        value = {"M": {"a": value}}
    return value


def test_nesting_deeper_than_32_levels_is_refused(keyed, moto_alone):
    keyed.put_item(TableName=KEYED, Item={**KEY, "deep": nested(32)})
    assert refusal(lambda: keyed.put_item(TableName=KEYED, Item={**KEY, "deep": nested(33)})) == (
        "ValidationException",
        "Nesting Levels have exceeded supported limits",
    )
    moto_alone()
    keyed.put_item(TableName=KEYED, Item={**KEY, "deep": nested(33)})


def test_a_batch_write_of_more_than_25_requests_is_refused(keyed, moto_alone):
    requests = [{"PutRequest": {"Item": {"pk": {"S": f"p{i}"}, "sk": {"S": "s"}}}} for i in range(26)]
    keyed.batch_write_item(RequestItems={KEYED: requests[:25]})
    code, message = refusal(lambda: keyed.batch_write_item(RequestItems={KEYED: requests}))
    assert code == "ValidationException" and "Member must have length less than or equal to 25" in message
    moto_alone()
    keyed.batch_write_item(RequestItems={KEYED: requests})


def test_a_batch_read_of_more_than_100_keys_over_its_tables_is_refused(keyed, moto_alone):
    keyed.create_table(
        TableName="Other",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    keys = [{"pk": {"S": f"p{i}"}, "sk": {"S": "s"}} for i in range(51)]
    others = [{"id": {"S": f"u{i}"}} for i in range(50)]
    keyed.batch_get_item(RequestItems={KEYED: {"Keys": keys[:50]}, "Other": {"Keys": others}})
    over = {KEYED: {"Keys": keys}, "Other": {"Keys": others}}
    assert refusal(lambda: keyed.batch_get_item(RequestItems=over)) == ("ValidationException", "Too many items requested for the BatchGetItem call")
    assert fidelity.violations[-1].endswith("Too many items requested for the BatchGetItem call")  # the layer's (moto refuses it too)


def test_a_consistent_read_of_a_global_index_is_refused_and_of_a_local_one_served(keyed):
    message = ("ValidationException", "Consistent reads are not supported on global secondary indexes")
    assert refusal(lambda: keyed.scan(TableName=KEYED, IndexName="by-g", ConsistentRead=True)) == message
    values = {":g": {"S": "g"}}
    assert (
        refusal(
            lambda: keyed.query(
                TableName=KEYED, IndexName="by-g", KeyConditionExpression="g = :g", ExpressionAttributeValues=values, ConsistentRead=True
            )
        )
        == message
    )
    assert fidelity.violations[-1].endswith(message[1])  # the layer refused it (moto refuses it too)
    keyed.scan(TableName=KEYED, IndexName="by-ls", ConsistentRead=True)


def test_sums_and_differences_are_exact_to_38_digits(keyed):
    store_number(keyed, "123456789012345678901234567890123456.5")  # 37 digits: moto alone rounds a sum of it to 28
    add(keyed, "0.25")
    add(keyed, "-1E+35")  # moto alone fails on an exponent without a decimal point
    assert Decimal(keyed.get_item(TableName=KEYED, Key=KEY)["Item"]["n"]["N"]) == Decimal("23456789012345678901234567890123456.75")


# --- global secondary indexes that lag their table (8.) --------------------------------------------------------


@pytest.fixture
def lagging(keyed) -> Iterator[Any]:
    yield keyed
    fidelity.set_index_lag(None)


def write(client: Any, pk: str, g: str = "g") -> None:
    client.put_item(TableName=KEYED, Item={"pk": {"S": pk}, "sk": {"S": "s"}, "g": {"S": g}, "gs": {"S": "1"}, "ls": {"S": "1"}})


def on_index(client: Any, g: str = "g") -> list[str]:
    """The items the global index holds under `g`, by a Query, and the same by a Scan of the index."""
    queried = client.query(TableName=KEYED, IndexName="by-g", KeyConditionExpression="g = :g", ExpressionAttributeValues={":g": {"S": g}})["Items"]
    return sorted(item["pk"]["S"] for item in queried)


def test_without_a_plan_a_global_index_is_current(lagging):
    write(lagging, "a")
    assert on_index(lagging) == ["a"]


def test_a_global_index_misses_the_writes_its_plan_says_and_the_table_and_local_indexes_do_not(lagging):
    fidelity.set_index_lag(fidelity.index_lag_missing_last_writes(1))
    lagged = fidelity.index_reads_lagged[0]
    write(lagging, "a")
    write(lagging, "b")
    # a global index, queried or scanned, misses the last write
    assert on_index(lagging) == ["a"]
    assert [item["pk"]["S"] for item in lagging.scan(TableName=KEYED, IndexName="by-g")["Items"]] == ["a"]
    assert fidelity.index_reads_lagged[0] == lagged + 2
    # the table and its local index do not, whatever the read
    assert lagging.scan(TableName=KEYED, Select="COUNT")["Count"] == 2
    assert lagging.get_item(TableName=KEYED, Key={"pk": {"S": "b"}, "sk": {"S": "s"}})["Item"]["g"] == {"S": "g"}
    by_ls = lagging.query(TableName=KEYED, IndexName="by-ls", KeyConditionExpression="pk = :b", ExpressionAttributeValues={":b": {"S": "b"}})
    assert by_ls["Count"] == 1
    # and a catch-up shows everything
    fidelity.catch_up_indexes()
    assert on_index(lagging) == ["a", "b"]


def test_a_lagging_index_shows_items_as_they_were_before_an_update_or_a_delete(lagging):
    write(lagging, "a")
    write(lagging, "b")
    fidelity.set_index_lag(fidelity.index_lag_missing_last_writes(2))
    lagging.update_item(
        TableName=KEYED, Key={"pk": {"S": "a"}, "sk": {"S": "s"}}, UpdateExpression="SET g = :h", ExpressionAttributeValues={":h": {"S": "h"}}
    )
    lagging.delete_item(TableName=KEYED, Key={"pk": {"S": "b"}, "sk": {"S": "s"}})
    assert (on_index(lagging, "g"), on_index(lagging, "h")) == (["a", "b"], [])
    fidelity.catch_up_indexes()
    assert (on_index(lagging, "g"), on_index(lagging, "h")) == ([], ["a"])


def test_an_index_catches_up_with_writes_older_than_its_lag_and_a_later_read_sees_everything(lagging):
    # Given a plan that misses the writes of the last 3 steps of a clock the test drives
    clock = [0]
    fidelity.set_index_lag(fidelity.index_lag_missing_writes_younger_than(3), clock=lambda: clock[0])
    write(lagging, "a")  # at step 0
    clock[0] = 1
    write(lagging, "b")  # at step 1
    # When the index is read at steps 2, 3 and 4, with no write in between
    answers = []
    for step in (2, 3, 4):
        clock[0] = step
        answers.append(on_index(lagging))
    # Then it shows each write once it is 3 steps old, and everything in the end
    assert answers == [[], ["a"], ["a", "b"]]


def test_with_its_own_clock_a_lagging_index_catches_up_by_itself(lagging):
    fidelity.set_index_lag(fidelity.index_lag_missing_writes_younger_than(2))  # the clock: calls to DynamoDB
    write(lagging, "a")
    assert [on_index(lagging), on_index(lagging)] == [[], ["a"]]


def test_an_index_is_never_ahead_of_its_table_and_never_goes_back(lagging):
    misses = [0, 5]
    fidelity.set_index_lag(lambda table, index, stamps: misses.pop(0))
    write(lagging, "a")
    write(lagging, "b")
    assert on_index(lagging) == ["a", "b"]  # caught up
    write(lagging, "c")
    assert on_index(lagging) == ["a", "b"]  # misses at most what was written since: a and b stay


def test_only_the_tables_of_the_plan_lag(lagging):
    fidelity.set_index_lag(fidelity.index_lag_missing_last_writes(1), tables=frozenset({"Another"}))
    write(lagging, "a")
    assert on_index(lagging) == ["a"]


def test_a_seeded_plan_lags_the_same_way_each_run(lagging):
    def run(g: str) -> list[list[str]]:
        rng = random.Random(7)
        fidelity.set_index_lag(lambda table, index, stamps: rng.randint(0, len(stamps)))
        answers = []
        for pk in ("a", "b", "c", "d"):
            write(lagging, pk + g, g)
            answers.append([found[0] for found in on_index(lagging, g)])
        return answers

    first = run("1")
    assert run("2") == first
    assert any(len(answer) < n for n, answer in enumerate(first, start=1))  # it did lag


def test_the_local_stacks_server_keeps_no_copy_of_what_it_made():
    # moto tracks every model object it makes (for a dashboard the local stack does not serve), and each
    # TransactWriteItems deep-copies its tables: the server drops that list after every request.
    from moto.core.model_instances import model_data
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    from emulator.fidelity import SerializedApp

    def app(environ, start_response):
        Item(DynamoType({"S": "k"}), None, {"k": {"S": "k"}})  # what a request makes
        return [b"{}"]

    def tracked() -> int:
        return sum(len(model.instances_tracked) for models in model_data.values() for model in models.values())  # type: ignore[attr-defined]

    assert SerializedApp(app)({}, lambda *_: None) == [b"{}"]
    assert tracked() == 0
