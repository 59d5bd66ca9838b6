"""Realistic one-line bugs of the product, each applied with a pytest MonkeyPatch: the simulator's invariants of
liveness and its own oracle must catch each within a few seeds (tests/integration/simulator/test_liveness.py)."""

from __future__ import annotations

import json
from decimal import ROUND_DOWN, ROUND_HALF_EVEN
from typing import Any

import pytest


def a_held_render_never_commits(monkeypatch: pytest.MonkeyPatch) -> None:
    # The record's condition of a held job's render asks for what a held job never is (no open hold): the write is
    # refused every time, so the settlement retries until its budget runs out, on every Lambda attempt.
    from reconciler.repository.dynamodb import DynamoDBStore

    original = DynamoDBStore._record_settlement

    def never(self: Any, settlement: Any) -> dict:
        write = original(self, settlement)
        if settlement.hold_released and settlement.settled_as == "rendered":
            operation = write.get("Update") or write["Put"]
            operation["ConditionExpression"] = f"({operation['ConditionExpression']}) AND attribute_not_exists(holdUser)"
        return write

    monkeypatch.setattr(DynamoDBStore, "_record_settlement", never)


def the_hold_guard_is_off_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # A reservation's hold condition (the only balance update that adds to held) asks for one credit more than it
    # holds: a balance that covers the hold exactly is refused.
    from reconciler.repository.dynamodb import DynamoDBStore

    original = DynamoDBStore._balance_update

    def off_by_one(self: Any, user: str, delta: int, timestamp: str, guard: tuple, held_delta: int = 0, **rest: Any) -> dict:
        kind, amount = guard
        return original(
            self, user, delta, timestamp, (kind, amount + 1) if kind == "covers" and held_delta > 0 else guard, held_delta=held_delta, **rest
        )

    monkeypatch.setattr(DynamoDBStore, "_balance_update", off_by_one)


def a_held_failure_is_taken_for_a_duplicate(monkeypatch: pytest.MonkeyPatch) -> None:
    # A failure of a held job is answered "duplicate": nothing written, the hold never released.
    from reconciler.domain import settlement
    from reconciler.service import event_settlement

    original = settlement.decide

    def decide(event: Any, known: Any, *args: Any, **kwargs: Any) -> Any:
        record = known.record
        if record is not None and record.open_hold and event.kind == "failed":
            return settlement.Duplicate(event, record.facts())
        return original(event, known, *args, **kwargs)

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
    from reconciler.domain import pricing, settlement

    def cost_at(price: Any, seconds: Any) -> int:
        return int(pricing._EXACT.multiply(seconds, price).to_integral_value(rounding=ROUND_HALF_EVEN))

    monkeypatch.setattr(settlement, "cost_at", cost_at)


def a_duration_parsed_as_whole_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    # The event's duration is cut to whole seconds when parsed (2.5 s read as 2 s).
    from reconciler.domain import events

    original = events.render_seconds
    monkeypatch.setattr(
        events, "render_seconds", lambda value, *rest: original(value, *rest).to_integral_value(rounding=ROUND_DOWN) or original(value)
    )


def a_duplicate_of_another_event_is_a_conflict(monkeypatch: pytest.MonkeyPatch) -> None:
    # A job settled by another event of the same kind (the timer scan's, v2's) is compared by event id, not by kind:
    # the late event is recorded as a conflict instead of a duplicate.
    from reconciler.domain import settlement
    from reconciler.service import event_settlement

    original = settlement.decide

    def decide(event: Any, known: Any, prices: Any, timestamp: str, request_id: str | None = None, legacy_before: str = "") -> Any:
        decision = original(event, known, prices, timestamp, request_id, legacy_before)
        if isinstance(decision, settlement.Duplicate) and not decision.same_event:
            return settlement.Conflict(event, decision.settled, timestamp, request_id)
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


# --- issue #20's fixes and issue #21's record design, each undone -------------------------------------------------


def markers_keyed_by_position(monkeypatch: pytest.MonkeyPatch) -> None:
    # A balance event's marker keyed by the crossing's place in the list computed for the change, not by what it is: a
    # retry that computes another list (thresholds deployed in between) takes one crossing's marker for another's.
    from reconciler.service import balance_event_publishing

    position = [0]
    original = balance_event_publishing.BalanceEventService.handle

    def handle(self: Any, change: Any) -> Any:
        position[0] = 0
        return original(self, change)

    def by_position(sequence: str, detail_type: str) -> str:
        position[0] += 1
        return f"{sequence.zfill(40)}#{position[0] - 1}"

    monkeypatch.setattr(balance_event_publishing.BalanceEventService, "handle", handle)
    monkeypatch.setattr(balance_event_publishing, "balance_event_key", by_position)


def ids_bounded_in_characters_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # An id bounded by 256 characters alone: 256 four-byte characters make keys DynamoDB refuses.
    from reconciler.domain import validation

    monkeypatch.setattr(validation, "MAX_ID_BYTES", 10**6)


def numbers_in_boto3s_context(monkeypatch: pytest.MonkeyPatch) -> None:
    # Durations validated by boto3's decimal context, which lets through what DynamoDB refuses (1E-131 .. 1E-165, 1E+126).
    from boto3.dynamodb.types import DYNAMODB_CONTEXT

    from reconciler.domain import events, validation

    def storable(field: str, value: Any) -> Any:
        try:
            return DYNAMODB_CONTEXT.create_decimal(value)
        except ArithmeticError:
            raise validation.InvalidEvent(field, "cannot be stored exactly") from None

    monkeypatch.setattr(validation, "storable_decimal", storable)
    monkeypatch.setattr(events, "storable_decimal", storable)


def dead_letters_escape_every_non_ascii_character(monkeypatch: pytest.MonkeyPatch) -> None:
    # A dead letter's body written with json.dumps' ASCII escapes: every non-ASCII character becomes \uXXXX (one of CJK
    # text triples), whether SQS accepts it or not.
    from reconciler.repository import sqs_dead_letters

    original = sqs_dead_letters.encode_body

    def ascii_only(event: Any) -> tuple[str, dict]:
        body, encoding = original(event)
        return (body if encoding else json.dumps(json.loads(body))), encoding

    monkeypatch.setattr(sqs_dead_letters, "encode_body", ascii_only)


def balances_without_a_type_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    # A balance write that does not require its figures to be numbers: DynamoDB refuses the update expression on text or a
    # boolean, which names no attribute, on every retry.
    from reconciler.repository import dynamodb

    monkeypatch.setattr(
        dynamodb,
        "_is_number_or_absent",
        lambda attribute: f"(attribute_not_exists({attribute}) OR attribute_type({attribute}, :number) OR attribute_exists({attribute}))",
    )


def releases_without_the_held_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    # A hold's release without `held >= released`: a Jobs item that claims a hold nobody paid gives those credits away.
    from reconciler.repository.dynamodb import DynamoDBStore

    original = DynamoDBStore._balance_update

    def unguarded(self: Any, *args: Any, **kwargs: Any) -> dict:
        write = original(self, *args, **kwargs)
        update = write["Update"]
        update["ConditionExpression"] = update["ConditionExpression"].replace(" AND held >= :released", "")
        update["ExpressionAttributeValues"].pop(":released", None)
        return write

    monkeypatch.setattr(DynamoDBStore, "_balance_update", unguarded)


def repairs_not_conditioned_on_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    # An audit repair conditioned on remaining and held only: a correction moves neither, so a restore decided before it
    # still applies after it, and the two swap the books.
    from reconciler.repository import dynamodb_operations

    original = dynamodb_operations._balance_as_seen

    def as_seen(remaining: Any, held: int, version: int) -> tuple[str, dict]:
        condition, values = original(remaining, held, version)
        values.pop(":version_seen", None)
        return (condition.rsplit(" AND ", 1)[0] if values else condition), values  # the version's clause comes last

    monkeypatch.setattr(dynamodb_operations, "_balance_as_seen", as_seen)


def fixes_without_the_index_behind_check(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fix that does not check the Ledger index shows the balance's last entry: it decides on a lagging index.
    import dataclasses

    from reconciler.ops.audit import Auditor

    original = Auditor.audit_user
    monkeypatch.setattr(
        Auditor, "audit_user", lambda self, user: (lambda found: found and dataclasses.replace(found, index_behind=None))(original(self, user))
    )


def settlement_proven_on_the_jobs_item_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # The settlement record written without its condition: the proof of settlement is the Jobs item's alone, which the
    # pipeline may save whole without it.
    from reconciler.repository.dynamodb import DynamoDBStore

    original = DynamoDBStore._record_settlement

    def unconditioned(self: Any, settlement: Any) -> dict:
        write = original(self, settlement)
        (write.get("Put") or write["Update"]).pop("ConditionExpression", None)
        return write

    monkeypatch.setattr(DynamoDBStore, "_record_settlement", unconditioned)


def reservations_on_jobs_items_counted_after_the_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    # Reservation attributes on a Jobs item count whenever the job was created: another writer's hand-written hold moves money.
    from reconciler.domain import settlement
    from reconciler.repository.dynamodb import DynamoDBStore

    def counted(self: Any, legacy_before: str) -> tuple[str, int] | None:
        if not self.reserved_credits:
            return None
        return (settlement.LEGACY_HOLD if self.reserved_as == settlement.HOLD else settlement.LEGACY_POSTED), self.reserved_credits

    monkeypatch.setattr(settlement.JobRecord, "legacy_reservation", counted)
    original = DynamoDBStore._job_condition

    def condition(self: Any, job: Any, values: dict, names: dict) -> str:
        text = original(self, job, values, names)
        values.pop(":legacy_before", None)
        return text.replace(
            " AND (attribute_not_exists(reservedCredits) OR NOT (createdAt < :legacy_before))", " AND attribute_not_exists(reservedCredits)"
        )

    monkeypatch.setattr(DynamoDBStore, "_job_condition", condition)


def the_hold_price_ignored_at_settlement(monkeypatch: pytest.MonkeyPatch) -> None:
    # A held render charged at the price book's price when it settles, not at its hold's.
    from reconciler.domain import settlement

    monkeypatch.setattr(settlement, "_price", lambda event, record, prices: prices.price_of(event.model))


def writes_that_record_no_change(monkeypatch: pytest.MonkeyPatch) -> None:
    # A balance write of the store that sets its version but records no change (`lastChange` names its maker only):
    # the reconciler's own write looks like somebody else's.
    from reconciler.domain.unexplained import change_record
    from reconciler.repository import dynamodb

    monkeypatch.setattr(dynamodb, "change_record", lambda changes, by: change_record({}, by))


def the_change_check_trusts_an_unchanged_version(monkeypatch: pytest.MonkeyPatch) -> None:
    # The change check that takes a record whose version did not move for a threshold override: a direct UpdateItem of
    # `remaining` (which leaves the version alone) passes unflagged.
    from reconciler.domain.attributes import VERSION_ATTRIBUTE
    from reconciler.service import balance_changes

    original = balance_changes.unexplained

    def trusting(old: Any, new: Any) -> Any:
        if old is not None and new is not None and old.get(VERSION_ATTRIBUTE) == new.get(VERSION_ATTRIBUTE):
            return None
        return original(old, new)

    monkeypatch.setattr(balance_changes, "unexplained", trusting)


def expiry_releases_without_the_hold_condition(monkeypatch: pytest.MonkeyPatch) -> None:
    # The timer scan's release of an expired hold loses its condition on the hold (still open, unsettled, of that
    # expiry): a tick that read the hold before a settlement, the pipeline's release or another tick committed
    # releases it again (only the balance's held >= released guard is left).
    from reconciler.repository.dynamodb import DynamoDBStore

    original = DynamoDBStore._transact

    def unconditioned(self: Any, items: list) -> None:
        for role, item in items:
            update = item.get("Update") or {}
            if role == "record" and "#by" in update.get("UpdateExpression", ""):
                update["ConditionExpression"] = f"attribute_exists(jobId) OR ({update['ConditionExpression']})"
        original(self, items)

    monkeypatch.setattr(DynamoDBStore, "_transact", unconditioned)


def a_reused_reference_taken_for_a_duplicate(monkeypatch: pytest.MonkeyPatch) -> None:
    # Credits in (issue #24): a redelivery's entry is compared by user alone, so a reference reused for another amount
    # is answered duplicate instead of refused (the second application is lost without a dead letter).
    from reconciler.service import credits_application

    monkeypatch.setattr(credits_application, "same_application", lambda existing, event: existing.user_id == event.user_id)


def refunds_add_to_the_paid_total(monkeypatch: pytest.MonkeyPatch) -> None:
    # Credits in: a refund's or a chargeback's credits are added to the user's paid running total instead of taken from
    # it (the sign dropped), so the liability counts revoked credits as outstanding paid ones.
    from reconciler.domain.liability import came_in
    from reconciler.repository import credits_in_store

    monkeypatch.setattr(credits_in_store, "came_in", lambda category, signed: came_in(category, abs(signed)))
