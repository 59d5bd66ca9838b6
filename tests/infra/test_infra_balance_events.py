"""Balance events (docs/events.md): the Credits stream, the function, its mapping, role, failure queue and alarms."""

from __future__ import annotations

import json

from infra_helpers import as_list, only_resource, resource_named

from emulator.stream_poller import mapping_filters
from reconciler import config as runtime_config
from reconciler import contract
from reconciler.contract import BALANCE_EVENT_ALARM_CONCERNS


def test_credits_table_streams_new_and_old_images_and_the_history_table_exists(synthesized):
    names = synthesized.config.names
    credits = resource_named(synthesized.data, "AWS::DynamoDB::Table", "TableName", names.credits_table)["Properties"]
    assert credits["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert credits["KeySchema"] == [{"AttributeName": "userId", "KeyType": "HASH"}]  # unchanged: no replacement
    history = resource_named(synthesized.data, "AWS::DynamoDB::Table", "TableName", names.balance_events_table)["Properties"]
    assert history["KeySchema"] == [{"AttributeName": "userId", "KeyType": "HASH"}, {"AttributeName": "eventKey", "KeyType": "RANGE"}]
    for name in (names.jobs_table, names.ledger_table, names.user_ledger_table):
        assert "StreamSpecification" not in resource_named(synthesized.data, "AWS::DynamoDB::Table", "TableName", name)["Properties"]


def test_failure_queue_is_encrypted_and_ssl_only(synthesized):
    names = synthesized.config.names
    queue = resource_named(synthesized.data, "AWS::SQS::Queue", "QueueName", names.balance_events_failure_queue)["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    policies = synthesized.data.find_resources("AWS::SQS::QueuePolicy")
    assert any(
        s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        for p in policies.values()
        for s in as_list(p["Properties"]["PolicyDocument"]["Statement"])
    )


def test_function_and_its_stream_mapping(synthesized):
    config = synthesized.config
    function = resource_named(synthesized.compute, "AWS::Lambda::Function", "FunctionName", config.names.balance_events_function)["Properties"]
    assert function["Handler"] == "reconciler.handlers.balance_stream.handler"
    assert function["Architectures"] == ["arm64"] and function["Runtime"] == "python3.12"
    assert len(function["Layers"]) == 1 and "powertools" in function["Layers"][0]
    env = function["Environment"]["Variables"]
    assert env[contract.ENV_EVENT_SOURCE] == "credits.reconciler"
    assert env[contract.ENV_LOW_THRESHOLD] == str(config.balance_events.low_threshold)
    assert env[contract.ENV_OVERDRAFT_ALERT_LEVEL] == "0"
    # The environment is what the runtime validates at start.
    resolved = {**env, "LEDGER_TABLE_NAME": "Ledger-x", "USER_LEDGER_TABLE_NAME": "UserLedger-x", "BALANCE_EVENTS_TABLE_NAME": "BalanceEvents-x"}
    loaded = runtime_config.BalanceEventsConfig.from_env(resolved)
    assert loaded.thresholds.low == config.balance_events.low_threshold
    # Both ledgers: the entries behind a crossing are job postings (UserLedger) or operators' entries (Ledger)
    assert (loaded.ledger_table, loaded.user_ledger_table) == ("Ledger-x", "UserLedger-x")
    assert "TablesUserLedger" in str(env[contract.ENV_USER_LEDGER_TABLE]) and "TablesLedger" in str(env[contract.ENV_LEDGER_TABLE])
    mapping = only_resource(synthesized.compute, "AWS::Lambda::EventSourceMapping")["Properties"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["ParallelizationFactor"] == 1
    assert mapping["MaximumRetryAttempts"] == 50 and mapping["MaximumRecordAgeInSeconds"] == 6 * 3600
    assert "StreamArn" in str(mapping["EventSourceArn"]) and "OnFailure" in mapping["DestinationConfig"]


def test_every_record_reaches_the_function_in_batches(synthesized):
    # Every change of a balance is checked for its explanation (docs/events.md, "Every balance change explained"): the
    # mapping filters nothing (domain/stream_filter.py keeps the threshold filters that would deliver only records
    # near a threshold, proven by tests/unit/domain/test_stream_filter.py); the stage's batching window amortises it.
    mapping = only_resource(synthesized.compute, "AWS::Lambda::EventSourceMapping")["Properties"]
    assert "FilterCriteria" not in mapping
    assert mapping["MaximumBatchingWindowInSeconds"] == synthesized.config.balance_events.batching_window_seconds
    # What the local stack's poller applies is what the template says.
    assert mapping_filters({"compute": synthesized.compute.to_json()}) == []


def test_role_publishes_only_its_own_source_to_the_default_bus(synthesized):
    policies = synthesized.compute.find_resources("AWS::IAM::Policy")
    statements = [
        s for lid, p in policies.items() if lid.startswith("BalanceEventsRole") for s in as_list(p["Properties"]["PolicyDocument"]["Statement"])
    ]
    publish = [s for s in statements if "events:PutEvents" in as_list(s["Action"])]
    assert len(publish) == 1
    assert publish[0]["Condition"] == {"StringEquals": {"events:source": "credits.reconciler"}}
    assert "event-bus/default" in str(publish[0]["Resource"])
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert not any(a.startswith("dynamodb:") and a.endswith(("DeleteItem", "Scan", "TransactWriteItems")) for a in actions)
    # The change check reads and writes nothing: no UpdateItem anywhere, no read of Ledger by id
    assert not any("dynamodb:UpdateItem" in as_list(s["Action"]) for s in statements)
    assert not any(s.get("Sid") == "LedgerTable" for s in statements)
    # The entries behind a crossing: a Query of UserLedger (the job postings) and of Ledger's by-user index, nothing else
    queries = [s for s in statements if as_list(s["Action"]) == ["dynamodb:Query"]]
    resources = sorted(json.dumps(r) for s in queries for r in as_list(s["Resource"]))
    assert len(resources) == 2
    assert any("TablesUserLedger" in r and "/index/" not in r for r in resources)
    assert any("TablesLedger" in r and r.endswith(f'/index/{contract.LEDGER_BY_USER_INDEX}"]]}}') for r in resources)
    # The settlement function's role gains nothing of them: it publishes only the timer scan's expired holds and credits.
    reconciler = [
        s for lid, p in policies.items() if lid.startswith("ReconcilerRole") for s in as_list(p["Properties"]["PolicyDocument"]["Statement"])
    ]
    # Nothing of the balance events but for the liability snapshot's one PutItem (infra/constructs/liability_snapshot.py)
    touching = [s for s in reconciler if "BalanceEvents" in str(s["Resource"])]
    assert [(s["Sid"], as_list(s["Action"])) for s in touching] == [("LiabilitySnapshotPut", ["dynamodb:PutItem"])]
    for statement in (s for s in reconciler if "events:PutEvents" in as_list(s["Action"])):
        assert statement["Condition"]["ForAllValues:StringEquals"] == {
            "events:detail-type": [contract.HOLD_EXPIRED_DETAIL_TYPE, contract.CREDITS_EXPIRED_DETAIL_TYPE, contract.CREDITS_EXPIRING_DETAIL_TYPE]
        }


def test_the_batching_window_keeps_events_and_the_unexplained_alarm_within_minutes_in_every_stage():
    from infra.config import config_for

    # A balance event and the unexplained-change metric wait at most the window; the alarm's period is one minute.
    for stage in contract.STAGES:
        assert 0 < config_for(stage).balance_events.batching_window_seconds <= 30


def test_lost_batch_alarms_watch_the_destination_and_the_failure_queues_oldest_message(synthesized):
    names = synthesized.config.names

    def alarm(concern: str) -> dict:
        return resource_named(synthesized.monitoring, "AWS::CloudWatch::Alarm", "AlarmName", names.alarm(concern))["Properties"]

    delivery = alarm("balance-events-delivery-failures")
    assert (delivery["Namespace"], delivery["MetricName"], delivery["Statistic"], delivery["Threshold"]) == (
        "AWS/Lambda",
        "DestinationDeliveryFailures",
        "Sum",
        1,
    )
    assert "BalanceEventsFunction" in json.dumps(delivery["Dimensions"])
    age = alarm("balance-events-failed-batches-age")
    assert (age["Namespace"], age["MetricName"], age["Statistic"], age["Period"]) == ("AWS/SQS", "ApproximateAgeOfOldestMessage", "Maximum", 3600)
    # Before SQS deletes the description at 14 days, with 4 days left to act
    assert age["Threshold"] == 10 * 86400 and age["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert "BalanceEventsFailureQueue" in json.dumps(age["Dimensions"])
    # The iterator age alarm already watches the stream function's lag
    assert alarm("balance-events-iterator-age")["MetricName"] == "IteratorAge"


def test_alarms_notify_the_ops_topic(synthesized):
    names = synthesized.config.names
    for concern in BALANCE_EVENT_ALARM_CONCERNS:
        alarm = resource_named(synthesized.monitoring, "AWS::CloudWatch::Alarm", "AlarmName", names.alarm(concern))["Properties"]
        assert alarm["AlarmActions"] and alarm["OKActions"]


def test_the_credits_stream_reaches_compute_as_a_strong_reference(synthesized):
    # Decided before the first deploy (docs/infrastructure.md, "Cross-stack references"): an export, so a data deploy
    # that would replace the stream fails instead of leaving the mapping on a disabled stream.
    mapping = only_resource(synthesized.compute, "AWS::Lambda::EventSourceMapping")["Properties"]
    source = mapping["EventSourceArn"]
    assert set(source) == {"Fn::ImportValue"}, f"not an export: {source}"
    export = source["Fn::ImportValue"]
    outputs = synthesized.data.to_json()["Outputs"].values()
    (exported,) = [o["Value"] for o in outputs if o.get("Export", {}).get("Name") == export]
    assert exported["Fn::GetAtt"][1] == "StreamArn" and exported["Fn::GetAtt"][0].startswith("TablesCredits")
    for kind in ("compute", "monitoring"):
        assert "Fn::GetStackOutput" not in json.dumps(synthesized.template(kind).to_json()), f"{kind}: a weak reference"
