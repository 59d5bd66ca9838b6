"""moto's server as the local stack runs it, with two faults of the emulator that DynamoDB does not have put right.

1. One request at a time, so a TransactWriteItems is atomic as in DynamoDB. moto's own server handles requests on
   parallel threads without a lock, and two concurrent transactions can both pass their conditions and both
   apply. Serializing requests costs no throughput here (moto is GIL-bound anyway), while clients still race
   between their reads and writes exactly as against AWS.
2. A table's stream goes on after a cancelled transaction, as in DynamoDB (reconciler.local.moto_fixes, shared
   with the in-process fidelity layer): without it the local stack's balance-events poller received nothing after
   the first refused hold or overdraft re-decision.
3. Lambda's Invoke of the reconciler's own functions runs their handler in this process (reconciler.local.functions),
   where moto would need a Docker engine: `aws lambda invoke` works against the local stack, the hold API included.
"""

from __future__ import annotations

import argparse
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

from reconciler.local.functions import InProcessFunctions
from reconciler.local.moto_fixes import keep_streams_whole_across_cancelled_transactions


class SerializedApp:
    def __init__(self, app) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self._lock:
            # Materialise the body inside the lock: the response is computed lazily by some backends.
            return list(self._app(environ, start_response))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    keep_streams_whole_across_cancelled_transactions()
    # Invoke outside the lock: the handler's own requests come back to this server while it runs.
    app = InProcessFunctions(SerializedApp(DomainDispatcherApplication(create_backend_app)), endpoint=f"http://{args.host}:{args.port}")
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
