"""alarms, pause/resume, backup, events replay, and the emulator's send: against moto, with the resources infra would deploy."""

from __future__ import annotations

import json


def put_alarm(env, name: str) -> None:
    env.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        MetricName="Errors",
        Namespace="AWS/Lambda",
        Statistic="Sum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        ActionsEnabled=True,
    )


def test_alarms_disable_and_enable_only_this_stages_reconciler_alarms(env, cli):
    # Given the stage's alarms and some that are not ours
    for name in ("cc-reconciler-errors-dev", "cc-reconciler-adjustments-dev", "cc-reconciler-errors-prod", "other-errors-dev"):
        put_alarm(env, name)
    # When they are disabled (a dry run first changes nothing)
    cli("alarms", "disable", "--dry-run")
    assert all(a["actionsEnabled"] for a in cli("--json", "alarms", "status").json())
    assert cli("alarms", "disable").exit_code == 0
    # Then exactly the dev reconciler alarms are silenced, and enable restores them
    status = {a["name"]: a["actionsEnabled"] for a in cli("--json", "alarms", "status").json()}
    assert status == {"cc-reconciler-adjustments-dev": False, "cc-reconciler-errors-dev": False}
    prod = env.client("cloudwatch").describe_alarms(AlarmNames=["cc-reconciler-errors-prod"])["MetricAlarms"][0]
    assert prod["ActionsEnabled"] is True
    cli("alarms", "enable")
    assert all(a["actionsEnabled"] for a in cli("--json", "alarms", "status").json())


def test_pause_sends_events_to_the_dlq_and_resume_restores_the_configured_concurrency(env, cli):
    # Given the function with its reserved concurrency and a 2-hour maximum event age
    name = env.create_function(concurrency=10, max_event_age=7200)
    lam = env.client("lambda")
    # When it is paused
    assert cli("pause", "--dry-run").exit_code == 0
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 10
    run = cli("pause")
    # Then nothing runs and the operator is told where the events go (Lambda does not retry at concurrency 0)
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 0
    assert "events sent while paused go to the DLQ at once, unrun" in run.stdout
    # When it is resumed (from infra's config, or an override)
    resumed = cli("resume", "--concurrency", "3")
    assert resumed.exit_code == 0 and "dlq replay" in resumed.stdout
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 3
    cli("resume")
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 10


def test_pause_without_the_function_is_a_one_line_error(env, cli, one_line_error):
    one_line_error(cli("pause"), "missing resource")


def test_backup_creates_one_backup_per_table(env, cli):
    assert cli("--json", "backup", "--dry-run").json()[0]["backupArn"] is None
    assert env.client("dynamodb").list_backups()["BackupSummaries"] == []
    created = cli("--json", "backup").json()
    assert [b["table"] for b in created] == ["Jobs-dev", "Credits-dev", "Ledger-dev", "UserLedger-dev", "Settlements-dev", "BalanceEvents-dev"]
    assert all(b["backupArn"].startswith("arn:aws:dynamodb:") for b in created)
    assert created[1]["backupName"].startswith("Credits-dev-2") and created[1]["backupName"].endswith("Z")


def test_events_replay_starts_a_replay_of_the_archive_filtered_to_the_rule(env, cli, one_line_error):
    # Given the archive on the default bus (moto supports start_replay/describe_replay)
    events = env.client("events")
    bus_arn = events.describe_event_bus(Name="default")["Arn"]
    events.create_archive(ArchiveName="cc-reconciler-archive-dev", EventSourceArn=bus_arn)
    # When a window is replayed
    run = cli("--json", "events", "replay", "--from", "2026-01-01T00:00:00", "--to", "2026-01-01T06:00:00")
    # Then a replay of that window runs, only to the reconciler's rule
    assert run.exit_code == 0, run.stderr
    replay = events.describe_replay(ReplayName=run.json()["replayName"])
    assert replay["Destination"]["FilterArns"] == [events.describe_rule(Name="cc-reconciler-events-dev")["Arn"]]
    assert "describe-replay" in cli("events", "replay", "--from", "2026-01-02", "--to", "2026-01-03", "--dry-run").stdout
    one_line_error(cli("events", "replay", "--from", "2026-01-03", "--to", "2026-01-02"), "--from must be before --to")


def test_local_send_publishes_each_line_and_prints_each_outcome(env, cli, tmp_path, emulate):
    lines = [
        {"source": "video.generation", "detail-type": "video.rendered", "detail": {"jobId": "j1", "userId": "u1", "seconds": 1, "model": "test"}},
        {"Source": "video.generation", "DetailType": "video.failed", "Detail": {"jobId": "j2", "userId": "u1"}},
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    outcomes = emulate("--json", "send", str(path)).json()
    assert sorted((o["jobId"], o["outcome"]) for o in outcomes) == [("j1", "settled"), ("j2", "settled")]
    # The same file again is two duplicates
    again = emulate("--json", "send", str(path)).json()
    assert sorted((o["jobId"], o["outcome"]) for o in again) == [("j1", "duplicate"), ("j2", "duplicate")]
