"""Moments an operator types: ISO 8601 (UTC unless it says otherwise), relative (`2h`, `30m`, `yesterday`) or epoch
milliseconds (v1's `--start-time 1640995200000`). Units are case-sensitive: `M` (months or minutes?) is refused."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import typer

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_RELATIVE = re.compile(r"(\d{1,7})\s*([smhdw])(?:\s+ago)?")
_AMBIGUOUS = re.compile(r"\d+\s*[A-Z](?:\s+ago)?")
_EPOCH_MILLIS = re.compile(r"\d{11,14}")
_FORMS = (
    "use ISO 8601 (2026-11-28T10:00:00, UTC unless a zone is given), a span before now (90s, 30m, 2h, 3d, 1w), "
    "epoch milliseconds (1640995200000) or today / yesterday / now"
)


def parse_moment(value: str, option: str, now: datetime | None = None) -> datetime:
    """`2h` or `2h ago` (before now), `now`, `today`/`yesterday` (00:00 UTC), epoch milliseconds, or ISO 8601."""
    now = now or datetime.now(UTC)
    text = value.strip()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    named = {"now": now, "today": midnight, "yesterday": midnight - timedelta(days=1)}
    if text.lower() in named:
        return named[text.lower()]
    try:
        return _relative_or_epoch(text, now, option) or _iso(text)
    except (OverflowError, ValueError):
        raise typer.BadParameter(f"{value!r} is not a time this CLI can use: {_FORMS}", param_hint=option) from None


def _relative_or_epoch(text: str, now: datetime, option: str) -> datetime | None:
    if _AMBIGUOUS.fullmatch(text):
        raise typer.BadParameter(f"{text!r} is ambiguous (units are lower case: 30m is minutes; months are not accepted, use 30d)", param_hint=option)
    match = _RELATIVE.fullmatch(text)
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})  # OverflowError before year 1
    if _EPOCH_MILLIS.fullmatch(text):
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    return None


def _iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def optional_moment(value: str | None, option: str) -> datetime | None:
    return None if value is None else parse_moment(value, option)


def optional_window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """`--since` and `--until` as typed; an end before its start is refused rather than read as an empty window."""
    start, end = optional_moment(since, "--since"), optional_moment(until, "--until")
    if start is not None and end is not None and end < start:
        raise typer.BadParameter(f"--until {until} is before --since {since}", param_hint="--until")
    return start, end


def window(since: str, until: str | None) -> tuple[datetime, datetime | None]:
    """As optional_window, where --since has a default."""
    start, end = optional_window(since, until)
    return start or parse_moment(since, "--since"), end
