"""v1.0's items as its runbook describes them (tests of the takeover, issue #23; docs/migration.md)."""

from __future__ import annotations

import json
from pathlib import Path

CUTOVER = "2026-12-01T12:00:00.000Z"
BEFORE = "2026-11-30T09:00:00.000Z"
AFTER = "2026-12-01T12:30:00.000Z"


def v1_balance(env, user: str, remaining: int) -> None:
    env.put("Credits-dev", {"userId": user, "remaining": remaining})


def v1_ledger(env, ledger_id: str, user: str, kind: str, amount: int, reference: str, description: str, timestamp: str = BEFORE) -> None:
    item = {"ledgerId": ledger_id, "userId": user, "timestamp": timestamp, "type": kind, "amount": amount}
    env.put("Ledger-dev", {**item, "description": description, "reference": reference})


def v1_job(env, job_id: str, user: str, status: str, processed_at: str | None = BEFORE, **more) -> None:
    env.put("Jobs-dev", {"jobId": job_id, "userId": user, "status": status, "model": "test", "seconds": 20, "processedAt": processed_at, **more})


def v1_books(env) -> None:
    """u1: 100 opening credits (a v1 emergency adjustment), one render of 20 s at 1 credit/s charged by v1."""
    v1_ledger(env, "manual-adj-1700000000", "u1", "credit", 100, "MANUAL-1700000000", "Manual emergency adjustment", "2026-11-01T00:00:00.000Z")
    v1_ledger(env, "job-v1#charge", "u1", "debit", 20, "job-v1", "Render of 20s on test")
    v1_balance(env, "u1", 80)
    v1_job(env, "job-v1", "u1", "rendered")


def events_file(tmp_path: Path, *events: dict) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps({"source": "video.generation", **event}) + "\n" for event in events))
    return path


def rendered(job_id: str, user: str = "u1", seconds: int = 20) -> dict:
    return {"detail-type": "video.rendered", "detail": {"jobId": job_id, "userId": user, "seconds": seconds, "model": "test"}}
