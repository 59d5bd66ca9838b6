"""Entry point for the scheduled timer scan."""

from __future__ import annotations

from typing import Any

from reconciler import bootstrap
from reconciler.contract import Metric
from reconciler.handlers.outcomes import guarded_alert, record
from reconciler.observability import COUNT, lambda_context, logger, metrics
from reconciler.service.event_settlement import deadline_from_remaining_ms


@lambda_context()
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    report = bootstrap.timer_scan().run(deadline_from_remaining_ms(context.get_remaining_time_in_millis()), getattr(context, "aws_request_id", None))
    summary = report.summary()
    metrics.add_metric(Metric.SCANNED_JOBS, COUNT, report.examined)
    metrics.add_metric(Metric.SCAN_SETTLEMENTS, COUNT, len(report.settled))
    metrics.add_metric(Metric.STUCK_JOBS, COUNT, len(report.stuck))
    metrics.add_metric(Metric.UNSETTLEABLE_JOBS, COUNT, len(report.unsettleable))
    metrics.add_metric(Metric.SCAN_DEFERRED_JOBS, COUNT, len(report.deferred))
    if report.expiry is not None:
        metrics.add_metric(Metric.HOLDS_EXPIRED, COUNT, len(report.expiry.released))
    for outcome in report.settled + report.conflicts:
        record(outcome)
    # Stuck and unsettleable jobs and conflicts go to the ops topic; the tick also sends held-back counts.
    alert_deadline = deadline_from_remaining_ms(context.get_remaining_time_in_millis(), margin_ms=1000)
    for outcome in report.conflicts:
        # mypy cannot type a lambda's default argument (here the loop variable, bound per conflict)
        guarded_alert(lambda outcome=outcome: bootstrap.shared_notifier().notify_outcome(outcome, None, alert_deadline))  # type: ignore[misc]
    guarded_alert(lambda: bootstrap.shared_notifier().notify_scan(report, alert_deadline))
    expiry = report.expiry
    expiry_trouble = expiry is not None and bool(expiry.unreadable or expiry.deferred or expiry.unpublished or expiry.interrupted)
    if report.stuck or report.unsettleable or report.deferred or report.interrupted or expiry_trouble:
        logger.warning("timer scan found jobs that need a person", extra=summary)
    else:
        logger.info("timer scan done", extra=summary)
    return summary
