"""The function's log lines: what an investigation needs on every line, nothing every line repeats, the whole outcome
at DEBUG (runtime/reconciler/observability.py, handlers/video_events.py)."""

from __future__ import annotations

import io
import json

import pytest

from benchmarks._child import STUB_ENV, StubDynamoDB, StubSQS, event_for
from emulator.invoker import LocalContext
from reconciler import bootstrap, observability
from reconciler.config import load_config
from reconciler.domain.ledger import job_ledger_id
from reconciler.handlers import entry

STATIC = {"service", "location", "timestamp", "function_name", "function_memory_size", "function_arn", "sampling_rate", "xray_trace_id"}


@pytest.fixture
def invoke(monkeypatch):
    """Invokes the real entry point on stubbed AWS; returns its log lines (JSON), one list per invocation."""
    for name, value in {**STUB_ENV, "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0"}.items():
        monkeypatch.setenv(name, value)
    processor = bootstrap.build_processor(load_config(), dynamodb=StubDynamoDB(), sqs=StubSQS())
    monkeypatch.setattr(bootstrap, "event_processor", lambda: processor)
    monkeypatch.setattr(observability, "_cold_start", True)
    stream = io.StringIO()
    previous = observability.logger.registered_handler.setStream(stream)

    def run(event: dict) -> list[dict]:
        stream.seek(0), stream.truncate()
        entry.handler(event, LocalContext("cc-agent-reconciler-prod"))
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield run
    observability.logger.registered_handler.setStream(previous)
    observability.logger.setLevel("INFO")


def test_a_settled_line_carries_the_ids_and_the_money_and_nothing_static(invoke):
    event = event_for("reserved", 1)
    context_keys = {"level", "message", "function_request_id", "correlation_id", "detail_type", "job_id"}
    [line] = invoke(event)
    assert set(line) == context_keys | {"cold_start", "outcome", "userId", "settledAs", "balanceDelta", "postings"}
    assert not STATIC & set(line)
    assert (line["correlation_id"], line["job_id"], line["cold_start"]) == (event["id"], event["detail"]["jobId"], True)
    assert (line["message"], line["outcome"], line["settledAs"], line["balanceDelta"]) == ("settled", "settled", "rendered", 5)
    # The postings name the ledger entries: their ids follow from the job id (a held render posts its charge alone).
    assert [job_ledger_id(line["job_id"], posting) for posting in line["postings"]] == ["job:10:reserved-1:charge"]
    # Only a container's first invocation says it was a cold start.
    [second] = invoke(event_for("no_job", 2))
    assert "cold_start" not in second and second["postings"] == ["charge"] and second["function_request_id"] != line["function_request_id"]


def test_duplicates_conflicts_and_rejections_keep_what_explains_them(invoke):
    [duplicate] = invoke(event_for("duplicate", 1))
    assert (duplicate["outcome"], duplicate["settledAs"], duplicate["settledByEvent"]) == ("duplicate", "rendered", "first")
    conflict = invoke(event_for("conflict", 1))[0]
    assert (conflict["level"], conflict["outcome"], conflict["settledByEvent"]) == ("ERROR", "conflict", "first")
    rejected = invoke(event_for("invalid", 1))[0]
    assert (rejected["level"], rejected["field"], rejected["reason"]) == ("ERROR", "userId", "is missing")
    assert rejected["deadLetterId"]
    assert not STATIC & (set(duplicate) | set(conflict) | set(rejected))


def test_the_whole_outcome_is_logged_at_debug_only(invoke):
    assert [line["message"] for line in invoke(event_for("no_job", 1))] == ["settled"]
    observability.logger.setLevel("DEBUG")
    detail, settled = invoke(event_for("no_job", 2))
    assert (detail["level"], detail["message"], settled["message"]) == ("DEBUG", "outcome detail", "settled")
    assert detail["ledgerIds"] == ["job:8:no_job-2:charge"] and detail["eventId"] == "ev-no_job-2" and detail["attempts"] == 1


def test_where_tracing_is_on_each_line_names_its_trace(invoke, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    [line] = invoke(event_for("no_job", 1))
    assert line["xray_trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"


def test_a_hold_line_names_the_job_once_the_user_and_the_answer(monkeypatch):
    from reconciler.handlers import hold_api

    for name, value in STUB_ENV.items():
        monkeypatch.setenv(name, value)
    config = load_config()
    service = bootstrap.build_reservations(bootstrap.settlement_store(config, StubDynamoDB()), config)
    monkeypatch.setattr(bootstrap, "hold_service", lambda: service)
    stream = io.StringIO()
    previous = observability.logger.registered_handler.setStream(stream)
    try:
        request = {"operation": "hold", "jobId": "hold-job-1", "userId": "user-7f3a9c21", "model": "standard-v1", "credits": 30}
        answer = hold_api.handler(request, LocalContext("cc-reconciler-reserve-prod"))
        bad = {key: value for key, value in request.items() if key != "userId"}
        short = hold_api.handler({**bad, "jobId": "hold-job-2"}, LocalContext("cc-reconciler-reserve-prod"))
    finally:
        observability.logger.registered_handler.setStream(previous)
    held, refused = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (answer["status"], answer["jobId"], short["status"]) == ("held", "hold-job-1", "refused")
    assert (held["job_id"], held["userId"], held["status"], held["credits"]) == ("hold-job-1", "user-7f3a9c21", "held", 30)
    assert (refused["job_id"], refused["status"], refused["field"], refused["reason"]) == ("hold-job-2", "refused", "userId", "is missing")
    assert "jobId" not in held and stream.getvalue().count("hold-job-1") == 1  # the job once a line
    assert not STATIC & set(held)
