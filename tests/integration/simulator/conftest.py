import pytest

from emulator.stack import templates_for


@pytest.fixture(scope="session")
def dev_templates_for_simulator() -> dict:
    return templates_for("dev")
