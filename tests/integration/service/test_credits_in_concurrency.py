"""Credits in over real HTTP (moto server on 127.0.0.1): a webhook delivered three times at once books once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from reconciler import bootstrap
from reconciler.service.retrying import Backoff
from tests.events import envelope

pytestmark = pytest.mark.server


def service(aws):
    backoff = lambda deadline: Backoff(deadline=deadline, sleep=time.sleep)  # noqa: E731
    return bootstrap.build_credits_in_service(aws.config, dynamodb=aws.client("dynamodb"), sqs=aws.client("sqs"), backoff=backoff)


def deliveries(detail_type: str, detail: dict, copies: int = 3) -> list[dict]:
    # A payment provider's webhook delivered three times: three EventBridge events, three ids, one reference.
    return [envelope(detail_type, detail, event_id=f"evt-{index}", source="credits.billing") for index in range(copies)]


def deliver_concurrently(aws, events: list[dict]) -> list[str]:
    # One service (and HTTP client) per worker, as separate Lambda containers would have.
    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        return [outcome.kind for outcome in pool.map(lambda event: service(aws).process(event), events)]


def test_a_purchase_delivered_three_times_concurrently_adds_its_credits_once(aws_server):
    aws = aws_server
    aws.seed_balance("payer", 10)
    detail = {"userId": "payer", "credits": 500, "reference": "pi_concurrent", "amountPaid": "19.99", "currency": "EUR"}
    kinds = deliver_concurrently(aws, deliveries("credits.purchased", detail))
    assert sorted(kinds) == ["applied", "duplicate", "duplicate"]
    assert aws.balance("payer") == 510 == aws.ledger_sum("payer")
    assert [entry.ledger_id for entry in aws.ledger("payer")].count("purchase:13:pi_concurrent") == 1
    assert aws.dead_letters() == []


def test_a_chargeback_beyond_the_balance_delivered_three_times_overdraws_once(aws_server):
    aws = aws_server
    aws.seed_balance("spender", 40)
    detail = {"userId": "spender", "credits": 100, "reference": "dp_concurrent", "category": "chargeback"}
    kinds = deliver_concurrently(aws, deliveries("credits.revoked", detail))
    assert sorted(kinds) == ["applied", "duplicate", "duplicate"]
    assert aws.balance("spender") == -60 == aws.ledger_sum("spender")
