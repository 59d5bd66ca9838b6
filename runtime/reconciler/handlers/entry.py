"""The function's single handler: scheduled timer-scan ticks go to the scan, everything else is an event."""

from __future__ import annotations

from typing import Any

from reconciler.handlers import video_events


def is_schedule_tick(event: Any) -> bool:
    return isinstance(event, dict) and event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event"


def handler(event: Any, context: Any) -> dict[str, Any]:
    if is_schedule_tick(event):
        # Imported on first tick only: the event path's cold start does not pay for it.
        from reconciler.handlers import scheduled_scan

        return scheduled_scan.handler(event, context)
    return video_events.handler(event, context)
