"""The integration fixtures: the dev stage, provisioned from its synthesized templates, on in-process moto or a moto
server, as the one harness of tests/aws.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from moto import mock_aws

from emulator.server import moto_server, reset
from tests.aws import Aws
from tests.least_privilege import synthesis


@pytest.fixture(scope="session")
def stage_templates(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], dict[str, dict]]:
    """A stage's synthesized templates from the session's synthesis cache (tests/least_privilege/synthesis.py): each stage
    is synthesized once for every process of the session, the infra tests' included, not once per worker or per test
    (a synthesis costs seconds of CPU). Tests only read them."""
    return synthesis.cache_or_own(request.config, tmp_path_factory).templates


@pytest.fixture(scope="session")
def dev_templates(stage_templates) -> dict[str, dict]:
    return stage_templates("dev")


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
