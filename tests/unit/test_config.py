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
    "SETTLEMENTS_TABLE_NAME": "Settlements-dev",
    "DLQ_URL": "https://sqs/q",
}


def test_configuration_comes_from_the_environment_the_infrastructure_sets():
    config = RuntimeConfig.from_env({**BASE, "PRICE_OVERRIDES": '{"hd-v1": "2.5"}', "SCAN_GRACE_MINUTES": "5", "TRIAGE_ENABLED": "true"})
    assert config.jobs_table == "Jobs-dev" and config.price_overrides == {"hd-v1": Decimal("2.5")}
    assert (config.ledger_table, config.user_ledger_table) == ("Ledger-dev", "UserLedger-dev")
    assert config.scan_grace_minutes == 5 and config.triage_enabled is True
    assert config.settlements_table == "Settlements-dev" and config.legacy_reservations_before == ""
    dated = RuntimeConfig.from_env({**BASE, "LEGACY_RESERVATIONS_BEFORE": "2026-12-07T00:00:00.000Z"})
    assert dated.legacy_reservations_before == "2026-12-07T00:00:00.000Z"


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
        ({"SETTLEMENTS_TABLE_NAME": ""}, "missing environment variables: SETTLEMENTS_TABLE_NAME"),
        ({"LEGACY_RESERVATIONS_BEFORE": "2026-12-07"}, "LEGACY_RESERVATIONS_BEFORE must be an ISO-8601 UTC time"),
        ({"HOLD_EXPIRY_MINUTES": "0"}, "HOLD_EXPIRY_MINUTES must be positive"),
        ({"HOLD_EXPIRY_MAX_MINUTES": "a day"}, "HOLD_EXPIRY_MAX_MINUTES must be a whole number"),
        ({"HOLD_EXPIRY_MINUTES": "120", "HOLD_EXPIRY_MAX_MINUTES": "60"}, r"HOLD_EXPIRY_MINUTES \(120\) must not exceed"),
    ],
)
def test_a_bad_environment_fails_once_with_a_clear_message(override, message):
    with pytest.raises(ConfigError, match=message):
        RuntimeConfig.from_env({**BASE, **override})


def test_stage_names_resolve_to_the_runbook_resources():
    config = RuntimeConfig.for_stage("prod")
    assert (config.jobs_table, config.credits_table, config.ledger_table, config.user_ledger_table, config.settlements_table) == (
        "Jobs-prod",
        "Credits-prod",
        "Ledger-prod",
        "UserLedger-prod",
        "Settlements-prod",
    )
    with pytest.raises(ConfigError, match="valid stages: dev, staging, prod"):
        RuntimeConfig.for_stage("qa")


def test_a_holds_expiry_defaults_to_the_stage_limits_and_reads_its_variables():
    assert (RuntimeConfig.from_env(BASE).hold_expiry_minutes, RuntimeConfig.from_env(BASE).hold_expiry_max_minutes) == (360, 1440)
    config = RuntimeConfig.from_env({**BASE, "HOLD_EXPIRY_MINUTES": "30", "HOLD_EXPIRY_MAX_MINUTES": "90"})
    assert (config.hold_expiry_minutes, config.hold_expiry_max_minutes) == (30, 90)
