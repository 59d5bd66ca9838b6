"""balance, ledger, adjust, and the emulator's seed: reads through the index, writes in one transaction, idempotent."""

from __future__ import annotations


def test_adjust_writes_balance_and_ledger_and_records_the_actor(env, cli, emulate):
    # Given a user with 10 credits
    assert emulate("seed", "u1", "10").exit_code == 0
    # When an operator adds 5 credits for a ticket
    run = cli("--json", "adjust", "u1", "5", "--reason", "goodwill", "--reference", "TICKET-1")
    # Then the balance and its ledger entry moved together, and the entry says who did it
    assert run.exit_code == 0, run.stderr
    assert run.json()["status"] == "applied"
    assert env.store().get_balance("u1").remaining == 15
    entry = env.store().get_ledger_entry(run.json()["ledgerId"])
    assert (entry.signed_amount, entry.actor.startswith("local:")) == (5, True)
    assert entry.description == "Manual adjustment: goodwill"


def test_adjust_twice_with_the_same_reference_changes_nothing_the_second_time(env, cli):
    # Given an adjustment already made
    cli("adjust", "u1", "-3", "--reason", "refund clawback", "--reference", "INC-7", "--create-user", "--yes")
    # When it is run again
    run = cli("adjust", "u1", "-3", "--reason", "refund clawback", "--reference", "INC-7", "--create-user", "--yes")
    # Then it says so and the balance moved once
    assert run.exit_code == 0
    assert "already applied" in run.stdout
    assert env.store().get_balance("u1").remaining == -3
    assert len(list(env.store().ledger_for_user("u1"))) == 1


def test_adjust_refuses_a_reused_reference_with_another_amount(env, cli, one_line_error):
    cli("adjust", "u1", "4", "--reason", "r", "--reference", "INC-8", "--create-user")
    run = cli("adjust", "u1", "9", "--reason", "r", "--reference", "INC-8")
    one_line_error(run, "already used")
    assert env.store().get_balance("u1").remaining == 4


def test_adjust_dry_run_writes_nothing(env, cli):
    run = cli("--json", "adjust", "u1", "5", "--reason", "r", "--reference", "DRY-1", "--dry-run", "--create-user")
    assert run.exit_code == 0 and run.json()["status"] == "would-apply"
    assert env.store().get_balance("u1") is None
    assert env.store().get_ledger_entry(run.json()["ledgerId"]) is None


def test_prod_writes_refuse_without_yes_when_there_is_no_terminal(env, endpoint, stage_templates, cli, one_line_error):
    # Given the prod tables on the same local endpoint
    from emulator.server import reset
    from emulator.stack import provision_stack

    reset(endpoint)
    provision_stack(endpoint, "prod", templates=stage_templates("prod"))
    # When a write runs without --yes (CliRunner's stdin is not a TTY)
    run = cli("--stage", "prod", "--endpoint-url", endpoint, "adjust", "u1", "5", "--reason", "r", "--reference", "P-1", "--create-user", local=False)
    # Then it refuses and writes nothing; with --yes it goes through
    one_line_error(run, "refusing", "--yes")
    ok = cli(
        "--stage",
        "prod",
        "--endpoint-url",
        endpoint,
        "adjust",
        "u1",
        "5",
        "--reason",
        "r",
        "--reference",
        "P-1",
        "--yes",
        "--create-user",
        local=False,
    )
    assert ok.exit_code == 0, ok.stderr


def test_balance_and_ledger_show_what_happened(env, cli):
    cli("adjust", "u1", "7", "--reason", "first", "--reference", "A-1", "--create-user")
    cli("adjust", "u1", "-2", "--reason", "second", "--reference", "A-2")
    assert cli("--json", "balance", "u1").json()["remaining"] == 5
    entries = cli("--json", "ledger", "u1").json()
    assert [e["amount"] for e in entries] == [7, -2]
    # --since after both entries: nothing
    assert cli("--json", "ledger", "u1", "--since", "2999-01-01T00:00:00").json() == []
    assert "net +5" in cli("ledger", "u1").stdout


def test_bad_arguments_give_one_line_errors(env, cli, one_line_error):
    one_line_error(cli("adjust", "u1", "five", "--reason", "r", "--reference", "x"), "amount")
    one_line_error(cli("adjust", "u1", "0", "--reason", "r", "--reference", "x"), "amount")
    one_line_error(cli("adjust", "u1", "5", "--reference", "x"), "--reason")
    one_line_error(cli("--stage", "qa", "balance", "u1"), "unknown stage 'qa'")
    one_line_error(cli("ledger", "u1", "--since", "last tuesday"), "--since")


def test_missing_resources_and_credentials_give_one_line_errors(env, endpoint, cli, monkeypatch, one_line_error):
    from emulator.server import reset

    reset(endpoint)  # the tables are gone
    one_line_error(cli("balance", "u1"), "missing resource")
    one_line_error(cli("dlq", "list"), "missing resource")
    # Without any credentials against "AWS" (nothing is sent: signing fails first)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    one_line_error(cli("balance", "u1", local=False), "no AWS credentials")


def test_local_seed_sets_an_opening_balance_the_ledger_explains(env, cli, emulate):
    emulate("seed", "u2", "50")
    again = emulate("seed", "u2", "50")
    assert "already has 50" in again.stdout
    entries = list(env.store().ledger_for_user("u2"))
    assert env.store().get_balance("u2").remaining == sum(e.signed_amount for e in entries) == 50
