"""The deployed shadow (`--context mode=shadow`, docs/migration.md step 1) on the local stack: its resources created from
the synthesized shadow template beside a v1 stand-in, both rules receiving the same events from the bus, the shadow
function deciding each with v2's code, and `shadow report --deployed` naming how v1's books differ; v1's tables are
byte for byte what they were, and every call the shadow made is one its synthesized role allows (and no more)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks.baseline_v1 import V1Baseline
from emulator.shadow import LocalShadow, provision_shadow
from infra.config import config_for
from reconciler import bootstrap
from reconciler.contract import ResourceNames
from tests.integration.cli.v1_items import rendered, v1_books
from tests.least_privilege.calls import SHADOW_FUNCTION, Need, needs
from tests.least_privilege.policies import Observed, Templates, check_shadow_function

V1_TABLES = ("Jobs-dev", "Credits-dev", "Ledger-dev")


@pytest.fixture(scope="module")
def templates(stage_templates) -> dict[str, dict]:
    """The dev stage's deployed shadow (`--context mode=shadow`), from the session's synthesis cache."""
    return stage_templates("dev", "shadow")


def table_bytes(env, *tables: str) -> dict[str, str]:
    """Every item of each table, as canonical JSON text (DynamoDB's own encoding of each attribute)."""
    dynamodb = env.client("dynamodb")
    found = {}
    for table in tables:
        items, request = [], {"TableName": table, "ConsistentRead": True}
        while True:
            page = dynamodb.scan(**request)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        found[table] = json.dumps(sorted(items, key=lambda i: json.dumps(i, sort_keys=True)), sort_keys=True)
    return found


@pytest.fixture
def deployed(env, templates, monkeypatch) -> Iterator[LocalShadow]:
    """The shadow's resources from its template beside the stand-in's, and its function's environment in this process
    (a new container, forgotten afterwards)."""
    shadow = provision_shadow(templates, "dev", env.session, env.endpoint)
    for name, value in shadow.environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", env.endpoint)
    bootstrap.reset_container()
    yield shadow
    bootstrap.reset_container()


def record_calls(calls: list[tuple[str, str, dict]]) -> None:
    """Every API call of the container's session (the shadow function's clients), as botocore is about to make it."""

    def seen(params: dict, model: Any, **_: Any) -> None:
        calls.append((model.service_model.service_name, model.name, dict(params)))

    bootstrap.default_session().events.register("provide-client-params", seen)


def v1_settles(env, events: list[dict], lose_balance_update_of: dict[str, int]) -> None:
    """The v1 stand-in on v1's rule (the local stack's rule, to its invoke queue): separate reads and writes; an
    invalid event fails (v1's DLQ), and a balance update is lost to a concurrent read-modify-write."""
    v1 = V1Baseline(env.client("dynamodb"), *V1_TABLES)
    for event in events:
        try:
            v1.process(event)
        except KeyError:
            continue  # v1 fails on it: the event waits in v1's DLQ
    for user, amount in lose_balance_update_of.items():
        item = env.client("dynamodb").get_item(TableName="Credits-dev", Key={"userId": {"S": user}})["Item"]
        env.put("Credits-dev", {"userId": user, "remaining": int(item["remaining"]["N"]) + amount})


def received(env, queue_url: str) -> list[dict]:
    sqs, found = env.client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return found


def test_a_local_stack_of_the_stage_has_none_of_the_shadows_resources(env):
    # The stage's templates are its own app's: the shadow's table, DLQ and second rule on v1's pattern (which would
    # deliver every event twice to the stack's invoke queue) come only with provision_shadow.
    names = ResourceNames("dev")
    assert names.shadow_table not in env.client("dynamodb").list_tables()["TableNames"]
    assert not env.client("sqs").list_queues(QueueNamePrefix=names.shadow_dead_letter_queue).get("QueueUrls")
    assert [rule["Name"] for rule in env.client("events").list_rules()["Rules"] if rule["Name"] == names.shadow_rule] == []


def test_the_deployed_shadow_decides_v1s_events_and_the_report_names_the_differences(env, deployed, cli, tmp_path, templates):
    # Given v1's books (u1: 80) and the shadow deployed beside v1 from its template, with a baseline
    v1_books(env)
    shadow = deployed
    baseline = str(tmp_path / "shadow")
    assert cli("shadow", "start", "--dir", baseline).exit_code == 0
    # When the pipeline publishes five events on the bus (one v1 will never settle, one invalid)
    invalid = {"detail-type": "video.rendered", "detail": {"jobId": "job-e", "seconds": 2, "model": "test"}}  # no userId
    failed = {"detail-type": "video.failed", "detail": {"jobId": "job-c", "userId": "u1"}}
    published = [rendered("job-a", seconds=10), rendered("job-b", seconds=5), failed, rendered("job-d", seconds=3), invalid]
    assert all(env.stack.publish(published))
    # Then the shadow's rule delivers them to the shadow function, which writes nothing to v1's tables
    untouched = table_bytes(env, *V1_TABLES, "UserLedger-dev", "Settlements-dev")
    calls: list[tuple[str, str, dict]] = []
    record_calls(calls)
    invoker = shadow.invoker(env.client("sqs"))
    assert invoker.drain() == 5
    decided = {r["result"]["jobId"]: r["result"] for r in invoker.results}
    assert {job: (d["outcome"], d["balanceDelta"]) for job, d in decided.items()} == {
        "job-a": ("settled", -10),
        "job-b": ("settled", -5),
        "job-c": ("settled", 0),
        "job-d": ("settled", -3),
        "job-e": ("rejected", 0),
    }
    # And a redelivery (EventBridge and Lambda deliver at least once) is its first decision, recorded once
    first = invoker.results[0]["event"]
    assert invoker.invoke(first) == invoker.results[0]["result"]
    assert table_bytes(env, *V1_TABLES, "UserLedger-dev", "Settlements-dev") == untouched
    assert env.client("dynamodb").scan(TableName="ShadowDecisions-dev", Select="COUNT")["Count"] == 5 + 4  # decisions + claims
    assert received(env, shadow.dlq_url) == []
    # When v1 settles the same events from its own rule: job-d's invocation fails (v1's DLQ), job-b's balance write is lost
    v1_events = [e for e in received(env, env.resources.invoke_queue_url) if e["detail"].get("jobId") != "job-d"]
    assert len(v1_events) == 4
    v1_settles(env, v1_events, lose_balance_update_of={"u1": 5})
    # Then the report of the deployed shadow names both differences, per job and per user
    report = cli("--json", "shadow", "report", "--deployed", "--dir", baseline)
    assert report.exit_code == 1, report.stderr
    found = report.json()
    assert found["decided"] == 5 and found["outcomes"] == {"settled": 4, "rejected": 1}
    assert found["totals"] == {"v2": -18, "v1Ledger": -15, "v1Balances": -10}
    named = {(d["scope"], d["subject"]): d["named"] for d in found["differences"]}
    assert set(named) == {("job", "job-d"), ("user", "u1")}
    assert "v1's ledger shows nothing for this job" in named[("job", "job-d")]
    assert "-5 credits of v1's ledgered updates never reached the balance" in named[("user", "u1")]
    # And every call the shadow made is allowed by its synthesized role, and its role allows nothing else
    observed = Observed({SHADOW_FUNCTION: {need: {"shadow_events"} for service, op, params in calls for need in needs(service, op, params)}})
    config = config_for("dev")
    assert check_shadow_function(Templates("dev", config.account, config.region, templates), observed) == []
    assert {need.resource for need in observed.of(SHADOW_FUNCTION)} == {"table/ShadowDecisions-{stage}"}
    assert Need("dynamodb:PutItem", "table/ShadowDecisions-{stage}") in observed.of(SHADOW_FUNCTION)


def test_a_report_of_the_deployed_shadow_before_any_decision_finds_nothing(env, deployed, cli, tmp_path):
    baseline = str(tmp_path / "shadow")
    cli("shadow", "start", "--dir", baseline)
    found = cli("--json", "shadow", "report", "--deployed", "--dir", baseline)
    assert found.exit_code == 0 and found.json()["decided"] == 0
