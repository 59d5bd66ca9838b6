"""Entry point of cc-reconciler-balance-events-{stage}: Credits table stream records -> balance events.

Powertools' batch processing with partial batch responses (ReportBatchItemFailures). Records are handled in
stream order and the batch stops at the first failure: that record and every later one are reported, so Lambda
retries from the failed record and no event of a user is published before an earlier one (docs/events.md).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from reconciler import bootstrap
from reconciler.contract import SMOKE_TEST_USER_ID, Metric
from reconciler.handlers.outcomes import guarded_alert
from reconciler.observability import COUNT, lambda_context, log_metrics_if_any, logger, metrics
from reconciler.service.balance_changes import UNEXPLAINED, ChangeOutcome
from reconciler.service.balance_event_publishing import DAMAGED, PUBLISHED, REMOVED, BalanceEventService, RecordOutcome

SMOKE_TEST = "smoke-test"  # a record of the smoke test's user, skipped


class SkippedAfterFailure(Exception):
    """An earlier record of this batch failed; this one waits for the retry, to keep stream order."""


class InOrder:
    """A record handler for one batch that refuses every record after the first failure."""

    def __init__(self, service: BalanceEventService) -> None:
        self.service = service
        self.failed = False

    def __call__(self, record: DynamoDBRecord) -> dict[str, Any]:
        if self.failed:
            raise SkippedAfterFailure("an earlier record of this batch failed")
        try:
            change = bootstrap.stream_change(record.raw_event)
            # The smoke test's balance moves on every deploy: never a product event (docs/events.md).
            if change.key_user == SMOKE_TEST_USER_ID:
                return {"kind": SMOKE_TEST, "published": 0}
            outcome = self.service.handle(change)
            checked = bootstrap.balance_change_service().handle(change)
        except Exception as error:
            self.failed = True
            metrics.add_metric(Metric.BALANCE_EVENT_FAILURES, COUNT, 1)
            logger.warning(
                "balance event not published; the record will be retried",
                extra={"error_type": type(error).__name__, "error": str(error)[:300], "sequence": _sequence(record)},
            )
            raise
        observe(outcome)
        observe_change(checked, outcome.sequence_number)
        return {"kind": outcome.kind, "published": len(outcome.published), "change": checked.kind}


def observe(outcome: RecordOutcome) -> None:
    """Metrics and logs of one record (docs/metrics.md)."""
    where = {"user_id": outcome.user_id, "sequence": outcome.sequence_number}
    if outcome.kind == DAMAGED:
        metrics.add_metric(Metric.DAMAGED_BALANCE_RECORDS, COUNT, 1)
        logger.error("damaged Credits stream record reported and skipped", extra={**where, "problems": outcome.problems})
        return
    if outcome.problems:
        metrics.add_metric(Metric.BAD_THRESHOLD_OVERRIDES, COUNT, len(outcome.problems))
        logger.warning("unusable threshold override; stage default used", extra={**where, "problems": outcome.problems})
    if outcome.kind == REMOVED:
        logger.info("Credits item removed; no balance event", extra=where)
    if outcome.kind == PUBLISHED:
        if outcome.published:
            metrics.add_metric(Metric.BALANCE_EVENTS_PUBLISHED, COUNT, len(outcome.published))
            for event in outcome.published:
                logger.info(
                    "balance event published", extra={**where, "detail_type": event["detail-type"], "crossing_id": event["detail"]["crossingId"]}
                )
        if outcome.already_published:
            metrics.add_metric(Metric.BALANCE_EVENTS_ALREADY_PUBLISHED, COUNT, outcome.already_published)


def observe_change(outcome: ChangeOutcome, sequence: str | None) -> None:
    """An unexplained balance change: its metric (the alarm's), an error line, and an alert naming the user, the
    change and the commands to book or undo it (docs/operations.md). Never raises."""
    if outcome.kind != UNEXPLAINED or outcome.unexplained is None:
        return
    found = outcome.unexplained
    metrics.add_metric(Metric.UNEXPLAINED_BALANCE_CHANGES, COUNT, 1)
    logger.error(
        "unexplained balance change",
        extra={"user_id": found.user_id, "sequence": sequence, "change": found.change, "posted_after": found.posted_after, "reason": found.reason},
    )

    def send() -> object:
        from reconciler.notify.credits_alerts import unexplained_change

        notifier = bootstrap.stream_notifier()
        return notifier.notify(unexplained_change(found, notifier.stage, sequence)) if notifier is not None else None

    guarded_alert(send)


def _sequence(record: DynamoDBRecord) -> Any:
    return (record.raw_event.get("dynamodb") or {}).get("SequenceNumber")


@lambda_context()
@log_metrics_if_any  # most batches cross nothing and record no metric: no warning for those
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    # Every failed record is reported (never an exception for the whole batch), so Lambda checkpoints at the
    # first failed sequence number and retries from there.
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=InOrder(bootstrap.balance_event_service()), processor=processor, context=context)
