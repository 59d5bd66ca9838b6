"""The integration fixtures: the dev stage, provisioned from its synthesized templates, on in-process moto or a moto
server, as the one harness of tests/aws.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from emulator.server import moto_server, reset
from emulator.stack import templates_for
from tests.aws import Aws


@pytest.fixture(scope="session")
def dev_templates() -> dict[str, dict]:
    return templates_for("dev")


@pytest.fixture
def aws(dev_templates) -> Iterator[Aws]:
    """In-process moto with the dev stage's tables, queue, topic and rule."""
    with mock_aws():
        yield Aws.provisioned(dev_templates)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server on 127.0.0.1 for the session (real HTTP); tests reset it."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws_server(moto_endpoint, dev_templates) -> Aws:
    """The dev stage on the moto server, freshly provisioned for each test."""
    reset(moto_endpoint)
    return Aws.provisioned(dev_templates, endpoint=moto_endpoint)
