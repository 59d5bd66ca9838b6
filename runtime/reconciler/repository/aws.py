"""boto3 clients with the timeouts and retry mode the reconciler relies on."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

# Short timeouts: a hung call must fail fast enough for our own retries inside the 30 s Lambda timeout.
# botocore's standard mode retries throttling and 5xx; our service layer retries conflicts on top.
CLIENT_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
    tcp_keepalive=True,
)


def client(service: str, **kwargs: Any) -> Any:
    """A client for `service`; AWS_ENDPOINT_URL (the local stack) and the credential chain apply as usual."""
    return boto3.session.Session().client(service, config=CLIENT_CONFIG, **kwargs)
