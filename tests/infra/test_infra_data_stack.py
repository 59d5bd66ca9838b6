"""Tables, dead-letter queue and ops topic: names, durability and encryption per stage."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match
from reconciler.config import JOBS_UNSETTLED_INDEX, LEDGER_BY_USER_INDEX

from infra_helpers import as_list, only_resource, resource_named

TABLE_KEYS = {"Jobs": "jobId", "Credits": "userId", "Ledger": "ledgerId"}


@pytest.mark.parametrize("table", sorted(TABLE_KEYS))
def test_table_is_on_demand_encrypted_and_recoverable(synthesized, table):
    # Given the stage's data stack
    config = synthesized.config
    # When we look up the table by its contract name
    resource = resource_named(synthesized.data, "AWS::DynamoDB::Table", "TableName", f"{table}-{config.stage}")
    properties = resource["Properties"]
    # Then it has the contract key, on-demand billing, encryption and PITR
    assert properties["KeySchema"] == [{"AttributeName": TABLE_KEYS[table], "KeyType": "HASH"}]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["SSESpecification"] == {"SSEEnabled": True}, "tables must be encrypted at rest"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


@pytest.mark.parametrize("table", sorted(TABLE_KEYS))
def test_table_durability_follows_the_stage(synthesized, table):
    config = synthesized.config
    resource = resource_named(synthesized.data, "AWS::DynamoDB::Table", "TableName", f"{table}-{config.stage}")
    expected_policy = {"dev": "Delete", "staging": "Retain", "prod": "Retain"}[config.stage]
    assert resource["DeletionPolicy"] == expected_policy, f"{table}-{config.stage}: {resource['DeletionPolicy']}"
    assert resource["UpdateReplacePolicy"] == expected_policy
    assert resource["Properties"].get("DeletionProtectionEnabled", False) is (config.stage == "prod"), (
        "deletion protection is on in prod only"
    )


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
        }
    ]


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


def test_dead_letter_queue_policy_denies_plain_http_and_admits_only_the_events_rule(synthesized):
    stage = synthesized.config.stage
    statements = only_resource(synthesized.data, "AWS::SQS::QueuePolicy")["Properties"]["PolicyDocument"]["Statement"]
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, f"no SSL-only deny in {statements}"
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert len(allows) == 1, f"only EventBridge may be admitted by resource policy: {allows}"
    (allow,) = allows
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    source_arn = allow["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert source_arn["Fn::Join"][1][-1] == f":rule/cc-reconciler-events-{stage}", f"unexpected source: {source_arn}"


def test_ops_topic_is_ssl_only_and_encrypted_with_a_rotating_customer_key(synthesized):
    stage = synthesized.config.stage
    topic = resource_named(synthesized.data, "AWS::SNS::Topic", "TopicName", f"ops-alerts-{stage}")
    key_id = topic["Properties"]["KmsMasterKeyId"]
    assert "Fn::GetAtt" in key_id, f"topic must use the stack's own key, not {key_id}"
    key = synthesized.data.find_resources("AWS::KMS::Key")[key_id["Fn::GetAtt"][0]]
    assert key["Properties"]["EnableKeyRotation"] is True
    expected_policy = "Delete" if stage == "dev" else "Retain"
    assert topic.get("DeletionPolicy", "Delete") == expected_policy and key["DeletionPolicy"] == expected_policy

    synthesized.data.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )


def test_cloudwatch_alarms_can_use_the_topic_key(synthesized):
    key = only_resource(synthesized.data, "AWS::KMS::Key")
    cloudwatch_statements = [
        s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch_statements, "without a key-policy grant CloudWatch alarms cannot publish to the encrypted topic"
    assert set(as_list(cloudwatch_statements[0]["Action"])) == {"kms:Decrypt", "kms:GenerateDataKey*"}


def test_data_stack_holds_only_state_and_imports_nothing(synthesized):
    types = {r["Type"] for r in synthesized.data.to_json()["Resources"].values()}
    assert types == {
        "AWS::DynamoDB::Table",
        "AWS::SQS::Queue",
        "AWS::SQS::QueuePolicy",
        "AWS::SNS::Topic",
        "AWS::SNS::TopicPolicy",
        "AWS::KMS::Key",
    }
    assert "Fn::ImportValue" not in str(synthesized.data.to_json()), "the data stack must depend on no other stack"
