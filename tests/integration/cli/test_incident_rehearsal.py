"""The scripted incident rehearsal of docs/operations.md, against `python -m emulator up` (a real subprocess that
delivers events from any client, as Lambda's async invocation does), and the v1 runbook's own `aws` commands
run verbatim (with --endpoint-url) against the same stack (the aws CLI is a pinned dev dependency)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import boto3
import pytest

from emulator.server import LOCAL_ENV
from reconciler.ops.target import STATE_DIR_ENV


def wait_until(predicate, timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.1)


def rendered(job_id: str, user: str, seconds: int, model: str) -> dict:
    return {
        "Source": "video.generation",
        "DetailType": "video.rendered",
        "Detail": json.dumps({"jobId": job_id, "userId": user, "seconds": seconds, "model": model}),
    }


@pytest.fixture
def prod(running_stack, cli, monkeypatch):
    """`reconciler --stage prod --local ...` against the running stack."""
    monkeypatch.setenv(STATE_DIR_ENV, str(running_stack.state_dir))
    for name, value in LOCAL_ENV.items():
        monkeypatch.setenv(name, value)
    return lambda *args: cli("--stage", "prod", *args)


@pytest.fixture
def prod_stack(prod, emulate):
    """`python -m emulator --stage prod ...` against the running stack (seed)."""
    return lambda *args: emulate("--stage", "prod", *args)


def test_incident_rehearsal_and_the_v1_runbook_commands_against_local_up(running_stack, prod, prod_stack, emulator_console, tmp_path):
    session = boto3.session.Session(
        **{k.lower(): v for k, v in LOCAL_ENV.items() if k.startswith("AWS_") and "REGION" not in k}, region_name="us-east-1"
    )
    events, dynamodb = (session.client(name, endpoint_url=running_stack.endpoint) for name in ("events", "dynamodb"))

    def balance(user: str):
        return prod("--json", "balance", user).json()["remaining"]

    # A second `up` of the same stage refuses, rather than overwrite the running one's state
    second = emulator_console("--stage", "prod", "up", timeout=60)
    assert second.exit_code == 1 and "already running" in second.stderr

    assert prod_stack("seed", "u1", "20").exit_code == 0
    # 1. The pipeline (any client) publishes a render on a model the price list does not know: dead-lettered
    events.put_events(Entries=[rendered("job-r1", "u1", 2, "hd-v9")])
    wait_until(lambda: prod("--json", "dlq", "list").json()["messages"], what="the event reaches the DLQ")
    (letter,) = prod("--json", "dlq", "list").json()["messages"]
    assert letter["jobId"] == "job-r1" and letter["reason"].startswith("model")
    # 2. The cause is understood (the pipeline sent the wrong model): replay that one message, corrected
    fixed = tmp_path / "job-r1.json"
    fixed.write_text(json.dumps({"jobId": "job-r1", "userId": "u1", "seconds": 2, "model": "test"}))
    replayed = prod("--json", "dlq", "replay", letter["messageId"][:8], "--payload", str(fixed), "--yes")
    assert replayed.exit_code == 0, replayed.stderr
    assert balance("u1") == 18 and prod("--json", "dlq", "list").json()["messages"] == []
    assert prod("--json", "job", "show", "job-r1").json()["job"]["settledByEvent"].startswith("corrected:")
    # 3. Pause: Lambda sends the events to the DLQ unrun (no retry at reserved concurrency 0), none lost;
    #    resume, then replay them from the DLQ
    assert prod("pause", "--yes").exit_code == 0
    events.put_events(Entries=[rendered("job-r2", "u1", 1, "test")])
    wait_until(lambda: prod("--json", "dlq", "list").json()["messages"], what="the paused function's event reaches the DLQ")
    (unrun,) = prod("--json", "dlq", "list").json()["messages"]
    assert unrun["jobId"] == "job-r2" and "reserved concurrency 0" in unrun["reason"] and balance("u1") == 18
    assert prod("resume", "--yes").exit_code == 0
    assert prod("dlq", "replay", "--yes").exit_code == 0
    assert balance("u1") == 17 and prod("--json", "dlq", "list").json()["messages"] == []
    # 3b. Events feared missing: replay the archive to the rule; what was settled is a duplicate, nothing moves twice
    replay = prod("--json", "events", "replay", "--from", "10m", "--to", "now", "--yes")
    assert replay.exit_code == 0, replay.stderr
    wait_until(lambda: "job-r2 -> duplicate" in running_stack.log.read_text(), what="the replayed events are delivered")
    assert balance("u1") == 17
    # 4. One alarm silenced for the maintenance, then back
    assert prod("alarms", "disable", "errors", "--yes").exit_code == 0
    status = {a["name"]: a["actionsEnabled"] for a in prod("--json", "alarms", "status").json()}
    assert status["cc-reconciler-errors-prod"] is False and status["cc-reconciler-dlq-depth-prod"] is True
    assert prod("alarms", "enable", "errors", "--yes").exit_code == 0
    assert all(a["actionsEnabled"] for a in prod("--json", "alarms", "status").json())
    # 5. A balance "fixed" behind the books (+500, no ledger entry): the audit finds it, trusting the ledger fixes it
    dynamodb.update_item(
        TableName="Credits-prod",
        Key={"userId": {"S": "u1"}},
        UpdateExpression="SET remaining = remaining + :a",
        ExpressionAttributeValues={":a": {"N": "500"}},
    )
    assert prod("audit").exit_code == 1
    fixed_run = prod("audit", "u1", "--fix", "--trust", "ledger", "--reason", "INC-42 stray update", "--min-age", "0", "--yes")
    assert fixed_run.exit_code == 0, fixed_run.stderr
    assert balance("u1") == 17
    # The function's logs and metrics reached CloudWatch, as in a deployed stage
    assert "settled" in prod("logs", "tail", "--since", "10m").stdout
    assert {m["metric"]: m["total"] for m in prod("--json", "metrics", "--since", "1h").json()}["Lambda Invocations"] >= 2

    # The v1 runbook's own commands, verbatim but for --endpoint-url (and today's date in the ledger scan)
    # The aws CLI from requirements-dev.txt (in the venv), else one on PATH
    venv_aws = os.path.join(os.path.dirname(sys.executable), "aws")
    aws = venv_aws if os.path.exists(venv_aws) else shutil.which("aws")
    assert aws, "the aws CLI is missing: pip install -r requirements-dev.txt"
    assert prod_stack("seed", "test-user", "10").exit_code == 0
    assert prod_stack("seed", "user123", "10").exit_code == 0
    dlq_url = json.loads((running_stack.state_dir / "prod.json").read_text())["dlqUrl"]
    today = time.strftime("%Y-%m-%d", time.gmtime())
    script = f"""
set -e
aws() {{ {aws} --endpoint-url {running_stack.endpoint} "$@"; }}
aws events put-events --entries '[{{
    "Source": "video.generation",
    "DetailType": "video.rendered",
    "Detail": "{{\\"jobId\\": \\"test-123\\", \\"userId\\": \\"test-user\\", \\"seconds\\": 5, \\"model\\": \\"test\\"}}"
}}]'
for attempt in $(seq 20); do  # delivered within a second; a loaded machine gets a few more
  sleep 0.5
  aws dynamodb get-item --table-name Credits-prod --key '{{"userId": {{"S": "test-user"}}}}' > /tmp/get-item.$$
  grep -q '"N": "5"' /tmp/get-item.$$ && break
done
cat /tmp/get-item.$$; rm -f /tmp/get-item.$$
aws sqs receive-message --queue-url {dlq_url} --max-number-of-messages 10
aws sqs get-queue-attributes --queue-url {dlq_url} --attribute-names All
aws dynamodb update-item --table-name Credits-prod --key '{{"userId": {{"S": "user123"}}}}' --update-expression "SET remaining = remaining + :amount" --expression-attribute-values '{{":amount": {{"N": "10"}}}}'
aws dynamodb put-item --table-name Ledger-prod --item '{{
    "ledgerId": {{"S": "manual-adj-'$(date +%s)'"}},
    "userId": {{"S": "user123"}},
    "timestamp": {{"S": "'$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)'"}},
    "type": {{"S": "credit"}},
    "amount": {{"N": "10"}},
    "description": {{"S": "Manual emergency adjustment"}},
    "reference": {{"S": "MANUAL-'$(date +%s)'"}}
}}'
aws dynamodb scan --table-name Ledger-prod --filter-expression "contains(#ts, :date)" --expression-attribute-names '{{"#ts": "timestamp"}}' --expression-attribute-values '{{":date": {{"S": "{today}"}}}}'
"""  # noqa: E501 - the v1 runbook's commands, verbatim
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120, env={**os.environ, **LOCAL_ENV, "AWS_PAGER": ""})
    assert done.returncode == 0, done.stderr
    assert '"remaining": {\n            "N": "5"' in done.stdout  # test-user: 10 - 5, delivered within a second
    assert balance("user123") == 20 and balance("test-user") == 5

    # 6. The books, audited clean at the end (including what the aws CLI wrote)
    final = prod("--json", "audit")
    assert final.exit_code == 0, final.stdout
