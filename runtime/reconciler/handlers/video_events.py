"""Entry point for video.rendered and video.failed events from EventBridge."""

from __future__ import annotations

from typing import Any

from reconciler import bootstrap
from reconciler.handlers.outcomes import guarded_alert, record
from reconciler.observability import lambda_context, logger, metrics
from reconciler.service.event_settlement import CONFLICT, REJECTED, Outcome, deadline_from_remaining_ms


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


def alert(outcome: Outcome, raw_event: Any = None, deadline: float | None = None) -> None:
    """Tells a person when the outcome needs one. Never raises: alerts are not on the settlement path."""
    if outcome.kind in (CONFLICT, REJECTED):
        guarded_alert(lambda: bootstrap.shared_notifier().notify_outcome(outcome, raw_event, deadline))
    else:
        # Any later invocation sends counts held back by an earlier one, once their window ended;
        # a container that never alerted has no notifier and pays nothing here.
        guarded_alert(bootstrap.flush_due)


def _detail_value(event: dict[str, Any], key: str) -> Any:
    detail = event.get("detail")
    return detail.get(key) if isinstance(detail, dict) else None
