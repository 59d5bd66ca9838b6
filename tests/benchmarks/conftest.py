"""Fixtures for the exact request-count tests: in-process moto (no network), the three tables and the DLQ."""

from __future__ import annotations

import os

import boto3
import pytest
from moto import mock_aws

from benchmarks.common import create_tables
from reconciler.config import RuntimeConfig

REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="cc-reconciler-dlq-dev")["QueueUrl"]
        config = RuntimeConfig.for_stage("dev", dlq_url=queue_url)
        create_tables(dynamodb, config)
        yield dynamodb, sqs, config
