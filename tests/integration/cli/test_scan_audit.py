"""scan settles lost events exactly once; audit finds and fixes a balance corrupted behind its back."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.contract import UNSETTLED_ATTRIBUTE, UNSETTLED_VALUE
from tests.integration.cli.conftest import on_a_terminal

OLD = "2020-01-01T00:00:00.000Z"


def lost_job(env, job_id: str, status: str, reserved: int | None = None) -> None:
    """A job the pipeline finished (status rendered/failed) whose event never arrived."""
    env.put(
        "Jobs-dev",
        {
            "jobId": job_id,
            "userId": "u1",
            "status": status,
            "model": "test",
            "seconds": 1,
            "reservedCredits": reserved,
            "createdAt": OLD,
            "updatedAt": OLD,
            UNSETTLED_ATTRIBUTE: UNSETTLED_VALUE,
        },
    )


def test_scan_charges_a_render_whose_event_was_lost(env, cli, emulate):
    # Given a rendered job whose event was lost
    emulate("seed", "u1", "10")
    lost_job(env, "job-lost", "rendered")
    # When the scan runs
    assert cli("--json", "scan").json()["settled"] == ["job-lost"]
    # Then the render is charged
    assert env.store().get_job("job-lost").settled_as == "rendered"
    assert env.store().get_balance("u1").remaining == 9


def test_scan_settles_a_lost_event_exactly_once_even_when_the_event_arrives_late(env, cli, tmp_path, emulate):
    # Given a failed job that held a 3-credit reservation, whose video.failed event was lost
    emulate("seed", "u1", "7")
    lost_job(env, "job-lost", "failed", reserved=3)
    # When the scan runs
    run = cli("--json", "scan")
    # Then it settles that job: the reservation is refunded
    assert run.exit_code == 0, run.stderr
    assert run.json()["settled"] == ["job-lost"]
    assert env.store().get_balance("u1").remaining == 10
    # And a second scan and the late event itself change nothing
    assert cli("--json", "scan").json()["settled"] == []
    late = events_file(tmp_path, {"detail-type": "video.failed", "detail": {"jobId": "job-lost", "userId": "u1"}})
    assert [o["outcome"] for o in emulate("--json", "send", str(late)).json()] == ["duplicate"]
    assert env.store().get_balance("u1").remaining == 10
    refunds = [e for e in env.store().ledger_for_user("u1") if e.reference == "job-lost" and e.signed_amount == 3]
    assert len(refunds) == 1


def events_file(tmp_path: Path, *events: dict) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps({"source": "video.generation", **event}) + "\n" for event in events))
    return path


def test_scan_dry_run_reports_without_settling(env, cli):
    lost_job(env, "job-lost", "failed", reserved=3)
    run = cli("--json", "scan", "--dry-run")
    assert run.json()["settled"] == ["job-lost"] and run.json()["dryRun"] is True
    assert env.store().get_balance("u1") is None
    assert env.store().get_job("job-lost").settled_as is None


def test_audit_reports_both_corrections_and_books_nothing_without_a_choice(env, cli, one_line_error, emulate):
    # Given two users whose balances match their ledgers, then one balance overwritten behind the tool's back
    emulate("seed", "u1", "10")
    emulate("seed", "u2", "5")
    env.put("Credits-dev", {"userId": "u1", "remaining": 25})
    # When the whole table is audited
    report = cli("--json", "audit")
    # Then exactly that discrepancy is reported with the two possible corrections (and exit 1 says so)
    assert report.exit_code == 1
    (found,) = report.json()["discrepancies"]
    assert (found["userId"], found["kinds"], found["remaining"], found["held"], found["ledgerSum"], found["difference"]) == (
        "u1",
        ["ledger"],
        25,
        0,
        10,
        15,
    )
    assert set(found["corrections"]) == {"ledger", "balance"} and found["recentEntries"][-1]["amount"] == 10
    # And --fix without --trust (no terminal to ask on) is a usage error that writes nothing
    refused = cli("audit", "--fix", "--reason", "INC-9", "--min-age", "0")
    assert refused.exit_code == 2 and "--trust" in refused.stderr
    assert env.store().get_balance("u1").remaining == 25 and len(list(env.store().ledger_for_user("u1"))) == 1
    one_line_error(cli("audit", "--trust", "ledger"), "--fix")


def test_audit_fix_trusting_the_ledger_restores_a_corrupted_balance_and_books_nothing(env, cli, emulate):
    # Given a balance corrupted to +500 over its ledger (the trap: booking it as an "Audit correction")
    emulate("seed", "u1", "10")
    env.put("Credits-dev", {"userId": "u1", "remaining": 510})
    # When it is fixed trusting the ledger (a dry run first writes nothing)
    dry = cli("--json", "audit", "u1", "--fix", "--trust", "ledger", "--reason", "INC-9", "--min-age", "0", "--dry-run")
    assert dry.json()["fixes"][0]["status"] == "would-fix" and env.store().get_balance("u1").remaining == 510
    fixed = cli("--json", "audit", "u1", "--fix", "--trust", "ledger", "--reason", "INC-9", "--min-age", "0")
    # Then the balance is the ledger sum again, no entry was booked, and the audit is clean (exit 0)
    assert fixed.exit_code == 0, fixed.stderr
    assert fixed.json()["fixes"][0]["status"] == "fixed"
    item = env.credits_item("u1")
    assert item["remaining"] == 10 and item["lastAuditFix"]["reason"] == "INC-9"
    assert len(list(env.store().ledger_for_user("u1"))) == 1
    assert cli("audit").exit_code == 0


def test_audit_fix_trusting_the_balance_books_an_entry_that_explains_it(env, cli, emulate):
    emulate("seed", "u1", "10")
    env.put("Credits-dev", {"userId": "u1", "remaining": 25})
    fixed = cli("--json", "audit", "--fix", "--trust", "balance", "--reason", "INC-9", "--min-age", "0")
    assert fixed.exit_code == 0 and fixed.json()["fixes"][0]["status"] == "fixed"
    entry = list(env.store().ledger_for_user("u1"))[-1]
    assert (entry.signed_amount, entry.description) == (15, "Audit correction: INC-9")
    assert env.store().get_balance("u1").remaining == 25
    assert cli("audit").exit_code == 0 and cli("audit", "u1").exit_code == 0


def test_audit_uses_opening_balance_wording_for_a_user_without_ledger(env, cli):
    env.put("Credits-dev", {"userId": "legacy", "remaining": 40})
    cli("audit", "legacy", "--fix", "--trust", "balance", "--reason", "v1 migration", "--min-age", "0")
    (entry,) = env.store().ledger_for_user("legacy")
    assert (entry.signed_amount, entry.description) == (40, "Opening balance: v1 migration")


def test_audit_fix_exits_1_and_says_why_when_it_skips_a_balance_that_just_changed(env, cli, emulate):
    # Given a discrepancy on a balance that changed "just now"
    emulate("seed", "u1", "10")
    env.put("Credits-dev", {"userId": "u1", "remaining": 12, "updatedAt": "2999-01-01T00:00:00.000Z"})
    # When it is fixed with the default --min-age
    run = cli("--json", "audit", "--fix", "--trust", "ledger", "--reason", "r")
    # Then nothing is written, the exit status says a discrepancy is left, and the reason says how to include it
    assert run.exit_code == 1
    (skipped,) = run.json()["fixes"]
    assert skipped["status"] == "recently-changed" and "--min-age 0" in skipped["detail"]
    assert run.json()["remaining"] == 1 and env.store().get_balance("u1").remaining == 12


def test_audit_fix_needs_a_reason(env, cli, one_line_error):
    one_line_error(cli("audit", "--fix", "--trust", "ledger"), "--reason")
    one_line_error(cli("audit", "--fix", "--trust", "nobody", "--reason", "r"), "--trust")


def test_audit_fix_asks_per_user_on_a_terminal(env, tmp_path):
    """Without --trust, on a terminal, each discrepancy gets its own choice; the question is on the terminal."""
    env.put("Credits-dev", {"userId": "a", "remaining": 5})
    env.put("Credits-dev", {"userId": "b", "remaining": 7})
    args = ["--local", "--json", "audit", "--fix", "--reason", "INC-1", "--min-age", "0"]
    _, stdout, returncode = on_a_terminal(args, tmp_path, b"[s]kip?", [b"b\n", b"s\n"])  # a: trust the balance; b: skip
    result = json.loads(stdout)
    # a: trusted the balance (an opening-balance entry); b: skipped, so a discrepancy is left (exit 1)
    assert returncode == 1
    assert [(f["userId"], f["status"], f["trust"]) for f in result["fixes"]] == [("a", "fixed", "balance")]
    assert result["remaining"] == 1
    (entry,) = env.store().ledger_for_user("a")
    assert entry.signed_amount == 5
