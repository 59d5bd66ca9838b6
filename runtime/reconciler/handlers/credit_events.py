"""Entry point for credits.purchased, credits.granted and credits.revoked (source credits.billing) from EventBridge."""

from __future__ import annotations

from typing import Any

from reconciler import bootstrap
from reconciler.contract import Metric
from reconciler.handlers.outcomes import guarded_alert
from reconciler.observability import COUNT, lambda_context, logger, metrics
from reconciler.service.credits_application import APPLIED, DUPLICATE, REJECTED, CreditsOutcome
from reconciler.service.event_settlement import deadline_from_remaining_ms


@lambda_context(correlation_id=lambda event: event.get("id") if isinstance(event, dict) else None)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if isinstance(event, dict):
        logger.append_keys(detail_type=event.get("detail-type"))
    # Lambda keeps the request id when it retries an invocation: the entry records it, so a retry after a fault past
    # the commit answers as the first attempt would have (an overdraft alerted and counted), not as a duplicate.
    outcome = bootstrap.credits_in_service().process(
        event, deadline_from_remaining_ms(context.get_remaining_time_in_millis()), getattr(context, "aws_request_id", None)
    )
    record(outcome)
    alert(outcome, event)
    return outcome.summary()


def record(outcome: CreditsOutcome) -> None:
    """Metrics (namespace Reconciler) and one structured log line per outcome."""
    summary = outcome.summary()
    if outcome.kind == APPLIED and outcome.application is not None:
        metrics.add_metric(Metric.CREDITS_IN_APPLIED, COUNT, 1)
        metrics.add_metric(Metric.ADJUSTMENTS, COUNT, 1)  # a balance change with its ledger entry, as the runbook counts them
        if outcome.event is not None and outcome.event.is_revocation:
            metrics.add_metric(Metric.CREDITS_REVOKED, COUNT, outcome.event.credits)
        else:
            metrics.add_metric(Metric.CREDITS_ADDED, COUNT, outcome.application.entry.amount)
        if outcome.overdraft:
            metrics.add_metric(Metric.OVERDRAFTS, COUNT, 1)
            logger.warning("revocation applied into overdraft", extra=summary)
        else:
            logger.info("credits applied", extra=summary)
    elif outcome.kind == DUPLICATE:
        metrics.add_metric(Metric.DUPLICATE_EVENTS, COUNT, 1)
        logger.info("credits already applied under this reference, nothing to do", extra=summary)
    elif outcome.kind == REJECTED:
        metrics.add_metric(Metric.INVALID_EVENTS, COUNT, 1)
        logger.error("invalid credits event sent to the dead-letter queue", extra=summary)
    if outcome.attempts > 1:
        metrics.add_metric(Metric.SETTLEMENT_RETRIES, COUNT, outcome.attempts - 1)


def alert(outcome: CreditsOutcome, raw_event: Any) -> None:
    """An overdraft and an invalid event tell a person; never raises."""
    if outcome.kind == REJECTED or outcome.overdraft:
        from reconciler.notify.credits_alerts import from_credits_outcome

        def send() -> object:
            made = from_credits_outcome(outcome, bootstrap.load_config().stage, raw_event)
            return bootstrap.shared_notifier().notify(made) if made is not None else None

        guarded_alert(send)
    else:
        guarded_alert(bootstrap.flush_due)
