"""moto's server in a child process on 127.0.0.1, so its state is isolated and it speaks real HTTP.

`python -m emulator.server --port N` is that child: moto's app made faithful where it is not AWS (emulator/fidelity.py,
9. and 6.: one request at a time, streams whole across cancelled transactions), behind the in-process Lambda Invoke
of the reconciler's own functions (emulator/functions.py), where moto would need a Docker engine.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# The checkout holding this package: the child runs `python -m emulator.server` from there, so it imports this
# package whatever the parent's working directory.
CHECKOUT = Path(__file__).resolve().parents[1]

LOCAL_REGION = "us-east-1"
LOCAL_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": LOCAL_REGION,
    "AWS_REGION": LOCAL_REGION,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Generous: on a loaded machine (a shared 2-core host, tests at nice 19) moto's imports alone took 117 s.
START_TIMEOUT_SECONDS = 180.0


def wait_until_up(endpoint: str, timeout: float = START_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):  # noqa: S310 - our own http://127.0.0.1 endpoint
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the local AWS endpoint at {endpoint} did not start within {timeout:.0f} s") from None
            time.sleep(0.1)


@contextmanager
def moto_server(port: int | None = None) -> Iterator[str]:
    """Yields the endpoint URL of a fresh moto server; stops it on exit."""
    port = port or free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator.server", "--host", "127.0.0.1", "--port", str(port)],
        cwd=CHECKOUT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **LOCAL_ENV},
    )
    try:
        wait_until_up(endpoint)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def reset(endpoint: str) -> None:
    """Forgets every resource of the server (between tests)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")  # noqa: S310 - our own http://127.0.0.1 endpoint
    urllib.request.urlopen(request, timeout=5).close()  # noqa: S310


def serve() -> None:
    """The child: moto's server with the fixes above, until it is terminated."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    from emulator.fidelity import SerializedApp, evaluate_log_filter_patterns_as_aws_does, keep_streams_whole_across_cancelled_transactions
    from emulator.functions import InProcessFunctions
    from emulator.moto_speed import answer_attribute_values_as_stored

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    keep_streams_whole_across_cancelled_transactions()
    evaluate_log_filter_patterns_as_aws_does()
    answer_attribute_values_as_stored()
    # Invoke outside the lock: the handler's own requests come back to this server while it runs.
    app = InProcessFunctions(SerializedApp(DomainDispatcherApplication(create_backend_app)), endpoint=f"http://{args.host}:{args.port}")
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    serve()
