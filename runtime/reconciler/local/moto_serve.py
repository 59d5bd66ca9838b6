"""moto's server as the local stack runs it, with two faults of the emulator that DynamoDB does not have put right.

1. One request at a time, so a TransactWriteItems is atomic as in DynamoDB. moto's own server handles requests on
   parallel threads without a lock, and two concurrent transactions can both pass their conditions and both
   apply. Serializing requests costs no throughput here (moto is GIL-bound anyway), while clients still race
   between their reads and writes exactly as against AWS.
2. A table's stream goes on after a cancelled transaction. DynamoDB writes no stream record for a cancelled
   transaction and the stream goes on (DynamoDB developer guide, "Change data capture for DynamoDB Streams").
   moto rolls a cancelled transaction back by putting a deep copy of each table in its place, stream shard
   included, while every shard iterator (and each NextShardIterator) holds the old shard: the local stack's
   balance-events poller then received nothing after the first refused hold or overdraft re-decision. The old
   shard is put back, holding the copy's records. The simulator's in-process emulation does the same
   (simulator/fidelity.py, 6.), at its botocore wrapper.
"""

from __future__ import annotations

import argparse
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


class SerializedApp:
    def __init__(self, app) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self._lock:
            # Materialise the body inside the lock: the response is computed lazily by some backends.
            return list(self._app(environ, start_response))


def keep_streams_whole_across_cancelled_transactions() -> None:
    """Fault 2 of the module docstring, put right in moto's DynamoDB backend of this process."""
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
            raise

    transact_write_items.keeps_streams_whole = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    keep_streams_whole_across_cancelled_transactions()
    app = SerializedApp(DomainDispatcherApplication(create_backend_app))
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
