"""Tracing is Lambda's own: no stage's function imports the X-Ray SDK or sends segments itself (docs/tracing.md), and
where a stage traces its log lines carry the trace id. Each case runs in a fresh interpreter, as a container starts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from aws_lambda_powertools import Tracer

from benchmarks._child import STUB_ENV
from reconciler.observability import tracing_enabled

REPO_ROOT = Path(__file__).resolve().parents[3]
TRACE_ROOT = "1-5759e988-bd862e3fe1be46a994272793"

# One invocation through the real entry point, with DynamoDB and SQS stubbed (benchmarks/_child.py).
INVOKE = """
import io, json, sys
from benchmarks._child import StubDynamoDB, StubSQS, event_for
from reconciler import bootstrap, observability
from reconciler.config import load_config
from reconciler.handlers import entry
from emulator.invoker import LocalContext

processor = bootstrap.build_processor(load_config(), dynamodb=StubDynamoDB(), sqs=StubSQS())
bootstrap.event_processor = lambda: processor
logs = io.StringIO()
observability.logger.registered_handler.setStream(logs)
result = entry.handler(event_for("no_job", 1), LocalContext("cc-agent-reconciler-dev"))
print(json.dumps({"outcome": result["outcome"], "xray_loaded": any(m.startswith("aws_xray_sdk") for m in sys.modules),
                  "log": json.loads(logs.getvalue().splitlines()[0])}))
"""


def _invoke(env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", INVOKE], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_tracing_off_imports_no_sdk_and_names_no_trace():
    result = _invoke({**os.environ, **STUB_ENV, "LAMBDA_TASK_ROOT": "/var/task", "_X_AMZN_TRACE_ID": f"Root={TRACE_ROOT};Sampled=0"})
    assert (result["outcome"], result["xray_loaded"]) == ("settled", False)
    assert "xray_trace_id" not in result["log"]


def test_tracing_on_imports_no_sdk_sends_nothing_itself_and_names_its_trace(tmp_path):
    # A stand-in X-Ray daemon on 127.0.0.1: the X-Ray SDK streamed every subsegment to it; Lambda's own tracing needs
    # nothing from the function.
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(0.5)
    env = {
        **os.environ,
        **STUB_ENV,
        "POWERTOOLS_TRACE_DISABLED": "false",
        "LAMBDA_TASK_ROOT": str(tmp_path),
        "_X_AMZN_TRACE_ID": f"Root={TRACE_ROOT};Parent=53995c3f42cd8ad8;Sampled=1",  # what Lambda sets per invocation
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
    }
    try:
        result = _invoke(env)
        with pytest.raises(TimeoutError):
            daemon.recv(65536)
    finally:
        daemon.close()
    assert (result["outcome"], result["xray_loaded"]) == ("settled", False)
    assert result["log"]["xray_trace_id"] == TRACE_ROOT


@pytest.mark.parametrize(
    "environment",
    [
        {},
        {"LAMBDA_TASK_ROOT": "/var/task"},
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"},
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "1"},
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "False"},
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "no"},
        {"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"},
        {"LAMBDA_TASK_ROOT": "/var/task", "AWS_CHALICE_CLI_MODE": "true"},
        {"LAMBDA_TASK_ROOT": "", "POWERTOOLS_TRACE_DISABLED": "false"},
        {"POWERTOOLS_TRACE_DISABLED": "off"},
    ],
)
def test_the_switch_is_powertools_own_rule(monkeypatch, environment):
    for name in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED", "AWS_SAM_LOCAL", "AWS_CHALICE_CLI_MODE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert tracing_enabled(os.environ) is (not Tracer._is_tracer_disabled())


def test_an_unreadable_switch_fails_like_powertools(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "maybe")
    with pytest.raises(ValueError, match="invalid truth value"):
        Tracer._is_tracer_disabled()
    with pytest.raises(ValueError, match="invalid truth value"):
        tracing_enabled(os.environ)
