"""Every balance change explained (docs/events.md, "Every balance change explained"): the rule that tells a Credits
change the reconciler did not make, from the stream record's two images alone (no read).

Pure. Every write of the reconciler to a Credits item (a settlement, a hold, a release, an adjustment, a correction,
credits in, an operator's restore) adds 1 to its `version` and sets `lastChange` to the net change it made to each
money attribute (`remaining`, `held`, the credits-in totals; absent: 0) in the same update (change_record). A record
is **explained** when the new version is the old one plus one and every money attribute moved by exactly its
recorded change. A record that moves no money attribute and leaves the version as it was (a threshold override
set) is no balance change. Anything else is **unexplained**: a direct UpdateItem (the version, or the recorded change,
does not follow), a whole-item save of a stale image (its version is an old one), an insert the reconciler did not
make, a delete, a figure that is not a whole number.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from reconciler.domain.attributes import (
    CHANGE_BY_KEY,
    HELD_ATTRIBUTE,
    LAST_CHANGE_ATTRIBUTE,
    MONEY_ATTRIBUTES,
    REMAINING_ATTRIBUTE,
    UPDATED_AT_ATTRIBUTE,
    USER_ID_ATTRIBUTE,
    VERSION_ATTRIBUTE,
)

# "by" keeps an id up to this many bytes; a longer one (ids go to 768 bytes) as a digest, so the change record
# stays small and no write's unit count moves with it (docs/capacity.md).
MAX_REFERENCE_BYTES = 64


@dataclass(frozen=True)
class UnexplainedChange:
    user_id: str
    posted_before: int
    posted_after: int
    reason: str
    changed_at: str | None = None

    @property
    def change(self) -> int:
        return self.posted_after - self.posted_before


def change_reference(identifier: str) -> str:
    """What a change record names as its maker: the id itself, or a digest of an id longer than MAX_REFERENCE_BYTES."""
    if len(identifier.encode()) <= MAX_REFERENCE_BYTES:
        return identifier
    return "sha256:" + hashlib.sha256(identifier.encode()).hexdigest()[:32]


def change_record(changes: Mapping[str, int], by: str) -> dict[str, Any]:
    """The `lastChange` a reconciler write sets: the money attributes it moved (non-zero only) and its maker."""
    unknown = set(changes) - set(MONEY_ATTRIBUTES)
    if unknown:
        raise ValueError(f"not money attributes of a Credits item: {sorted(unknown)}")
    return {**{name: amount for name, amount in changes.items() if amount}, CHANGE_BY_KEY: change_reference(by)}


def _whole(value: Any) -> int | None:
    """A stored figure as a whole number (absent: 0); None when it is not one (text, a fraction, a boolean)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)) or not Decimal(value).is_finite() or value != int(value):
        return None
    return int(value)


def posted(image: Mapping[str, Any] | None) -> int | None:
    """remaining + held of an image (no item: 0); None when a figure is damaged."""
    if image is None:
        return 0
    remaining, held = _whole(image.get(REMAINING_ATTRIBUTE)), _whole(image.get(HELD_ATTRIBUTE))
    return None if remaining is None or held is None else remaining + held


def unexplained(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> UnexplainedChange | None:
    """None when the record is explained (or is no balance change); else who, how much and why not."""
    if old is None and new is None:
        return None
    shown = new if new is not None else old
    user = str((shown or {}).get(USER_ID_ATTRIBUTE, ""))
    updated = (new or {}).get(UPDATED_AT_ATTRIBUTE)

    def refused(reason: str) -> UnexplainedChange:
        return UnexplainedChange(user, posted(old) or 0, posted(new) or 0, reason, updated if isinstance(updated, str) else None)

    if new is None:
        return refused("the item was deleted: the reconciler never deletes a balance")
    before, after = _whole((old or {}).get(VERSION_ATTRIBUTE)), _whole(new.get(VERSION_ATTRIBUTE))
    moved = [name for name in MONEY_ATTRIBUTES if (old or {}).get(name) != new.get(name)]
    if not moved and before == after:
        return None  # no money moved and no reconciler write: a threshold override, or nothing
    if before is None or after is None or after != before + 1:
        went = f"{(old or {}).get(VERSION_ATTRIBUTE)} to {new.get(VERSION_ATTRIBUTE)}"
        return refused(f"its version went from {went}, not up by one: not a reconciler write")
    recorded = new.get(LAST_CHANGE_ATTRIBUTE)
    if not isinstance(recorded, Mapping):
        return refused("it carries no change record: not a reconciler write")
    for name in MONEY_ATTRIBUTES:
        said = _whole(recorded.get(name))
        if said is None:
            return refused(f"the change record's {name} is not a whole number")
        if (old or {}).get(name) == new.get(name):
            if said:  # a figure that did not move (whatever it holds: a damaged one our write left alone) moved by 0
                return refused(f"{name} did not move, and the change record says {said:+d}")
            continue
        was, now = _whole((old or {}).get(name)), _whole(new.get(name))
        if was is None or now is None:
            return refused(f"{name} is not a whole number")
        if now - was != said:
            return refused(f"{name} moved {now - was:+d}, and the change record says {said:+d}")
    return None
