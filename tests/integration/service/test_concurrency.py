"""Ten concurrent invocations over real HTTP (moto server on 127.0.0.1) lose nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from reconciler.service.reservations import ReservationService
from tests.events import failed, rendered

pytestmark = pytest.mark.server


def test_ten_concurrent_invocations_for_one_user_lose_nothing(aws_server):
    # Given one user with 1,000 credits and 30 reserved jobs
    aws = aws_server
    aws.seed_balance("busy", 1000)
    reservations = ReservationService(aws.store())
    for index in range(30):
        reservations.reserve(f"job-{index}", "busy", "test", 10)
    # When 10 workers deliver every job's event concurrently, each event twice
    events = []
    for index in range(30):
        event = rendered(f"job-{index}", "busy", seconds=4) if index % 3 else failed(f"job-{index}", "busy")
        events += [event, event]

    def deliver(event):
        # One processor (and HTTP client) per worker, as separate Lambda containers would have.
        return aws.processor(sleep=__import__("time").sleep).process(event)

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(deliver, events))
    # Then every job settled exactly once and the balance is exactly what the ledger says
    kinds = [outcome.kind for outcome in outcomes]
    assert kinds.count("settled") == 30 and kinds.count("duplicate") == 30
    renders, failures = 20, 10
    assert aws.balance("busy") == 1000 - 300 + renders * (10 - 4) + failures * 10 == aws.ledger_sum("busy")
    assert aws.held("busy") == 0
    # The opening entry and one charge per render: the holds and their releases post nothing
    assert len(aws.all_ledger_ids()) == 1 + renders
