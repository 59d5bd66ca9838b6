"""The ports' shared contracts (tests/contract/) on the AWS adapters, against in-process moto with the dev stage's
tables and queue: the same cases as on the fakes (tests/unit/contract), collected here with this side's fixtures."""

from __future__ import annotations

import pytest

from tests.contract.dead_letters_contract import *  # noqa: F403 - the shared cases, collected on this side
from tests.contract.settlement_store_contract import *  # noqa: F403 - the shared cases, collected on this side
from tests.contract.sides import MotoTables, SqsQueue


@pytest.fixture
def tables(aws) -> MotoTables:
    return MotoTables(aws)


@pytest.fixture
def queue(aws) -> SqsQueue:
    return SqsQueue(aws)
