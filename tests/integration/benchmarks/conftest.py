"""Fixtures for the exact request-count tests: in-process moto with the dev stage's tables and DLQ,
created from the synthesized template (the same provisioning as the local stack)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from emulator.resources import provision
from emulator.stack import templates_for
from reconciler.config import RuntimeConfig


@pytest.fixture
def aws():
    with mock_aws():
        session = boto3.session.Session()
        resources = provision(templates_for("dev"), "dev", session)
        config = RuntimeConfig.from_env(resources.runtime_environment())
        yield session.client("dynamodb"), session.client("sqs"), config
