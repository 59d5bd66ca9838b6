"""Fixtures for the ops-alert tests: the dev stage in moto (its ops topic read through a subscribed queue, Secrets
Manager), a fake model on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from moto import mock_aws

from reconciler.observability import metrics
from tests.aws import Aws


@pytest.fixture
def aws(dev_templates):
    """The dev stage in in-process moto, with a queue reading what its ops topic delivers."""
    with mock_aws():
        yield Aws.provisioned(dev_templates).read_ops_topic()


@dataclass
class FakeModel:
    """An OpenAI-compatible /v1/chat/completions on 127.0.0.1. mode: ok | hang | error | garbage."""

    url: str
    mode: str = "ok"
    answer: str = "Likely cause: the producer sends negative seconds. Run `dlq show` first."
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def fake_model():
    state: dict[str, FakeModel] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def do_POST(self) -> None:
            model = state["model"]
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            model.requests.append({"path": self.path, "authorization": self.headers.get("Authorization"), "body": json.loads(body)})
            if model.mode == "hang":
                model.release.wait(15)
                return
            if model.mode == "error":
                payload, status = b'{"error": {"message": "boom"}}', 500
            elif model.mode == "garbage":
                payload, status = b"<html>definitely not json", 200
            else:
                payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": model.answer}}]}).encode()
                status = 200
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state["model"] = FakeModel(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state["model"]
    state["model"].release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def metric_counts(monkeypatch):
    """Counts what the code adds to the shared Powertools metrics (Powertools itself flushes every 100 values)."""
    counts: Counter[str] = Counter()

    def add_metric(name: str, unit: Any, value: float, *args: Any, **kwargs: Any) -> None:
        counts[name] += value

    monkeypatch.setattr(metrics, "add_metric", add_metric)
    return counts


@pytest.fixture
def secret_reads():
    """A Powertools SecretsProvider factory whose client counts GetSecretValue calls."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    calls = Counter()

    def factory():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.meta.events.register("before-call.secrets-manager.GetSecretValue", lambda **_: calls.update(["get"]))
        return SecretsProvider(boto3_client=client)

    factory.calls = calls  # type: ignore[attr-defined]
    return factory


class Clock:
    def __init__(self, start: float = 1_780_000_201.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def ops_logs():
    """Everything the shared Powertools logger writes, as the JSON lines CloudWatch would receive."""
    import io
    import logging

    from reconciler.observability import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    underlying = logging.getLogger(logger.name)
    underlying.addHandler(handler)
    yield stream
    underlying.removeHandler(handler)
