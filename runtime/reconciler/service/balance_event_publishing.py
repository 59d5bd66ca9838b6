"""One Credits stream record -> the balance events it implies, each published at most once per crossingId
(docs/events.md). Stateless between records: the BalanceEvents table remembers what was published."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reconciler.contract import BALANCE_EVENT_KEY, HELD_ATTRIBUTE, REMAINING_ATTRIBUTE, UPDATED_AT_ATTRIBUTE, USER_ID_ATTRIBUTE
from reconciler.domain.crossings import Crossing, Thresholds, crossing_id, crossings, user_thresholds, whole_number
from reconciler.service.ports import EventLog, Ledger, Publisher, StreamChange, balance_event_key

SCHEMA_VERSION = 1
# Outcome kinds of one record.
PUBLISHED = "published"  # at least one crossing; every one of them is now published (now or earlier)
NO_CROSSING = "no-crossing"
REMOVED = "removed"  # a REMOVE record: a deleted item is not a balance change
DAMAGED = "damaged"  # reported and skipped: retrying cannot make it readable


@dataclass
class RecordOutcome:
    kind: str
    user_id: str | None = None
    sequence_number: str | None = None
    published: list[dict[str, Any]] = field(default_factory=list)  # details published by this attempt
    already_published: int = 0  # crossings a previous attempt had published (a retried batch)
    problems: list[str] = field(default_factory=list)  # unusable overrides, damage


_DAMAGED = object()


def _balance(image: dict[str, Any] | None) -> Any:
    """None for a missing item (no OldImage: the change created it); a missing attribute is 0 (settlement's
    `if_not_exists(remaining, 0)`); a present value that is not a whole number is damage (_DAMAGED)."""
    if image is None:
        return None
    if REMAINING_ATTRIBUTE not in image:
        return 0
    value = whole_number(image[REMAINING_ATTRIBUTE])
    return _DAMAGED if value is None else value


@dataclass
class BalanceEventService:
    defaults: Thresholds
    publisher: Publisher
    log: EventLog
    ledger: Ledger
    now: Callable[[], str] = lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def handle(self, change: StreamChange) -> RecordOutcome:
        """Publishes the change's crossings not yet published, in balance order; raises (so the record is
        retried) when one cannot be published. Damaged records return DAMAGED instead of raising."""
        name, sequence = change.event_name, change.sequence_number
        if name == "REMOVE":
            return RecordOutcome(REMOVED, change.key_user, sequence)
        if change.undecodable is not None:
            return RecordOutcome(DAMAGED, change.key_user, sequence, problems=[f"undecodable image: {change.undecodable}"])
        new, old = change.new_image, change.old_image
        user = change.key_user or (new or {}).get(USER_ID_ATTRIBUTE)
        problems = []
        if name not in ("INSERT", "MODIFY") or not isinstance(sequence, str) or not sequence.isdigit():
            problems.append(f"not a stream change record (eventName {name!r}, sequence {sequence!r})")
        elif not isinstance(user, str) or not user:
            problems.append("no userId")
        elif new is None:
            problems.append("no NewImage: the stream must carry NEW_AND_OLD_IMAGES")
        if problems or not isinstance(user, str) or new is None or not isinstance(sequence, str):
            return RecordOutcome(DAMAGED, user if isinstance(user, str) else None, sequence, problems=problems)
        before, after = _balance(old), _balance(new)
        if before is _DAMAGED or after is _DAMAGED:
            which = "OldImage" if before is _DAMAGED else "NewImage"
            value = (old if before is _DAMAGED else new)[REMAINING_ATTRIBUTE]  # type: ignore[index]
            return RecordOutcome(DAMAGED, user, sequence, problems=[f"{which} remaining {str(value)[:40]!r} is not a whole number"])
        thresholds, problems = user_thresholds(self.defaults, new)
        found = crossings(before, after, thresholds)
        if not found:
            return RecordOutcome(NO_CROSSING, user, sequence, problems=problems)
        outcome = RecordOutcome(PUBLISHED, user, sequence, problems=problems)
        changed_at = new.get(UPDATED_AT_ATTRIBUTE) if isinstance(new.get(UPDATED_AT_ATTRIBUTE), str) else None
        # The ledger explains the posted balance (remaining + held): a held render's charge, not its released hold.
        posted_delta = after + _held(new) - (before or 0) - _held(old)
        entries = self._entries(user, changed_at, posted_delta)
        for crossing in found:
            key = balance_event_key(sequence, crossing.detail_type)
            if self.log.is_published(user, key):
                outcome.already_published += 1
                continue
            detail = self._detail(user, sequence, crossing, before, after, thresholds, changed_at, entries)
            event_id = self.publisher.publish(crossing.detail_type, detail)  # raises: the record is retried
            self.log.record(
                {
                    USER_ID_ATTRIBUTE: user,
                    BALANCE_EVENT_KEY: key,
                    "crossingId": detail["crossingId"],
                    "detailType": crossing.detail_type,
                    "balanceBefore": before,
                    "balanceAfter": after,
                    "threshold": crossing.threshold,
                    "changedAt": changed_at,
                    "publishedAt": self.now(),
                    "eventId": event_id,
                    "detail": _json(detail),
                }
            )
            outcome.published.append({"detail-type": crossing.detail_type, "detail": detail})
        return outcome

    def _entries(self, user: str, changed_at: str | None, posted_delta: int) -> dict[str, Any]:
        if changed_at is None:
            return {"ledgerEntries": [], "ledgerEntriesExact": False}
        entries: list[dict[str, Any]] = [
            {
                "ledgerId": str(e.get("ledgerId")),
                "type": str(e.get("type")),
                "amount": whole_number(e.get("amount")) or 0,
                "reference": str(e.get("reference", "")),
            }
            for e in self.ledger.entries_at(user, changed_at)
        ]
        net = sum(e["amount"] if e["type"] == "credit" else -e["amount"] for e in entries)
        return {"ledgerEntries": entries, "ledgerEntriesExact": bool(entries) and net == posted_delta}

    @staticmethod
    def _detail(
        user: str,
        sequence: str,
        crossing: Crossing,
        before: int | None,
        after: int,
        thresholds: Thresholds,
        changed_at: str | None,
        entries: dict[str, Any],
    ) -> dict[str, Any]:
        return {
            "schemaVersion": SCHEMA_VERSION,
            "crossingId": crossing_id(user, sequence, crossing.detail_type),
            "userId": user,
            "balanceBefore": before,
            "balanceAfter": after,
            "threshold": crossing.threshold,
            "thresholds": {"low": thresholds.low, "overdraftAlertLevel": thresholds.overdraft_alert_level},
            "changedAt": changed_at,
            "sequence": sequence,
            **entries,
        }


def _json(detail: dict[str, Any]) -> str:
    return json.dumps(detail, sort_keys=True)


def _held(image: dict[str, Any] | None) -> int:
    """The credits an image holds for open reservations (absent, or not a whole number: 0)."""
    return whole_number((image or {}).get(HELD_ATTRIBUTE)) or 0
