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


@pytest.mark.long
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
    # 3b. Events feared missing: replay the archive to the rule; what was already handled is skipped: the settled
    #     job-r2, and job-r1's original refused event, a duplicate now that its corrected replay settled the job
    #     (no second DLQ message, no second alert; a refused event of a job never settled: test_oncall_third_pass.py)
    replay = prod("--json", "events", "replay", "--from", "10m", "--to", "now", "--yes")
    assert replay.exit_code == 0, replay.stderr
    wait_until(lambda: "job-r2 -> duplicate" in running_stack.log.read_text(), what="the replayed events are delivered")
    wait_until(lambda: "job-r1 -> duplicate" in running_stack.log.read_text(), what="the refused event is skipped")
    assert balance("u1") == 17 and prod("--json", "dlq", "list").json()["messages"] == []
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


def _aws_cli() -> str:
    venv_aws = os.path.join(os.path.dirname(sys.executable), "aws")
    found = venv_aws if os.path.exists(venv_aws) else shutil.which("aws")
    assert found, "the aws CLI is missing: pip install -r requirements-dev.txt"
    return found


def _hint(output: str, command: str) -> list[str]:
    """The command the CLI printed (between backticks, or after `: `) that holds `command`, as a shell splits it."""
    import shlex

    for line in output.splitlines():
        if command in line:
            text = line.split("`")[1] if "`" in line else line.split(": ", 1)[1]
            return shlex.split(text)
    raise AssertionError(f"no hint with {command!r} in {output!r}")


@pytest.mark.long
def test_a_paused_function_dead_letters_every_path_in_unrun_and_each_step_is_undone_by_its_printed_hint(
    running_stack, console, emulator_console, monkeypatch, tmp_path
):
    """Done-when of issue #26, from `/` with the installed CLI against `python -m emulator up`: pause, send by every
    path, each sent to the DLQ unrun (Lambda at reserved concurrency 0), nothing settled until resume and a replay;
    the balance events a product rule receives; each step undone by pasting the hint the CLI printed."""
    monkeypatch.setenv(STATE_DIR_ENV, str(running_stack.state_dir))
    for name, value in LOCAL_ENV.items():
        monkeypatch.setenv(name, value)
    # What a script needs, from the stack itself (`$EP` of the docs)
    exported = emulator_console("--stage", "prod", "--json", "env")
    assert exported.exit_code == 0, exported.stderr
    ep = exported.json()["EP"]
    assert ep == running_stack.endpoint
    aws = [_aws_cli(), "--endpoint-url", ep, "--region", "us-east-1"]
    environment = {**os.environ, "AWS_PAGER": ""}

    def run_aws(*args: str, attempts: str = "") -> subprocess.CompletedProcess:
        # attempts="1": no retries (the aws CLI retries a throttled call with backoff, about 10 s, and fails the same)
        return subprocess.run(
            [*aws, *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**environment, "AWS_MAX_ATTEMPTS": attempts} if attempts else environment,
            cwd="/",
        )

    def paste(words: list[str]):
        """A printed hint, run as the operator pastes it: `reconciler ...` is the installed console script (`console`
        runs it from `/`), `aws ...` the aws CLI."""
        if words[0] == "aws":
            return subprocess.run([_aws_cli(), *words[1:]], capture_output=True, text=True, timeout=120, env=environment, cwd="/")
        assert words[0] == "reconciler", words
        return console(*words[1:], "--yes")  # prod asks on the terminal: the operator answers yes

    r = lambda *args: console("--stage", "prod", "--local", *args)  # noqa: E731

    def balance() -> int:
        return r("--json", "balance", "p1").json()["remaining"]

    # A product team's rule on the balance events, to a queue of its own
    session = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1")
    sqs, events = session.client("sqs", endpoint_url=ep), session.client("events", endpoint_url=ep)
    product_queue = sqs.create_queue(QueueName="product-balance-events")["QueueUrl"]
    product_arn = sqs.get_queue_attributes(QueueUrl=product_queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="product-balance-events", EventPattern=json.dumps({"source": ["credits.reconciler"]}))
    events.put_targets(Rule="product-balance-events", Targets=[{"Id": "q", "Arn": product_arn}])
    assert emulator_console("--stage", "prod", "seed", "p1", "4").exit_code == 0

    # 1. Pause; the hint to undo it names this stage and the local stack
    paused = r("pause", "--yes")
    assert paused.exit_code == 0, paused.stderr
    resume = _hint(paused.stdout, "resume")
    assert resume == ["reconciler", "--stage", "prod", "--local", "resume"]
    # 2. Events by every path into the function
    # the bus (the pipeline, or v1's `aws events put-events`)
    assert run_aws("events", "put-events", "--entries", json.dumps([rendered("job-p1", "p1", 1, "test")])).returncode == 0
    # the emulator's send: sent to the DLQ unrun, and it says so
    lines = tmp_path / "p2.jsonl"
    lines.write_text(
        json.dumps(
            {
                "source": "video.generation",
                "detail-type": "video.rendered",
                "detail": {"jobId": "job-p2", "userId": "p1", "seconds": 1, "model": "test"},
            }
        )
        + "\n"
    )
    sent = emulator_console("--stage", "prod", "--json", "send", str(lines))
    assert sent.exit_code == 0 and sent.json()[0]["outcome"] == "dead-lettered", sent.stdout + sent.stderr
    # v1's `aws lambda invoke`: asynchronous is accepted and sent to the DLQ unrun; synchronous is throttled, as Lambda does
    event = {
        "id": "e-p3",
        "source": "video.generation",
        "detail-type": "video.rendered",
        "detail": {"jobId": "job-p3", "userId": "p1", "seconds": 1, "model": "test"},
    }
    payload = tmp_path / "event.json"
    payload.write_text(json.dumps(event))
    function = "cc-agent-reconciler-prod"
    invoked = run_aws(
        "lambda", "invoke", "--function-name", function, "--invocation-type", "Event", "--payload", f"file://{payload}", str(tmp_path / "out.json")
    )
    assert invoked.returncode == 0, invoked.stderr
    throttled = run_aws("lambda", "invoke", "--function-name", function, "--payload", f"file://{payload}", str(tmp_path / "out2.json"), attempts="1")
    assert throttled.returncode != 0 and "TooManyRequestsException" in throttled.stderr
    # the DLQ: a replay is refused while paused (its synchronous invoke would be throttled), the message kept
    dlq_url = json.loads((running_stack.state_dir / "prod.json").read_text())["dlqUrl"]
    sqs.send_message(QueueUrl=dlq_url, MessageBody=json.dumps({**event, "id": "e-p4", "detail": {**event["detail"], "jobId": "job-p4"}}))
    refused = r("dlq", "replay", "--yes")
    assert refused.exit_code == 4 and _hint(refused.stderr, "resume") == resume, refused.stderr
    # None is settled while paused
    time.sleep(2)
    assert balance() == 4
    wait_until(
        lambda: sorted(m["jobId"] for m in r("--json", "dlq", "list").json()["messages"]) == ["job-p1", "job-p2", "job-p3", "job-p4"],
        timeout=30,
        what="the paused function's events (bus, send, async invoke) in the DLQ beside the one that waited there",
    )

    # 3. Undo the pause by pasting its hint: nothing comes back by itself; the replay settles every event once
    assert paste(resume).exit_code == 0
    time.sleep(2)
    assert balance() == 4
    replayed = r("--json", "dlq", "replay", "--yes")
    assert replayed.exit_code == 0 and replayed.json()["summary"]["replayed"] == 4, replayed.stderr
    assert balance() == 0
    # v1's synchronous `aws lambda invoke` works once resumed: the same event again is a duplicate, nothing moves
    again = run_aws("lambda", "invoke", "--function-name", function, "--payload", f"file://{payload}", str(tmp_path / "out3.json"))
    assert again.returncode == 0 and json.loads((tmp_path / "out3.json").read_text())["outcome"] == "duplicate", again.stderr
    assert balance() == 0

    # 4. The balance events a product rule receives: p1 exhausted
    def product_events() -> list[dict]:
        received = sqs.receive_message(QueueUrl=product_queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        return [json.loads(m["Body"]) for m in received]

    seen: list[dict] = []
    wait_until(
        lambda: seen.extend(product_events()) or any(e["detail-type"] == "credits.exhausted" for e in seen), timeout=30, what="credits.exhausted"
    )
    assert {e["detail"]["userId"] for e in seen} == {"p1"}
    assert "credits.exhausted" in [e["detailType"] for e in r("--json", "balance-events", "p1").json()]

    # 5. Alarms silenced, then back by pasting the hint
    disabled = r("alarms", "disable", "errors", "--yes")
    enable = _hint(disabled.stdout, "alarms enable")
    assert enable[:5] == ["reconciler", "--stage", "prod", "--local", "alarms"]
    assert paste(enable).exit_code == 0
    assert all(a["actionsEnabled"] for a in r("--json", "alarms", "status").json())
    # 6. An archive replay, watched by pasting its hint (the aws CLI at the same endpoint)
    started = r("events", "replay", "--from", "10m", "--to", "now", "--yes")
    watch = _hint(started.stdout, "describe-replay")
    assert watch[watch.index("--endpoint-url") + 1] == ep
    described = paste(watch)
    assert described.returncode == 0 and "ReplayName" in described.stdout, described.stderr
    # The books stay whole
    wait_until(lambda: r("--json", "audit").exit_code == 0, timeout=30, what="the audit is clean")
    assert balance() == 0
