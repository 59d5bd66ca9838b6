"""Runtime configuration, read from the environment that the infrastructure sets, validated once."""

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
    ENV_CREDITS_TABLE,
    ENV_DLQ_URL,
    ENV_JOBS_TABLE,
    ENV_LEDGER_TABLE,
    ENV_LEGACY_RESERVATIONS_BEFORE,
    ENV_OPENAI_SECRET_NAME,
    ENV_OPS_TOPIC_ARN,
    ENV_PRICE_OVERRIDES,
    ENV_SCAN_GRACE_MINUTES,
    ENV_SETTLEMENTS_TABLE,
    ENV_STAGE,
    ENV_STUCK_JOB_HOURS,
    ENV_TRIAGE_ENABLED,
    ENV_USER_LEDGER_TABLE,
    OPENAI_SECRET_NAME,
    ConfigError,
    ResourceNames,
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
    scan_grace_minutes: int = 15
    stuck_job_hours: int = 6
    triage_enabled: bool = False
    # Jobs created before this moment may carry a reservation made on their item (domain/settlement.py); "" means
    # none does (a stage that never ran the code that made them).
    legacy_reservations_before: str = ""

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
            dlq_url="",
            legacy_reservations_before=names.limits.legacy_reservations_before,
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
            scan_grace_minutes=_positive_int(env, ENV_SCAN_GRACE_MINUTES, 15),
            stuck_job_hours=_positive_int(env, ENV_STUCK_JOB_HOURS, 6),
            triage_enabled=env.get(ENV_TRIAGE_ENABLED, "false").lower() == "true",
            legacy_reservations_before=_moment(env, ENV_LEGACY_RESERVATIONS_BEFORE),
        )


def _moment(env: Mapping[str, str], name: str) -> str:
    """An ISO-8601 UTC moment as the ledger writes them (2026-12-07T00:00:00.000Z), or "" when unset."""
    raw = env.get(name, "")
    if raw and not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", raw):
        raise ConfigError(f"{name} must be an ISO-8601 UTC time like 2026-12-07T00:00:00.000Z, got {raw!r}")
    return raw


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
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
