"""Realistic one-line bugs of the product, each applied with a pytest MonkeyPatch: the simulator's invariants of
liveness and its own oracle must catch each within a few seeds (tests/integration/simulator/test_liveness.py)."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN
from typing import Any

import pytest


def a_held_render_never_commits(monkeypatch: pytest.MonkeyPatch) -> None:
    # The job's condition of a held job's render asks for what a held job never is: the write is refused every
    # time, so the settlement retries until its budget runs out, on every Lambda attempt.
    from reconciler.repository.dynamodb import DynamoDBStore

    original = DynamoDBStore._job_settlement

    def never(self: Any, settlement: Any) -> dict:
        write = original(self, settlement)
        if settlement.hold_released and settlement.settled_as == "rendered":
            operation = write.get("Update") or write["Put"]
            operation["ConditionExpression"] = f"({operation['ConditionExpression']}) AND attribute_not_exists(reservedAs)"
        return write

    monkeypatch.setattr(DynamoDBStore, "_job_settlement", never)


def the_hold_guard_is_off_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # A reservation's hold condition (the only balance update that adds to held) asks for one credit more than it
    # holds: a balance that covers the hold exactly is refused.
    from reconciler.repository.dynamodb import DynamoDBStore

    original = DynamoDBStore._balance_update

    def off_by_one(self: Any, user: str, delta: int, timestamp: str, guard: tuple, held_delta: int = 0) -> dict:
        kind, amount = guard
        return original(self, user, delta, timestamp, (kind, amount + 1) if kind == "covers" and held_delta > 0 else guard, held_delta)

    monkeypatch.setattr(DynamoDBStore, "_balance_update", off_by_one)


def a_held_failure_is_taken_for_a_duplicate(monkeypatch: pytest.MonkeyPatch) -> None:
    # A failure of a held job is answered "duplicate": nothing written, the hold never released.
    from reconciler.domain import settlement
    from reconciler.service import event_settlement

    original = settlement.decide

    def decide(event: Any, job: Any, *args: Any, **kwargs: Any) -> Any:
        if job is not None and job.reserved_as == settlement.HOLD and not job.is_settled and event.kind == "failed":
            return settlement.Duplicate(event, job)
        return original(event, job, *args, **kwargs)

    monkeypatch.setattr(event_settlement, "decide", decide)


def the_returned_balance_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    # The decision made again after a failed guard ignores the balance the failure returned, so it fails the same way.
    from reconciler.domain.settlement import UNREAD
    from reconciler.service.event_settlement import SettlementService
    from reconciler.service.ports import BalanceChanged

    def decide_and_commit(self: Any, decide_with: Any, known: list) -> Any:
        try:
            return self._commit(decide_with(known[0]))
        except BalanceChanged:
            pass
        return self._commit(decide_with(UNREAD))

    monkeypatch.setattr(SettlementService, "_decide_and_commit", decide_and_commit)


def a_price_rounded_half_even(monkeypatch: pytest.MonkeyPatch) -> None:
    # A render's cost rounded to the nearest credit instead of up (2.5 s at 1 credit/s costs 2).
    from reconciler.domain import pricing

    def cost(self: Any, model: str, seconds: Any) -> int:
        return int(pricing._EXACT.multiply(seconds, self.price_of(model)).to_integral_value(rounding=ROUND_HALF_EVEN))

    monkeypatch.setattr(pricing.PriceBook, "cost", cost)


def a_duration_parsed_as_whole_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    # The event's duration is cut to whole seconds when parsed (2.5 s read as 2 s).
    from reconciler.domain import events

    original = events._seconds
    monkeypatch.setattr(events, "_seconds", lambda value: original(value).to_integral_value(rounding=ROUND_DOWN) or original(value))


def a_duplicate_of_another_event_is_a_conflict(monkeypatch: pytest.MonkeyPatch) -> None:
    # A job settled by another event of the same kind (the timer scan's, v2's) is compared by event id, not by kind:
    # the late event is recorded as a conflict instead of a duplicate.
    from reconciler.domain import settlement
    from reconciler.service import event_settlement

    original = settlement.decide

    def decide(event: Any, job: Any, balance: Any, prices: Any, timestamp: str, request_id: str | None = None) -> Any:
        decision = original(event, job, balance, prices, timestamp, request_id)
        if isinstance(decision, settlement.Duplicate) and not decision.same_event:
            return settlement.Conflict(event, job, timestamp, request_id)
        return decision

    monkeypatch.setattr(event_settlement, "decide", decide)


def a_damaged_job_is_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # A damaged job item is taken for a race (read again) instead of refused: the event is retried until Lambda
    # gives up, never dead-lettered with its reason.
    from reconciler.domain.errors import DamagedJob
    from reconciler.repository.dynamodb import DynamoDBStore
    from reconciler.service.ports import StaleState

    original = DynamoDBStore.load_job

    def load_job(self: Any, job_id: str, *, consistent: bool = True) -> Any:
        try:
            return original(self, job_id, consistent=consistent)
        except DamagedJob as damaged:
            raise StaleState(f"job {job_id} unreadable, reading again") from damaged

    monkeypatch.setattr(DynamoDBStore, "load_job", load_job)


def the_audit_difference_has_the_wrong_sign(monkeypatch: pytest.MonkeyPatch) -> None:
    # The audit reports what the ledger has beyond the balance, instead of what it lacks.
    from reconciler.ops import audit

    monkeypatch.setattr(audit.Discrepancy, "difference", property(lambda self: self.ledger_sum - self.posted))
