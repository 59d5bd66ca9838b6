"""The bugs found by trying the CLI as an on-call engineer at 3 a.m. (issue #11), each pinned by a test.

Several run the installed console script from outside the repository (the `console` fixture), which is how
`reconciler resume` crashing with ModuleNotFoundError: infra went unnoticed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.integration.cli.conftest import on_a_terminal


def test_resume_works_from_outside_the_repository(env, console):
    # Given the function deployed with a reserved concurrency, paused
    name = env.create_function(concurrency=10)
    env.client("lambda").put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    # When the installed CLI resumes it from another directory (it used to import `infra`)
    run = console("--local", "resume")
    # Then the stage's configured concurrency is restored
    assert run.exit_code == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert env.client("lambda").get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 10


def test_help_and_version_work_from_outside_the_repository(console):
    assert console("--help").exit_code == 0
    assert console("-h").exit_code == 0
    version = console("--version")
    assert version.exit_code == 0 and version.stdout.startswith("reconciler ")


def test_the_prod_confirmation_is_asked_on_the_terminal_never_on_stdout(env, endpoint, stage_templates, tmp_path):
    # Given the prod tables and a user
    from emulator.server import reset
    from emulator.stack import provision_stack

    reset(endpoint)
    provision_stack(endpoint, "prod", templates=stage_templates("prod"))
    # When an operator runs a prod write with --json redirected to a file, on a terminal
    args = ["--stage", "prod", "--endpoint-url", endpoint, "--json", "adjust", "u1", "5", "--reason", "r", "--reference", "P-2", "--create-user"]
    seen, stdout, returncode = on_a_terminal(args, tmp_path, b"[y/N]", [b"y\n"])
    # Then the prompt was on the terminal, and stdout holds only the JSON result
    assert b"prod: adjust u1 by +5 credits?" in seen
    assert returncode == 0
    assert stdout.startswith(b"{"), stdout[:20]  # not even the space a readline prompt echoes
    assert json.loads(stdout)["status"] == "applied"
    # The issue's own case: `--query ... --output text > file` gets the value and nothing else
    args = ["--stage", "prod", "--endpoint-url", endpoint, "--output", "text", "--query", "balanceAfter", "adjust", "u1", "2", "--reason", "r"]
    seen, stdout, returncode = on_a_terminal([*args, "--reference", "P-3"], tmp_path, b"[y/N]", [b"y\n"])
    assert (returncode, stdout) == (0, b"7\n") and b"prod: adjust u1 by +2 credits?" in seen


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--endpoint-url", "http://127.0.0.1:9", "balance", "u1"], "cannot reach http://127.0.0.1:9"),
        (["--profile", "no-such-profile", "balance", "u1"], "profile 'no-such-profile'"),
        (["--profile", "sso-user", "balance", "u1"], "aws sso login --profile sso-user"),
    ],
)
def test_environment_problems_are_one_line_errors_not_tracebacks(env, console, tmp_path, monkeypatch, args, fragment):
    # Given an AWS config with an SSO profile nobody logged in to
    config = tmp_path / "aws-config"
    config.write_text(
        "[profile sso-user]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Ops\nregion = us-east-1\n"
        "[sso-session corp]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("HOME", str(tmp_path))  # no SSO token cache
    if args[0] == "--profile":
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    run = console(*args)
    assert run.exit_code == 1, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    assert fragment in lines[0]


def test_a_41_digit_amount_is_refused_in_one_line_dry_run_or_not(env, cli, one_line_error):
    for extra in (["--dry-run"], []):
        one_line_error(cli("adjust", "u1", "1" * 41, "--reason", "r", "--reference", "R-1", "--create-user", *extra), "amount")
    assert env.store().get_balance("u1") is None


def test_the_credentials_error_fits_what_was_given(env, cli, monkeypatch, one_line_error, endpoint):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with_endpoint = cli("--endpoint-url", endpoint, "balance", "u1", local=False)
    one_line_error(with_endpoint, "no AWS credentials for " + endpoint, "AWS_ACCESS_KEY_ID")
    assert "use --local" in with_endpoint.stderr and "--endpoint-url" not in with_endpoint.stderr.split(endpoint, 1)[1]
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "us-east-1")  # botocore ignores it; the CLI reads it as the aws CLI does
    with_aws_region = cli("balance", "u1", local=False)
    one_line_error(with_aws_region, "no AWS credentials found")
    monkeypatch.delenv("AWS_REGION")
    no_region = cli("balance", "u1", local=False)
    one_line_error(no_region, "no AWS region", "AWS_REGION or AWS_DEFAULT_REGION")


def test_scan_and_replay_dry_runs_run_in_process_behind_a_bare_endpoint_url(env, cli):
    # Given only --endpoint-url (no state saved by `up`, no function there)
    run = cli("--endpoint-url", env.stack.endpoint, "--json", "scan", "--dry-run", local=False)
    assert run.exit_code == 0, run.stderr
    assert "Function not found" not in run.stderr and "default prices" in run.stderr
    env.dead_letter(json.dumps({"id": "e1", "source": "video.generation", "detail-type": "video.failed", "detail": {"jobId": "j1", "userId": "u1"}}))
    replay = cli("--endpoint-url", env.stack.endpoint, "--json", "dlq", "replay", "--dry-run", local=False)
    assert replay.exit_code == 0, replay.stderr
    assert replay.json()["summary"]["would-replay"] == 1


def test_each_stage_has_its_own_local_state(env, endpoint, stage_templates, tmp_path, cli, one_line_error, emulate):
    # Given a dev stack's state; a prod stack's state saved next to it
    from emulator.stack import provision_stack

    state_dir = tmp_path / "state"
    provision_stack(endpoint, "prod", templates=stage_templates("prod")).save(state_dir / "prod.json")
    # Then both are there, and --local with each --stage reaches its own tables
    assert sorted(p.name for p in state_dir.glob("*.json")) == ["dev.json", "prod.json"]
    emulate("seed", "u1", "3")
    assert cli("--json", "balance", "u1").json()["remaining"] == 3
    assert cli("--stage", "prod", "--json", "balance", "u1").json()["remaining"] is None
    # And stopping one (its state file removed) leaves the other reachable
    (state_dir / "prod.json").unlink()
    assert cli("--json", "balance", "u1").json()["remaining"] == 3
    one_line_error(cli("--stage", "staging", "balance", "u1"), "no local staging stack", "running: dev")


def test_local_send_reports_events_eventbridge_refused_and_exits_1(env, cli, tmp_path, emulate):
    path = tmp_path / "events.jsonl"
    good = {"source": "video.generation", "detail-type": "video.failed", "detail": {"jobId": "j1", "userId": "u1"}}
    path.write_text(json.dumps(good) + "\n" + json.dumps({"Source": "video.generation", "DetailType": "video.failed", "Detail": "{not json"}) + "\n")
    run = emulate("--json", "send", str(path))
    assert run.exit_code == 1
    outcomes = {o["line"]: o for o in run.json()}
    assert outcomes[1]["outcome"] == "settled"
    assert outcomes[2]["outcome"] == "refused-by-eventbridge" and "MalformedDetail" in outcomes[2]["reason"]
    assert "refused 1 of 2" in run.stderr


def test_a_bare_group_prints_its_help_without_an_empty_error(console, cli, emulate):
    for run in (console(), cli("dlq", local=False), cli("alarms"), emulate()):
        assert run.exit_code == 2
        assert "Usage" in run.stdout + run.stderr
        assert "error:" not in run.stderr


def test_full_ids_in_every_format_and_prefixes_where_ids_are_typed(env, cli):
    long_reference = "INC-1-" + "x" * 70
    cli("adjust", "u1", "5", "--reason", "goodwill", "--reference", long_reference, "--create-user")
    # A pipe (not a terminal) gets full values in the table, so grep finds them
    table = cli("ledger", "u1")
    assert long_reference in table.stdout and "…" not in table.stdout
    # text: tab-separated full values, one record a line, no messages on stdout
    text = cli("--output", "text", "ledger", "u1")
    (record,) = text.stdout.strip().splitlines()
    assert long_reference in record.split("\t")
    assert "entries" in text.stderr
    # dlq show accepts a unique prefix of the message id
    message_id = env.dead_letter(
        json.dumps({"id": "e1", "source": "video.generation", "detail-type": "video.failed", "detail": {"jobId": "j-prefix", "userId": "u1"}})
    )
    assert cli("--json", "dlq", "show", message_id[:8]).json()["jobId"] == "j-prefix"


def test_global_options_after_the_command_and_relative_times(env, cli, emulate):
    emulate("seed", "u1", "4")
    run = cli("balance", "u1", "--json", local=False)
    assert run.exit_code == 1  # no --local yet: the default stage's real AWS is not configured here
    after = cli("balance", "u1", "--local", "--json", local=False)
    assert after.exit_code == 0, after.stderr
    assert after.json()["remaining"] == 4
    assert len(cli("--json", "ledger", "u1", "--since", "2h").json()) == 1
    assert cli("--json", "ledger", "u1", "--until", "yesterday").json() == []
    assert cli("--query", "remaining", "--output", "text", "balance", "u1").stdout.strip() == "4"


def test_adjust_has_guard_rails(env, cli, one_line_error):
    # An unknown user is refused unless --create-user
    one_line_error(cli("adjust", "ghost", "5", "--reason", "r", "--reference", "G-1"), "--create-user")
    assert env.store().get_balance("ghost") is None
    # An id with a newline is refused like an event's
    one_line_error(cli("adjust", "u1\nx", "5", "--reason", "r", "--reference", "G-2", "--create-user"), "'user'", "not an id")
    one_line_error(cli("adjust", "u1", "5", "--reason", "r", "--reference", "G\n3", "--create-user"), "reference")
    # Above the stage's cap (dev: 100,000) it needs --yes-large
    one_line_error(cli("adjust", "u1", "200000", "--reason", "r", "--reference", "G-4", "--create-user"), "--yes-large")
    assert cli("adjust", "u1", "200000", "--reason", "r", "--reference", "G-4", "--create-user", "--yes-large").exit_code == 0
    # Driving a balance below zero is warned about and needs confirmation (--yes without a terminal)
    refused = cli("adjust", "u1", "-200001", "--reason", "r", "--reference", "G-5", "--yes-large")
    assert refused.exit_code == 4 and "below zero" in refused.stderr and "--yes" in refused.stderr  # refused
    assert env.store().get_balance("u1").remaining == 200000
    ok = cli("adjust", "u1", "-200001", "--reason", "r", "--reference", "G-5", "--yes-large", "--yes")
    assert ok.exit_code == 0 and env.store().get_balance("u1").remaining == -1


def test_python_dash_m_reconciler_is_the_cli(tmp_path):
    # From outside the repository, as `python -m reconciler` with the installed package.
    run = subprocess.run([sys.executable, "-m", "reconciler", "--version"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("reconciler ")
