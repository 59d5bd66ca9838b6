"""Entry point for video.rendered and video.failed events from EventBridge."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from reconciler import bootstrap
from reconciler.contract import Metric
from reconciler.observability import COUNT, lambda_context, logger, metrics
from reconciler.service.event_settlement import CONFLICT, DUPLICATE, REJECTED, SETTLED, Outcome, deadline_from_remaining_ms

if TYPE_CHECKING:
    from reconciler.domain.settlement import Settlement


@lambda_context(correlation_id=lambda event: event.get("id") if isinstance(event, dict) else None)  # EventBridge's event id
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # A plain dict read, not Powertools' EventBridgeEvent: its package imports every event class it has (~14 ms CPU).
    if isinstance(event, dict):
        logger.append_keys(detail_type=event.get("detail-type"), job_id=_detail_value(event, "jobId"))
    # Lambda keeps the request id when it retries an invocation: the settlement stores it, so a retry after a
    # timeout recognises its own committed write (and counts it once) instead of calling it a duplicate.
    outcome = bootstrap.event_processor().process(
        event, deadline_from_remaining_ms(context.get_remaining_time_in_millis()), getattr(context, "aws_request_id", None)
    )
    record(outcome)
    alert(outcome, event, deadline_from_remaining_ms(context.get_remaining_time_in_millis(), margin_ms=1000))
    return outcome.summary()


def log_fields(outcome: Outcome) -> dict[str, Any]:
    """The outcome's line, compact: the event and job ids are already on it (correlation_id, job_id), a settlement's
    ledger ids are its postings' names (`job_ledger_id(job_id, posting)` gives them back), and flags only when set.
    The whole summary goes to DEBUG."""
    summary = outcome.summary()
    kept = ("outcome", "userId", "settledAs", "balanceDelta", "balanceAfter", "settledByEvent", "field", "reason", "deadLetterId")
    fields: dict[str, Any] = {key: summary[key] for key in kept if key in summary}
    if "ledgerIds" in summary:
        fields["postings"] = [ledger_id.rsplit(":", 1)[-1] for ledger_id in summary["ledgerIds"]]
    fields.update({key: True for key in ("overdraft", "recovered") if summary.get(key)})
    if outcome.attempts > 1:
        fields["attempts"] = outcome.attempts
    return fields


def record(outcome: Outcome) -> None:
    """Metrics (namespace Reconciler) and one structured log line per outcome."""
    summary = log_fields(outcome)
    logger.debug("outcome detail", extra=outcome.summary())
    if outcome.kind == SETTLED:
        settlement = cast("Settlement", outcome.settlement)  # a settled outcome carries its settlement
        metrics.add_metric(Metric.SETTLEMENTS, COUNT, 1)
        metrics.add_metric(Metric.ADJUSTMENTS, COUNT, len(settlement.entries))
        metrics.add_metric(Metric.CREDITS_DEBITED, COUNT, settlement.debited)
        metrics.add_metric(Metric.CREDITS_REFUNDED, COUNT, settlement.credited)
        if settlement.is_overdraft:
            metrics.add_metric(Metric.OVERDRAFTS, COUNT, 1)
            logger.warning("settled into overdraft", extra=summary)
        else:
            logger.info("settled", extra=summary)
    elif outcome.kind == DUPLICATE:
        metrics.add_metric(Metric.DUPLICATE_EVENTS, COUNT, 1)
        logger.info("duplicate event, nothing to do", extra=summary)
    elif outcome.kind == CONFLICT:
        metrics.add_metric(Metric.CONFLICTING_EVENTS, COUNT, 1)
        logger.error("conflicting terminal event recorded; no credits moved", extra=summary)
    elif outcome.kind == REJECTED:
        metrics.add_metric(Metric.INVALID_EVENTS, COUNT, 1)
        logger.error("invalid event sent to the dead-letter queue", extra=summary)
    if outcome.attempts > 1:
        metrics.add_metric(Metric.SETTLEMENT_RETRIES, COUNT, outcome.attempts - 1)


def alert(outcome: Outcome, raw_event: Any = None, deadline: float | None = None) -> None:
    """Tells a person when the outcome needs one. Never raises: alerts are not on the settlement path."""
    if outcome.kind in (CONFLICT, REJECTED):
        guarded_alert(lambda: bootstrap.shared_notifier().notify_outcome(outcome, raw_event, deadline))
    else:
        # Any later invocation sends counts held back by an earlier one, once their window ended;
        # a container that never alerted has no notifier and pays nothing here.
        guarded_alert(bootstrap.flush_due)


def guarded_alert(send: Callable[[], object]) -> None:
    """Runs one alerting step; the notifier swallows its own failures, this guards building it."""
    try:
        send()
    except Exception as error:  # noqa: BLE001 - alerting must never fail the settlement it reports
        metrics.add_metric(Metric.ALERT_FAILURES, COUNT, 1)
        logger.warning("ops alert failed", extra={"error_type": type(error).__name__})


def _detail_value(event: dict[str, Any], key: str) -> Any:
    detail = event.get("detail")
    return detail.get(key) if isinstance(detail, dict) else None
