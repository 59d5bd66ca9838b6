"""The local stack's moto server keeps a table's stream going after a cancelled transaction, as DynamoDB does
(emulator/fidelity.py, 6.): the balance-events poller must not go silent after a refused hold."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.server


def test_a_stream_reader_sees_the_writes_after_a_cancelled_transaction(aws_server):
    # Given a reader of the Credits stream that has read the first write
    dynamodb, streams = aws_server.client("dynamodb"), aws_server.client("dynamodbstreams")
    table = aws_server.config.credits_table
    arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    dynamodb.put_item(TableName=table, Item={"userId": {"S": "ann"}, "remaining": {"N": "5"}})
    first = streams.get_records(ShardIterator=iterator)
    assert len(first["Records"]) == 1
    # When a transaction is cancelled (a hold the balance does not cover), and then a write succeeds
    hold = {
        "TableName": table,
        "Key": {"userId": {"S": "ann"}},
        "UpdateExpression": "SET remaining = remaining - :n",
        "ConditionExpression": "remaining >= :n",
        "ExpressionAttributeValues": {":n": {"N": "9"}},
    }
    with pytest.raises(ClientError, match="TransactionCanceledException"):
        dynamodb.transact_write_items(TransactItems=[{"Update": hold}])
    dynamodb.put_item(TableName=table, Item={"userId": {"S": "bob"}, "remaining": {"N": "7"}})
    # Then the reader's next iterator gets that write, and nothing of the cancelled transaction
    records = streams.get_records(ShardIterator=first["NextShardIterator"])["Records"]
    assert [(r["eventName"], r["dynamodb"]["Keys"]["userId"]["S"]) for r in records] == [("INSERT", "bob")]
