"""The CLI's calls that only happen against a deployed stage (no --local, no --endpoint-url), made here against
in-process moto so the call recorder sees them too: the queue URL look-up, the deployed function's configuration,
the caller identity and the synchronous invoke of `dlq replay`. Without them the operator policies' grants for
these calls could not be checked against behaviour (tests/least_privilege/recorder.py)."""

from __future__ import annotations

import io
import json
import zipfile

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from emulator.resources import provision
from reconciler.cli.main import app
from tests.least_privilege import synthesis


@pytest.fixture(scope="module")
def dev_templates(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    # The session's synthesis of dev (tests/least_privilege/synthesis.py), not one more of this worker's own.
    return synthesis.cache_or_own(request.config, tmp_path_factory).templates("dev")


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def _stage_function(session, role_name: str, environment: dict[str, str]) -> None:
    """`cc-agent-reconciler-dev` in moto, with `environment`."""
    role = session.client("iam").create_role(RoleName=role_name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    session.client("lambda").create_function(
        FunctionName="cc-agent-reconciler-dev",
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": _zip()},
        Environment={"Variables": environment},
    )


@pytest.fixture
def deployed_dev(dev_templates, monkeypatch):
    """The dev stage's resources and a function (in moto) whose invoke answers as the reconciler does."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        session = boto3.session.Session()
        resources = provision(dev_templates, "dev", session)
        _stage_function(session, "reconciler", resources.runtime_environment())
        # moto runs an invoke in Docker, which this machine lacks: answer as the function does for a duplicate.
        monkeypatch.setattr(
            "moto.awslambda.models.LambdaFunction.invoke",
            lambda self, body, request_headers, response_headers: json.dumps({"outcome": "duplicate"}),
        )
        yield session, resources


def run(*args: str):
    result = CliRunner().invoke(app, ["--stage", "dev", "--no-progress", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_dlq_replay_against_a_deployed_stage_invokes_the_function_and_deletes_the_message(deployed_dev):
    session, resources = deployed_dev
    event = {
        "version": "0",
        "id": "evt-1",
        "detail-type": "video.rendered",
        "source": "video.generation",
        "account": "123456789012",
        "time": "2026-11-28T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"jobId": "job-1", "userId": "user-1", "seconds": 5, "model": "test"},
    }
    sqs = session.client("sqs")
    sqs.send_message(QueueUrl=resources.dlq_url, MessageBody=json.dumps(event))

    result = run("dlq", "replay", "--yes")

    assert result.exit_code == 0, result.output
    remaining = sqs.get_queue_attributes(QueueUrl=resources.dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert remaining["Attributes"]["ApproximateNumberOfMessages"] == "0", "a replayed message is deleted"


def test_scan_dry_run_against_a_deployed_stage_reads_the_functions_configuration(deployed_dev):
    result = run("scan", "--dry-run")
    assert result.exit_code == 0, result.output


@pytest.fixture
def v1_stage_with_shadow(dev_templates, monkeypatch):
    """A stage where v1 still runs (its function under the runbook's name, with v1's own environment) and the deployed
    shadow beside it (its resources from the shadow template), in moto."""
    from emulator.shadow import provision_shadow, shadow_templates

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    templates = shadow_templates("dev")
    with mock_aws():
        session = boto3.session.Session()
        provision(dev_templates, "dev", session)  # the tables under v1's names
        provision_shadow(templates, "dev", session)
        _stage_function(session, "v1", {"CREDITS_TABLE": "Credits-dev", "OPENAI_SECRET": "meta-agents/openai"})  # v1's, not v2's
        yield session


def test_shadow_commands_against_a_stage_where_v1_still_runs(v1_stage_with_shadow, tmp_path):
    # Given v1's function (not v2's) under the stage's function name, a baseline and a file of one event
    events = tmp_path / "events.jsonl"
    detail = {"jobId": "job-1", "userId": "user-1", "seconds": 5, "model": "test"}
    events.write_text(json.dumps({"id": "ev-1", "source": "video.generation", "detail-type": "video.rendered", "detail": detail}) + "\n")
    assert run("shadow", "start", "--dir", str(tmp_path / "s")).exit_code == 0
    # When the shadow decides it, Then with the stage's contract settings, and a note that says why
    decided = run("--json", "shadow", "decide", str(events), "--dir", str(tmp_path / "s"))
    assert decided.exit_code == 0, decided.output
    assert [(d["outcome"], d["balanceDelta"]) for d in json.loads(decided.stdout)] == [("settled", -5)]
    assert "cc-agent-reconciler-dev is not v2's" in decided.stderr
    # And the deployed shadow's report reads its (empty) table in the stage
    report = run("--json", "shadow", "report", "--deployed", "--dir", str(tmp_path / "s"))
    assert report.exit_code == 0, report.output
    assert json.loads(report.stdout)["decided"] == 0
