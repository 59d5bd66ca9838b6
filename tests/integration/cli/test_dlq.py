"""dlq list | show | replay: failures stay (visible again), successes are deleted, replays are harmless."""

from __future__ import annotations

import json


def rendered(job_id: str, user: str = "u1", event_id: str | None = None, model: str = "test") -> dict:
    return {
        "id": event_id or f"evt-{job_id}",
        "source": "video.generation",
        "detail-type": "video.rendered",
        "detail": {"jobId": job_id, "userId": user, "seconds": 1, "model": model},
    }


def on_failure(event: dict) -> str:
    return json.dumps(
        {
            "version": "1.0",
            "requestContext": {"condition": "RetriesExhausted"},
            "requestPayload": event,
            "responsePayload": {"errorMessage": "Task timed out", "errorType": "Timeout"},
        }
    )


def test_list_and_show_explain_each_message_and_leave_it_in_the_queue(env, cli):
    # Given one dead letter of each shape
    env.dead_letter(json.dumps(rendered("job-eb")), ERROR_CODE="Throttling", ERROR_MESSAGE="rate exceeded")
    failure_id = env.dead_letter(on_failure(rendered("job-of")))
    env.dead_letter(json.dumps(rendered("job-bad", model="nope")), errorType="InvalidEvent", field="model", reason="unknown model 'nope'")
    # When they are listed
    listed = {m["jobId"]: m for m in cli("--json", "dlq", "list").json()["messages"]}
    # Then each names its kind and reason, and all are still there
    assert listed["job-eb"]["kind"] == "eventbridge" and "Throttling" in listed["job-eb"]["reason"]
    assert listed["job-of"]["kind"] == "lambda-on-failure" and listed["job-of"]["reason"] == "Task timed out"
    assert listed["job-bad"]["reason"] == "model: unknown model 'nope'"
    assert len(env.dlq_messages()) == 3
    shown = cli("--json", "dlq", "show", failure_id).json()
    assert shown["event"]["detail"]["jobId"] == "job-of"
    assert cli("dlq", "show", "no-such-id").exit_code == 3  # not found


def test_replay_settles_the_good_ones_and_keeps_the_poison_message(env, cli):
    # Given two replayable dead letters (both shapes) and a poison one the reconciler rejects every time
    env.dead_letter(json.dumps(rendered("job-1")))
    env.dead_letter(on_failure(rendered("job-2")))
    poison = env.dead_letter(json.dumps(rendered("job-3", model="nope")), errorType="InvalidEvent", field="model", reason="unknown model")
    env.dead_letter("not json at all")
    # When the DLQ is replayed
    run = cli("--json", "dlq", "replay")
    # Then the good ones are settled and deleted, the poison stays with its reason, the junk is skipped
    assert run.exit_code == 1  # a failure is reported to scripts
    assert run.json()["summary"] == {"replayed": 2, "failed": 1, "skipped": 1, "would-replay": 0}
    failed = [i for i in run.json()["items"] if i["status"] == "failed"]
    assert failed[0]["messageId"] == poison and "unknown model" in failed[0]["detail"]
    remaining = env.dlq_messages()  # visible again right away
    assert sorted(m["MessageId"] for m in remaining if m["Body"] != "not json at all") == [poison]
    assert env.store().get_balance("u1").remaining == -2  # 1 s of `test`: 1 credit each
    # And replaying again changes nothing (the poison fails again, nothing is charged twice)
    again = cli("--json", "dlq", "replay")
    assert again.json()["summary"]["failed"] == 1 and again.json()["summary"]["replayed"] == 0
    assert env.store().get_balance("u1").remaining == -2


def test_replaying_an_already_settled_event_is_a_harmless_duplicate(env, cli):
    env.dead_letter(json.dumps(rendered("job-1")))
    env.dead_letter(json.dumps(rendered("job-1")))  # the same event twice
    run = cli("--json", "dlq", "replay")
    assert [i["detail"] for i in run.json()["items"]] == ["settled", "duplicate"]
    assert env.store().get_balance("u1").remaining == -1
    assert env.dlq_messages() == []


def test_replay_dry_run_invokes_and_deletes_nothing(env, cli):
    env.dead_letter(json.dumps(rendered("job-1")))
    run = cli("--json", "dlq", "replay", "--dry-run")
    assert run.json()["summary"]["would-replay"] == 1
    assert len(env.dlq_messages()) == 1 and env.store().get_balance("u1") is None


def test_replay_max_bounds_the_run(env, cli):
    for n in range(3):
        env.dead_letter(json.dumps(rendered(f"job-{n}")))
    assert cli("--json", "dlq", "replay", "--max", "2").json()["summary"]["replayed"] == 2
    assert len(env.dlq_messages()) == 1
    assert cli("dlq", "replay", "--max", "0").exit_code == 2
