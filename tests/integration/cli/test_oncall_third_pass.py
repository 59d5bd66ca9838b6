"""The on-call toolkit's third pass (issue #26): hints that carry their target, no traceback on any input, output and
exit codes scripts can trust, semantics stated and consistent. Every defect the issue lists is driven through the
INSTALLED `reconciler` console script, from `/`, as operators run it (`installed`), against one local stack for the
whole module (`module_stack`: each test uses users, jobs and messages of its own)."""

from __future__ import annotations

import json
import shlex
import time

import pytest


def failed(job: str, user: str) -> dict:
    return {"source": "video.generation", "detail-type": "video.failed", "detail": {"jobId": job, "userId": user}}


def rendered(job: str, user: str, model: str = "test") -> dict:
    return {"source": "video.generation", "detail-type": "video.rendered", "detail": {"jobId": job, "userId": user, "seconds": 2, "model": model}}


def as_entry(event: dict) -> dict:
    """An event as put_events takes it."""
    return {"Source": event["source"], "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"])}


@pytest.fixture
def aws(installed, module_stack):
    """The module's stack, to arrange and inspect (after `installed` made sure it is there)."""
    return module_stack.aws


@pytest.fixture
def empty_dlq(aws):
    """The module's DLQ emptied before the test (deleted one by one: SQS allows one purge a minute)."""
    sqs = aws.client("sqs")
    while messages := sqs.receive_message(QueueUrl=aws.resources.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages", []):
        for message in messages:
            sqs.delete_message(QueueUrl=aws.resources.dlq_url, ReceiptHandle=message["ReceiptHandle"])
    return aws


@pytest.fixture
def resumed(installed):
    """The function running again after the test, whatever the test left it as."""
    yield
    installed("--local", "resume")


def test_events_sent_while_paused_go_to_the_dlq_unrun_and_are_settled_by_a_replay_after_resume(env, cli, emulate, tmp_path):
    # `python -m emulator send` (the checkout's, in-process here) against a paused function; the installed CLI's side of
    # the same story is the pause rehearsal (test_incident_rehearsal.py, from `/`)
    env.create_function(concurrency=10)
    emulate("seed", "u1", "10")
    assert cli("pause").exit_code == 0
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(rendered("job-paused", "u1")) + "\n")
    sent = emulate("--json", "send", str(path))
    # Lambda sends it to the DLQ unrun (reserved concurrency 0: no retry), says so with both hints, settles nothing
    assert sent.exit_code == 0, sent.stderr
    (outcome,) = sent.json()
    assert outcome["outcome"] == "dead-lettered", outcome
    assert "reconciler --stage dev --local resume" in outcome["reason"] and "reconciler --stage dev --local dlq replay" in outcome["reason"]
    assert env.balance("u1") == 10 and env.job("job-paused") is None and len(env.dlq_messages()) == 1
    # Resumed, nothing comes back by itself; the replay settles it, once
    assert cli("resume").exit_code == 0
    assert emulate("--json", "deliver").json() == [] and env.balance("u1") == 10
    assert cli("dlq", "replay", "--yes").exit_code == 0
    assert env.balance("u1") == 8 and env.dlq_messages() == []


def test_dlq_replay_while_paused_is_refused_and_with_every_message_in_flight_fails(installed, empty_dlq, resumed, one_line_error):
    aws = empty_dlq
    aws.dead_letter(json.dumps({"id": "e-inflight", **failed("job-inflight", "u-inflight")}))
    # Every message in flight (another reader holds it): says so and fails, naming the command to look
    sqs = aws.client("sqs")
    (held,) = sqs.receive_message(QueueUrl=aws.resources.dlq_url, VisibilityTimeout=300)["Messages"]
    run = installed("--local", "dlq", "replay")
    one_line_error(run, "in flight", "reconciler --stage dev --local dlq list")
    assert run.exit_code == 1
    # An empty queue is nothing to do
    sqs.delete_message(QueueUrl=aws.resources.dlq_url, ReceiptHandle=held["ReceiptHandle"])
    assert installed("--local", "dlq", "replay").exit_code == 0
    # Paused: a replay is refused as the throttled invoke it would be (exit 4), every message kept; a dry run still says
    aws.dead_letter(json.dumps({"id": "e-paused", **failed("job-paused", "u-paused")}))
    assert installed("--local", "pause").exit_code == 0
    for args in (["dlq", "replay"], ["dlq", "replay", aws.dlq_messages()[0]["MessageId"][:8]]):
        run = installed("--local", *args)
        one_line_error(run, "paused", "reconciler --stage dev --local resume")
        assert run.exit_code == 4
    assert len(aws.dlq_messages()) == 1 and aws.job("job-paused") is None
    # A dry run applies the same check: it would be refused, so it is (as adjust --dry-run above the cap is)
    dry = installed("--local", "--json", "dlq", "replay", "--dry-run")
    one_line_error(dry, "paused")
    assert dry.exit_code == 4 and dry.stdout == ""


def test_logs_tail_errors_filters_as_cloudwatch_logs_does(installed, aws):
    # Given the function's log group holding an info line, an error line and a timeout, in a stream of this test
    logs = aws.client("logs")
    group = aws.resources.log_group
    logs.create_log_stream(logGroupName=group, logStreamName="errors-test")
    now = int(time.time() * 1000) - 60_000
    lines = ['{"level":"INFO","message":"settled"}', '{"level":"ERROR","message":"boom"}', "Task timed out after 30.00 seconds"]
    events = [{"timestamp": now + i, "message": m} for i, m in enumerate(lines)]
    logs.put_log_events(logGroupName=group, logStreamName="errors-test", logEvents=events)
    window = ["--since", str(now), "--until", str(now + 2)]

    def tail(*args: str) -> list[str]:
        run = installed("--local", "--json", "logs", "tail", *window, *args)
        assert run.exit_code == 0, run.stderr
        return [event["message"] for event in json.loads(run.stdout)]

    # When the errors are asked for, only they come back (moto alone let every line through `?ERROR ?...`)
    assert tail("--errors") == lines[1:]
    assert tail() == lines
    # And --until bounds the window (epoch milliseconds, as v1's --start-time)
    bounded = installed("--local", "--json", "logs", "tail", "--since", str(now - 1), "--until", str(now)).stdout
    assert [event["message"] for event in json.loads(bounded)] == lines[:1]


def test_the_term_filter_pattern_is_evaluated_as_aws_documents_it():
    from emulator.fidelity import TermFilterPattern

    assert TermFilterPattern('?ERROR ?"Task timed out" ?Traceback').matches("Task timed out after 3 s")
    assert not TermFilterPattern("?ERROR ?Traceback").matches('{"level":"INFO"}')
    assert TermFilterPattern("ERROR -Retrying").matches("ERROR done") and not TermFilterPattern("ERROR -Retrying").matches("ERROR Retrying")
    assert not TermFilterPattern("error").matches("ERROR")  # terms are case-sensitive
    assert TermFilterPattern("").matches("anything") and not TermFilterPattern.handles('{ $.level = "ERROR" }')


# --- every hint carries its target --------------------------------------------------------------------------


def _hinted(output: str, command: str) -> list[str]:
    """The printed command that contains `command`, as the words a shell would run."""
    for line in output.splitlines():
        if command in line:
            start = line.index("reconciler ") if "reconciler " in line else line.index("aws ")
            return shlex.split(line[start:].split("`")[0].rstrip(".").strip())
    raise AssertionError(f"no hint with {command!r} in {output!r}")


@pytest.mark.parametrize("how", ["local", "endpoint"])
def test_every_printed_follow_up_command_carries_the_flags_that_chose_the_target(installed, aws, module_stack, resumed, how):
    flags = ["--local"] if how == "local" else ["--endpoint-url", module_stack.endpoint]
    target = ["--stage", "dev", *flags]
    run = lambda *args: installed(*flags, *args)  # noqa: E731

    def paste(words: list[str]):
        """A printed `reconciler ...` hint, run as pasted into a shell: the installed script, from `/`."""
        assert words[0] == "reconciler"
        return installed(*words[1:])

    # pause -> resume, pasted
    resume = _hinted(run("pause").stdout, "resume")
    assert resume == ["reconciler", *target, "resume"]
    assert paste(resume).exit_code == 0
    assert aws.client("lambda").get_function_concurrency(FunctionName=aws.resources.function_name)["ReservedConcurrentExecutions"] > 0
    # alarms disable -> alarms enable, pasted
    enable = _hinted(run("alarms", "disable", "errors").stdout, "alarms enable")
    assert enable == ["reconciler", *target, "alarms", "enable", "cc-reconciler-errors-dev"]
    assert paste(enable).exit_code == 0
    assert [a["actionsEnabled"] for a in json.loads(run("--json", "alarms", "status", "errors").stdout)] == [True]
    # events replay -> aws events describe-replay at the same endpoint (a dry run prints it too)
    watch = _hinted(run("events", "replay", "--from", "2026-01-01", "--to", "2026-01-02", "--dry-run").stdout, "describe-replay")
    assert watch[:3] == ["aws", "events", "describe-replay"] and watch[watch.index("--endpoint-url") + 1] == module_stack.endpoint
    # an unknown user -> balance; a paused function refusing a replay -> resume
    ghost = run("adjust", "ghost", "5", "--reason", "r", "--reference", "H-1")
    assert _hinted(ghost.stderr, "balance ghost") == ["reconciler", *target, "balance", "ghost"]
    run("pause")
    assert _hinted(run("dlq", "replay").stderr, "resume") == ["reconciler", *target, "resume"]


def test_hints_keep_the_profile_and_region_that_chose_a_deployed_stage():
    from reconciler.cli.app import State
    from reconciler.cli.output import Output

    state = State("prod", None, False, Output(), profile="ops prod", region="eu-west-1")
    assert shlex.split(state.hint("resume")) == ["reconciler", "--stage", "prod", "--profile", "ops prod", "--region", "eu-west-1", "resume"]
    assert shlex.split(state.aws_hint("events describe-replay --replay-name r"))[-4:] == ["--profile", "ops prod", "--region", "eu-west-1"]


# --- no tracebacks ------------------------------------------------------------------------------------------

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
def test_malformed_input_and_configuration_is_one_line_and_a_documented_exit_code(installed, tmp_path, monkeypatch, args, config, code, fragment):
    if config is not None:
        path = tmp_path / "aws-config"
        path.write_text(_CONFIGS[config])
        monkeypatch.setenv("AWS_CONFIG_FILE", str(path))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            monkeypatch.delenv(name, raising=False)
    run = installed(*args)
    lines = run.stderr.strip().splitlines()
    assert run.exit_code == code, run.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def test_an_http_500_blames_the_emulator_only_when_the_endpoint_is_the_local_one():
    # In-process: every server this machine can run is local, so the installed script cannot meet a remote 500 here.
    from botocore.exceptions import ClientError

    from reconciler.cli.failures import Where, explain

    error = ClientError({"Error": {"Code": "InternalError", "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "Scan")
    assert "local emulator" in explain(error, Where("dev", "http://127.0.0.1:4566"))[0]
    assert "local emulator" in explain(error, Where("dev", None, local=True))[0]
    for where in (Where("prod", "https://vpce-1.dynamodb.us-east-1.vpce.amazonaws.com"), Where("prod")):
        message, code = explain(error, where)
        assert "emulator" not in message and "retry" in message and code == 1


# --- output scripts can trust -------------------------------------------------------------------------------


def test_exit_codes_are_one_table_for_every_command(installed, aws):
    aws.seed_balance("u-codes", 5)
    local = lambda *args: installed("--local", *args)  # noqa: E731
    usage = [
        local("adjust", "u-codes", "1.5", "--reason", "r", "--reference", "X-1"),
        local("adjust", "u-codes", "5", "--reason", " ", "--reference", "X-2"),
        local("balance", ""),
        local("ledger", "u-codes", "--since", "soon"),
        installed("--stage", "nowhere", "balance", "u-codes"),
    ]
    not_found = [
        local("adjust", "ghost", "5", "--reason", "r", "--reference", "X-3"),
        local("balance", "ghost"),
        local("job", "show", "no-such-job"),
        local("dlq", "show", "no-such-message"),
        local("alarms", "enable", "no-such-alarm"),
        local("--stage", "staging", "balance", "u-codes"),
    ]
    refused = [
        local("adjust", "u-codes", "-50", "--reason", "r", "--reference", "X-4"),  # below zero, no terminal, no --yes
        local("adjust", "u-codes", "200000", "--reason", "r", "--reference", "X-5"),  # above the cap
        local("adjust", "u-codes", "200000", "--reason", "r", "--reference", "X-5", "--dry-run"),  # a dry run checks the cap too
    ]
    assert [r.exit_code for r in usage] == [2] * len(usage), [r.stderr for r in usage]
    assert [r.exit_code for r in not_found] == [3] * len(not_found), [r.stderr for r in not_found]
    assert [r.exit_code for r in refused] == [4] * len(refused), [r.stderr for r in refused]
    assert "--yes-large" in refused[2].stderr and aws.balance("u-codes") == 5
    assert all("Traceback" not in r.stderr for r in usage + not_found + refused)


def test_an_empty_id_is_refused_before_any_aws_call(console):
    # An endpoint nobody answers: reaching it would say "cannot reach"
    for args in (["balance", ""], ["job", "show", ""], ["dlq", "delete", ""], ["audit", " "], ["balance-events", ""]):
        run = console("--endpoint-url", "http://127.0.0.1:9", *args)
        assert run.exit_code == 2 and "not an id" in run.stderr and "cannot reach" not in run.stderr, run.stderr


def test_epoch_milliseconds_and_profile_and_region_ignored_with_local(installed, aws):
    aws.seed_balance("u-epoch", 4)
    since = lambda value: json.loads(installed("--local", "--json", "ledger", "u-epoch", "--since", value).stdout)  # noqa: E731
    assert len(since("1640995200000")) == 1
    assert since(str(int(time.time() * 1000) + 3_600_000)) == []
    # --profile and --region mean nothing against the local stack: said, not silently dropped
    run = installed("--local", "--profile", "prod-admin", "--region", "eu-west-1", "--json", "balance", "u-epoch")
    assert run.exit_code == 0 and json.loads(run.stdout)["remaining"] == 4
    assert "--profile and --region ignored with --local" in run.stderr


# --- semantics stated and consistent, and the conventions of the aws and gh CLIs ----------------------------


def test_job_show_says_a_failed_held_job_released_its_hold_and_balance_shows_the_last_audit_fix(installed, aws):
    # A held job that failed: its hold released, nothing refunded
    aws.seed_balance("u-held", 10)
    aws.holds().reserve("job-held-f", "u-held", "test", 4)
    assert aws.processor().process({"id": "e-held-f", **failed("job-held-f", "u-held")}).kind == "settled"
    shown = installed("--local", "job", "show", "job-held-f", "--dlq-max", "0").stdout
    assert "released its hold of 4 credits back to remaining" in shown and "gave back" not in shown
    # A balance set behind the books, then fixed trusting the ledger: `balance` says who, when and why
    aws.seed_balance("u-fixed", 10)
    aws.put("Credits-dev", {"userId": "u-fixed", "remaining": 510, "held": 0, "updatedAt": "2020-01-01T00:00:00.000Z"})
    fixed = installed("--local", "audit", "u-fixed", "--fix", "--trust", "ledger", "--reason", "INC-7 stray update", "--min-age", "0")
    assert fixed.exit_code == 0, fixed.stderr
    shown = json.loads(installed("--local", "--json", "balance", "u-fixed").stdout)
    assert shown["remaining"] == 10 and shown["lastAuditFix"]["reason"] == "INC-7 stray update"
    assert shown["lastAuditFix"]["previous"]["remaining"] == 510
    table = installed("--local", "balance", "u-fixed").stdout
    assert "last set by `audit --fix`" in table and "INC-7" in table


def test_alarms_by_name_alarms_list_one_spelling_of_disabled_and_query_as_a_table(installed, aws):
    listed = json.loads(installed("--local", "--json", "alarms", "list").stdout)
    assert {"errors", "adjustments", "dlq-depth"} <= {a["concern"] for a in listed}
    assert "cc-reconciler-adjustments-dev\tadjustments" in installed("--local", "--output", "text", "alarms", "list").stdout.splitlines()
    assert installed("--local", "alarms", "disable", "dlq-depth").exit_code == 0
    try:
        named = json.loads(installed("--local", "--json", "alarms", "status", "dlq-depth").stdout)
        assert [(a["name"], a["actionsEnabled"]) for a in named] == [("cc-reconciler-dlq-depth-dev", False)]
        table = installed("--local", "alarms", "status", "dlq-depth").stdout
        assert "disabled" in table and "DISABLED" not in table
    finally:
        installed("--local", "alarms", "enable", "dlq-depth")
    assert installed("--local", "alarms", "status", "no-such").exit_code == 3
    # --query with table output: the value, or a table, never JSON
    aws.seed_balance("u-query", 4)
    assert installed("--local", "--query", "remaining", "balance", "u-query").stdout.strip() == "4"
    as_table = installed("--local", "--query", "{user: userId, left: remaining}", "balance", "u-query").stdout
    assert "{" not in as_table and "left" in as_table and "4" in as_table
    # --output yaml: the JSON document, as block YAML (as the aws CLI's)
    import yaml

    as_json = json.loads(installed("--local", "--json", "balance", "u-query").stdout)
    as_yaml = installed("--local", "--output", "yaml", "balance", "u-query").stdout
    assert yaml.safe_load(as_yaml) == as_json and not as_yaml.lstrip().startswith("{")
    assert yaml.safe_load(installed("--local", "--output", "yaml", "--query", "{left: remaining}", "balance", "u-query").stdout) == {"left": 4}


def test_backup_covers_every_table_of_the_stage(installed):
    planned = json.loads(installed("--local", "--json", "backup", "--dry-run").stdout)
    assert [b["table"] for b in planned] == ["Jobs-dev", "Credits-dev", "Ledger-dev", "UserLedger-dev", "Settlements-dev", "BalanceEvents-dev"]


def test_completion_and_the_version(console):
    import os
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(sys.executable), "reconciler")
    # Typer finds the shell among the command's parent processes (shellingham), as in a user's terminal: so the
    # command runs under bash, whatever started the suite (a detached run has no shell above it). The `exit` keeps
    # bash from replacing itself with the command (it does for a lone command).
    shown = subprocess.run(["bash", "-c", f'"{script}" --show-completion; exit $?'], capture_output=True, text=True, cwd="/", timeout=60)
    assert shown.returncode == 0 and "_RECONCILER_COMPLETE" in shown.stdout, shown.stderr
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


# --- Adjustments: every change to the books, as v1's rate alarm counted credit adjustments ---------------------


def _adjustments(installed) -> float:
    series = json.loads(installed("--local", "--json", "metrics", "--since", "1h").stdout)
    (adjustments,) = [s for s in series if s["name"] == "Adjustments"]
    return adjustments["total"]


def test_the_adjustments_metric_counts_operators_changes_in_the_series_the_rate_alarm_reads(installed, aws):
    before = _adjustments(installed)
    # An adjustment applied counts once; its retry (the same reference) and a dry run do not
    adjust = ["--local", "adjust", "u-metric", "7", "--reason", "opening", "--reference", "M-1", "--create-user"]
    assert installed(*adjust).exit_code == 0
    assert installed(*adjust).exit_code == 0
    assert installed("--local", "adjust", "u-metric", "1", "--reason", "r", "--reference", "M-2", "--dry-run").exit_code == 0
    assert _adjustments(installed) == before + 1
    # An audit correction counts once
    aws.put("Credits-dev", {"userId": "u-metric", "remaining": 70, "held": 0, "updatedAt": "2020-01-01T00:00:00.000Z"})
    assert installed("--local", "audit", "u-metric", "--fix", "--trust", "ledger", "--reason", "INC-8", "--min-age", "0").exit_code == 0
    assert _adjustments(installed) == before + 2
    # In both series the function writes: the stage's (the alarm's) and the v1 runbook's dimensionless one
    cloudwatch = aws.client("cloudwatch")
    window = {"StartTime": time.time() - 3600, "EndTime": time.time() + 60, "Period": 3600, "Statistics": ["Sum"]}
    plain = cloudwatch.get_metric_statistics(Namespace="Reconciler", MetricName="Adjustments", **window)["Datapoints"]
    assert sum(point["Sum"] for point in plain) >= 2


# --- events replay skips what the function already handled ----------------------------------------------------


def test_events_replay_skips_what_was_already_handled_and_says_so(installed, empty_dlq, emulate):
    aws = empty_dlq
    aws.read_ops_topic()
    aws.seed_balance("u-replay", 10)
    # Given a render settled and a render on an unknown model refused (dead-lettered, with its alert) when they arrived
    aws.client("events").put_events(Entries=[as_entry(rendered("job-rp-ok", "u-replay")), as_entry(rendered("job-rp-bad", "u-replay", "hd-v9"))])
    # (`python -m emulator deliver`, in-process: what `up` does continuously)
    first = emulate("--json", "deliver")
    assert sorted(o["outcome"] for o in first.json()) == ["rejected", "settled"], first.stderr
    assert aws.balance("u-replay") == 8 and len(aws.dlq_messages()) == 1
    assert "hd-v9" in json.dumps([p.document for p in aws.published()])  # its alert
    # and the operator dealt with the dead letter
    (letter,) = aws.dlq_messages()
    assert installed("--local", "dlq", "delete", letter["MessageId"]).exit_code == 0
    # When the archive is replayed: the plan says what happens to events already handled
    run = installed("--local", "--json", "events", "replay", "--from", "10m", "--to", "now")
    assert run.exit_code == 0, run.stderr
    assert "skips" in json.loads(run.stdout)["expect"] and "not dead-lettered or alerted again" in run.stderr
    replayed = emulate("--json", "deliver").json()
    # Then both are skipped, and each is reported as such: nothing moved, no DLQ message, no second alert
    assert sorted(o["outcome"] for o in replayed) == ["already-refused", "duplicate"]
    assert all(o["replay"].startswith("cc-reconciler-dev-") for o in replayed)
    assert aws.balance("u-replay") == 8 and aws.dlq_messages() == [] and aws.published() == []
    # After events-dropped (the function never received them), --refused dead-letter dead-letters the refused again
    run = installed("--local", "--json", "events", "replay", "--from", "10m", "--to", "now", "--refused", "dead-letter")
    assert json.loads(run.stdout)["replayName"].endswith("-dead-letter-refused")
    again = emulate("--json", "deliver").json()
    assert sorted(o["outcome"] for o in again) == ["duplicate", "rejected"]
    assert len(aws.dlq_messages()) == 1 and aws.balance("u-replay") == 8
