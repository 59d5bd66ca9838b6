"""The deployed shadow's entry point (docs/migration.md step 1): every event of v1's pattern, decided by v2's code
read-only; the decision goes to the shadow's own table and nothing else is written."""

from __future__ import annotations

from typing import Any

from reconciler import bootstrap
from reconciler.observability import lambda_context, logger


@lambda_context(correlation_id=lambda event: event.get("id") if isinstance(event, dict) else None)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # A failure to read or record raises: Lambda retries, then the event goes to the shadow's DLQ.
    decision = bootstrap.shadow_decider().decide(event if isinstance(event, dict) else {"detail": event})
    logger.info("shadow decision", extra={"outcome": decision["outcome"], "job_id": decision.get("jobId"), "posted": decision["balanceDelta"]})
    return decision
