"""Entry point of cc-reconciler-reserve-{stage}: the hold API the pipeline calls synchronously, from any language.

Input (docs/pipeline.md, docs/schemas/hold.request.json):
    {"operation": "hold", "jobId", "userId", "model", "credits" | "estimatedSeconds", "expiresAt" (optional)}
    {"operation": "release", "jobId", "userId"}
Every answer is a plain JSON object with a `status`:
    held          the credits were moved from remaining to held until expiresAt: {credits, unitPrice, model, expiresAt}
    already-held  exactly this hold was in place (a retry): {credits}
    insufficient  the balance does not cover it; nothing moved: {credits, balance}
    refused       the request conflicts with the job or is invalid: {field, reason}
    released      the open hold was given back: {credits}
    not-held      there was no open hold to give back (never held, released, or settled)
A passing fault (throttling past the retries) raises: the invocation fails and the caller retries the same call,
which is safe because the job id is the idempotency key.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from reconciler import bootstrap
from reconciler.contract import Metric
from reconciler.domain.errors import InsufficientCredits, InvalidEvent, ReservationRefused
from reconciler.domain.holds import HoldRequest
from reconciler.observability import COUNT, lambda_context, logger, metrics

HOLD, RELEASE = "hold", "release"
HELD, ALREADY_HELD, INSUFFICIENT, REFUSED, RELEASED, NOT_HELD = "held", "already-held", "insufficient", "refused", "released", "not-held"


@lambda_context()
@metrics.log_metrics
def handler(event: Any, context: Any) -> dict[str, Any]:
    answer = answer_for(event)
    if answer["status"] == HELD:
        metrics.add_metric(Metric.HOLDS_PLACED, COUNT, 1)
    elif answer["status"] in (INSUFFICIENT, REFUSED):
        metrics.add_metric(Metric.HOLDS_REFUSED, COUNT, 1)
    # One line a call: the job once (the answer's jobId is the request's), the user, and the answer.
    request = {"operation": _field(event, "operation"), "job_id": _field(event, "jobId"), "userId": _field(event, "userId")}
    logger.info("hold answered", extra={**request, **{key: value for key, value in answer.items() if key != "jobId"}})
    return answer


def answer_for(event: Any) -> dict[str, Any]:
    """The answer to one request; refusals are answers, passing faults raise."""
    if not isinstance(event, dict):
        return _refused("request", f"must be a JSON object, got {type(event).__name__}")
    operation = event.get("operation", HOLD)
    try:
        if operation == HOLD:
            return _hold(event)
        if operation == RELEASE:
            return _release(event)
        return _refused("operation", f"must be {HOLD!r} or {RELEASE!r}, got {str(operation)[:40]!r}")
    except InvalidEvent as invalid:
        return _refused(invalid.field, invalid.reason)
    except ReservationRefused as refused:
        return _refused("jobId", str(refused))


def _hold(event: dict[str, Any]) -> dict[str, Any]:
    service = bootstrap.hold_service()
    request = HoldRequest.sized(
        event.get("jobId"),
        event.get("userId"),
        event.get("model"),
        service.prices,
        credits=event.get("credits"),
        seconds=event.get("estimatedSeconds"),
        expires_at=event.get("expiresAt"),
    )
    try:
        result = service.hold(request)
    except InsufficientCredits as short:
        return {"status": INSUFFICIENT, "jobId": request.job_id, "credits": short.requested, "balance": short.available}
    if result.placed is None:
        return {"status": ALREADY_HELD, "jobId": request.job_id, "credits": result.credits}
    expires_at = result.placed.expires_at
    return {
        "status": HELD,
        "jobId": request.job_id,
        "credits": result.credits,
        "unitPrice": _number(request.unit_price),
        "model": request.model,
        "expiresAt": expires_at,
    }


def _release(event: dict[str, Any]) -> dict[str, Any]:
    released = bootstrap.hold_service().release(event.get("jobId"), event.get("userId"))
    if released is None:
        return {"status": NOT_HELD, "jobId": event.get("jobId")}
    return {"status": RELEASED, "jobId": released.job_id, "credits": released.credits}


def _refused(field: str, reason: str) -> dict[str, Any]:
    return {"status": REFUSED, "field": field, "reason": reason}


def _number(price: Decimal) -> int | str:
    """A price for JSON without a float: whole as an int, else its exact decimal text."""
    return int(price) if price == price.to_integral_value() else str(price)


def _field(event: Any, name: str) -> Any:
    value = event.get(name) if isinstance(event, dict) else None
    return value if isinstance(value, (str, int)) else None
