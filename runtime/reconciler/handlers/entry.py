"""The function's single handler: scheduled timer-scan ticks go to the scan, the liability snapshot's schedule to
its job, credits in (source credits.billing) to credit_events, everything else is a render event."""

from __future__ import annotations

from typing import Any

from reconciler.contract import LIABILITY_SNAPSHOT_JOB
from reconciler.domain.credits_in import CREDITS_IN_SOURCE
from reconciler.handlers import video_events


def is_schedule_tick(event: Any) -> bool:
    return isinstance(event, dict) and event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event"


def handler(event: Any, context: Any) -> dict[str, Any]:
    if is_schedule_tick(event):
        # Imported on first tick only: the event path's cold start does not pay for it.
        from reconciler.handlers import scheduled_scan

        return scheduled_scan.handler(event, context)
    if isinstance(event, dict) and event.get("job") == LIABILITY_SNAPSHOT_JOB:
        from reconciler.handlers import scheduled_snapshot

        return scheduled_snapshot.handler(event, context)
    if isinstance(event, dict) and event.get("source") == CREDITS_IN_SOURCE:
        from reconciler.handlers import credit_events

        return credit_events.handler(event, context)
    return video_events.handler(event, context)
