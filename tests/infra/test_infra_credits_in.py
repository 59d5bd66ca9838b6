"""Credits in, as synthesized: billing's events reach the function through their own rule (with the render rule's
retries and DLQ), and billing's managed policy may put those three events and nothing else."""

from __future__ import annotations

from reconciler import contract
from tests.infra.infra_helpers import as_list, refers_to, resource_named


def test_the_credits_in_rule_sends_billings_three_events_to_the_function_with_the_dlq(synthesized):
    rule = resource_named(synthesized.compute, "AWS::Events::Rule", "Name", synthesized.config.names.credits_in_rule)
    pattern = rule["Properties"]["EventPattern"]
    assert pattern == {"source": ["credits.billing"], "detail-type": ["credits.purchased", "credits.granted", "credits.revoked"]}
    (target,) = rule["Properties"]["Targets"]
    assert refers_to(target["Arn"], "ReconcilerFunction")
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 7200}
    assert "DeadLetterConfig" in target


def test_the_dead_letter_queue_admits_both_event_rules(synthesized):
    policies = synthesized.data.find_resources("AWS::SQS::QueuePolicy")
    statements = [
        s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"] if s.get("Sid") == "AllowReconcilerEventRuleDeadLetters"
    ]
    (statement,) = statements
    arns = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    joined = [str(arn) for arn in arns]
    assert len(arns) == 2 and any(contract.ResourceNames(synthesized.config.stage).credits_in_rule in text for text in joined)


def test_billing_may_put_its_three_events_and_nothing_else(synthesized):
    policy = resource_named(synthesized.compute, "AWS::IAM::ManagedPolicy", "ManagedPolicyName", synthesized.config.names.billing_policy)
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert as_list(statement["Action"]) == ["events:PutEvents"] and statement["Effect"] == "Allow"
    assert statement["Condition"]["StringEquals"] == {"events:source": "credits.billing"}
    assert sorted(statement["Condition"]["ForAllValues:StringEquals"]["events:detail-type"]) == sorted(contract.CREDITS_IN_EVENT_DETAIL_TYPES)
    assert "event-bus/default" in str(statement["Resource"])


def test_the_function_may_write_and_read_ledger_entries_by_id_only(synthesized):
    policies = synthesized.compute.find_resources("AWS::IAM::Policy")
    statements = [
        s
        for lid, p in policies.items()
        if lid.startswith("ReconcilerRole")
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "LedgerTable"
    ]
    (statement,) = statements
    # UpdateItem: a credit's expiry markers only (repository/credit_expiry_store.py)
    assert sorted(as_list(statement["Action"])) == ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
