"""Runtime configuration, read from the environment that the infrastructure sets, validated once."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Mapping

# Names of the environment variables; infra/constructs/reconciler_function.py sets exactly these.
ENV_STAGE = "STAGE"
ENV_JOBS_TABLE = "JOBS_TABLE_NAME"
ENV_CREDITS_TABLE = "CREDITS_TABLE_NAME"
ENV_LEDGER_TABLE = "LEDGER_TABLE_NAME"
ENV_DLQ_URL = "DLQ_URL"
ENV_OPS_TOPIC_ARN = "OPS_TOPIC_ARN"
ENV_OPENAI_SECRET_NAME = "OPENAI_SECRET_NAME"
ENV_PRICE_OVERRIDES = "PRICE_OVERRIDES"
ENV_SCAN_GRACE_MINUTES = "SCAN_GRACE_MINUTES"
ENV_STUCK_JOB_HOURS = "STUCK_JOB_HOURS"
ENV_TRIAGE_ENABLED = "TRIAGE_ENABLED"

# Index names are part of the table contract (infra/constructs/tables.py creates them).
LEDGER_BY_USER_INDEX = "userId-timestamp-index"
JOBS_UNSETTLED_INDEX = "unsettled-createdAt-index"
# Attribute that puts a job in the sparse unsettled index; the reconciler removes it on settlement.
UNSETTLED_ATTRIBUTE = "unsettled"
UNSETTLED_VALUE = "PENDING"

STAGES = ("dev", "staging", "prod")


class ConfigError(ValueError):
    """The environment does not describe a usable reconciler."""


@dataclass(frozen=True)
class RuntimeConfig:
    stage: str
    jobs_table: str
    credits_table: str
    ledger_table: str
    dlq_url: str
    ops_topic_arn: str = ""
    openai_secret_name: str = "meta-agents/openai"
    price_overrides: Mapping[str, Decimal] = field(default_factory=dict)
    scan_grace_minutes: int = 15
    stuck_job_hours: int = 6
    triage_enabled: bool = False

    @classmethod
    def for_stage(cls, stage: str, **overrides) -> "RuntimeConfig":
        """The runbook's resource names for a stage (used by the CLI and the local stack)."""
        if stage not in STAGES:
            raise ConfigError(f"unknown stage {stage!r}; valid stages: {', '.join(STAGES)}")
        values = dict(
            stage=stage,
            jobs_table=f"Jobs-{stage}",
            credits_table=f"Credits-{stage}",
            ledger_table=f"Ledger-{stage}",
            dlq_url="",
        )
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "RuntimeConfig":
        env = os.environ if env is None else env
        missing = [name for name in (ENV_STAGE, ENV_JOBS_TABLE, ENV_CREDITS_TABLE, ENV_LEDGER_TABLE, ENV_DLQ_URL) if not env.get(name)]
        if missing:
            raise ConfigError(f"missing environment variables: {', '.join(missing)}")
        return cls(
            stage=env[ENV_STAGE],
            jobs_table=env[ENV_JOBS_TABLE],
            credits_table=env[ENV_CREDITS_TABLE],
            ledger_table=env[ENV_LEDGER_TABLE],
            dlq_url=env[ENV_DLQ_URL],
            ops_topic_arn=env.get(ENV_OPS_TOPIC_ARN, ""),
            openai_secret_name=env.get(ENV_OPENAI_SECRET_NAME, "meta-agents/openai"),
            price_overrides=_parse_price_overrides(env.get(ENV_PRICE_OVERRIDES, "")),
            scan_grace_minutes=_positive_int(env, ENV_SCAN_GRACE_MINUTES, 15),
            stuck_job_hours=_positive_int(env, ENV_STUCK_JOB_HOURS, 6),
            triage_enabled=env.get(ENV_TRIAGE_ENABLED, "false").lower() == "true",
        )


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
