"""Entry point of the scheduled liability snapshot (its rule's input is {"job": LIABILITY_SNAPSHOT_JOB})."""

from __future__ import annotations

from typing import Any

from reconciler import bootstrap
from reconciler.observability import lambda_context, logger, metrics


@lambda_context()
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    snapshot, stored = bootstrap.liability_snapshot_job().run()
    book = snapshot.book
    summary = {
        "takenAt": snapshot.taken_at,
        "byCategory": book.by_category,
        "total": book.total,
        "users": book.users,
        "damaged": book.damaged,
        "stored": stored,
    }
    if book.damaged:
        logger.warning("liability snapshot taken; some Credits items have damaged figures, counted as 0", extra=summary)
    else:
        logger.info("liability snapshot taken", extra=summary)
    return summary
