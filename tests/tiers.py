"""pytest plugin (loaded by the root conftest.py): every test gets the marker of one tier, for quick local runs.

    make unit          -m unit         the domain, the use cases on the in-memory fakes, the fake half of the shared
                                       contract tests, pure CLI and ops logic: no moto, no CDK synthesis, seconds
    make integration   -m integration  moto in-process and as a server, the handlers, the CLI end to end, the
                                       simulator's default seeds, the benchmarks' request counts
    make infra-tests   -m infra        CDK synthesis and its assertions, snapshots, cdk-nag, cfn-lint, the CI
                                       workflows, the AWS-call recorder's own tests

`make test` runs them all (and only a full run checks the synthesized IAM policies against every AWS call the
suite made: tests/least_privilege/recorder.py). A test file takes the tier of the first prefix below that its
path starts with; the shared contract tests (tests/contract/) are split by their parameter: the fake half is
a unit test, the moto half an integration test. tests/test_tiers.py fails on a test that no tier selects.
"""

from __future__ import annotations

import pytest

UNIT, INTEGRATION, INFRA = "unit", "integration", "infra"
TIERS = (UNIT, INTEGRATION, INFRA)

TIER_BY_PATH: tuple[tuple[str, str], ...] = (
    ("tests/runtime/domain/", UNIT),
    ("tests/runtime/service/test_service_on_fakes.py", UNIT),
    ("tests/runtime/service/test_balance_events_on_fakes.py", UNIT),
    ("tests/runtime/cli/test_failures.py", UNIT),
    ("tests/runtime/cli/test_output.py", UNIT),
    ("tests/runtime/ops/", UNIT),  # pure operations logic on fakes (tests/runtime/ops/conftest.py)
    ("tests/runtime/test_config.py", UNIT),
    ("tests/test_architecture.py", UNIT),
    ("tests/test_tiers.py", UNIT),
    ("tests/runtime/", INTEGRATION),
    ("tests/simulator/", INTEGRATION),
    ("tests/benchmarks/", INTEGRATION),
    ("tests/test_pytest_collection.py", INTEGRATION),
    ("tests/infra/", INFRA),
    ("tests/least_privilege/", INFRA),
)
CONTRACT_TESTS = "tests/contract/"
MOTO_PARAMETER = "aws"  # tests/contract/conftest.py: the adapters' side of each contract fixture


def tier_of(path: str, parameters: dict[str, object]) -> str | None:
    """The tier of a test in file `path` (relative to the repository) with these parametrize values."""
    if path.startswith(CONTRACT_TESTS):
        return INTEGRATION if MOTO_PARAMETER in parameters.values() else UNIT
    return next((tier for prefix, tier in TIER_BY_PATH if path.startswith(prefix)), None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "unit: fast tier, no moto and no CDK synthesis (make unit)")
    config.addinivalue_line("markers", "integration: moto, the handlers, the CLI, the simulator (make integration)")
    config.addinivalue_line("markers", "infra: CDK synthesis, cdk-nag, cfn-lint, workflows (make infra-tests)")


@pytest.hookimpl(tryfirst=True)  # before -m deselects by these markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = item.path.relative_to(config.rootpath).as_posix()
        callspec = getattr(item, "callspec", None)
        tier = tier_of(path, dict(callspec.params) if callspec else {})
        if tier is not None:
            item.add_marker(tier)
