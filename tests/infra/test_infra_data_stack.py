"""Tables, dead-letter queue and ops topic: names, durability and encryption per stage."""

from __future__ import annotations

import json

import pytest
from infra_helpers import as_list, joined, only_resource, resource_id, resource_named

from reconciler.contract import (
    EXPIRING_CREDITS_INDEX,
    HELD_AT_ATTRIBUTE,
    HOLD_USER_ATTRIBUTE,
    JOBS_UNSETTLED_INDEX,
    LEDGER_BY_USER_INDEX,
    OPEN_HOLDS_INDEX,
    OPS_TOPIC_ALARM_CONCERNS,
    USER_LEDGER_SORT_KEY,
)

TABLE_KEYS = {
    "Jobs": [{"AttributeName": "jobId", "KeyType": "HASH"}],
    "Credits": [{"AttributeName": "userId", "KeyType": "HASH"}],
    "Ledger": [{"AttributeName": "ledgerId", "KeyType": "HASH"}],
    # The job postings by user and time (docs/ledger.md): a user's history is a Query of the table, no index
    "UserLedger": [{"AttributeName": "userId", "KeyType": "HASH"}, {"AttributeName": USER_LEDGER_SORT_KEY, "KeyType": "RANGE"}],
}


@pytest.mark.parametrize("table", sorted(TABLE_KEYS))
def test_table_is_on_demand_encrypted_and_recoverable(synthesized, table):
    # Given the stage's data stack
    config = synthesized.config
    # When we look up the table by its contract name
    resource = resource_named(synthesized.data, "AWS::DynamoDB::Table", "TableName", f"{table}-{config.stage}")
    properties = resource["Properties"]
    # Then it has the contract key, on-demand billing, encryption and PITR
    assert properties["KeySchema"] == TABLE_KEYS[table]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["SSESpecification"] == {"SSEEnabled": True}, "tables must be encrypted at rest"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


@pytest.mark.parametrize("table", sorted(TABLE_KEYS))
def test_table_durability_follows_the_stage(synthesized, table):
    config = synthesized.config
    resource = resource_named(synthesized.data, "AWS::DynamoDB::Table", "TableName", f"{table}-{config.stage}")
    # RetainExceptOnCreate: kept on update and delete, removed when the create that made it rolls back, so a
    # failed first deploy can be retried (a retained fixed-name table would make the retry fail "already exists").
    expected_policy = {"dev": "Delete", "staging": "RetainExceptOnCreate", "prod": "RetainExceptOnCreate"}[config.stage]
    assert resource["DeletionPolicy"] == expected_policy, f"{table}-{config.stage}: {resource['DeletionPolicy']}"
    assert resource["UpdateReplacePolicy"] == ("Delete" if config.stage == "dev" else "Retain")
    assert resource["Properties"].get("DeletionProtectionEnabled", False) is (config.stage == "prod"), "deletion protection is on in prod only"


def test_ledger_has_the_by_user_index(synthesized):
    ledger = resource_named(synthesized.data, "AWS::DynamoDB::Table", "TableName", f"Ledger-{synthesized.config.stage}")
    assert ledger["Properties"]["GlobalSecondaryIndexes"] == [
        {
            "IndexName": LEDGER_BY_USER_INDEX,
            "KeySchema": [
                {"AttributeName": "userId", "KeyType": "HASH"},
                {"AttributeName": "timestamp", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        },
        {
            # sparse: a purchase or a grant whose expiry is not booked yet (docs/ledger.md, "Credits that expire")
            "IndexName": EXPIRING_CREDITS_INDEX,
            "KeySchema": [
                {"AttributeName": "expiryPending", "KeyType": "HASH"},
                {"AttributeName": "expiresAt", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        },
    ]


def test_user_ledger_has_no_index_so_a_posting_writes_one_item(synthesized):
    names = synthesized.config.names
    user_ledger = resource_named(synthesized.data, "AWS::DynamoDB::Table", "TableName", names.user_ledger_table)["Properties"]
    assert "GlobalSecondaryIndexes" not in user_ledger and "LocalSecondaryIndexes" not in user_ledger
    assert "StreamSpecification" not in user_ledger
    assert {a["AttributeName"]: a["AttributeType"] for a in user_ledger["AttributeDefinitions"]} == {"userId": "S", USER_LEDGER_SORT_KEY: "S"}
    # And the six tables are the stage's, by their contract names (the balance events' markers among them)
    tables = {r["Properties"]["TableName"] for r in synthesized.data.find_resources("AWS::DynamoDB::Table").values()}
    assert set(names.tables) <= tables and len(names.tables) == 6


def test_settlements_is_keyed_by_job_with_the_sparse_open_holds_index(synthesized):
    config = synthesized.config
    settlements = resource_named(synthesized.data, "AWS::DynamoDB::Table", "TableName", config.names.settlements_table)["Properties"]
    assert settlements["KeySchema"] == [{"AttributeName": "jobId", "KeyType": "HASH"}]
    (index,) = settlements["GlobalSecondaryIndexes"]
    assert index["IndexName"] == OPEN_HOLDS_INDEX and index["Projection"] == {"ProjectionType": "ALL"}
    assert index["KeySchema"] == [{"AttributeName": HOLD_USER_ATTRIBUTE, "KeyType": "HASH"}, {"AttributeName": HELD_AT_ATTRIBUTE, "KeyType": "RANGE"}]
    assert settlements["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": config.point_in_time_recovery}
    assert settlements.get("DeletionProtectionEnabled", False) is config.deletion_protection


def test_jobs_has_the_sparse_unsettled_index(synthesized):
    jobs = resource_named(synthesized.data, "AWS::DynamoDB::Table", "TableName", f"Jobs-{synthesized.config.stage}")
    assert jobs["Properties"]["GlobalSecondaryIndexes"] == [
        {
            "IndexName": JOBS_UNSETTLED_INDEX,
            "KeySchema": [
                {"AttributeName": "unsettled", "KeyType": "HASH"},
                {"AttributeName": "createdAt", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ]
    # Only the key attributes are declared: `unsettled` is absent from settled items, which makes the index sparse.
    assert {a["AttributeName"] for a in jobs["Properties"]["AttributeDefinitions"]} == {"jobId", "unsettled", "createdAt"}


def test_dead_letter_queue_keeps_messages_14_days_encrypted(synthesized):
    name = f"cc-reconciler-dlq-{synthesized.config.stage}"
    queue = resource_named(synthesized.data, "AWS::SQS::Queue", "QueueName", name)
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert queue["Properties"]["SqsManagedSseEnabled"] is True


def test_dead_letter_queue_policy_denies_plain_http_and_admits_only_the_two_event_rules(synthesized):
    stage = synthesized.config.stage
    (dlq,) = [
        lid
        for lid, q in synthesized.data.find_resources("AWS::SQS::Queue").items()
        if q["Properties"]["QueueName"] == synthesized.config.names.dead_letter_queue
    ]
    (policy,) = [p for p in synthesized.data.find_resources("AWS::SQS::QueuePolicy").values() if p["Properties"]["Queues"] == [{"Ref": dlq}]]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, f"no SSL-only deny in {statements}"
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert len(allows) == 1, f"only EventBridge may be admitted by resource policy: {allows}"
    (allow,) = allows
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    source_arns = allow["Condition"]["ArnEquals"]["aws:SourceArn"]
    config = synthesized.config
    expected = [
        f"arn:aws:events:{config.region}:{config.account}:rule/{name}-{stage}" for name in ("cc-reconciler-events", "cc-reconciler-credits-in")
    ]
    assert [joined(arn) for arn in source_arns] == expected, f"unexpected sources: {source_arns}"


def test_ops_topic_is_ssl_only_and_encrypted_with_a_rotating_customer_key(synthesized):
    stage = synthesized.config.stage
    topic = resource_named(synthesized.data, "AWS::SNS::Topic", "TopicName", f"ops-alerts-{stage}")
    key_id = topic["Properties"]["KmsMasterKeyId"]
    assert "Fn::GetAtt" in key_id, f"topic must use the stack's own key, not {key_id}"
    key = synthesized.data.find_resources("AWS::KMS::Key")[key_id["Fn::GetAtt"][0]]
    assert key["Properties"]["EnableKeyRotation"] is True
    expected_policy = "Delete" if stage == "dev" else "RetainExceptOnCreate"
    assert topic.get("DeletionPolicy", "Delete") == expected_policy and key["DeletionPolicy"] == expected_policy


def _stage_alarm_arns(config) -> set[str]:
    return {f"arn:aws:cloudwatch:{config.region}:{config.account}:alarm:{config.names.alarm(c)}" for c in OPS_TOPIC_ALARM_CONCERNS}


def _assert_scoped_to_this_stages_alarms(statement: dict, config) -> None:
    condition = statement["Condition"]
    assert set(condition) == {"StringEquals", "ArnLike"}, f"unexpected condition operators: {condition}"
    assert condition["StringEquals"] == {"aws:SourceAccount": config.account}
    assert set(condition["ArnLike"]) == {"aws:SourceArn"}
    arns = {joined(v) for v in as_list(condition["ArnLike"]["aws:SourceArn"])}
    assert arns == _stage_alarm_arns(config), f"source ARNs {sorted(arns)}"


def test_ops_topic_policy_admits_only_this_stages_alarms_over_ssl(synthesized):
    # Given the topic policy (CloudFormation replaces SNS's default policy with it)
    config = synthesized.config
    policy = only_resource(synthesized.data, "AWS::SNS::TopicPolicy")["Properties"]
    topic_id = resource_id(synthesized.data, "AWS::SNS::Topic")
    assert policy["Topics"] == [{"Ref": topic_id}]
    statements = policy["PolicyDocument"]["Statement"]
    # Then the SSL-only deny stays, for every principal
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Principal"] == "*" and deny["Action"] == "sns:Publish"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # And the only allow is CloudWatch publishing for this account's alarms of this stage (confused deputy)
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Resource"] == {"Ref": topic_id}
    _assert_scoped_to_this_stages_alarms(allow, config)


def test_cloudwatch_alarms_can_use_the_topic_key_for_this_stages_alarms_only(synthesized):
    key = only_resource(synthesized.data, "AWS::KMS::Key")
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    cloudwatch_statements = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert len(cloudwatch_statements) == 1, "without a key-policy grant CloudWatch alarms cannot publish to the encrypted topic"
    (statement,) = cloudwatch_statements
    assert statement["Effect"] == "Allow" and statement["Resource"] == "*"  # "*" in a key policy: this key
    assert set(as_list(statement["Action"])) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    _assert_scoped_to_this_stages_alarms(statement, synthesized.config)
    # Every other principal is the account itself (CDK's default key administration statement).
    others = [s for s in statements if s is not statement]
    assert all(
        s["Principal"] == {"AWS": f"arn:aws:iam::{synthesized.config.account}:root"} or "Fn::Join" in json.dumps(s["Principal"]) for s in others
    ), others


def test_topic_policy_alarm_arns_are_the_alarms_the_monitoring_stack_and_the_shadow_create(synthesized):
    config = synthesized.config
    stacks = (synthesized.monitoring, synthesized.shadow)
    created = {alarm["Properties"]["AlarmName"] for stack in stacks for alarm in stack.find_resources("AWS::CloudWatch::Alarm").values()}
    assert {arn.rsplit(":", 1)[1] for arn in _stage_alarm_arns(config)} == created


def test_ops_topic_subscriptions_are_the_stage_configuration(synthesized):
    config = synthesized.config
    topic_id = resource_id(synthesized.data, "AWS::SNS::Topic")
    subscriptions = sorted(
        (s["Properties"]["Protocol"], s["Properties"]["Endpoint"])
        for s in synthesized.data.find_resources("AWS::SNS::Subscription").values()
        if s["Properties"]["TopicArn"] == {"Ref": topic_id}
    )
    assert subscriptions == sorted((s.protocol, s.endpoint) for s in config.alert_subscriptions)
    if config.alarm_actions_enabled:
        assert subscriptions, f"{config.stage}: alarms notify the topic, so someone must be subscribed to it"


def test_an_alert_sns_cannot_deliver_goes_to_the_alerts_dead_letter_queue(synthesized):
    # Given every subscription of the ops topic (none in dev, where the queue still exists for its alarm)
    names = synthesized.config.names
    queues = synthesized.data.find_resources("AWS::SQS::Queue")
    (queue_id,) = [lid for lid, q in queues.items() if q["Properties"]["QueueName"] == names.alerts_dead_letter_queue]
    queue = queues[queue_id]["Properties"]
    assert queue["MessageRetentionPeriod"] == 14 * 86400 and queue["SqsManagedSseEnabled"] is True
    subscriptions = synthesized.data.find_resources("AWS::SNS::Subscription").values()
    # Then each has a redrive policy to that queue
    for subscription in subscriptions:
        assert subscription["Properties"]["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    # And the queue admits SNS for this topic only (over SSL), where there is anything to deliver
    (policy,) = [p for p in synthesized.data.find_resources("AWS::SQS::QueuePolicy").values() if p["Properties"]["Queues"] == [{"Ref": queue_id}]]
    allows = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    if subscriptions:
        (allow,) = allows
        assert allow["Principal"] == {"Service": "sns.amazonaws.com"} and allow["Action"] == "sqs:SendMessage"
        assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": resource_id(synthesized.data, "AWS::SNS::Topic")}}}
    else:
        assert allows == []


def test_data_stack_holds_only_state_and_imports_nothing(synthesized):
    types = {r["Type"] for r in synthesized.data.to_json()["Resources"].values()}
    assert types == {
        "AWS::DynamoDB::Table",
        "AWS::SQS::Queue",
        "AWS::SQS::QueuePolicy",
        "AWS::SNS::Topic",
        "AWS::SNS::TopicPolicy",
        "AWS::KMS::Key",
    } | ({"AWS::SNS::Subscription"} if synthesized.config.alert_subscriptions else set())
    assert "Fn::ImportValue" not in str(synthesized.data.to_json()), "the data stack must depend on no other stack"
