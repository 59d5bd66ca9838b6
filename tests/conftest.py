"""Shared by every test: no test may ever reach a real AWS account."""

import os
from functools import lru_cache

import botocore.session
import pytest

from emulator import fidelity

# moto made faithful where AWS differs (SQS characters and sizes, SNS subjects, DynamoDB key sizes,
# serialisable in-process transactions): one place, every test (emulator/fidelity.py).
fidelity.install()

# One botocore data loader per data path for the whole process. botocore parses its JSON models (endpoints, each
# service's model and endpoint rules) once per Session, and the fixtures build one per test, the runtime one per
# container (reset for every test that starts one) and the CLI one per command: a run parsed the same files tens of
# thousands of times, about a third of its CPU.
# A Loader is already shared by every client of one Session (its cache hands out the same parsed objects), so
# sharing it between Sessions changes no behaviour; the files do not change during a run.
botocore.session.create_loader = lru_cache(maxsize=None)(botocore.session.create_loader)  # type: ignore[attr-defined]

# Set before any boto3 client exists: fake credentials, a fixed region, no profile or real endpoint.
for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(variable, None)
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_DEV="false",
    JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
)


@pytest.fixture(autouse=True)
def _fresh_runtime_caches():
    """The runtime caches its configuration per container; every test starts a new 'container', and
    whatever a test points the environment at (a local stack's endpoint, a stage) ends with it. The fidelity
    layer's list of refusals starts empty too: a test that checks it sees only its own (an earlier test's 64
    refused SendMessages once failed test_production_faults when the two shared a worker)."""
    from reconciler.bootstrap import reset_container

    saved_environment = dict(os.environ)
    reset_container()
    fidelity.violations.clear()
    yield
    os.environ.clear()
    os.environ.update(saved_environment)
    reset_container()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The long tests (marked `long`) first in each half of the collection, every other test after them in its order.

    `make test` runs two pytest-xdist workers with --dist worksteal: each is handed one contiguous half of the
    collection, and a worker that runs out steals from the END of the other's queue. A long test late in a half runs
    alone at the end while the other worker idles; at the head of both halves, long tests start first on both workers
    and the run ends on short ones. The order depends on the collection alone, so every process orders alike (the
    workers must, and test_pytest_collection.py compares a bare `pytest --collect-only` with this session)."""
    long = [item for item in items if item.get_closest_marker("long")]
    rest = [item for item in items if not item.get_closest_marker("long")]
    first, second = long[0::2], long[1::2]
    split = max(len(items) // 2 - len(first), 0)
    items[:] = first + rest[:split] + second + rest[split:]


def pytest_configure(config: pytest.Config) -> None:
    # Collecting runs no test, so syrupy finds every snapshot unused and would fail a plain `pytest --collect-only`.
    if config.option.collectonly:
        config.option.warn_unused_snapshots = True
