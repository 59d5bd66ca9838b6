"""Taking over v1.0's tables (issue #23): v1's items as they are, `reconciler migrate` and the opening audit.

v1's items, from its runbook (docs/migration.md, "What v1 leaves behind"): Credits `{userId, remaining}` (no
`held`, no version), Ledger items `{ledgerId, userId, timestamp, type, amount, description, reference}` with ids such
as `manual-adj-1700000000` for its emergency adjustments, and Jobs items as v1 leaves them (a status and v1's own
`processedAt` mark; none of v2's settlement attributes).
"""

from __future__ import annotations

import json

import pytest

from tests.integration.cli.v1_items import AFTER, BEFORE, CUTOVER, events_file, rendered, v1_balance, v1_books, v1_job, v1_ledger


def test_a_replayed_event_for_a_job_v1_settled_moves_no_money_after_migrate(env, cli, emulate, tmp_path):
    # Given v1's books: a render v1 charged, balance 80 = ledger 100 - 20
    v1_books(env)
    # When the operator migrates at the cutover instant, then v1's event for that job is replayed to v2
    run = cli("--json", "migrate", "--cutover", CUTOVER, "--apply", "--actor", "alice", "--reason", "takeover from v1")
    assert run.exit_code == 0, run.stderr
    outcomes = emulate("--json", "send", str(events_file(tmp_path, rendered("job-v1")))).json()
    # Then the replay is a duplicate of v1's settlement: no money moves, no entry is booked
    assert [o["outcome"] for o in outcomes] == ["duplicate"]
    assert env.balance("u1") == 80
    assert [e.ledger_id for e in env.store().ledger_for_user("u1")] == ["manual-adj-1700000000", "job-v1#charge"]


def test_migrate_is_a_dry_run_by_default_and_names_every_job(env, cli):
    # Given v1's jobs: settled before the cutover, failed before it, still rendering, finished after it, and v2's own
    v1_books(env)
    v1_job(env, "job-failed", "u1", "failed")
    v1_job(env, "job-open", "u1", "rendering", processed_at=None, createdAt=BEFORE)
    v1_job(env, "job-late", "u1", "rendered", processed_at=None, updatedAt=AFTER)
    v1_job(env, "job-no-time", "u1", "failed", processed_at=None)
    # When migrate runs without --apply
    run = cli("--json", "migrate", "--cutover", CUTOVER)
    # Then it says what it would do, job by job, and writes nothing
    assert run.exit_code == 0, run.stderr
    report = run.json()
    verdicts = {j["jobId"]: j["verdict"] for j in report["jobs"]}
    assert verdicts == {
        "job-v1": "would-mark",
        "job-failed": "would-mark",
        "job-no-time": "would-mark",
        "job-open": "not-terminal",
        "job-late": "after-cutover",
    }
    assert report["dryRun"] is True
    assert env.store().get_record("job-v1") is None


def test_migrate_apply_is_idempotent_and_resumable(env, cli):
    v1_books(env)
    v1_job(env, "job-failed", "u1", "failed")
    # Given a first run interrupted after one job (simulated: one job marked by a first run)
    first = cli("--json", "migrate", "--cutover", CUTOVER, "--apply", "--actor", "alice", "--reason", "takeover", "--job", "job-v1")
    assert [j["verdict"] for j in first.json()["jobs"]] == ["marked"]
    # When migrate runs again over the whole table
    second = cli("--json", "migrate", "--cutover", CUTOVER, "--apply", "--actor", "alice", "--reason", "takeover").json()
    # Then it marks the rest and recognises its own earlier mark; a third run marks nothing
    assert {j["jobId"]: j["verdict"] for j in second["jobs"]} == {"job-v1": "already-marked", "job-failed": "marked"}
    third = cli("--json", "migrate", "--cutover", CUTOVER, "--apply", "--actor", "alice", "--reason", "takeover").json()
    assert {j["verdict"] for j in third["jobs"]} == {"already-marked"}
    record = env.store().get_record("job-failed")
    assert record.settled_as == "failed" and record.refunded_credits == 0 and record.charged_credits == 0
    assert record.settled_by_event == f"v1-cutover:{CUTOVER}"
    # And the v1 balance and ledger are untouched
    assert env.balance("u1") == 80


def test_a_job_whose_event_waits_in_v1s_dlq_is_named(env, cli):
    v1_books(env)
    v1_job(env, "job-dead", "u1", "rendered", processed_at=None)
    env.dead_letter(json.dumps({"id": "ev-dead", "source": "video.generation", **rendered("job-dead")}))
    jobs = {j["jobId"]: j for j in cli("--json", "migrate", "--cutover", CUTOVER).json()["jobs"]}
    assert jobs["job-dead"]["inDeadLetters"] is True and "waits in the DLQ" in jobs["job-dead"]["detail"]
    assert jobs["job-v1"]["inDeadLetters"] is False
    assert len(env.dlq_messages()) == 1  # read, and left where it was


def test_a_failure_replayed_for_a_job_v1_rendered_is_a_conflict_that_moves_nothing(env, cli, emulate, tmp_path):
    v1_books(env)
    assert cli("migrate", "--cutover", CUTOVER, "--apply", "--actor", "alice", "--reason", "takeover").exit_code == 0
    failed = {"detail-type": "video.failed", "detail": {"jobId": "job-v1", "userId": "u1"}}
    outcomes = emulate("--json", "send", str(events_file(tmp_path, failed))).json()
    assert [o["outcome"] for o in outcomes] == ["conflict"]
    assert env.balance("u1") == 80


def test_a_job_finished_after_the_cutover_is_left_for_v2_which_charges_it_once(env, cli, emulate, tmp_path):
    v1_books(env)
    v1_job(env, "job-late", "u1", "rendered", processed_at=None, updatedAt=AFTER)
    assert cli("migrate", "--cutover", CUTOVER, "--apply", "--actor", "alice", "--reason", "takeover").exit_code == 0
    events = events_file(tmp_path, rendered("job-late", seconds=5), rendered("job-late", seconds=5))
    assert [o["outcome"] for o in emulate("--json", "send", str(events)).json()] == ["settled", "duplicate"]
    assert env.balance("u1") == 75


def test_migrate_needs_an_iso_cutover_and_a_reason_to_apply(env, cli, one_line_error):
    one_line_error(cli("migrate", "--cutover", "yesterday"), "--cutover")
    one_line_error(cli("migrate", "--cutover", CUTOVER, "--apply", "--actor", "alice"), "--reason")


# --- the opening audit -----------------------------------------------------------------------------------


def lost_update_books(env) -> None:
    """u1 clean; u2's balance lost a debit (v1's read-modify-write); u3's balance lost a credit; u4 has a balance and
    no ledger at all (funded before v1 kept one)."""
    v1_books(env)
    v1_ledger(env, "manual-adj-1700000100", "u2", "credit", 50, "MANUAL-1700000100", "Manual emergency adjustment")
    v1_ledger(env, "job-a#charge", "u2", "debit", 10, "job-a", "Render of 10s on test")
    v1_ledger(env, "job-b#charge", "u2", "debit", 10, "job-b", "Render of 10s on test")
    v1_balance(env, "u2", 40)  # one of the two charges was lost: the ledger says 30
    v1_ledger(env, "manual-adj-1700000200", "u3", "credit", 30, "MANUAL-1700000200", "Manual emergency adjustment")
    v1_ledger(env, "job-c#refund", "u3", "credit", 5, "job-c", "Refund of failed render")
    v1_balance(env, "u3", 30)  # the refund was lost: the ledger says 35
    v1_balance(env, "u4", 12)


def test_the_opening_audit_names_each_users_difference_and_books_nothing_in_a_dry_run(env, cli):
    lost_update_books(env)
    report = cli("--json", "migrate", "--cutover", CUTOVER).json()
    opening = {d["userId"]: d for d in report["opening"]}
    assert set(opening) == {"u2", "u3", "u4"}
    assert (opening["u2"]["remaining"], opening["u2"]["ledgerSum"], opening["u2"]["difference"]) == (40, 30, 10)
    assert (opening["u3"]["remaining"], opening["u3"]["ledgerSum"], opening["u3"]["difference"]) == (30, 35, -5)
    assert opening["u4"]["entryCount"] == 0 and opening["u4"]["difference"] == 12
    assert "debit" in opening["u2"]["named"] and "credit" in opening["u3"]["named"] and "no ledger" in opening["u4"]["named"]
    assert report["corrections"] == []


def test_opening_corrections_trust_the_balance_for_all_but_the_ledger_for_one_user(env, cli):
    lost_update_books(env)
    args = ("--json", "migrate", "--cutover", CUTOVER, "--apply", "--actor", "alice", "--reason", "opening position")
    run = cli(*args, "--trust", "balance", "--trust-user", "u3=ledger")
    assert run.exit_code == 0, run.stderr
    fixes = {f["userId"]: f for f in run.json()["corrections"]}
    assert {u: f["status"] for u, f in fixes.items()} == {"u2": "fixed", "u3": "fixed", "u4": "fixed"}
    assert fixes["u2"]["trust"] == "balance" and fixes["u3"]["trust"] == "ledger"
    # Then the books are clean: u2 and u4 got an ordinary ledger entry, u3's balance was set to its ledger
    assert cli("audit").exit_code == 0
    assert env.balance("u3") == 35
    entries = {e.ledger_id: e for e in env.store().ledger_for_user("u2")}
    booked = [e for e in entries.values() if e.actor == "alice"]
    assert [(e.signed_amount, e.description.startswith("Audit correction")) for e in booked] == [(10, True)]
    assert [e.signed_amount for e in env.store().ledger_for_user("u4")] == [12]
    # And a second run books nothing more (idempotent)
    again_run = cli(*args, "--trust", "balance", "--trust-user", "u3=ledger")  # the same command again
    assert again_run.exit_code == 0, again_run.stderr
    again = again_run.json()
    assert again["opening"] == [] and again["corrections"] == []
    assert len(list(env.store().ledger_for_user("u2"))) == 4


def test_an_opening_correction_without_a_choice_is_refused(env, cli, one_line_error):
    lost_update_books(env)
    one_line_error(cli("migrate", "--cutover", CUTOVER, "--apply", "--actor", "a", "--reason", "r", "--trust-user", "u3=both"), "--trust-user")


@pytest.mark.parametrize("command", [("balance", "u1"), ("ledger", "u1"), ("audit", "u1"), ("job", "show", "job-v1")])
def test_every_read_command_reads_v1_items_as_they_are(env, cli, command):
    v1_books(env)
    run = cli(*command)
    assert run.exit_code == 0, run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def test_the_function_settles_a_new_job_on_a_v1_balance_without_held(env, cli, emulate, tmp_path):
    # Given v1's balance (no held, no version) and a new job after the cutover
    v1_books(env)
    outcomes = emulate("--json", "send", str(events_file(tmp_path, rendered("job-new", seconds=3)))).json()
    assert [o["outcome"] for o in outcomes] == ["settled"]
    assert (env.balance("u1"), env.held("u1")) == (77, 0)
    # And v1's ledger with v2's posting still explains it: the audit is clean
    assert cli("audit", "u1").exit_code == 0


def test_an_adjustment_on_a_v1_balance_is_booked_beside_v1s_manual_adjustments(env, cli):
    v1_books(env)
    run = cli("adjust", "u1", "5", "--reason", "goodwill", "--reference", "TICKET-1")
    assert run.exit_code == 0, run.stderr
    assert env.balance("u1") == 85
    assert cli("audit", "u1").exit_code == 0
