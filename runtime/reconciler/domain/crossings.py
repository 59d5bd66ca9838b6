"""Balance threshold crossings: pure logic, no AWS (docs/events.md is the contract).

A balance is in up to three conditions, each defined by one threshold:

- low:       balance < low threshold (a whole number >= 1)
- exhausted: balance <= 0
- overdrawn: balance < overdraft alert level (a whole number <= 0; 0 means any negative balance)

Because low >= 1 > 0 >= overdraft alert level, the conditions nest: overdrawn implies exhausted implies low.
A change that enters a condition emits its event (credits.low, credits.exhausted, credits.overdrawn); a change
that leaves low emits credits.restored. Nothing else emits: a change that stays on the same side of every
threshold, and leaving exhausted or overdrawn without leaving low (re-entering them later emits again).
Several crossings of one change come in balance order: downwards low, exhausted, overdrawn.

A user without a Credits item is in no condition (`before=None`): the change that creates the item enters
whatever conditions its balance is in (a first top-up emits nothing, a first render into overdraft emits low,
exhausted and overdrawn) and never emits credits.restored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from reconciler.domain.attributes import LOW_OVERRIDE_ATTRIBUTE, OVERDRAFT_OVERRIDE_ATTRIBUTE

LOW = "credits.low"
EXHAUSTED = "credits.exhausted"
OVERDRAWN = "credits.overdrawn"
RESTORED = "credits.restored"
DETAIL_TYPES = (LOW, EXHAUSTED, OVERDRAWN, RESTORED)


# Guards against absurd configuration or overrides; DynamoDB numbers go much further, balances never do.
MAX_MAGNITUDE = 10**15


class ThresholdError(ValueError):
    """A threshold (stage default or per-user override) that is not usable."""


@dataclass(frozen=True)
class Thresholds:
    low: int
    overdraft_alert_level: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.low <= MAX_MAGNITUDE:
            raise ThresholdError(f"low threshold must be a whole number from 1 to {MAX_MAGNITUDE}, got {self.low}")
        if not -MAX_MAGNITUDE <= self.overdraft_alert_level <= 0:
            raise ThresholdError(f"overdraft alert level must be a whole number from -{MAX_MAGNITUDE} to 0, got {self.overdraft_alert_level}")


@dataclass(frozen=True)
class Crossing:
    detail_type: str
    threshold: int


def whole_number(value: Any) -> int | None:
    """A stored number that is a whole number (DynamoDB gives Decimal; ints accepted), else None. Text is no number,
    even "25": settlement refuses a balance stored as text (validation.whole_number_problem), so no event reads one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value() and abs(value) <= 10**38:
        return int(value)
    return None


def user_thresholds(defaults: Thresholds, item: dict[str, Any] | None) -> tuple[Thresholds, list[str]]:
    """The thresholds for one Credits item: its override attributes where valid, the stage defaults otherwise.
    Returns them with one problem description per override that was present but unusable (never raises)."""
    problems: list[str] = []
    low, overdraft = defaults.low, defaults.overdraft_alert_level
    item = item or {}
    for attribute, check in ((LOW_OVERRIDE_ATTRIBUTE, _valid_low), (OVERDRAFT_OVERRIDE_ATTRIBUTE, _valid_overdraft)):
        if attribute not in item:
            continue
        value = whole_number(item[attribute])  # a number attribute only: text (even "25") is unusable (docs/events.md)
        if value is None or not check(value):
            problems.append(f"{attribute} {str(item[attribute])[:40]!r} is not usable; the stage default applies")
            continue
        if attribute == LOW_OVERRIDE_ATTRIBUTE:
            low = value
        else:
            overdraft = value
    return Thresholds(low, overdraft), problems


def _valid_low(value: int) -> bool:
    return 1 <= value <= MAX_MAGNITUDE


def _valid_overdraft(value: int) -> bool:
    return -MAX_MAGNITUDE <= value <= 0


def conditions(balance: int, thresholds: Thresholds) -> dict[str, bool]:
    return {
        LOW: balance < thresholds.low,
        EXHAUSTED: balance <= 0,
        OVERDRAWN: balance < thresholds.overdraft_alert_level,
    }


def crossings(before: int | None, after: int, thresholds: Thresholds) -> list[Crossing]:
    """The crossings of one balance change, in balance order (empty when it stays on the same sides).
    `before` None: the item did not exist (in no condition)."""
    now = conditions(after, thresholds)
    was = {name: False for name in now} if before is None else conditions(before, thresholds)
    found: list[Crossing] = []
    if was[LOW] and not now[LOW]:
        found.append(Crossing(RESTORED, thresholds.low))
    levels = {LOW: thresholds.low, EXHAUSTED: 0, OVERDRAWN: thresholds.overdraft_alert_level}
    for detail_type in (LOW, EXHAUSTED, OVERDRAWN):
        if now[detail_type] and not was[detail_type]:
            found.append(Crossing(detail_type, levels[detail_type]))
    return found


def crossing_id(user_id: str, sequence_number: str, detail_type: str) -> str:
    """Deterministic: the same stream record always gives the same id, whoever computes it and however often.
    Length-prefixed so that no user id can make another user's input."""
    text = f"crossing:v1:{len(user_id)}:{user_id}:{len(sequence_number)}:{sequence_number}:{detail_type}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
