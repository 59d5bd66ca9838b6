"""Per-container grouping of alerts in fixed wall-clock windows.

Rules (one Lambda container; windows are aligned buckets floor(now / window) so every container agrees
on them):

* The first alert of a group key in a window goes out at once.
* Later alerts of that key in the same window are held back and counted (the latest is kept as an example).
* The count is carried by the next message of that key (in a later window), or, if none comes, sent as a
  summary by any later invocation of the container (or the timer scan tick) once the window has ended.
* A container sends at most ONE message per group key per window (a summary uses the key's slot of the
  window it is sent in) and at most `max_per_window` messages per window in total; anything beyond is
  held back and counted in the same way.

Bound: with reserved concurrency C, at most C messages per group key per window reach the topic, and
at most C * max_per_window in total. Counts held by a container that Lambda then reclaims are lost from
SNS (the metrics and the DLQ still have every event); see docs/triage.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from reconciler.notify.alerts import Alert, group_summary

DEFAULT_WINDOW_SECONDS = 300
DEFAULT_MAX_PER_WINDOW = 10


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Group:
    bucket: int  # window of the last message sent for this key (-1: never sent)
    held: int = 0  # alerts held back since that message
    latest: Alert | None = None
    first_held_at: float | None = None
    last_held_at: float | None = None


class GroupingWindow:
    def __init__(
        self,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        max_per_window: int = DEFAULT_MAX_PER_WINDOW,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if window_seconds <= 0 or max_per_window <= 0:
            raise ValueError("the window and the per-window budget must be positive")
        self.window_seconds = window_seconds
        self.max_per_window = max_per_window
        self._clock = clock
        self._groups: dict[str, _Group] = {}
        self._budget_bucket = -1
        self._sent_in_bucket = 0

    def _bucket(self, now: float) -> int:
        return int(now // self.window_seconds)

    def _take_budget(self, bucket: int) -> bool:
        if bucket != self._budget_bucket:
            self._budget_bucket, self._sent_in_bucket = bucket, 0
        if self._sent_in_bucket >= self.max_per_window:
            return False
        self._sent_in_bucket += 1
        return True

    def admit(self, alert: Alert) -> Alert | None:
        """The alert to send now (carrying the count held back before it), or None when it was held back."""
        now = self._clock()
        bucket = self._bucket(now)
        group = self._groups.setdefault(alert.group_key, _Group(bucket=-1))
        if group.bucket < bucket and self._take_budget(bucket):
            held = group.held
            self._groups[alert.group_key] = _Group(bucket=bucket)
            return alert.with_suppressed(held) if held else alert
        group.held += alert.count
        group.latest = alert
        group.first_held_at = group.first_held_at or now
        group.last_held_at = now
        return None

    def due(self, force: bool = False) -> list[Alert]:
        """Summaries of groups whose held-back alerts no message has carried yet, once their window ended.

        `force` also summarises groups whose window is still open, ignoring the per-window limits: it is for
        a process about to exit (the CLI, tests), never used by the Lambda handlers.
        """
        now = self._clock()
        bucket = self._bucket(now)
        summaries = []
        for key, group in self._groups.items():
            if not group.held or group.latest is None:
                continue
            if group.bucket >= bucket and not force:
                continue  # the key already had its message in this window; wait for the next one
            if not force and not self._take_budget(bucket):
                break
            summaries.append(group_summary(group.latest, group.held, _iso(group.first_held_at or now), _iso(group.last_held_at or now)))
            self._groups[key] = _Group(bucket=max(bucket, group.bucket))
        return summaries

    def held(self, key: str) -> int:
        group = self._groups.get(key)
        return group.held if group else 0
