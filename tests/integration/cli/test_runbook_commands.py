"""The v1 runbook's remaining steps, one command each: job show, dlq delete | purge | replay ID [--payload],
alarms disable|enable NAME..., ledger --all, logs tail, metrics, dlq list's depth."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from tests.integration.cli.test_stage_controls import put_alarm


def rendered(job_id: str, user: str = "u1", model: str = "test", event_id: str | None = None) -> dict:
    return {
        "id": event_id or f"evt-{job_id}",
        "source": "video.generation",
        "detail-type": "video.rendered",
        "detail": {"jobId": job_id, "userId": user, "seconds": 1, "model": model},
    }


def test_job_show_gathers_the_job_its_ledger_entries_and_its_dead_letters(env, cli, tmp_path, emulate):
    emulate("seed", "u1", "10")
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps(rendered("job-1")) + "\n")
    emulate("send", str(path))
    env.dead_letter(json.dumps(rendered("job-1", model="nope")), errorType="InvalidEvent", field="model", reason="unknown model")
    shown = cli("--json", "job", "show", "job-1").json()
    assert shown["job"]["settledAs"] == "rendered" and shown["job"]["chargedCredits"] == 1
    assert [e["amount"] for e in shown["ledger"]] == [-1]
    assert [d["reason"] for d in shown["deadLetters"]] == ["model: unknown model"]
    assert "settled as rendered" in cli("job", "show", "job-1").stdout
    assert cli("job", "show", "no-such-job").exit_code == 3  # not found


def test_dlq_delete_one_message_by_prefix_and_purge(env, cli, one_line_error):
    keep = env.dead_letter(json.dumps(rendered("job-keep")))
    drop = env.dead_letter(json.dumps(rendered("job-drop")))
    assert cli("dlq", "delete", drop, "--dry-run").exit_code == 0 and len(env.dlq_messages()) == 2
    assert cli("--json", "dlq", "delete", drop[:12]).json()["deleted"] is True
    assert [m["MessageId"] for m in env.dlq_messages()] == [keep]
    listed = cli("--json", "dlq", "list").json()
    assert listed["approximateNumberOfMessages"] == 1 and listed["queue"] == "cc-reconciler-dlq-dev"
    assert cli("dlq", "purge").exit_code == 0
    assert env.dlq_messages() == []


def test_dlq_purge_in_prod_needs_the_stage_name_typed_on_a_terminal(env, endpoint, stage_templates, cli, one_line_error):
    from emulator.server import reset
    from emulator.stack import provision_stack

    reset(endpoint)
    provision_stack(endpoint, "prod", templates=stage_templates("prod"))
    one_line_error(cli("--stage", "prod", "--endpoint-url", endpoint, "dlq", "purge", "--yes", local=False), "type the stage name")


def test_replay_one_message_and_a_corrected_payload(env, cli, tmp_path, emulate):
    emulate("seed", "u1", "10")
    good = env.dead_letter(json.dumps(rendered("job-a")))
    other = env.dead_letter(json.dumps(rendered("job-b")))
    bad = env.dead_letter(json.dumps(rendered("job-c", model="nope")), errorType="InvalidEvent", field="model", reason="unknown model")
    # One message only: the others stay
    run = cli("--json", "dlq", "replay", good)
    assert run.json()["summary"]["replayed"] == 1
    assert sorted(m["MessageId"] for m in env.dlq_messages()) == sorted([other, bad])
    # The poison one, with a corrected payload (just the detail): settled, recorded as corrected, deleted
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps({"jobId": "job-c", "userId": "u1", "seconds": 1, "model": "test"}))
    corrected = cli("--json", "dlq", "replay", bad[:10], "--payload", str(fixed))
    assert corrected.exit_code == 0, corrected.stderr
    assert corrected.json()["items"][0]["corrected"] is True
    assert env.store().get_job("job-c").settled_by_event == "corrected:evt-job-c"
    assert [m["MessageId"] for m in env.dlq_messages()] == [other]
    assert env.store().get_balance("u1").remaining == 8


def test_alarms_disable_and_enable_one_alarm_by_concern_or_name(env, cli, one_line_error):
    for name in ("cc-reconciler-errors-dev", "cc-reconciler-adjustments-dev"):
        put_alarm(env, name)
    assert cli("alarms", "disable", "errors").exit_code == 0
    status = {a["name"]: a["actionsEnabled"] for a in cli("--json", "alarms", "status").json()}
    assert status == {"cc-reconciler-adjustments-dev": True, "cc-reconciler-errors-dev": False}
    cli("alarms", "enable", "cc-reconciler-errors-dev")
    assert all(a["actionsEnabled"] for a in cli("--json", "alarms", "status").json())
    one_line_error(cli("alarms", "disable", "nope"), "no alarm cc-reconciler-nope-dev")


def test_ledger_of_a_window_across_users_states_its_cost(env, cli, one_line_error, tmp_path, emulate):
    # Given two opening balances (Ledger) and one render's charge (a UserLedger posting)
    emulate("seed", "u1", "10")
    emulate("seed", "u2", "5")
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps(rendered("job-1", user="u2")) + "\n")
    emulate("send", str(path))
    # When every user's entries of the last hour are listed
    run = cli("--json", "ledger", "--all", "--since", "1h")
    # Then both tables are scanned, merged oldest first, and the cost of reading them all is stated
    assert [(e["userId"], e["amount"]) for e in run.json()] == [("u1", 10), ("u2", 5), ("u2", -1)]
    assert "read all 3 items of UserLedger-dev and Ledger-dev (Scans" in run.stderr
    assert cli("--json", "ledger", "--all", "--since", "2000-01-01", "--until", "2000-01-02").json() == []
    one_line_error(cli("ledger", "--all"), "--since")
    one_line_error(cli("ledger", "u1", "--all", "--since", "1h"), "not both")


def test_logs_tail_and_metrics_read_what_the_runbook_queried(env, cli):
    logs = env.client("logs")
    group = "/aws/lambda/cc-agent-reconciler-dev"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s1")
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s1",
        logEvents=[
            {"timestamp": now - 1000, "message": '{"level":"ERROR","message":"settlement failed"}'},
            {"timestamp": now - 500, "message": '{"level":"INFO","message":"settled"}'},
        ],
    )
    tail = cli("logs", "tail", "--since", "5m")
    assert tail.exit_code == 0, tail.stderr
    assert "settlement failed" in tail.stdout and "settled" in tail.stdout
    assert len(cli("--json", "logs", "tail", "--since", "5m").json()) == 2
    env.client("cloudwatch").put_metric_data(
        Namespace="Reconciler",
        MetricData=[
            {
                "MetricName": "Adjustments",
                "Dimensions": [{"Name": "service", "Value": "credit-reconciler"}, {"Name": "stage", "Value": "dev"}],
                "Value": 3,
                "Timestamp": datetime.now(UTC),
            }
        ],
    )
    metrics = {m["metric"]: m for m in cli("--json", "metrics", "--since", "2h").json()}
    assert metrics["Adjustments"]["total"] == 3 and metrics["Lambda Errors"]["total"] == 0


def test_alarms_history_is_a_one_line_error_where_the_emulator_lacks_it(env, cli, one_line_error):
    # moto does not implement DescribeAlarmHistory; against AWS the command lists the history
    put_alarm(env, "cc-reconciler-errors-dev")
    one_line_error(cli("alarms", "history", "--since", "1d"), "DescribeAlarmHistory", "moto")
