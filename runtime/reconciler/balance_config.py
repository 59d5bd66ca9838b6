"""Configuration of the balance-events stream function, from the environment the infrastructure sets,
validated once (infra/constructs/balance_events.py sets exactly these variables)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from reconciler.contract import (
    BALANCE_EVENT_SOURCE as DEFAULT_EVENT_SOURCE,
)
from reconciler.contract import (
    DEFAULT_EVENT_BUS,
    ENV_BALANCE_EVENTS_TABLE,
    ENV_EVENT_BUS,
    ENV_EVENT_SOURCE,
    ENV_LEDGER_TABLE,
    ENV_LOW_THRESHOLD,
    ENV_OVERDRAFT_ALERT_LEVEL,
    ENV_STAGE,
    ENV_USER_LEDGER_TABLE,
    ConfigError,
    ResourceNames,
)
from reconciler.domain.crossings import ThresholdError, Thresholds


@dataclass(frozen=True)
class BalanceEventsConfig:
    stage: str
    ledger_table: str
    user_ledger_table: str
    balance_events_table: str
    thresholds: Thresholds
    event_source: str = DEFAULT_EVENT_SOURCE
    event_bus: str = DEFAULT_EVENT_BUS

    @classmethod
    def for_stage(cls, stage: str, **overrides: Any) -> BalanceEventsConfig:
        """The contract names of a stage (the CLI and the local stack)."""
        names = ResourceNames(stage)  # unknown stage -> UnknownStageError, a ConfigError
        values: dict[str, Any] = dict(
            stage=stage,
            ledger_table=names.ledger_table,
            user_ledger_table=names.user_ledger_table,
            balance_events_table=names.balance_events_table,
            thresholds=Thresholds(10, 0),
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
        # EventBridge: Source is 1 to 256 characters; "aws." is reserved for AWS services.
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,256}", source) or source.lower().startswith("aws."):
            raise ConfigError(f"{ENV_EVENT_SOURCE} is not a usable event source: {source!r}")
        try:
            thresholds = Thresholds(_int(env, ENV_LOW_THRESHOLD, None), _int(env, ENV_OVERDRAFT_ALERT_LEVEL, 0))
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
        )


def _int(env: Mapping[str, str], name: str, default: int | None) -> int:
    raw = env.get(name)
    if raw in (None, "") and default is not None:
        return default
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


@lru_cache(maxsize=1)
def load_balance_config() -> BalanceEventsConfig:
    """The stream function's configuration, validated on first use and cached for the container."""
    return BalanceEventsConfig.from_env()
