from decimal import Decimal

import pytest

from reconciler.config import RuntimeConfig
from reconciler.contract import ConfigError

BASE = {
    "STAGE": "dev",
    "JOBS_TABLE_NAME": "Jobs-dev",
    "CREDITS_TABLE_NAME": "Credits-dev",
    "LEDGER_TABLE_NAME": "Ledger-dev",
    "USER_LEDGER_TABLE_NAME": "UserLedger-dev",
    "DLQ_URL": "https://sqs/q",
}


def test_configuration_comes_from_the_environment_the_infrastructure_sets():
    config = RuntimeConfig.from_env({**BASE, "PRICE_OVERRIDES": '{"hd-v1": "2.5"}', "SCAN_GRACE_MINUTES": "5", "TRIAGE_ENABLED": "true"})
    assert config.jobs_table == "Jobs-dev" and config.price_overrides == {"hd-v1": Decimal("2.5")}
    assert (config.ledger_table, config.user_ledger_table) == ("Ledger-dev", "UserLedger-dev")
    assert config.scan_grace_minutes == 5 and config.triage_enabled is True


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"STAGE": ""}, "missing environment variables: STAGE"),
        ({"USER_LEDGER_TABLE_NAME": ""}, "missing environment variables: USER_LEDGER_TABLE_NAME"),
        ({"PRICE_OVERRIDES": "{nope"}, "PRICE_OVERRIDES is not JSON"),
        ({"PRICE_OVERRIDES": '{"m": "-1"}'}, "must be positive"),
        ({"PRICE_OVERRIDES": '{"m": "abc"}'}, "is not a number"),
        ({"SCAN_GRACE_MINUTES": "soon"}, "SCAN_GRACE_MINUTES must be a whole number"),
        ({"STUCK_JOB_HOURS": "0"}, "STUCK_JOB_HOURS must be positive"),
    ],
)
def test_a_bad_environment_fails_once_with_a_clear_message(override, message):
    with pytest.raises(ConfigError, match=message):
        RuntimeConfig.from_env({**BASE, **override})


def test_stage_names_resolve_to_the_runbook_resources():
    config = RuntimeConfig.for_stage("prod")
    assert (config.jobs_table, config.credits_table, config.ledger_table, config.user_ledger_table) == (
        "Jobs-prod",
        "Credits-prod",
        "Ledger-prod",
        "UserLedger-prod",
    )
    with pytest.raises(ConfigError, match="valid stages: dev, staging, prod"):
        RuntimeConfig.for_stage("qa")
