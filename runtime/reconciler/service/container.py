"""Wiring: builds the use cases from the validated configuration, once per Lambda container."""

from __future__ import annotations

from functools import lru_cache

from reconciler.config import RuntimeConfig, load_config
from reconciler.domain.pricing import PriceBook
from reconciler.repository.aws import client
from reconciler.repository.dead_letters import SqsDeadLetters
from reconciler.repository.dynamodb import DynamoDBStore
from reconciler.service.ports import DeadLetters
from reconciler.service.settlement import EventProcessor, SettlementService


def build_processor(config: RuntimeConfig, dynamodb=None, sqs=None, dead_letters: DeadLetters | None = None) -> EventProcessor:
    store = DynamoDBStore(dynamodb or client("dynamodb"), config)
    settlement = SettlementService(store, PriceBook.with_overrides(config.price_overrides))
    return EventProcessor(settlement, dead_letters or SqsDeadLetters(sqs or client("sqs"), config.dlq_url, config.stage))


def build_timer_scan(store, config: RuntimeConfig):
    """The timer scan with the function's prices, grace and stuck thresholds (the handler and the CLI)."""
    from datetime import timedelta

    # Imported here: the event path's cold start does not load the scan.
    from reconciler.service.timer_scan import TimerScan

    settlement = SettlementService(store, PriceBook.with_overrides(config.price_overrides))
    return TimerScan(store, settlement, grace=timedelta(minutes=config.scan_grace_minutes), stuck_after=timedelta(hours=config.stuck_job_hours))


@lru_cache(maxsize=1)
def event_processor() -> EventProcessor:
    return build_processor(load_config())
