"""Shadow mode (issue #23): v2 decides v1's events read-only, and `shadow report` names how v1's books differ."""

from __future__ import annotations

import json

from benchmarks.baseline_v1 import V1Baseline
from tests.integration.cli.v1_items import rendered, v1_books


def envelopes(tmp_path, *events: dict):
    path = tmp_path / "events.jsonl"
    lines = [{"id": f"ev-{n}", "source": "video.generation", **event} for n, event in enumerate(events)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path, lines


def test_the_shadow_decides_without_writing_and_names_the_updates_v1_lost(env, cli, tmp_path):
    # Given v1's books (u1: 80 = 100 - 20) and a shadow baseline
    v1_books(env)
    shadow = str(tmp_path / "shadow")
    assert cli("shadow", "start", "--dir", shadow).exit_code == 0
    path, events = envelopes(tmp_path, rendered("job-a", seconds=10), rendered("job-b", seconds=5))
    redelivered = tmp_path / "again.jsonl"
    redelivered.write_text(json.dumps(events[0]) + "\n")
    # When the shadow decides the events (and a redelivery) before v1 settles them
    run = cli("--json", "shadow", "decide", str(path), "--dir", shadow)
    assert run.exit_code == 0, run.stderr
    assert [(d["jobId"], d["outcome"], d["balanceDelta"]) for d in run.json()] == [("job-a", "settled", -10), ("job-b", "settled", -5)]
    assert [d["outcome"] for d in cli("--json", "shadow", "decide", str(redelivered), "--dir", shadow).json()] == []  # the same event id
    # Then nothing was written to the live tables
    assert env.balance("u1") == 80
    assert env.store().get_record("job-a") is None
    # And v1 settles them, losing one balance update to a concurrent read-modify-write
    dynamodb = env.client("dynamodb")
    v1 = V1Baseline(dynamodb, "Jobs-dev", "Credits-dev", "Ledger-dev")
    stale = dynamodb.get_item(TableName="Credits-dev", Key={"userId": {"S": "u1"}})["Item"]
    v1.process(events[0])
    v1.process(events[1])
    dynamodb.put_item(TableName="Credits-dev", Item={**stale, "remaining": {"N": str(80 - 10)}})  # job-b's -5 overwritten
    # Then the report agrees per job and names the lost update per user
    report = cli("--json", "shadow", "report", "--dir", shadow)
    assert report.exit_code == 1
    found = report.json()
    assert found["totals"] == {"v2": -15, "v1Ledger": -15, "v1Balances": -10}
    assert [(d["scope"], d["subject"]) for d in found["differences"]] == [("user", "u1")]
    assert "-5 credits of v1's ledgered updates never reached the balance" in found["differences"][0]["named"]


def test_a_job_v1_charged_twice_and_a_failure_v1_dropped_are_named(env, cli, tmp_path):
    v1_books(env)
    shadow = str(tmp_path / "shadow")
    cli("shadow", "start", "--dir", shadow)
    failed = {"detail-type": "video.failed", "detail": {"jobId": "job-c", "userId": "u1"}}
    path, _ = envelopes(tmp_path, rendered("job-c", seconds=4), failed, rendered("job-d", seconds=3))
    decided = cli("--json", "shadow", "decide", str(path), "--dir", shadow).json()
    assert [d["outcome"] for d in decided] == ["settled", "conflict", "settled"]
    # v1 charged job-c twice (two ledger ids, as a v1 without a duplicate check would) and never saw job-d's event
    for suffix in ("charge", "charge-again"):
        env.put(
            "Ledger-dev",
            {
                "ledgerId": f"job-c#{suffix}",
                "userId": "u1",
                "timestamp": "2026-12-01T10:00:00.000Z",
                "type": "debit",
                "amount": 4,
                "reference": "job-c",
            },
        )
    env.put("Credits-dev", {"userId": "u1", "remaining": 72})
    found = cli("--json", "shadow", "report", "--dir", shadow).json()
    named = {d["subject"]: d["named"] for d in found["differences"] if d["scope"] == "job"}
    assert set(named) == {"job-c", "job-d"}
    assert "2 times" in named["job-c"] and "more than once" in named["job-c"]
    assert "shows nothing" in named["job-d"]


def test_a_report_without_a_baseline_says_how_to_start(env, cli, one_line_error, tmp_path):
    one_line_error(cli("shadow", "report", "--dir", str(tmp_path / "none")), "shadow start")
