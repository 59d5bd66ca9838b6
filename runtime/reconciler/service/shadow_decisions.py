"""Shadow decisions (issue #23, docs/migration.md step 1): v2's own settlement code decides an event on a store whose
reads are the live tables' and whose writes are captured; the decision is what v2 would have done.

Two shadows use this: `reconciler shadow decide` (files of events, decisions in a directory: ops/shadow.py) and the
deployed shadow function (every event of v1's rule, decisions in its own table: handlers/shadow_events.py). Neither
writes to the live tables; the settlement service and the domain are v2's, unchanged.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from reconciler.domain.errors import InvalidEvent
from reconciler.domain.events import parse_envelope
from reconciler.domain.ledger import balance_delta
from reconciler.domain.records import SettlementRecord
from reconciler.domain.settlement import Conflict, Settlement

SETTLED = "settled"


class ShadowStore:
    """The live store's reads; its writes captured (nothing reaches the tables). What the shadow settled earlier reads
    back as a settlement record (`settled(job_id)`), so that it decides a later event as v2 would.

    `read_live_records=False` (the deployed shadow beside v1): the shadow's own records are the only ones; v1's stage
    has no Settlements table before the adoption (step 2c creates it)."""

    def __init__(self, live: Any, settled: Callable[[str], Mapping[str, Any] | None], *, read_live_records: bool = True) -> None:
        self._live = live
        self._settled = settled
        self._read_live_records = read_live_records
        self.captured: Settlement | Conflict | None = None

    def load_record(self, job_id: str, *, consistent: bool = True) -> SettlementRecord | None:
        shadowed = self._settled(job_id)
        if shadowed is not None:
            return SettlementRecord(job_id, shadowed["userId"], settled_as=shadowed["settledAs"], settled_by_event=shadowed["eventId"])
        return self._live.load_record(job_id, consistent=consistent) if self._read_live_records else None

    def load_job(self, job_id: str, *, consistent: bool = True) -> Any:
        return self._live.load_job(job_id, consistent=consistent)

    def commit_settlement(self, settlement: Settlement) -> None:
        self.captured = settlement

    def record_conflict(self, conflict: Conflict) -> None:
        self.captured = conflict

    def repair_mirror(self, job_id: str, facts: Any) -> None:  # a write: the shadow makes none
        return None


def event_identity(envelope: Mapping[str, Any]) -> str:
    """The event's id, or (an envelope written without one) a digest of its content, stable across runs."""
    event_id = envelope.get("id")
    if isinstance(event_id, str) and event_id:
        return event_id
    return "shadow-" + hashlib.sha256(json.dumps(envelope, sort_keys=True, default=str).encode()).hexdigest()[:24]


def decide_read_only(service: Any, store: ShadowStore, envelope: Mapping[str, Any]) -> dict[str, Any]:
    """v2's decision for one envelope (`service` settles on `store`): a plain record of what it would have done."""
    store.captured = None
    raw_detail = envelope.get("detail")
    detail: Mapping[str, Any] = raw_detail if isinstance(raw_detail, dict) else {}
    base = {
        "eventId": event_identity(envelope),
        "jobId": detail.get("jobId"),
        "userId": detail.get("userId"),
        "detailType": envelope.get("detail-type"),
    }
    try:
        event = parse_envelope(envelope)
        outcome = service.settle(event)
    except InvalidEvent as error:
        return {**base, "outcome": "rejected", "reason": f"{error.field}: {error.reason}", "balanceDelta": 0}
    decision = outcome.decision
    found = {**base, "outcome": outcome.kind, "balanceDelta": 0}
    if isinstance(decision, Settlement):
        # The posted movement (the ledger's): what v1's balance and ledger would show (v1 holds nothing)
        found.update(settledAs=decision.settled_as, balanceDelta=balance_delta(decision.entries), ledgerIds=[e.ledger_id for e in decision.entries])
    return found


class ShadowLog(Protocol):
    """Where the deployed shadow keeps its decisions (repository/shadow_log.py: its own table)."""

    def decided(self, event_id: str, job_id: str | None) -> dict[str, Any] | None: ...
    def settled(self, job_id: str) -> dict[str, Any] | None: ...
    def claim(self, decision: Mapping[str, Any]) -> bool: ...
    def record(self, decision: Mapping[str, Any]) -> None: ...


@dataclass
class ShadowDecider:
    """The deployed shadow's use case: each event decided once, read-only, and recorded in the shadow's log.

    A job is settled once in the shadow as in v2: the first settlement claims the job in the log (a conditional
    write); an event that loses the claim to a concurrent one is decided again and is then a duplicate or a conflict.
    A redelivered event (EventBridge and Lambda deliver at least once) returns its first decision."""

    live: Any  # the live store: load_record, load_job
    service_for: Callable[[ShadowStore], Any]  # v2's settlement service on a store
    log: ShadowLog

    def decide(self, envelope: Mapping[str, Any]) -> dict[str, Any]:
        envelope = {**envelope, "id": event_identity(envelope)}
        detail = envelope.get("detail")
        job_id = detail.get("jobId") if isinstance(detail, dict) and isinstance(detail.get("jobId"), str) else None
        earlier = self.log.decided(envelope["id"], job_id)
        if earlier is not None:
            return earlier
        store = ShadowStore(self.live, self.log.settled, read_live_records=False)
        decision = decide_read_only(self.service_for(store), store, envelope)
        if decision["outcome"] == SETTLED and not self.log.claim(decision):
            decision = decide_read_only(self.service_for(store), store, envelope)  # the claim is now what it reads
        self.log.record(decision)
        return decision
