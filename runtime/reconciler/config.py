"""The functions' configuration, read from the environment the infrastructure sets, validated once: one typed
model per function. RuntimeConfig is the reconciler function's (and the hold function's, which gets the same
environment: infra/constructs/reconciler_function.py sets it); BalanceEventsConfig the balance-events stream
function's (infra/constructs/balance_events.py). The variables' names are the contract's."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from reconciler.contract import (
    BALANCE_EVENT_SOURCE,
    DEFAULT_EVENT_BUS,
    DEFAULT_LOW_BALANCE_THRESHOLD,
    DEFAULT_OVERDRAFT_ALERT_LEVEL,
    ENV_ALERT_MAX_PER_WINDOW,
    ENV_ALERT_WINDOW,
    ENV_BALANCE_EVENTS_TABLE,
    ENV_CREDITS_TABLE,
    ENV_DLQ_URL,
    ENV_EVENT_BUS,
    ENV_EVENT_SOURCE,
    ENV_HOLD_EXPIRY_MAX_MINUTES,
    ENV_HOLD_EXPIRY_MINUTES,
    ENV_JOBS_TABLE,
    ENV_LEDGER_TABLE,
    ENV_LEGACY_RESERVATIONS_BEFORE,
    ENV_LOW_THRESHOLD,
    ENV_OPENAI_BASE_URL,
    ENV_OPENAI_SECRET_NAME,
    ENV_OPS_TOPIC_ARN,
    ENV_OVERDRAFT_ALERT_LEVEL,
    ENV_PRICE_OVERRIDES,
    ENV_SCAN_GRACE_MINUTES,
    ENV_SETTLEMENTS_TABLE,
    ENV_SHADOW_TABLE,
    ENV_STAGE,
    ENV_STUCK_JOB_HOURS,
    ENV_TRIAGE_ENABLED,
    ENV_TRIAGE_MODEL,
    ENV_TRIAGE_TIMEOUT,
    ENV_USER_LEDGER_TABLE,
    OPENAI_SECRET_NAME,
    ConfigError,
    ResourceNames,
    StageLimits,
    usable_event_source,
)
from reconciler.domain.crossings import ThresholdError, Thresholds


@dataclass(frozen=True)
class NotifierSettings:
    """The notifier's optional tuning (docs/triage.md); None where unset or unusable: the notifier's default applies."""

    openai_base_url: str | None = None
    triage_model: str | None = None
    triage_timeout_seconds: float | None = None
    alert_window_seconds: float | None = None
    alert_max_per_window: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> NotifierSettings:
        max_per_window = _lenient_positive(env, ENV_ALERT_MAX_PER_WINDOW)
        return cls(
            openai_base_url=env.get(ENV_OPENAI_BASE_URL) or None,
            triage_model=env.get(ENV_TRIAGE_MODEL) or None,
            triage_timeout_seconds=_lenient_positive(env, ENV_TRIAGE_TIMEOUT),
            alert_window_seconds=_lenient_positive(env, ENV_ALERT_WINDOW),
            alert_max_per_window=None if max_per_window is None else int(max_per_window),
        )


@dataclass(frozen=True)
class RuntimeConfig:
    stage: str
    jobs_table: str
    credits_table: str
    ledger_table: str
    user_ledger_table: str
    dlq_url: str
    settlements_table: str = ""
    ops_topic_arn: str = ""
    openai_secret_name: str = OPENAI_SECRET_NAME
    price_overrides: Mapping[str, Decimal] = field(default_factory=dict)
    scan_grace_minutes: int = StageLimits.scan_grace_minutes
    stuck_job_hours: int = StageLimits.stuck_job_hours
    hold_expiry_minutes: int = StageLimits.hold_expiry_minutes
    hold_expiry_max_minutes: int = StageLimits.hold_expiry_max_minutes
    triage_enabled: bool = False
    # Jobs created before this moment may carry a reservation made on their item (domain/settlement.py); "" means
    # none does (a stage that never ran the code that made them).
    legacy_reservations_before: str = ""
    notifier: NotifierSettings = NotifierSettings()
    # Where the scheduled liability snapshot is written (BalanceEvents-{stage}); "" where no job runs (the hold function).
    balance_events_table: str = ""

    @classmethod
    def for_stage(cls, stage: str, **overrides: Any) -> RuntimeConfig:
        """The runbook's resource names for a stage (used by the CLI and the local stack)."""
        names = ResourceNames(stage)  # unknown stage -> UnknownStageError, a ConfigError
        values: dict[str, Any] = dict(
            stage=stage,
            jobs_table=names.jobs_table,
            credits_table=names.credits_table,
            ledger_table=names.ledger_table,
            user_ledger_table=names.user_ledger_table,
            settlements_table=names.settlements_table,
            balance_events_table=names.balance_events_table,
            dlq_url="",
            legacy_reservations_before=names.limits.legacy_reservations_before,
            scan_grace_minutes=names.limits.scan_grace_minutes,
            stuck_job_hours=names.limits.stuck_job_hours,
            hold_expiry_minutes=names.limits.hold_expiry_minutes,
            hold_expiry_max_minutes=names.limits.hold_expiry_max_minutes,
        )
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RuntimeConfig:
        env = os.environ if env is None else env
        required = (ENV_STAGE, ENV_JOBS_TABLE, ENV_CREDITS_TABLE, ENV_LEDGER_TABLE, ENV_USER_LEDGER_TABLE, ENV_SETTLEMENTS_TABLE, ENV_DLQ_URL)
        missing = [name for name in required if not env.get(name)]
        if missing:
            raise ConfigError(f"missing environment variables: {', '.join(missing)}")
        return cls(
            stage=env[ENV_STAGE],
            jobs_table=env[ENV_JOBS_TABLE],
            credits_table=env[ENV_CREDITS_TABLE],
            ledger_table=env[ENV_LEDGER_TABLE],
            user_ledger_table=env[ENV_USER_LEDGER_TABLE],
            settlements_table=env[ENV_SETTLEMENTS_TABLE],
            dlq_url=env[ENV_DLQ_URL],
            ops_topic_arn=env.get(ENV_OPS_TOPIC_ARN, ""),
            openai_secret_name=env.get(ENV_OPENAI_SECRET_NAME, OPENAI_SECRET_NAME),
            price_overrides=_parse_price_overrides(env.get(ENV_PRICE_OVERRIDES, "")),
            scan_grace_minutes=_whole(env, ENV_SCAN_GRACE_MINUTES, StageLimits.scan_grace_minutes, positive=True),
            stuck_job_hours=_whole(env, ENV_STUCK_JOB_HOURS, StageLimits.stuck_job_hours, positive=True),
            **_hold_expiry(env),
            triage_enabled=env.get(ENV_TRIAGE_ENABLED, "false").lower() == "true",
            legacy_reservations_before=_moment(env, ENV_LEGACY_RESERVATIONS_BEFORE),
            notifier=NotifierSettings.from_env(env),
            balance_events_table=env.get(ENV_BALANCE_EVENTS_TABLE, ""),
        )


@dataclass(frozen=True)
class BalanceEventsConfig:
    stage: str
    ledger_table: str
    user_ledger_table: str
    balance_events_table: str
    thresholds: Thresholds
    event_source: str = BALANCE_EVENT_SOURCE
    event_bus: str = DEFAULT_EVENT_BUS
    # Where an unexplained balance change is alerted (the stage's ops topic); "" sends no alert (the metric still counts).
    ops_topic_arn: str = ""

    @classmethod
    def for_stage(cls, stage: str, **overrides: Any) -> BalanceEventsConfig:
        """The contract names of a stage (the CLI and the local stack)."""
        names = ResourceNames(stage)  # unknown stage -> UnknownStageError, a ConfigError
        values: dict[str, Any] = dict(
            stage=stage,
            ledger_table=names.ledger_table,
            user_ledger_table=names.user_ledger_table,
            balance_events_table=names.balance_events_table,
            thresholds=Thresholds(DEFAULT_LOW_BALANCE_THRESHOLD, DEFAULT_OVERDRAFT_ALERT_LEVEL),
        )
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BalanceEventsConfig:
        env = os.environ if env is None else env
        required = (ENV_STAGE, ENV_LEDGER_TABLE, ENV_USER_LEDGER_TABLE, ENV_BALANCE_EVENTS_TABLE, ENV_EVENT_SOURCE, ENV_LOW_THRESHOLD)
        missing = [name for name in required if not env.get(name)]
        if missing:
            raise ConfigError(f"missing environment variables: {', '.join(missing)}")
        source = env[ENV_EVENT_SOURCE]
        if not usable_event_source(source):
            raise ConfigError(f"{ENV_EVENT_SOURCE} is not a usable event source: {source!r}")
        try:
            thresholds = Thresholds(_whole(env, ENV_LOW_THRESHOLD, None), _whole(env, ENV_OVERDRAFT_ALERT_LEVEL, DEFAULT_OVERDRAFT_ALERT_LEVEL))
        except ThresholdError as error:
            raise ConfigError(str(error)) from None
        return cls(
            stage=env[ENV_STAGE],
            ledger_table=env[ENV_LEDGER_TABLE],
            user_ledger_table=env[ENV_USER_LEDGER_TABLE],
            balance_events_table=env[ENV_BALANCE_EVENTS_TABLE],
            thresholds=thresholds,
            event_source=source,
            event_bus=env.get(ENV_EVENT_BUS) or DEFAULT_EVENT_BUS,
            ops_topic_arn=env.get(ENV_OPS_TOPIC_ARN, ""),
        )


@dataclass(frozen=True)
class ShadowConfig:
    """The deployed shadow function's (docs/migration.md step 1): v2's settlement settings (prices, the legacy moment)
    as the reconciler function reads them, and its decisions table, the only one it writes."""

    runtime: RuntimeConfig
    decisions_table: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ShadowConfig:
        env = os.environ if env is None else env
        if not env.get(ENV_SHADOW_TABLE):
            raise ConfigError(f"missing environment variables: {ENV_SHADOW_TABLE}")
        return cls(RuntimeConfig.from_env(env), env[ENV_SHADOW_TABLE])


def _hold_expiry(env: Mapping[str, str]) -> dict[str, int]:
    """A hold's default expiry and the latest one a hold may ask for, in minutes: the default within the maximum."""
    default = _whole(env, ENV_HOLD_EXPIRY_MINUTES, StageLimits.hold_expiry_minutes, positive=True)
    maximum = _whole(env, ENV_HOLD_EXPIRY_MAX_MINUTES, StageLimits.hold_expiry_max_minutes, positive=True)
    if default > maximum:
        raise ConfigError(f"{ENV_HOLD_EXPIRY_MINUTES} ({default}) must not exceed {ENV_HOLD_EXPIRY_MAX_MINUTES} ({maximum})")
    return {"hold_expiry_minutes": default, "hold_expiry_max_minutes": maximum}


def _moment(env: Mapping[str, str], name: str) -> str:
    """An ISO-8601 UTC moment as the ledger writes them (2026-12-07T00:00:00.000Z), or "" when unset."""
    raw = env.get(name, "")
    if raw and not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", raw):
        raise ConfigError(f"{name} must be an ISO-8601 UTC time like 2026-12-07T00:00:00.000Z, got {raw!r}")
    return raw


def _lenient_positive(env: Mapping[str, str], name: str) -> float | None:
    """A positive number, or None where unset, not a number or not positive (an alert's tuning never stops the function)."""
    try:
        value = float(env.get(name, "") or 0)
    except ValueError:
        return None
    return value if value > 0 else None


def _whole(env: Mapping[str, str], name: str, default: int | None, *, positive: bool = False) -> int:
    """A whole number, the default where unset (a required one has none), else ConfigError."""
    raw = env.get(name)
    if raw in (None, "") and default is not None:
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if positive and value <= 0:
        raise ConfigError(f"{name} must be positive, got {value}")
    return value


def _parse_price_overrides(raw: str) -> dict[str, Decimal]:
    """PRICE_OVERRIDES is a JSON object of model -> credits per second, each a decimal string."""
    if not raw:
        return {}
    try:
        data = json.loads(raw, parse_float=Decimal)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{ENV_PRICE_OVERRIDES} is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{ENV_PRICE_OVERRIDES} must be a JSON object of model to price")
    prices: dict[str, Decimal] = {}
    for model, price in data.items():
        try:
            value = Decimal(str(price))
        except InvalidOperation:
            raise ConfigError(f"{ENV_PRICE_OVERRIDES}: price of {model!r} is not a number") from None
        if not value.is_finite() or value <= 0:
            raise ConfigError(f"{ENV_PRICE_OVERRIDES}: price of {model!r} must be positive")
        prices[model] = value
    return prices


@lru_cache(maxsize=1)
def load_config() -> RuntimeConfig:
    """The Lambda's configuration, validated on first use and then cached for the container."""
    return RuntimeConfig.from_env()


@lru_cache(maxsize=1)
def load_shadow_config() -> ShadowConfig:
    """The shadow function's configuration, validated on first use and cached for the container."""
    return ShadowConfig.from_env()


@lru_cache(maxsize=1)
def load_balance_config() -> BalanceEventsConfig:
    """The stream function's configuration, validated on first use and cached for the container."""
    return BalanceEventsConfig.from_env()
