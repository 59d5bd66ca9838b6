"""Tracing is paid for only where it is on: the X-Ray SDK is not imported where it is off, and where it is on,
Powertools' Tracer records the handler. Each case runs in a fresh interpreter: the choice is made at import."""

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

REPO_ROOT = Path(__file__).resolve().parents[2]
TRACE_ROOT = "1-5759e988-bd862e3fe1be46a994272793"

# One invocation through the real entry point, with DynamoDB and SQS stubbed (benchmarks/_child.py).
INVOKE = """
import json, sys
from benchmarks._child import StubDynamoDB, StubSQS, event_for
from reconciler import bootstrap, observability
from reconciler.config import load_config
from reconciler.handlers import entry
from reconciler.local.invoker import LocalContext

processor = bootstrap.build_processor(load_config(), dynamodb=StubDynamoDB(), sqs=StubSQS())
bootstrap.event_processor = lambda: processor
result = entry.handler(event_for("no_job", 1), LocalContext("cc-agent-reconciler-dev"))
patched = sorted(sys.modules["aws_xray_sdk.core.patcher"]._PATCHED_MODULES) if "aws_xray_sdk.core.patcher" in sys.modules else []
print(json.dumps({"tracer": type(observability.tracer).__name__, "outcome": result["outcome"],
                  "xray_loaded": "aws_xray_sdk" in sys.modules, "patched": patched}))
"""


def _invoke(env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", INVOKE], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_tracing_off_never_imports_the_xray_sdk():
    result = _invoke({**os.environ, **STUB_ENV, "LAMBDA_TASK_ROOT": "/var/task"})  # in Lambda, switched off
    assert result == {"tracer": "Untraced", "outcome": "settled", "xray_loaded": False, "patched": []}


def test_tracing_on_records_the_handler_and_patches_botocore(tmp_path):
    # A stand-in X-Ray daemon on 127.0.0.1: the SDK streams each closed subsegment to it over UDP.
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(5)
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
        documents = []
        while not any(d.get("name") == "## handler" for d in documents):
            header, body = daemon.recv(65536).decode().split("\n", 1)
            assert json.loads(header) == {"format": "json", "version": 1}
            documents.append(json.loads(body))
    finally:
        daemon.close()
    assert (result["tracer"], result["outcome"], result["xray_loaded"]) == ("Tracer", "settled", True)
    assert "botocore" in result["patched"]  # every AWS call of the function becomes a subsegment
    segment = next(d for d in documents if d.get("name") == "## handler")
    assert segment["trace_id"] == TRACE_ROOT
    assert segment["annotations"] == {"ColdStart": True, "Service": "credit-reconciler"}


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
