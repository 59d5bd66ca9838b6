"""The hold API as the pipeline calls it: `aws lambda invoke` (a non-Python client) against the local stack, whose
moto server answers Invoke of the reconciler's functions in-process (emulator/functions.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from emulator.server import LOCAL_ENV, reset
from emulator.stack import provision_stack
from reconciler.config import RuntimeConfig
from reconciler.domain.ledger import adjustment_entry, iso_timestamp
from reconciler.repository.dynamodb import DynamoDBStore

FUNCTION = "cc-reconciler-reserve-dev"


@pytest.fixture
def stack(moto_endpoint, dev_templates):
    reset(moto_endpoint)
    return provision_stack(moto_endpoint, "dev", operable=True, templates=dev_templates)


def aws_cli(*args: str, endpoint: str, environment: dict | None = None) -> subprocess.CompletedProcess:
    venv_aws = Path(sys.executable).with_name("aws")
    command = [str(venv_aws) if venv_aws.exists() else "aws", *args, "--endpoint-url", endpoint, "--region", "us-east-1"]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, env={**os.environ, **LOCAL_ENV, "AWS_PAGER": "", **(environment or {})}
    )


# The aws CLI retries a throttled call with backoff (4 more attempts, about 10 s): a test that expects the throttle
# asks for one attempt, which fails with the same error.
ONE_ATTEMPT = {"AWS_MAX_ATTEMPTS": "1"}


SCHEMAS = Path(__file__).resolve().parents[3] / "docs" / "schemas"
ANSWERS = jsonschema.Draft202012Validator(json.loads((SCHEMAS / "hold.answer.json").read_text()))


def hold(stack, tmp_path, **request) -> dict:
    """One call as the pipeline makes it; every answer is one docs/schemas/hold.answer.json describes."""
    out = tmp_path / "answer.json"
    done = aws_cli("lambda", "invoke", "--function-name", FUNCTION, "--payload", json.dumps(request), str(out), endpoint=stack.endpoint)
    assert done.returncode == 0, done.stderr
    assert "FunctionError" not in done.stdout, out.read_text()
    answer = json.loads(out.read_text())
    ANSWERS.validate(answer)
    return answer


def balance(stack, user: str) -> tuple[int, int]:
    item = stack.client("dynamodb").get_item(TableName="Credits-dev", Key={"userId": {"S": user}}, ConsistentRead=True)["Item"]
    return int(item["remaining"]["N"]), int(item.get("held", {"N": "0"})["N"])


def seed(stack, user: str, credits: int) -> None:
    store = DynamoDBStore(stack.client("dynamodb"), RuntimeConfig.from_env(stack.resources.runtime_environment()))
    store.commit_adjustment(adjustment_entry(user, credits, "opening", f"opening-{user}", "test", iso_timestamp()))


def test_the_hold_api_answers_each_case_to_the_aws_cli(stack, tmp_path):
    seed(stack, "ann", 100)
    held = hold(stack, tmp_path, operation="hold", jobId="job-1", userId="ann", model="standard-v1", credits=10)
    # held until the stage's default expiry, six hours on
    assert held.pop("expiresAt") > iso_timestamp(datetime.now(UTC) + timedelta(minutes=359))
    assert held == {"status": "held", "jobId": "job-1", "credits": 10, "unitPrice": 2, "model": "standard-v1"}
    assert balance(stack, "ann") == (90, 10)
    # A retry of the same call: the job id is the idempotency key
    assert hold(stack, tmp_path, operation="hold", jobId="job-1", userId="ann", model="standard-v1", credits=10) == {
        "status": "already-held",
        "jobId": "job-1",
        "credits": 10,
    }
    # Sized by the seconds the pipeline expects, at today's price: 2.5 s of standard-v2 at 2.5 a second is 6.25 -> 7
    sized = hold(stack, tmp_path, operation="hold", jobId="job-2", userId="ann", model="standard-v2", estimatedSeconds=2.5)
    assert (sized["status"], sized["credits"], sized["unitPrice"]) == ("held", 7, "2.5")
    short = hold(stack, tmp_path, operation="hold", jobId="job-3", userId="ann", model="test", credits=500)
    assert short == {"status": "insufficient", "jobId": "job-3", "credits": 500, "balance": 83}
    assert balance(stack, "ann") == (83, 17)


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        ({"operation": "hold", "jobId": "job-1", "model": "test", "credits": 5}, "userId"),
        ({"operation": "hold", "jobId": "job-1", "userId": "ann", "model": "no-such-model", "credits": 5}, "model"),
        ({"operation": "hold", "jobId": "job-1", "userId": "ann", "model": "test", "credits": 2.5}, "credits"),
        ({"operation": "hold", "jobId": "job-1", "userId": "ann", "model": "test", "credits": 5, "estimatedSeconds": 3}, "credits"),
        ({"operation": "hold", "jobId": "🎬" * 256, "userId": "ann", "model": "test", "credits": 5}, "jobId"),
        ({"operation": "cancel", "jobId": "job-1", "userId": "ann"}, "operation"),
    ],
    ids=["no-user", "unknown-model", "fractional-credits", "credits-and-seconds", "id-too-wide", "unknown-operation"],
)
def test_a_request_that_cannot_be_held_is_refused_with_the_field_and_moves_nothing(stack, tmp_path, request_body, field):
    seed(stack, "ann", 100)
    answer = hold(stack, tmp_path, **request_body)
    assert (answer["status"], answer["field"]) == ("refused", field) and answer["reason"]
    assert balance(stack, "ann") == (100, 0)


def test_a_hold_for_another_amount_or_user_is_refused_and_a_release_gives_the_hold_back(stack, tmp_path):
    seed(stack, "ann", 100)
    seed(stack, "bob", 100)
    hold(stack, tmp_path, operation="hold", jobId="job-1", userId="ann", model="test", credits=10)
    other_amount = hold(stack, tmp_path, operation="hold", jobId="job-1", userId="ann", model="test", credits=11)
    other_user = hold(stack, tmp_path, operation="hold", jobId="job-1", userId="bob", model="test", credits=10)
    assert (other_amount["status"], other_amount["field"]) == ("refused", "jobId") and "already holds 10" in other_amount["reason"]
    assert (other_user["status"], other_user["field"]) == ("refused", "jobId") and "another user" in other_user["reason"]
    assert hold(stack, tmp_path, operation="release", jobId="job-1", userId="ann") == {"status": "released", "jobId": "job-1", "credits": 10}
    assert hold(stack, tmp_path, operation="release", jobId="job-1", userId="ann") == {"status": "not-held", "jobId": "job-1"}
    assert balance(stack, "ann") == (100, 0) and balance(stack, "bob") == (100, 0)


def test_a_retry_after_the_expiry_it_asks_for_answers_already_held_and_a_new_hold_of_it_is_refused(stack, tmp_path):
    seed(stack, "ann", 100)
    until = iso_timestamp(datetime.now(UTC) + timedelta(seconds=6))  # room for the first call under load
    request = {"operation": "hold", "jobId": "job-1", "userId": "ann", "model": "test", "credits": 10, "expiresAt": until}
    assert hold(stack, tmp_path, **request)["expiresAt"] == until
    time.sleep(max(0.0, (datetime.fromisoformat(until) - datetime.now(UTC)).total_seconds()) + 0.1)
    # The same call once its expiry has passed (its answer was lost): the hold in place, as any retry
    assert hold(stack, tmp_path, **request) == {"status": "already-held", "jobId": "job-1", "credits": 10}
    # A new hold asking for that expiry is refused by it
    late = hold(stack, tmp_path, **{**request, "jobId": "job-2"})
    assert (late["status"], late["field"]) == ("refused", "expiresAt") and "must be in the future" in late["reason"]
    assert balance(stack, "ann") == (90, 10)


def test_a_paused_hold_function_is_throttled_as_lambda_throttles(stack, tmp_path):
    stack.client("lambda").put_function_concurrency(FunctionName=FUNCTION, ReservedConcurrentExecutions=0)
    out = tmp_path / "answer.json"
    done = aws_cli("lambda", "invoke", "--function-name", FUNCTION, "--payload", "{}", str(out), endpoint=stack.endpoint, environment=ONE_ATTEMPT)
    assert done.returncode != 0 and "TooManyRequestsException" in done.stderr
