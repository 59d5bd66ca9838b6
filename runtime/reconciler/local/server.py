"""Runs moto's server in a child process on 127.0.0.1, so its state is isolated and it speaks real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

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


def wait_until_up(endpoint: str, timeout: float = 30.0) -> None:
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
        [sys.executable, "-m", "reconciler.local.moto_serve", "--host", "127.0.0.1", "--port", str(port)],
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
