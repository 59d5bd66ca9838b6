"""The balance-events use case on in-memory ports: what is published once, and how a retry knows it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from reconciler.domain.crossings import EXHAUSTED, LOW, Thresholds
from reconciler.service.balance_event_publishing import PUBLISHED, BalanceEventService
from reconciler.service.ports import StreamChange
from tests.fakes import InMemoryEventLog, InMemoryLedgerLookup, RecordingPublisher


def service(low: int, log: InMemoryEventLog, publisher: RecordingPublisher) -> BalanceEventService:
    return BalanceEventService(Thresholds(low=low), publisher, log, InMemoryLedgerLookup(), now=lambda: "2026-12-01T00:00:00.000Z")


def change(before: int, after: int, sequence: str = "101") -> StreamChange:
    image = {"userId": "ann", "updatedAt": "2026-12-01T00:00:00.000Z"}
    return StreamChange("MODIFY", sequence, "ann", {**image, "remaining": Decimal(after)}, {**image, "remaining": Decimal(before)})


class FailsOnce(RecordingPublisher):
    """Accepts the first event, then refuses once (the record is retried), then accepts again."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def publish(self, detail_type: str, detail: dict) -> str:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("PutEvents failed")
        return super().publish(detail_type, detail)


def test_a_retried_record_publishes_what_failed_and_nothing_twice():
    """20 -> 0 under low 10 is [low, exhausted]: low is published, then PutEvents fails for exhausted and the record
    is retried; the retry skips low (its marker) and publishes exhausted."""
    log, publisher = InMemoryEventLog(), FailsOnce()
    with pytest.raises(RuntimeError):
        service(10, log, publisher).handle(change(20, 0))
    assert [kind for kind, _ in publisher.published] == [LOW]

    outcome = service(10, log, publisher).handle(change(20, 0))

    assert outcome.kind == PUBLISHED and outcome.already_published == 1
    assert [kind for kind, _ in publisher.published] == [LOW, EXHAUSTED]


def test_a_crossing_that_moved_in_the_list_between_attempts_is_still_published():
    """First attempt, low threshold 10: 5 -> 0 is [exhausted] (5 is already low); exhausted is published at
    position 0, and the marker write is lost with the invocation. A deploy raises nothing but lowers the threshold
    to 3 before the retry: 5 -> 0 is now [low, exhausted]. Keyed by position, low (now at 0) would be skipped as
    published and never reach the bus; keyed by what the crossing is, low is published and exhausted is not
    published twice."""
    log, publisher = InMemoryEventLog(), RecordingPublisher()
    assert service(10, log, publisher).handle(change(5, 0)).kind == PUBLISHED
    assert [kind for kind, _ in publisher.published] == [EXHAUSTED]

    retry = service(3, log, publisher).handle(change(5, 0))

    assert [kind for kind, _ in publisher.published] == [EXHAUSTED, LOW]
    assert retry.already_published == 1
    assert {item["detailType"] for item in log.markers.values()} == {EXHAUSTED, LOW}
