"""The unit meter against DynamoDB's documented charges, on known requests (DynamoDB Developer Guide: "DynamoDB read
and write operations", "Query operations", "Scan operations", transactions' capacity management, GSI writes).

Items are built to exact sizes (an item's size is the UTF-8 bytes of its attribute names and string values), so each
expected charge below is worked out by hand from the rules, not by the meter's own code.
"""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from benchmarks.requests import _Recorder

TABLE = "MeterTable"
INDEX = "by-owner"  # GSI on `owner`, every attribute projected


def sized(pk: str, sk: str, size: int, **extra: str) -> dict:
    """An item of exactly `size` bytes: pk, sk, the extra string attributes and a `filler` string filling the rest."""
    fixed = len("pk") + len(pk) + len("sk") + len(sk) + len("filler") + sum(len(k) + len(v) for k, v in extra.items())
    item = {"pk": {"S": pk}, "sk": {"S": sk}, "filler": {"S": "x" * (size - fixed)}}
    item.update({name: {"S": value} for name, value in extra.items()})
    return item


@pytest.fixture
def meter():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "owner")],
            GlobalSecondaryIndexes=[
                {"IndexName": INDEX, "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}}
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        # Partition "a": three items of 1,500 bytes (4,500 bytes: two 4 KB steps); partition "b": one of 5,000 bytes.
        for index in range(3):
            client.put_item(TableName=TABLE, Item=sized("a", f"s{index}", 1500))
        client.put_item(TableName=TABLE, Item=sized("b", "s0", 5000))
        recorder = _Recorder(client)
        yield client, recorder


def charge(recorder, call, **request) -> tuple[float, float]:
    recorder.reset()
    call(**request)
    return recorder.rru, recorder.wru


def test_get_item_by_consistency_and_size(meter):
    client, recorder = meter
    big = {"pk": {"S": "b"}, "sk": {"S": "s0"}}
    assert charge(recorder, client.get_item, TableName=TABLE, Key=big) == (1.0, 0)  # 5,000 B: 2 steps x 0.5
    assert charge(recorder, client.get_item, TableName=TABLE, Key=big, ConsistentRead=True) == (2.0, 0)
    # A projection returns less but reads, and is charged for, the whole item.
    assert charge(recorder, client.get_item, TableName=TABLE, Key=big, ProjectionExpression="pk") == (1.0, 0)
    # An item that is not there still costs one step.
    assert charge(recorder, client.get_item, TableName=TABLE, Key={"pk": {"S": "none"}, "sk": {"S": "x"}}) == (0.5, 0)


def test_scans_are_charged_for_what_they_read_not_what_they_return(meter):
    client, recorder = meter
    # 3 x 1,500 + 5,000 = 9,500 bytes read: 3 steps of 4 KB for the page.
    assert charge(recorder, client.scan, TableName=TABLE) == (1.5, 0)
    assert charge(recorder, client.scan, TableName=TABLE, ConsistentRead=True) == (3.0, 0)
    # A filter that keeps nothing, a projection, a count: the same bytes read, the same charge.
    nothing = {"FilterExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "nobody"}}}
    assert charge(recorder, client.scan, TableName=TABLE, ConsistentRead=True, **nothing) == (3.0, 0)
    assert charge(recorder, client.scan, TableName=TABLE, ProjectionExpression="pk") == (1.5, 0)
    assert charge(recorder, client.scan, TableName=TABLE, Select="COUNT") == (1.5, 0)


def test_queries_by_consistency_filter_and_index(meter):
    client, recorder = meter
    partition = {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "a"}}}
    assert charge(recorder, client.query, TableName=TABLE, **partition) == (1.0, 0)  # 4,500 B: 2 steps x 0.5
    assert charge(recorder, client.query, TableName=TABLE, ConsistentRead=True, **partition) == (2.0, 0)
    one = {"KeyConditionExpression": "pk = :p", "FilterExpression": "sk = :s", "ExpressionAttributeValues": {":p": {"S": "a"}, ":s": {"S": "s1"}}}
    assert charge(recorder, client.query, TableName=TABLE, ConsistentRead=True, **one) == (2.0, 0)  # filtered to 1 of 3
    # Index entries: an owned item of 2,000 bytes (ALL projection: the whole item) -> one step.
    client.put_item(TableName=TABLE, Item=sized("c", "s0", 2000, owner="o1"))
    owner = {"IndexName": INDEX, "KeyConditionExpression": "#o = :o", "ExpressionAttributeNames": {"#o": "owner"}}
    assert charge(recorder, client.query, TableName=TABLE, ExpressionAttributeValues={":o": {"S": "o1"}}, **owner) == (0.5, 0)


def test_paged_reads_are_charged_per_page_up_to_where_each_page_stopped(meter):
    client, recorder = meter
    # Limit 1 with a filter: the page evaluates one item (1,500 B, one step) whatever the filter keeps.
    page = {"KeyConditionExpression": "pk = :p", "FilterExpression": "sk = :s", "ExpressionAttributeValues": {":p": {"S": "a"}, ":s": {"S": "s9"}}}
    assert charge(recorder, client.query, TableName=TABLE, Limit=1, ConsistentRead=True, **page) == (1.0, 0)


def test_transactional_and_batch_reads(meter):
    client, recorder = meter
    big, small, none = ({"pk": {"S": "b"}, "sk": {"S": "s0"}}, {"pk": {"S": "a"}, "sk": {"S": "s0"}}, {"pk": {"S": "z"}, "sk": {"S": "z"}})
    gets = [{"Get": {"TableName": TABLE, "Key": key}} for key in (big, small)]
    assert charge(recorder, client.transact_get_items, TransactItems=gets) == (2 * 2 + 2 * 1, 0)
    batch = {TABLE: {"Keys": [big, small, none], "ConsistentRead": True}}
    assert charge(recorder, client.batch_get_item, RequestItems=batch) == (2 + 1 + 1, 0)  # the missing key: one step
    batch[TABLE]["ConsistentRead"] = False
    assert charge(recorder, client.batch_get_item, RequestItems=batch) == (2.0, 0)


def test_writes_transactions_and_failed_conditions(meter):
    client, recorder = meter
    # 1,500 B: two 1 KB steps.
    assert charge(recorder, client.put_item, TableName=TABLE, Item=sized("d", "s0", 1500)) == (0, 2)
    # A failed condition is charged as the write it would have been (the existing item's size).
    with pytest.raises(client.exceptions.ConditionalCheckFailedException):
        charge(recorder, client.put_item, TableName=TABLE, Item=sized("d", "s0", 100), ConditionExpression="attribute_not_exists(pk)")
    assert recorder.wru == 2
    # In a transaction every item counts twice, a ConditionCheck included: 2 x 2 (1,500 B) + 2 x 1 + 2 x 1.
    items = [
        {"Put": {"TableName": TABLE, "Item": sized("e", "s0", 1500)}},
        {"Put": {"TableName": TABLE, "Item": sized("e", "s1", 200)}},
        {"ConditionCheck": {"TableName": TABLE, "Key": {"pk": {"S": "a"}, "sk": {"S": "s0"}}, "ConditionExpression": "attribute_exists(pk)"}},
    ]
    assert charge(recorder, client.transact_write_items, TransactItems=items) == (0, 4 + 2 + 2 * 2)


def test_index_writes(meter):
    client, recorder = meter
    key = {"pk": {"S": "f"}, "sk": {"S": "s0"}}
    # Into the index: the table write (1) + the index put (1).
    assert charge(recorder, client.put_item, TableName=TABLE, Item=sized("f", "s0", 300, owner="o1")) == (0, 2)
    # Its index key changes: the table write + the index delete and put.
    assert charge(
        recorder,
        client.update_item,
        TableName=TABLE,
        Key=key,
        UpdateExpression="SET #o = :o",
        ExpressionAttributeNames={"#o": "owner"},
        ExpressionAttributeValues={":o": {"S": "o2"}},
    ) == (0, 3)
    # A projected attribute changes (ALL projection): the table write + 1.
    assert charge(
        recorder, client.update_item, TableName=TABLE, Key=key, UpdateExpression="SET filler = :x", ExpressionAttributeValues={":x": {"S": "y"}}
    ) == (0, 2)
    # Out of the index.
    assert charge(recorder, client.update_item, TableName=TABLE, Key=key, UpdateExpression="REMOVE #o", ExpressionAttributeNames={"#o": "owner"}) == (
        0,
        2,
    )
    # An item never in the index pays only its table write.
    assert charge(recorder, client.delete_item, TableName=TABLE, Key=key) == (0, 1)
