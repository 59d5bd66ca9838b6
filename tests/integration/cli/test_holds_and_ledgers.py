"""The operator's view of holds and of the two ledgers (docs/ledger.md): `balance` shows remaining, held and posted;
`ledger USER` and `job show` merge UserLedger (job postings) with Ledger (operators' entries, history); `audit`
checks posted = ledger sum and held = open holds, and each fix keeps both true; data written before holds (a
posted v2 reservation) is read and settled as it was made."""

from __future__ import annotations

import json

import pytest

from reconciler.contract import UNSETTLED_ATTRIBUTE, UNSETTLED_VALUE
from reconciler.domain.ledger import CREDIT, DEBIT, LedgerEntry, job_ledger_id
from reconciler.repository.dynamodb import ledger_item, user_ledger_item

OLD = "2020-01-01T00:00:00.000Z"


def reserve(env, job_id: str, user: str, credits: int) -> None:
    """The video pipeline's library call: a hold of `credits` for the job."""
    env.holds().reserve(job_id, user, "test", credits)


def send(emulate, tmp_path, *events: dict) -> list[dict]:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps({"source": "video.generation", **event}) + "\n" for event in events))
    return emulate("--json", "send", str(path)).json()


def rendered(job_id: str, user: str = "u1") -> dict:
    return {"detail-type": "video.rendered", "detail": {"jobId": job_id, "userId": user, "seconds": 1, "model": "test"}}  # 1 credit


def entry(ledger_id: str, kind: str, amount: int, timestamp: str, user: str = "u1") -> LedgerEntry:
    return LedgerEntry(ledger_id, user, kind, amount, f"{kind} {amount}", "ref", timestamp)


def plant_balance(env, user: str, remaining: int, held: int) -> None:
    """A Credits item written behind the reconciler's back (a stray put-item)."""
    env.put("Credits-dev", {"userId": user, "remaining": remaining, "held": held, "updatedAt": OLD})


def audit(cli, *args: str):
    return cli("--json", "audit", *args)


# --- balance -------------------------------------------------------------------------------------


def test_balance_shows_remaining_held_and_posted_while_a_reservation_is_open(env, cli, tmp_path, emulate):
    # Given a user with 10 credits and a hold of 4 for a job in flight
    emulate("seed", "u1", "10")
    reserve(env, "job-1", "u1", 4)
    # When an operator looks at the balance
    shown = cli("--json", "balance", "u1").json()
    # Then they see what the user can spend, what is held, and the posted balance the ledger explains
    assert (shown["remaining"], shown["held"], shown["posted"]) == (6, 4, 10)
    table = cli("balance", "u1").stdout
    assert "remaining" in table and "held" in table and "posted" in table
    # And the hold posted nothing: the ledger still sums to the posted balance
    assert [e["amount"] for e in cli("--json", "ledger", "u1").json()] == [10]
    # When the job renders for 1 credit: the hold goes, one debit is posted
    (outcome,) = send(emulate, tmp_path, rendered("job-1"))
    assert outcome["outcome"] == "settled"
    shown = cli("--json", "balance", "u1").json()
    assert (shown["remaining"], shown["held"], shown["posted"]) == (9, 0, 9)
    assert [e["amount"] for e in cli("--json", "ledger", "u1").json()] == [10, -1]


def test_balance_of_an_item_written_before_holds_shows_held_0(env, cli):
    env.put("Credits-dev", {"userId": "v2", "remaining": 12})
    shown = cli("--json", "balance", "v2").json()
    assert (shown["remaining"], shown["held"], shown["posted"]) == (12, 0, 12)
    assert cli("--json", "balance", "nobody").exit_code == 3  # no item at all is not found (test_balances.py), not held 0


# --- ledger USER: both tables merged --------------------------------------------------------------


def test_ledger_of_a_user_merges_both_tables_oldest_first_within_since_and_until(env, cli):
    # Given entries in both tables, interleaved in time, two of them at one moment (one in each table)
    t1, t2, t3, t4 = (f"2026-03-0{day}T10:00:00.000Z" for day in (1, 2, 3, 4))
    for item in (ledger_item(entry("adjustment:1:a", CREDIT, 100, t1)), ledger_item(entry("audit:2:u1:b", DEBIT, 5, t3))):
        env.put("Ledger-dev", item)
    for item in (
        user_ledger_item(entry("job:1:x:charge", DEBIT, 7, t2)),
        user_ledger_item(entry("job:1:y:charge", DEBIT, 3, t3)),
        user_ledger_item(entry("job:1:z:charge", DEBIT, 1, t4)),
    ):
        env.put("UserLedger-dev", item)
    env.put("UserLedger-dev", user_ledger_item(entry("job:1:q:charge", DEBIT, 50, t2, user="someone-else")))
    # When the whole history is listed
    everything = cli("--json", "ledger", "u1").json()
    # Then it holds both tables' entries of this user only, by time, a tie broken by ledger id
    assert [e["ledgerId"] for e in everything] == ["adjustment:1:a", "job:1:x:charge", "audit:2:u1:b", "job:1:y:charge", "job:1:z:charge"]
    assert "net +84" in cli("ledger", "u1").stdout
    # And --since/--until are inclusive on both tables (UserLedger's key is `{timestamp}#{ledgerId}`)
    window = cli("--json", "ledger", "u1", "--since", t2, "--until", t3).json()
    assert [e["ledgerId"] for e in window] == ["job:1:x:charge", "audit:2:u1:b", "job:1:y:charge"]
    assert [e["ledgerId"] for e in cli("--json", "ledger", "u1", "--until", t2).json()] == ["adjustment:1:a", "job:1:x:charge"]
    assert [e["ledgerId"] for e in cli("--json", "ledger", "u1", "--since", t3).json()] == ["audit:2:u1:b", "job:1:y:charge", "job:1:z:charge"]
    assert cli("--json", "ledger", "u1", "--since", "2026-03-02T10:00:00.001Z", "--until", "2026-03-02T23:00:00.000Z").json() == []


# --- job show ---------------------------------------------------------------------------------------


def test_job_show_lists_a_held_jobs_posting_from_user_ledger(env, cli, tmp_path, emulate):
    emulate("seed", "u1", "10")
    reserve(env, "job-1", "u1", 4)
    held = cli("job", "show", "job-1", "--dlq-max", "0").stdout
    assert "held 4 credits at 1 a second of test (held on the balance, expiring at " in held and "not settled" in held
    send(emulate, tmp_path, rendered("job-1"))
    shown = cli("--json", "job", "show", "job-1", "--dlq-max", "0").json()
    assert shown["record"]["heldCredits"] == 4 and shown["record"]["settledAs"] == "rendered" == shown["job"]["settledAs"]
    assert [(e["ledgerId"], e["amount"]) for e in shown["ledger"]] == [(job_ledger_id("job-1", "charge"), -1)]
    after = cli("job", "show", "job-1", "--dlq-max", "0").stdout
    assert "held 4 credits at 1 a second of test (released by its settlement)" in after and "charged 1 credits" in after


# --- audit: posted = ledger sum, held = open holds ------------------------------------------------


def test_audit_sums_both_tables_and_counts_open_holds(env, cli, tmp_path, emulate):
    # Given users with adjustments (Ledger), postings (UserLedger) and an open hold
    emulate("seed", "u1", "10")
    emulate("seed", "u2", "5")
    reserve(env, "job-1", "u1", 4)
    reserve(env, "job-2", "u2", 2)
    send(emulate, tmp_path, rendered("job-2", user="u2"), rendered("job-3", user="u2"))
    # When every balance and one user are audited
    whole, one = audit(cli), audit(cli, "u1")
    # Then the books balance: u1 posted 10 with 4 held, u2's postings are in UserLedger
    assert whole.exit_code == 0 and whole.json()["discrepancies"] == []
    assert one.exit_code == 0 and one.json()["discrepancies"] == []


def test_audit_finds_a_planted_held_that_no_open_reservation_explains(env, cli, emulate):
    # Given a hold of 4 for job-1, and `held` then planted at 7 (remaining 3: the posted balance still 10)
    emulate("seed", "u1", "10")
    reserve(env, "job-1", "u1", 4)
    plant_balance(env, "u1", remaining=3, held=7)
    # When the balances are audited
    report = audit(cli)
    # Then exactly that discrepancy is reported, as a holds discrepancy naming the open reservations
    assert report.exit_code == 1
    (found,) = report.json()["discrepancies"]
    assert found["kinds"] == ["holds"]
    assert (found["held"], found["openHolds"], found["heldDifference"], found["holdJobs"]) == (7, 4, 3, ["job-1"])
    assert (found["posted"], found["ledgerSum"], found["difference"]) == (10, 10, 0)
    assert found["corrections"]["balance"].startswith("not possible")
    assert "holds: held 7 != open holds 4 (jobs: job-1)" in cli("audit", "u1").stdout
    # And trusting the balance cannot fix it (no ledger entry explains a hold): nothing written, exit 1
    refused = audit(cli, "u1", "--fix", "--trust", "balance", "--reason", "INC-3", "--min-age", "0")
    assert refused.exit_code == 1 and refused.json()["fixes"][0]["status"] == "not-fixable"
    assert (env.store().get_balance("u1").remaining, env.store().get_balance("u1").held) == (3, 7)
    assert len(list(env.store().ledger_for_user("u1"))) == 1
    # When it is fixed trusting the ledger (and the open reservations)
    fixed = audit(cli, "u1", "--fix", "--trust", "ledger", "--reason", "INC-3", "--min-age", "0")
    # Then held is the open holds again and remaining the ledger sum less them; no entry is booked
    assert fixed.exit_code == 0, fixed.stderr
    item = env.credits_item("u1")
    assert (item["remaining"], item["held"]) == (6, 4)
    assert item["lastAuditFix"]["previous"] == {"remaining": 3, "held": 7}
    assert len(list(env.store().ledger_for_user("u1"))) == 1 and audit(cli).exit_code == 0


def test_audit_fix_trusting_the_ledger_restores_remaining_to_the_ledger_sum_less_the_open_holds(env, cli, tmp_path, emulate):
    # Given a hold of 4, then remaining corrupted from 6 to 50 (held intact)
    emulate("seed", "u1", "10")
    reserve(env, "job-1", "u1", 4)
    plant_balance(env, "u1", remaining=50, held=4)
    (found,) = audit(cli).json()["discrepancies"]
    assert found["kinds"] == ["ledger"] and (found["posted"], found["ledgerSum"], found["difference"]) == (54, 10, 44)
    # When it is fixed trusting the ledger
    fixed = audit(cli, "--fix", "--trust", "ledger", "--reason", "INC-4", "--min-age", "0")
    # Then remaining = ledger sum - held, so the posted balance is the ledger's, and the hold is kept
    assert fixed.exit_code == 0, fixed.stderr
    assert "remaining 50 -> 6 (trusting the ledger)" in fixed.json()["fixes"][0]["detail"]
    balance = env.store().get_balance("u1")
    assert (balance.remaining, balance.held) == (6, 4)
    # And the job's render still settles against its hold and the books still balance
    send(emulate, tmp_path, rendered("job-1"))
    balance = env.store().get_balance("u1")
    assert (balance.remaining, balance.held) == (9, 0) and audit(cli).exit_code == 0


def test_audit_fix_trusting_the_balance_explains_the_posted_balance_with_held_unchanged(env, cli, emulate):
    emulate("seed", "u1", "10")
    reserve(env, "job-1", "u1", 4)
    plant_balance(env, "u1", remaining=8, held=4)  # posted 12, the ledger says 10
    fixed = audit(cli, "--fix", "--trust", "balance", "--reason", "INC-5", "--min-age", "0")
    assert fixed.exit_code == 0, fixed.stderr
    correction = list(env.store().ledger_for_user("u1"))[-1]
    assert (correction.signed_amount, correction.description) == (2, "Audit correction: INC-5")
    assert env.store().get_ledger_entry(correction.ledger_id) is not None  # an operator's entry: in Ledger
    balance = env.store().get_balance("u1")
    assert (balance.remaining, balance.held) == (8, 4) and audit(cli).exit_code == 0


def test_a_correction_is_refused_when_held_moved_since_the_audit_read_it(env):
    # A held job rendered at exactly its reservation leaves remaining as it was: the guard must check held too
    from reconciler.ops.audit import Discrepancy, correction_entry
    from reconciler.service.ports import StaleState

    env.put("Credits-dev", {"userId": "u1", "remaining": 6, "held": 0})
    seen = Discrepancy("u1", remaining=6, ledger_sum=0, entry_count=0, held=4)  # what an earlier read saw
    fix = correction_entry(seen, "INC-6", "me", "2026-01-01T00:00:00.000Z")
    with pytest.raises(StaleState):
        env.store().commit_correction(fix, seen.remaining, seen.held)
    assert env.store().get_ledger_entry(fix.ledger_id) is None
    assert env.store().get_balance("u1").held == 0


# --- data written before holds ---------------------------------------------------------------------


def test_a_reservation_posted_before_holds_is_audited_and_settled_as_it_was_made(env, cli, emulate):
    # Given v2 data: 10 credits, a reservation of 3 posted as a Ledger debit (remaining 7, no held), its job
    # rendered (1 credit) without reservedAs, and the event lost
    emulate("seed", "u1", "10")
    env.put("Ledger-dev", ledger_item(entry(job_ledger_id("job-v2", "reserve"), DEBIT, 3, OLD)))
    env.put("Credits-dev", {"userId": "u1", "remaining": 7, "updatedAt": OLD})
    job = {"jobId": "job-v2", "userId": "u1", "status": "rendered", "model": "test", "seconds": 1, "reservedCredits": 3}
    env.put("Jobs-dev", {**job, "createdAt": OLD, "updatedAt": OLD, UNSETTLED_ATTRIBUTE: UNSETTLED_VALUE})
    # Then the audit finds nothing: the posted reservation is in the ledger, and it is not a hold
    assert audit(cli).exit_code == 0
    # When the scan settles it
    assert cli("--json", "scan").json()["settled"] == ["job-v2"]
    # Then as v2 would have: the reservation is released and the render charged (postings in UserLedger)
    assert env.store().get_balance("u1").remaining == 9 and env.store().get_balance("u1").held == 0
    shown = cli("--json", "job", "show", "job-v2", "--dlq-max", "0").json()
    postings = [(e["ledgerId"].rsplit(":", 1)[-1], e["amount"]) for e in shown["ledger"]]
    assert postings == [("reserve", -3), ("charge", -1), ("release", 3)]  # the reserve is old; release and charge share a moment
    assert "as a posted reservation" in cli("job", "show", "job-v2", "--dlq-max", "0").stdout
    assert audit(cli).exit_code == 0
