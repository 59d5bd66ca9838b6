"""Moments an operator types: ISO 8601 (UTC unless it says otherwise) or relative (`2h`, `30m`, `yesterday`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import typer

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_RELATIVE = re.compile(r"(\d{1,6})\s*([smhdw])(?:\s+ago)?")


def parse_moment(value: str, option: str, now: datetime | None = None) -> datetime:
    """`2h` or `2h ago` (before now), `now`, `today`/`yesterday` (00:00 UTC), or ISO 8601."""
    now = now or datetime.now(UTC)
    text = value.strip().lower()
    if text == "now":
        return now
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if text == "today":
        return midnight
    if text == "yesterday":
        return midnight - timedelta(days=1)
    match = _RELATIVE.fullmatch(text)
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a time: use ISO 8601 (2026-11-28T10:00:00, UTC unless a zone is given), "
            "a span before now (90s, 30m, 2h, 3d, 1w) or today / yesterday / now",
            param_hint=option,
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def optional_moment(value: str | None, option: str) -> datetime | None:
    return None if value is None else parse_moment(value, option)
