"""Faults of moto's DynamoDB that real DynamoDB does not have, put right in moto's own backend class: once per
process, for the local stack's moto server (reconciler.local.moto_serve) and in-process moto alike (the tests'
and the simulator's fidelity layer, simulator/fidelity.py, calls it at install).

A table's stream goes on after a cancelled transaction. DynamoDB writes no stream record for a cancelled
transaction and the stream goes on (DynamoDB developer guide, "Change data capture for DynamoDB Streams"). moto
rolls a cancelled transaction back by putting a deep copy of each table in its place, stream shard included, while
every shard iterator (and each NextShardIterator it hands out) holds the old shard: from then on a stream reader
receives nothing, silently (the local stack's balance-events poller went silent after the first refused hold).
The old shard is put back, holding the copy's records (those of the cancelled transaction's items that moto had
applied are dropped). Observed with moto 5.2.5.
"""

from __future__ import annotations

stream_reattachments = [0]  # cancelled transactions after which a table's stream shard was put back


def keep_streams_whole_across_cancelled_transactions() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend.transact_write_items, "keeps_streams_whole", False):
        return
    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict]) -> None:
        names = {op.get("TableName") for item in transact_items for op in item.values()}
        shards = {name: self.tables[name].stream_shard for name in names if name in self.tables and self.tables[name].stream_shard is not None}
        try:
            original(self, transact_items)
        except Exception:
            for name, shard in shards.items():
                table = self.tables.get(name)
                if table is not None and table.stream_shard is not shard:
                    shard.items = table.stream_shard.items  # the records as before the transaction
                    shard.table = table
                    table.stream_shard = shard
                    stream_reattachments[0] += 1
            raise

    transact_write_items.keeps_streams_whole = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items
