"""The ports' shared contracts (tests/contract/) on the in-memory fakes: the same cases as on moto
(tests/integration/contract), collected here with this side's fixtures."""

from __future__ import annotations

import pytest

from tests.contract.dead_letters_contract import *  # noqa: F403 - the shared cases, collected on this side
from tests.contract.settlement_store_contract import *  # noqa: F403 - the shared cases, collected on this side
from tests.contract.sides import FakeQueue, FakeTables


@pytest.fixture
def tables() -> FakeTables:
    return FakeTables()


@pytest.fixture
def queue() -> FakeQueue:
    return FakeQueue()
