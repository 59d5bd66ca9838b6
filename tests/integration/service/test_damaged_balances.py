"""A damaged balance (remaining or held stored as text, a boolean or a fraction) sends the event to the DLQ with
the attribute at fault, like a damaged job: it never raises out of the handler on every retry, and a decision is
never made on a truncated figure."""

from __future__ import annotations

from decimal import Decimal

import pytest

from reconciler.ops.audit import Auditor
from reconciler.repository.dynamodb import to_item
from reconciler.service.reservations import ReservationService
from reconciler.service.retrying import Backoff
from tests.events import rendered


def put_balance(aws, **figures) -> None:
    aws.client("dynamodb").put_item(TableName=aws.config.credits_table, Item=to_item({"userId": "ann", **figures}))


@pytest.mark.parametrize(
    ("figures", "attribute"),
    [
        ({"remaining": "25"}, "remaining"),
        ({"remaining": True}, "remaining"),
        ({"remaining": Decimal("2.5")}, "remaining"),  # 3 credits due: the guard fails and returns the fraction
    ],
    ids=["text", "boolean", "fraction"],
)
def test_a_render_against_a_damaged_balance_is_dead_lettered_naming_the_attribute(aws, figures, attribute):
    put_balance(aws, **figures)
    counts = aws.item_counts()
    outcome = aws.processor().process(rendered("job-1", "ann", seconds=3, event_id="evt-1"))
    assert outcome.kind == "rejected"
    [letter] = aws.dead_letters()
    assert letter["field"] == "balance" and f"unusable: {attribute}" in letter["reason"]
    assert aws.item_counts() == counts


def test_a_hold_against_a_text_held_is_refused_naming_it(aws):
    put_balance(aws, remaining=Decimal(50), held="5")
    with pytest.raises(ValueError, match="unusable: held"):
        ReservationService(aws.store()).reserve("job-1", "ann", "test", 10)


def test_a_stored_reservation_of_zero_on_the_jobs_item_neither_blocks_nor_loops_a_hold(aws):
    """A hold is the reconciler's own record: what the pipeline stored on its Jobs item cannot make the hold's write
    fail on every retry (it used to require no reservedCredits at all, so a stored 0 looped until the budget ran out)."""
    aws.seed_balance("ann", 50)
    aws.put_job(jobId="job-1", userId="ann", status="submitted", reservedCredits=0, createdAt="2026-11-28T09:00:00.000Z")
    attempts = []
    service = ReservationService(aws.store(), backoff=lambda: Backoff(sleep=attempts.append))
    assert service.reserve("job-1", "ann", "test", 10).credits == 10
    assert attempts == [] and (aws.balance("ann"), aws.held("ann")) == (40, 10)


def test_a_job_claiming_a_hold_nobody_paid_for_is_dead_lettered_and_the_audit_names_it(aws):
    """Another writer marked the job held (10 credits) without moving the balance: the render must not release
    credits nobody paid for."""
    put_balance(aws, remaining=Decimal(50))
    held_job = {"reservedCredits": 10, "reservedAs": "hold", "unsettled": "PENDING"}
    aws.put_job(jobId="job-1", userId="ann", status="rendering", createdAt="2026-11-28T09:00:00.000Z", **held_job)
    outcome = aws.processor().process(rendered("job-1", "ann", seconds=3, event_id="evt-1"))
    assert outcome.kind == "rejected" and outcome.error.field == "job"
    [letter] = aws.dead_letters()
    assert "releases a hold of 10 credits but the balance holds only 0" in letter["reason"]
    assert (aws.balance("ann"), aws.held("ann")) == (50, 0)
    [found] = Auditor(aws.store(), legacy_before=aws.config.legacy_reservations_before).audit_all()
    assert found.user_id == "ann" and found.holds.jobs == ("job-1",) and found.held_difference == -10


def test_a_hold_whose_job_lacks_the_unsettled_marker_is_still_counted_and_the_audit_stays_clean(aws):
    """The pipeline created its job without the unsettled marker: invisible to the timer scan, but the hold is the
    reconciler's record, in its own open-holds index, so the audit sees it and suggests releasing nothing."""
    aws.seed_balance("ann", 50)
    aws.put_job(jobId="job-1", userId="ann", status="rendering", createdAt="2026-12-07T09:00:00.000Z")
    ReservationService(aws.store()).reserve("job-1", "ann", "test", 10)
    auditor = Auditor(aws.store(), legacy_before=aws.config.legacy_reservations_before)
    assert auditor.audit_all() == [] and auditor.audit_user("ann") is None
    assert aws.processor().process(rendered("job-1", "ann", seconds=3, event_id="evt-1")).kind == "settled"
    assert (aws.balance("ann"), aws.held("ann")) == (47, 0) and auditor.audit_all() == []


def test_a_hand_written_hold_after_the_cut_off_moves_nothing_and_the_audit_names_it(aws):
    aws.seed_balance("ann", 50)
    by_hand = {"reservedCredits": 10, "reservedAs": "hold", "unsettled": "PENDING"}
    aws.put_job(jobId="job-1", userId="ann", status="rendering", createdAt="2026-12-08T09:00:00.000Z", **by_hand)
    auditor = Auditor(aws.store(), legacy_before=aws.config.legacy_reservations_before)
    [found] = auditor.audit_all()
    # The books balance (nothing was held), and the audit names the job whose item claims a hold
    assert (found.user_id, found.kinds, found.difference, found.held_difference) == ("ann", ("reservations",), 0, 0)
    assert found.holds.ignored == ("job-1",) and "another writer" in found.summary() and found.unfixable("ledger")
    assert aws.processor().process(rendered("job-1", "ann", seconds=3, event_id="evt-1")).settlement.hold_released == 0
    assert (aws.balance("ann"), aws.held("ann")) == (47, 0) and auditor.audit_all() == []
