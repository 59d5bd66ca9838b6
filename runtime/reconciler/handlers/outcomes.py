"""What the function's handlers do with an outcome besides returning it: its metrics and log line, and the guard
around an alert (video_events.py and scheduled_scan.py share them; no handler imports another)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from reconciler.contract import Metric
from reconciler.observability import COUNT, logger, metrics
from reconciler.service.event_settlement import CONFLICT, DUPLICATE, REJECTED, SETTLED, Outcome

if TYPE_CHECKING:
    from reconciler.domain.settlement import Settlement


def log_fields(outcome: Outcome) -> dict[str, Any]:
    """The outcome's line, compact: the event and job ids are already on it (correlation_id, job_id), a settlement's
    ledger ids are its postings' names (`job_ledger_id(job_id, posting)` gives them back), and flags only when set.
    The whole summary goes to DEBUG."""
    summary = outcome.summary()
    kept = ("outcome", "userId", "settledAs", "balanceDelta", "balanceAfter", "settledByEvent", "field", "reason", "deadLetterId", "replay")
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
    elif outcome.skipped_in_replay:
        metrics.add_metric(Metric.REPLAYED_EVENTS_SKIPPED, COUNT, 1)
        handled = "settled" if outcome.kind == DUPLICATE else "refused as invalid and dead-lettered"
        logger.warning(f"replayed event skipped: {handled} when it first arrived", extra=summary)
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


def guarded_alert(send: Callable[[], object]) -> None:
    """Runs one alerting step; the notifier swallows its own failures, this guards building it."""
    try:
        send()
    except Exception as error:  # noqa: BLE001 - alerting must never fail the settlement it reports
        metrics.add_metric(Metric.ALERT_FAILURES, COUNT, 1)
        logger.warning("ops alert failed", extra={"error_type": type(error).__name__})
