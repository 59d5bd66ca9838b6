"""Shadow mode (issue #23, docs/migration.md): v2 decides v1's events against the live tables, writes nothing to them,
and records what it would have done; the report compares that with what v1 did.

    reconciler shadow start  --dir D          the balances and v1's ledger as they stand (the baseline)
    reconciler shadow decide EVENTS --dir D   v2's decision for each event, read-only: appended to D/decisions.jsonl
    reconciler shadow report --dir D          per event and per user, v2's decisions against v1's books

A decision is v2's own code (the settlement service and the domain's `decide`) on a store whose reads are the live
tables' and whose writes are captured instead of made. The shadow remembers what it settled (from its decisions
file), so an event for a job it settled already is a duplicate or a conflict to it, as it would be to v2.

The report names, per job, where v2 would have moved a different amount than v1's ledger shows (a price, a skipped
event, a double charge), and per user where v1's balance moved by other than v1's own ledger entries since the
baseline: updates v1 lost (its read-modify-write under concurrency) or wrote behind its books.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.domain.stored import StoredBalance
from reconciler.ops.operator_error import OpsError
from reconciler.service.shadow_decisions import SETTLED, ShadowStore, decide_read_only, event_identity

START_FILE, DECISIONS_FILE = "start.json", "decisions.jsonl"


def read_events(path: Path) -> list[dict[str, Any]]:
    events = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            envelope = json.loads(line)
        except json.JSONDecodeError as error:
            raise OpsError(f"{path}:{number}: not JSON ({error.msg})") from None
        events.append({**envelope, "id": event_identity(envelope)})
    return events


def read_decisions(directory: Path) -> list[dict[str, Any]]:
    path = directory / DECISIONS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass
class Shadow:
    """Decides events read-only (`service_for(store)` builds v2's settlement service on a store)."""

    live: Any  # the live store: load_record, load_job
    service_for: Any  # Callable[[ShadowStore], SettlementService]
    directory: Path
    deployed: Any = None  # the deployed shadow's decisions table (repository/shadow_log.py): decisions()

    def decisions(self, *, deployed: bool = False) -> list[dict[str, Any]]:
        """What the shadow decided: `shadow decide`'s file, or (`deployed`) every decision of the deployed shadow."""
        if not deployed:
            return read_decisions(self.directory)
        return sorted(self.deployed.decisions(), key=lambda d: (str(d.get("jobId")), d["eventId"]))

    def start(self, balances: Iterable[StoredBalance], ledger: Iterable[Any], taken_at: str) -> dict[str, Any]:
        self.directory.mkdir(parents=True, exist_ok=True)
        sums: dict[str, int] = {}
        for entry in ledger:
            sums[entry.user_id] = sums.get(entry.user_id, 0) + entry.signed_amount
        baseline = {"takenAt": taken_at, "balances": {b.user_id: b.posted for b in balances}, "ledger": sums}
        (self.directory / START_FILE).write_text(json.dumps(baseline, indent=1, sort_keys=True) + "\n")
        return baseline

    def decide(self, events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        earlier = read_decisions(self.directory)
        seen = {d["eventId"] for d in earlier}
        settled = {d["jobId"]: d for d in earlier if d.get("outcome") == SETTLED}
        store = ShadowStore(self.live, settled.get)
        service = self.service_for(store)
        made = []
        with (self.directory / DECISIONS_FILE).open("a") as out:
            for envelope in events:
                if envelope["id"] in seen:
                    continue  # decided by an earlier run
                decision = decide_read_only(service, store, envelope)
                if decision["outcome"] == SETTLED:
                    settled[decision["jobId"]] = decision
                seen.add(decision["eventId"])
                out.write(json.dumps(decision, sort_keys=True) + "\n")
                made.append(decision)
        return made


@dataclass(frozen=True)
class Difference:
    scope: str  # "job" or "user"
    subject: str
    v2: int
    v1: int
    named: str

    def as_dict(self) -> dict[str, Any]:
        return {"scope": self.scope, "subject": self.subject, "v2": self.v2, "v1": self.v1, "named": self.named}


@dataclass(frozen=True)
class ShadowReport:
    decided: int
    outcomes: dict[str, int]
    v2_total: int
    v1_ledger_total: int
    v1_balance_total: int
    differences: tuple[Difference, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "decided": self.decided,
            "outcomes": self.outcomes,
            "totals": {"v2": self.v2_total, "v1Ledger": self.v1_ledger_total, "v1Balances": self.v1_balance_total},
            "differences": [d.as_dict() for d in self.differences],
        }


def _by(items: Iterable[tuple[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for key, amount in items:
        totals[key] = totals.get(key, 0) + amount
    return totals


def compare(
    decisions: Sequence[Mapping[str, Any]], baseline: Mapping[str, Any], balances: Iterable[StoredBalance], v1_ledger: Iterable[Any]
) -> ShadowReport:
    """v2's shadow decisions against v1's books: per job (v1's ledger entries referencing it), and per user (how v1's
    balance moved against how v1's ledger moved since the baseline, and against v2's decisions)."""
    decided_jobs = {d["jobId"] for d in decisions if d.get("jobId")}
    entries = list(v1_ledger)
    v2_by_job = _by((d["jobId"], d["balanceDelta"]) for d in decisions if d.get("jobId"))
    v1_by_job = _by((e.reference, e.signed_amount) for e in entries if e.reference in decided_jobs)
    differences = []
    for job in sorted(decided_jobs):
        v2, v1 = v2_by_job.get(job, 0), v1_by_job.get(job, 0)
        if v2 != v1:
            kinds = sorted({d["outcome"] for d in decisions if d.get("jobId") == job})
            differences.append(Difference("job", job, v2, v1, _job_difference(v2, v1, kinds)))
    now = {b.user_id: b.posted for b in balances}
    ledger_now = _by((e.user_id, e.signed_amount) for e in entries)
    start_balances, start_ledger = baseline.get("balances", {}), baseline.get("ledger", {})
    v2_by_user = _by((d["userId"], d["balanceDelta"]) for d in decisions if d.get("userId"))
    users = sorted(set(now) | set(start_balances) | set(v2_by_user))
    v1_ledger_total = v1_balance_total = 0
    for user in users:
        balance_moved = now.get(user, 0) - start_balances.get(user, 0)
        ledger_moved = ledger_now.get(user, 0) - start_ledger.get(user, 0)
        v1_ledger_total += ledger_moved
        v1_balance_total += balance_moved
        if balance_moved != ledger_moved:
            lost = ledger_moved - balance_moved
            differences.append(
                Difference(
                    "user",
                    user,
                    v2_by_user.get(user, 0),
                    balance_moved,
                    f"v1's balance moved {balance_moved:+d} while v1's ledger moved {ledger_moved:+d}: {lost:+d} credits of v1's "
                    "ledgered updates never reached the balance (lost updates of its read-modify-write)"
                    if lost
                    else "",
                )
            )
    outcomes = _by((d["outcome"], 1) for d in decisions)
    return ShadowReport(len(decisions), outcomes, sum(v2_by_user.values()), v1_ledger_total, v1_balance_total, tuple(differences))


def _job_difference(v2: int, v1: int, outcomes: list[str]) -> str:
    if v1 == 0:
        return f"v2 would move {v2:+d}; v1's ledger shows nothing for this job (v1 skipped or dropped its event) [v2: {', '.join(outcomes)}]"
    if v2 == 0:
        return f"v1's ledger moved {v1:+d}; v2 would move nothing [v2: {', '.join(outcomes)}]"
    if abs(v1) > abs(v2) and abs(v1) % abs(v2) == 0:
        return f"v1's ledger moved {v1:+d}, {abs(v1) // abs(v2)} times v2's {v2:+d}: v1 settled this job more than once"
    return f"v2 would move {v2:+d}, v1's ledger moved {v1:+d} (a different price or amount)"
