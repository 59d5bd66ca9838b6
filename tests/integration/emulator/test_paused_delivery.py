"""A paused function locally as on AWS: at reserved concurrency 0 Lambda neither runs nor retries an asynchronous
event, it sends it to the on-failure destination at once (emulator/invoker.py, docs/emulator-fidelity.md)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from emulator.invoker import LocalInvoker
from reconciler.ops.dead_letter_replay import ON_FAILURE, parse_message

EVENT = {"id": "e-1", "source": "video.generation", "detail-type": "video.rendered", "detail": {"jobId": "j-1", "userId": "u-1"}}


@pytest.fixture
def invoker(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue, dlq = (sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("rule-target", "dlq"))
        runs: list[dict] = []
        yield LocalInvoker(sqs, queue, dlq, "cc-agent-reconciler-dev", lambda event, context: runs.append(event) or {"outcome": "settled"}), runs


def test_an_event_for_a_paused_function_goes_to_the_dlq_unrun_and_replays_from_there(invoker):
    local, runs = invoker
    local.sqs.send_message(QueueUrl=local.queue_url, MessageBody=json.dumps(EVENT))
    # When it is delivered while the function is paused
    assert local.deliver_batch(lambda: False) == (0, 1)
    # Then the handler never ran, nothing waits in the rule's queue, and the DLQ holds it as an on-failure record
    assert runs == []
    assert local.sqs.receive_message(QueueUrl=local.queue_url).get("Messages", []) == []
    (message,) = local.sqs.receive_message(QueueUrl=local.dlq_url, MessageAttributeNames=["All"], AttributeNames=["All"])["Messages"]
    letter = parse_message(message)
    # That `dlq list` explains and `dlq replay` sends again as it was
    assert letter.kind == ON_FAILURE and letter.event == EVENT and "reserved concurrency 0" in letter.reason
    assert json.loads(message["Body"])["requestContext"]["approximateInvokeCount"] == 0


def test_a_running_function_runs_its_events(invoker):
    local, runs = invoker
    local.sqs.send_message(QueueUrl=local.queue_url, MessageBody=json.dumps(EVENT))
    assert local.deliver_batch(lambda: True) == (1, 0)
    assert runs == [EVENT]
    assert local.sqs.receive_message(QueueUrl=local.dlq_url).get("Messages", []) == []
