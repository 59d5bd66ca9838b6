"""The metrics the function prints are the series the alarms and the dashboard read, per stage, and the v1
runbook's dimensionless series exists too (docs/metrics.md). Tested on what the real handler prints."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from infra_helpers import resource_named
from moto import mock_aws

REPO = Path(__file__).resolve().parents[2]


def _emitted_metrics():
    """The EMF summing the runtime tests count metrics with: the simulator's (one parser, simulator/invariants.py)."""
    from simulator.sim import emitted_metrics

    return emitted_metrics


class Context:
    function_name = "cc-agent-reconciler-dev"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cc-agent-reconciler-dev"
    aws_request_id = "request-1"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture(scope="module")
def printed(synthesize, tmp_path_factory) -> str:
    """What the handler prints for one invalid event, on the dev stage's resources (moto, from the template)."""
    from emulator.resources import provision

    built = synthesize("dev")  # the session's synthesis: the local stack provisions from these templates
    names = built.config.names
    templates = {
        names.data_stack: built.data.to_json(),
        names.compute_stack: built.compute.to_json(),
        names.monitoring_stack: built.monitoring.to_json(),
    }
    capture = tmp_path_factory.mktemp("emf") / "stdout.txt"
    monkeypatch = pytest.MonkeyPatch()
    try:
        with mock_aws():
            resources = provision(templates, "dev", boto3.session.Session())
            for name, value in resources.runtime_environment().items():
                monkeypatch.setenv(name, value)
            monkeypatch.setenv("METRICS_DIMENSIONLESS", "true")
            monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
            from reconciler.bootstrap import reset_container
            from reconciler.handlers.entry import handler

            reset_container()
            import contextlib
            import io

            out = io.StringIO()
            event = {
                "version": "0",
                "id": "evt-bad",
                "detail-type": "video.rendered",
                "source": "video.generation",
                "account": "123456789012",
                "time": "2026-11-28T12:00:00Z",
                "region": "us-east-1",
                "resources": [],
                "detail": {"jobId": "job-1", "userId": "user-1", "seconds": -5, "model": "test"},
            }
            with contextlib.redirect_stdout(out):
                handler(event, Context())
            capture.write_text(out.getvalue())
            reset_container()
    finally:
        monkeypatch.undo()
    return capture.read_text()


def _records(printed: str) -> list[dict]:
    return [json.loads(line) for line in printed.splitlines() if '"_aws"' in line]


def test_every_metric_carries_service_and_stage_and_the_runbooks_dimensionless_set(printed):
    records = _records(printed)
    assert records, f"no EMF record printed:\n{printed}"
    for record in records:
        assert (record["service"], record["stage"]) == ("credit-reconciler", "dev")
        for definition in record["_aws"]["CloudWatchMetrics"]:
            assert definition["Namespace"] == "Reconciler"
            assert definition["Dimensions"] == [["service", "stage"], []], definition["Dimensions"]


def test_the_dimensionless_set_does_not_double_count_in_the_runtime_tests_totals(printed):
    assert _emitted_metrics()(printed).get("InvalidEvents") == 1


def test_the_alarm_reads_the_series_the_handler_prints(printed, synthesize):
    (record,) = [r for r in _records(printed) if "InvalidEvents" in r]
    alarm = resource_named(synthesize("dev").monitoring, "AWS::CloudWatch::Alarm", "AlarmName", "cc-reconciler-invalid-events-dev")
    dimensions = {d["Name"]: d["Value"] for d in alarm["Properties"]["Dimensions"]}
    (primary, _empty) = record["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    assert dimensions == {name: record[name] for name in primary}


def test_a_stage_can_drop_the_dimensionless_set(monkeypatch, capsys):
    from reconciler.observability import COUNT, metrics

    monkeypatch.setenv("STAGE", "prod")
    monkeypatch.setenv("METRICS_DIMENSIONLESS", "false")

    @metrics.log_metrics
    def handler(event, context):
        metrics.add_metric("Adjustments", COUNT, 2)

    handler({}, None)
    (record,) = _records(capsys.readouterr().out)
    assert record["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "stage"]]
    assert record["stage"] == "prod" and record["Adjustments"] == [2.0]
