"""Wiring: builds the use cases from the validated configuration, once per Lambda container."""

from __future__ import annotations

from functools import lru_cache

from reconciler.config import RuntimeConfig, load_config
from reconciler.domain.pricing import PriceBook
from reconciler.repository.aws import client
from reconciler.repository.dead_letters import SqsDeadLetters
from reconciler.repository.dynamodb import DynamoDBStore
from reconciler.service.settlement import EventProcessor, SettlementService


def build_processor(config: RuntimeConfig, dynamodb=None, sqs=None) -> EventProcessor:
    store = DynamoDBStore(dynamodb or client("dynamodb"), config)
    settlement = SettlementService(store, PriceBook.with_overrides(config.price_overrides))
    return EventProcessor(settlement, SqsDeadLetters(sqs or client("sqs"), config.dlq_url, config.stage))


@lru_cache(maxsize=1)
def event_processor() -> EventProcessor:
    return build_processor(load_config())
