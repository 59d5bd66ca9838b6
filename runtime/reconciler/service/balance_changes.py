"""What the balance-events function does with every Credits stream record besides balance events (docs/events.md):
it explains the change. A record the reconciler's own write made carries its explanation (its version up by one and
its change record, `lastChange`: domain/unexplained.py); any other change of a balance is returned as UNEXPLAINED,
for the handler's metric and alert. No read and no write: 0 units per record. (The liability is a scheduled
snapshot now, service/liability_snapshot.py, not a total kept per record.)
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.domain.attributes import USER_ID_ATTRIBUTE
from reconciler.domain.unexplained import UnexplainedChange, unexplained
from reconciler.service.ports import StreamChange

EXPLAINED, UNEXPLAINED, SKIPPED = "explained", "unexplained", "skipped"


@dataclass
class ChangeOutcome:
    kind: str
    user_id: str | None = None
    unexplained: UnexplainedChange | None = None


@dataclass
class BalanceChangeService:
    def handle(self, change: StreamChange) -> ChangeOutcome:
        """Never raises; an undecodable record is the balance events' to report (damaged), skipped here."""
        new, old = change.new_image, change.old_image
        user = change.key_user or (new or old or {}).get(USER_ID_ATTRIBUTE)
        if change.undecodable is not None or not isinstance(user, str):
            return ChangeOutcome(SKIPPED, user if isinstance(user, str) else None)
        found = unexplained(old, new)
        if found is not None and not found.user_id:
            found = UnexplainedChange(user, found.posted_before, found.posted_after, found.reason, found.changed_at)
        return ChangeOutcome(UNEXPLAINED if found is not None else EXPLAINED, user, found)
