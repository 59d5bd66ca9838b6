"""Every balance change explained, on the local stack (`python -m emulator up`, its stream poller and its alarm
evaluation): a direct write to a balance raises the unexplained-change alarm within a minute and alerts the ops topic
naming the user; a change made with a ledger entry never does."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from emulator.delivery import STREAM_POLL_SECONDS
from reconciler.contract import ResourceNames
from reconciler.ops.target import STATE_DIR_ENV, Target
from tests.integration.cli.conftest import CHECKOUT, emulator_process

pytestmark = pytest.mark.server
# This module's stack (running_stack) evaluates its alarms every second rather than every 5: a booked change is
# watched for more evaluations than before (7, was 3 in 15 s) in about half the time, and a direct write alarms sooner.
ALARM_EVALUATION_SECONDS = 1.0
QUIET_SECONDS = STREAM_POLL_SECONDS + 7 * ALARM_EVALUATION_SECONDS  # the stream poller reads the change, then evaluations


def _alarm_state(cloudwatch, name: str) -> str:
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return alarm["StateValue"]


def _wait_for(condition, seconds: float) -> float | None:
    """Seconds until `condition()` held, or None if it did not within `seconds`."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if condition():
            return time.monotonic() - start
        time.sleep(0.25)
    return None


def _ops_messages(sqs, queue_url: str) -> list[str]:
    found = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", []):
        for message in messages:
            found.append(json.loads(message["Body"])["Message"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return found


def test_a_direct_write_raises_the_alarm_within_a_minute_and_a_booked_change_never_does(running_stack, monkeypatch):
    monkeypatch.setenv(STATE_DIR_ENV, str(running_stack.state_dir))
    target = Target.resolve(running_stack.stage, use_local=True)
    names = ResourceNames(running_stack.stage)
    cloudwatch, sqs, sns, dynamodb = (target.client(service) for service in ("cloudwatch", "sqs", "sns", "dynamodb"))
    alarm = names.alarm("unexplained-balance-changes")
    # What a person gets: a queue subscribed to the ops topic
    queue_url = sqs.create_queue(QueueName="unexplained-alarm-reader")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(f":{names.ops_topic}"))
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    # Another test's direct write may have tripped it: wait until it is quiet again
    assert _wait_for(lambda: _alarm_state(cloudwatch, alarm) != "ALARM", 90) is not None
    # Given a balance changed the reconciler's way (an adjustment with its entry), the alarm stays quiet
    environment = {**os.environ, STATE_DIR_ENV: str(running_stack.state_dir)}
    seeded = subprocess.run(
        emulator_process("--stage", running_stack.stage, "seed", "booked-user", "300"), cwd=CHECKOUT, capture_output=True, text=True, env=environment
    )
    assert seeded.returncode == 0, seeded.stderr
    assert _wait_for(lambda: _alarm_state(cloudwatch, alarm) == "ALARM", QUIET_SECONDS) is None
    assert not any("booked-user" in message for message in _ops_messages(sqs, queue_url))
    # When something writes a balance directly (v1's billing did)
    dynamodb.put_item(TableName=names.credits_table, Item={"userId": {"S": "direct-user"}, "remaining": {"N": "700"}})
    # Then the alarm fires within a minute
    waited = _wait_for(lambda: _alarm_state(cloudwatch, alarm) == "ALARM", 60)
    assert waited is not None, running_stack.log.read_text()[-3000:]
    # And the ops topic carries the alert naming the user, the change and the commands, and the alarm's notification
    messages: list[str] = []

    def alert_and_alarm_arrived() -> bool:
        messages.extend(_ops_messages(sqs, queue_url))
        alarmed = any(
            json.loads(m).get("AlarmName") == alarm and json.loads(m).get("NewStateValue") == "ALARM" for m in messages if m.startswith("{")
        )
        return alarmed and any("direct-user" in m and "unexplained-balance-change" in m for m in messages)

    assert _wait_for(alert_and_alarm_arrived, 10) is not None, messages
    alert = next(json.loads(m) for m in messages if "direct-user" in m and "unexplained-balance-change" in m)
    assert alert["facts"]["change"] == 700 and any("--trust ledger" in c["command"] for c in alert["commands"])
