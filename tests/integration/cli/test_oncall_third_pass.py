"""The on-call toolkit's third pass (issue #26): a local stack that does with a paused function's events what Lambda does, hints that
carry their target, no traceback on any input, output and exit codes scripts can trust. Each test drives the CLI
as an operator runs it (in-process `cli`, or the installed console script from `/`)."""

from __future__ import annotations

import json
import shlex
import time

import pytest


def failed(job: str, user: str = "u1") -> dict:
    return {"source": "video.generation", "detail-type": "video.failed", "detail": {"jobId": job, "userId": user}}


def rendered(job: str, user: str = "u1") -> dict:
    return {"source": "video.generation", "detail-type": "video.rendered", "detail": {"jobId": job, "userId": user, "seconds": 2, "model": "test"}}


# --- 1. the local rehearsal tells the truth -------------------------------------------------------------------


def test_events_sent_while_paused_go_to_the_dlq_unrun_and_are_settled_by_a_replay_after_resume(env, cli, emulate, tmp_path):
    # Given the function, paused, and a user with credits
    env.create_function(concurrency=10)
    emulate("seed", "u1", "10")
    assert cli("pause").exit_code == 0
    # When an event is sent to the local bus
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(rendered("job-paused")) + "\n")
    sent = emulate("--json", "send", str(path))
    # Then Lambda sends it to the DLQ unrun (reserved concurrency 0: no retry), says so with both hints, settles nothing
    assert sent.exit_code == 0, sent.stderr
    (outcome,) = sent.json()
    assert outcome["outcome"] == "dead-lettered", outcome
    assert "reconciler --stage dev --local resume" in outcome["reason"] and "reconciler --stage dev --local dlq replay" in outcome["reason"]
    assert env.balance("u1") == 10 and env.job("job-paused") is None and len(env.dlq_messages()) == 1
    # When the function resumes, nothing comes back by itself; the replay settles it, once
    assert cli("resume").exit_code == 0
    assert emulate("--json", "deliver").json() == [] and env.balance("u1") == 10
    assert cli("dlq", "replay", "--yes").exit_code == 0
    assert env.balance("u1") == 8 and env.dlq_messages() == []


def test_dlq_replay_while_paused_is_refused_as_a_throttled_invoke_and_keeps_every_message(env, cli, one_line_error):
    env.create_function(concurrency=10)
    env.dead_letter(json.dumps({"id": "e1", **failed("j1")}))
    assert cli("pause").exit_code == 0
    for args in (["dlq", "replay"], ["dlq", "replay", env.dlq_messages()[0]["MessageId"][:8]]):
        run = cli(*args)
        one_line_error(run, "paused", "reconciler --stage dev --local resume")
        assert run.exit_code == 4
    assert len(env.dlq_messages()) == 1 and env.job("j1") is None
    # A dry run still says what it would do
    assert cli("--json", "dlq", "replay", "--dry-run").json()["summary"]["would-replay"] == 1


def test_logs_tail_errors_filters_as_cloudwatch_logs_does(env, cli):
    # Given the function's log group holding an info line, an error line and a timeout
    logs = env.client("logs")
    group = env.resources.log_group or "/aws/lambda/cc-agent-reconciler-dev"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    now = int(time.time() * 1000)
    lines = ['{"level":"INFO","message":"settled"}', '{"level":"ERROR","message":"boom"}', "Task timed out after 30.00 seconds"]
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(lines)])
    # When the errors are asked for, only they come back (moto alone let every line through `?ERROR ?...`)
    errors = [e["message"] for e in cli("--json", "logs", "tail", "--errors", "--since", "5m").json()]
    assert errors == lines[1:]
    assert len(cli("--json", "logs", "tail", "--since", "5m").json()) == 3
    # And --until bounds the window
    assert cli("--json", "logs", "tail", "--since", "5m", "--until", str(now)).json()[0]["message"] == lines[0]


def test_the_term_filter_pattern_is_evaluated_as_aws_documents_it():
    from emulator.fidelity import TermFilterPattern

    assert TermFilterPattern('?ERROR ?"Task timed out" ?Traceback').matches("Task timed out after 3 s")
    assert not TermFilterPattern("?ERROR ?Traceback").matches('{"level":"INFO"}')
    assert TermFilterPattern("ERROR -Retrying").matches("ERROR done") and not TermFilterPattern("ERROR -Retrying").matches("ERROR Retrying")
    assert not TermFilterPattern("error").matches("ERROR")  # terms are case-sensitive
    assert TermFilterPattern("").matches("anything") and not TermFilterPattern.handles('{ $.level = "ERROR" }')


# --- 2. every hint carries its target --------------------------------------------------------------------------


def _hinted(output: str, command: str) -> list[str]:
    """The printed command that contains `command`, as the words a shell would run."""
    for line in output.splitlines():
        if command in line:
            start = line.index("reconciler ") if "reconciler " in line else line.index("aws ")
            return shlex.split(line[start:].split("`")[0].rstrip(".").strip())
    raise AssertionError(f"no hint with {command!r} in {output!r}")


@pytest.mark.parametrize("how", ["local", "endpoint"])
def test_every_printed_follow_up_command_carries_the_flags_that_chose_the_target(env, cli, how, endpoint):
    # Given the function, one alarm of the stage, the archive, a dead letter
    from tests.integration.cli.test_stage_controls import put_alarm

    env.create_function(concurrency=10)
    put_alarm(env, "cc-reconciler-errors-dev")
    events = env.client("events")
    events.create_archive(ArchiveName="cc-reconciler-archive-dev", EventSourceArn=events.describe_event_bus(Name="default")["Arn"])
    env.dead_letter(json.dumps({"id": "e1", **failed("j1")}))
    flags = ["--local"] if how == "local" else ["--endpoint-url", endpoint]
    target = ["--stage", "dev", *flags]

    def run(*args: str):
        return cli(*flags, *args, local=False)

    def paste(words: list[str]):
        """Runs a printed `reconciler ...` hint as a shell would (in-process, as the fixture runs the CLI)."""
        assert words[0] == "reconciler"
        return cli(*words[1:], local=False)

    # pause -> resume, pasted
    resume = _hinted(run("pause").stdout, "resume")
    assert resume == ["reconciler", *target, "resume"]
    assert paste(resume).exit_code == 0
    assert env.client("lambda").get_function_concurrency(FunctionName=env.resources.function_name)["ReservedConcurrentExecutions"] == 10
    # alarms disable -> alarms enable, pasted
    enable = _hinted(run("alarms", "disable", "errors").stdout, "alarms enable")
    assert enable == ["reconciler", *target, "alarms", "enable", "cc-reconciler-errors-dev"]
    assert paste(enable).exit_code == 0
    assert all(a["actionsEnabled"] for a in run("--json", "alarms", "status").json())
    # events replay -> aws events describe-replay at the same endpoint
    watch = _hinted(run("events", "replay", "--from", "2026-01-01", "--to", "2026-01-02").stdout, "describe-replay")
    assert watch[:3] == ["aws", "events", "describe-replay"] and watch[watch.index("--endpoint-url") + 1] == endpoint
    # an unknown user -> balance; a paused function refusing a replay -> resume
    assert _hinted(run("adjust", "ghost", "5", "--reason", "r", "--reference", "H-1").stderr, "balance ghost") == [
        "reconciler",
        *target,
        "balance",
        "ghost",
    ]
    run("pause")
    assert _hinted(run("dlq", "replay").stderr, "resume") == ["reconciler", *target, "resume"]


def test_hints_keep_the_profile_and_region_that_chose_a_deployed_stage():
    from reconciler.cli.app import State
    from reconciler.cli.output import Output

    state = State("prod", None, False, Output(), profile="ops prod", region="eu-west-1")
    assert shlex.split(state.hint("resume")) == ["reconciler", "--stage", "prod", "--profile", "ops prod", "--region", "eu-west-1", "resume"]
    assert shlex.split(state.aws_hint("events describe-replay --replay-name r"))[-4:] == ["--profile", "ops prod", "--region", "eu-west-1"]


# --- 3. no tracebacks ------------------------------------------------------------------------------------------

_CONFIGS = {
    "malformed": "[default\nregion = us-east-1\n",
    "source": "[profile chained]\nrole_arn = arn:aws:iam::123456789012:role/ops\nsource_profile = missing\n",
    "process": "[profile proc]\ncredential_process = /bin/sh -c 'echo token service down >&2; exit 3'\nregion = us-east-1\n",
}


@pytest.mark.parametrize(
    ("args", "config", "code", "fragment"),
    [
        (["--endpoint-url", "127.0.0.1:4566", "balance", "u1"], None, 2, "not an endpoint URL"),
        (["--endpoint-url", "", "balance", "u1"], None, 2, "not an endpoint URL"),
        (["--endpoint-url", "http://127.0.0.1:notaport", "balance", "u1"], None, 2, "not an endpoint URL"),
        (["balance", "u1"], "malformed", 1, "cannot be parsed"),
        (["--profile", "chained", "balance", "u1"], "source", 1, 'source_profile "missing"'),
        (["--profile", "proc", "balance", "u1"], "process", 1, "credential_process failed: token service down"),
        (["--local", "ledger", "u1", "--since", "999999w"], None, 2, "not a time"),
        (["--local", "ledger", "u1", "--since", "99999-01-01"], None, 2, "not a time"),
        (["--local", "ledger", "u1", "--since", "1M"], None, 2, "ambiguous"),
        (["--local", "ledger", "u1", "--since", "1h", "--until", "2h"], None, 2, "before --since"),
        (["--local", "logs", "tail", "--since", "99999999999999w"], None, 2, "not a time"),
        (["--local", "balance", ""], None, 2, "not an id"),
        (["--local", "job", "show", " "], None, 2, "not an id"),
        (["--local", "dlq", "show", "a\nb"], None, 2, "not an id"),
    ],
)
def test_malformed_input_and_configuration_is_one_line_and_a_documented_exit_code(env, console, tmp_path, monkeypatch, args, config, code, fragment):
    if config is not None:
        path = tmp_path / "aws-config"
        path.write_text(_CONFIGS[config])
        monkeypatch.setenv("AWS_CONFIG_FILE", str(path))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            monkeypatch.delenv(name, raising=False)
    run = console(*args)
    lines = run.stderr.strip().splitlines()
    assert run.exit_code == code, run.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def test_an_http_500_blames_the_emulator_only_when_the_endpoint_is_the_local_one():
    from botocore.exceptions import ClientError

    from reconciler.cli.failures import Where, explain

    error = ClientError({"Error": {"Code": "InternalError", "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "Scan")
    assert "local emulator" in explain(error, Where("dev", "http://127.0.0.1:4566"))[0]
    assert "local emulator" in explain(error, Where("dev", None, local=True))[0]
    for where in (Where("prod", "https://vpce-1.dynamodb.us-east-1.vpce.amazonaws.com"), Where("prod")):
        message, code = explain(error, where)
        assert "emulator" not in message and "retry" in message and code == 1


# --- 4. output scripts can trust -------------------------------------------------------------------------------


def test_exit_codes_are_one_table_for_every_command(env, cli, emulate):
    emulate("seed", "u1", "5")
    usage = [
        cli("adjust", "u1", "1.5", "--reason", "r", "--reference", "X-1"),
        cli("adjust", "u1", "5", "--reason", " ", "--reference", "X-2"),
        cli("balance", ""),
        cli("ledger", "u1", "--since", "soon"),
    ]
    not_found = [
        cli("adjust", "ghost", "5", "--reason", "r", "--reference", "X-3"),
        cli("job", "show", "no-such-job"),
        cli("dlq", "show", "no-such-message"),
        cli("alarms", "enable", "no-such-alarm"),
        cli("--stage", "staging", "balance", "u1"),
    ]
    refused = [
        cli("adjust", "u1", "-50", "--reason", "r", "--reference", "X-4"),  # below zero, no terminal, no --yes
        cli("adjust", "u1", "200000", "--reason", "r", "--reference", "X-5"),  # above the cap
        cli("adjust", "u1", "200000", "--reason", "r", "--reference", "X-5", "--dry-run"),  # a dry run checks the cap too
    ]
    assert [r.exit_code for r in usage] == [2] * len(usage), [r.stderr for r in usage]
    assert [r.exit_code for r in not_found] == [3] * len(not_found), [r.stderr for r in not_found]
    assert [r.exit_code for r in refused] == [4] * len(refused), [r.stderr for r in refused]
    assert "--yes-large" in refused[2].stderr and env.balance("u1") == 5


def test_an_empty_id_is_refused_before_any_aws_call(console):
    # An endpoint nobody answers: reaching it would say "cannot reach"
    for args in (["balance", ""], ["job", "show", ""], ["dlq", "delete", ""], ["audit", " "], ["balance-events", ""]):
        run = console("--endpoint-url", "http://127.0.0.1:9", *args)
        assert run.exit_code == 2 and "not an id" in run.stderr and "cannot reach" not in run.stderr, run.stderr


def test_dlq_replay_with_every_message_in_flight_says_so_and_fails(env, cli, one_line_error):
    env.create_function(concurrency=10)
    env.dead_letter(json.dumps({"id": "e1", **failed("j1")}))
    sqs = env.client("sqs")
    assert sqs.receive_message(QueueUrl=env.resources.dlq_url, VisibilityTimeout=300)["Messages"]  # another reader holds it
    run = cli("dlq", "replay")
    one_line_error(run, "in flight", "reconciler --stage dev --local dlq list")
    assert run.exit_code == 1
    # An empty queue is nothing to do
    sqs.purge_queue(QueueUrl=env.resources.dlq_url)
    assert cli("dlq", "replay").exit_code == 0


def test_epoch_milliseconds_are_accepted_as_v1s_start_time(env, cli, emulate):
    emulate("seed", "u1", "4")
    assert len(cli("--json", "ledger", "u1", "--since", "1640995200000").json()) == 1
    assert cli("--json", "ledger", "u1", "--since", str(int(time.time() * 1000) + 3_600_000)).json() == []


def test_profile_and_region_ignored_with_local_are_warned_about(env, cli, emulate):
    emulate("seed", "u1", "4")
    run = cli("--profile", "prod-admin", "--region", "eu-west-1", "--json", "balance", "u1")
    assert run.exit_code == 0 and run.json()["remaining"] == 4
    assert "--profile and --region ignored with --local" in run.stderr


# --- 5. semantics stated and consistent, and the conventions of the aws and gh CLIs ----------------------------


def test_job_show_says_a_failed_held_job_released_its_hold_not_refunded(env, cli, emulate, tmp_path):
    emulate("seed", "u1", "10")
    env.holds().reserve("job-f", "u1", "test", 4)
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps(failed("job-f")) + "\n")
    assert emulate("send", str(path)).exit_code == 0
    shown = cli("job", "show", "job-f", "--dlq-max", "0").stdout
    assert "released its hold of 4 credits back to remaining" in shown and "gave back" not in shown
    assert env.balance("u1") == 10


def test_balance_shows_the_last_audit_fix(env, cli, emulate):
    emulate("seed", "u1", "10")
    env.put("Credits-dev", {"userId": "u1", "remaining": 510, "held": 0, "updatedAt": "2020-01-01T00:00:00.000Z"})
    fixed = cli("audit", "u1", "--fix", "--trust", "ledger", "--reason", "INC-7 stray update", "--min-age", "0")
    assert fixed.exit_code == 0, fixed.stderr
    shown = cli("--json", "balance", "u1").json()
    assert shown["remaining"] == 10 and shown["lastAuditFix"]["reason"] == "INC-7 stray update"
    assert shown["lastAuditFix"]["previous"]["remaining"] == 510
    assert "last set by `audit --fix`" in cli("balance", "u1").stdout and "INC-7" in cli("balance", "u1").stdout


def test_alarms_by_name_alarms_list_and_one_spelling_of_disabled(env, cli):
    from tests.integration.cli.test_stage_controls import put_alarm

    for name in ("cc-reconciler-errors-dev", "cc-reconciler-dlq-depth-dev"):
        put_alarm(env, name)
    assert [a["concern"] for a in cli("--json", "alarms", "list").json()] == ["dlq-depth", "errors"]
    assert cli("--output", "text", "alarms", "list").stdout.splitlines()[0] == "cc-reconciler-dlq-depth-dev\tdlq-depth"
    cli("alarms", "disable", "errors")
    named = cli("--json", "alarms", "status", "errors").json()
    assert [(a["name"], a["actionsEnabled"]) for a in named] == [("cc-reconciler-errors-dev", False)]
    table = cli("alarms", "status").stdout
    assert "disabled" in table and "DISABLED" not in table
    assert cli("alarms", "status", "no-such").exit_code == 3


def test_query_with_table_output_prints_a_table_or_the_value_not_json(env, cli, emulate):
    emulate("seed", "u1", "4")
    assert cli("--query", "remaining", "balance", "u1").stdout.strip() == "4"
    as_table = cli("--query", "{user: userId, left: remaining}", "balance", "u1").stdout
    assert "{" not in as_table and "left" in as_table and "4" in as_table


def test_events_replay_says_what_it_will_do_with_events_already_handled(env, cli):
    events = env.client("events")
    events.create_archive(ArchiveName="cc-reconciler-archive-dev", EventSourceArn=events.describe_event_bus(Name="default")["Arn"])
    run = cli("--json", "events", "replay", "--from", "2026-01-01", "--to", "2026-01-02", "--dry-run")
    assert "come back as duplicates" in run.stderr and "refused again" in run.stderr
    assert "dead-lettered again" in run.json()["expect"]


def test_completion_and_the_version(console):
    shown = console("--show-completion", "bash")
    assert shown.exit_code == 0 and "_RECONCILER_COMPLETE" in shown.stdout
    import os
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(sys.executable), "reconciler")
    environment = {**os.environ, "_RECONCILER_COMPLETE": "complete_bash", "COMP_WORDS": "reconciler dlq re", "COMP_CWORD": "2"}
    completed = subprocess.run([script], capture_output=True, text=True, env=environment, cwd="/", timeout=60)
    assert completed.stdout.split() == ["replay"]
    from importlib import metadata

    assert console("--version").stdout.strip() == f"reconciler {metadata.version('credit-reconciler')}" != "reconciler 2.0.0"


def test_help_imports_no_boto3():
    from benchmarks.cli_startup import help_loads

    assert help_loads()["boto3"] is False


def test_a_malformed_aws_endpoint_url_variable_is_a_usage_error(console, monkeypatch):
    for value in ("localhost:4566", " http://127.0.0.1:4566"):
        monkeypatch.setenv("AWS_ENDPOINT_URL", value)
        run = console("balance", "u1")
        assert run.exit_code == 2 and "AWS_ENDPOINT_URL" in run.stderr and "Traceback" not in run.stderr, run.stderr
