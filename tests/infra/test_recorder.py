"""The recorder itself: what a call needs, who made it, and that it chains to the patch installed before it."""

from __future__ import annotations

import types

import pytest

from tests.least_privilege.calls import FUNCTION, OPERATOR, PIPELINE, SETUP, Need, attribute, needs, stageless
from tests.least_privilege.policies import Grant


def test_transactions_need_one_authorisation_per_item():
    request = {"TransactItems": [
        {"Update": {"TableName": "Credits-dev"}}, {"Put": {"TableName": "Ledger-dev"}},
        {"ConditionCheck": {"TableName": "Ledger-dev"}}, {"Delete": {"TableName": "Jobs-dev"}},
    ]}  # fmt: skip
    assert needs("dynamodb", "TransactWriteItems", request) == [
        Need("dynamodb:UpdateItem", "table/Credits-{stage}"),
        Need("dynamodb:PutItem", "table/Ledger-{stage}"),
        Need("dynamodb:ConditionCheckItem", "table/Ledger-{stage}"),
        Need("dynamodb:DeleteItem", "table/Jobs-{stage}"),
    ]
    reads = {"TransactItems": [{"Get": {"TableName": "Jobs-prod"}}, {"Get": {"TableName": "Credits-prod"}}]}
    assert needs("dynamodb", "TransactGetItems", reads) == [
        Need("dynamodb:GetItem", "table/Jobs-{stage}"), Need("dynamodb:GetItem", "table/Credits-{stage}"),
    ]  # fmt: skip


def test_queries_name_their_index_and_other_services_their_resource():
    assert needs("dynamodb", "Query", {"TableName": "Ledger-dev", "IndexName": "userId-timestamp-index"}) == [
        Need("dynamodb:Query", "table/Ledger-{stage}/index/userId-timestamp-index")
    ]
    # UserLedger (the job postings) is a table of the stage like the others, not a name of its own per stage
    assert needs("dynamodb", "Query", {"TableName": "UserLedger-prod"}) == [Need("dynamodb:Query", "table/UserLedger-{stage}")]
    assert stageless("UserLedger-dev") == stageless("UserLedger-prod") == "UserLedger-{stage}"
    # So is Settlements (the settlement records): a call on Settlements-dev is checked against every stage's policies
    assert stageless("Settlements-dev") == stageless("Settlements-prod") == "Settlements-{stage}"
    assert needs("sqs", "SendMessage", {"QueueUrl": "http://127.0.0.1:5000/123456789012/cc-reconciler-dlq-dev"}) == [
        Need("sqs:SendMessage", "queue/cc-reconciler-dlq-{stage}")
    ]
    assert needs("lambda", "Invoke", {"FunctionName": "cc-agent-reconciler-prod"}) == [
        Need("lambda:InvokeFunction", "function/cc-agent-reconciler-{stage}")
    ]
    assert needs("sts", "GetCallerIdentity", {}) == []
    assert stageless("cc-reconciler-stuck-jobs-prod") == "cc-reconciler-stuck-jobs-{stage}"


def _frames(*modules: tuple[str, str]):
    """A fake call stack, outermost first."""
    frame = None
    for module, qualname in modules:
        frame = types.SimpleNamespace(
            f_globals={"__name__": module}, f_code=types.SimpleNamespace(co_qualname=qualname, co_name=qualname), f_back=frame
        )
    return frame


@pytest.mark.parametrize(
    ("stack", "principal"),
    [
        (
            [
                ("emulator.invoker", "LocalInvoker.drain"),
                ("reconciler.handlers.entry", "handler"),
                ("reconciler.repository.dynamodb", "DynamoDBStore.load"),
            ],
            FUNCTION,
        ),
        (
            [
                ("tests.x", "test"),
                ("reconciler.service.event_settlement", "EventProcessor.process"),
                ("reconciler.repository.dynamodb", "DynamoDBStore.load"),
            ],
            FUNCTION,
        ),
        (
            [
                ("reconciler.cli.books", "scan"),
                ("reconciler.service.timer_scan", "TimerScan.run"),
                ("reconciler.repository.dynamodb", "DynamoDBStore.load"),
            ],
            OPERATOR,
        ),
        (
            [
                ("reconciler.cli.dlq", "dlq_replay"),
                ("reconciler.ops.target", "InProcessInvoker.__call__"),
                ("reconciler.service.event_settlement", "EventProcessor.process"),
            ],
            FUNCTION,
        ),
        (
            [
                ("reconciler.ops.dead_letter_replay", "replay"),
                ("reconciler.ops.aws", "LambdaInvoker.__call__"),
                ("simulator.operators", "_SimulatedLambda.invoke"),
                ("simulator.operators", "_Classified.process"),
                ("reconciler.service.event_settlement", "EventProcessor.process"),
                ("reconciler.repository.sqs_dead_letters", "SqsDeadLetters.send"),
            ],
            FUNCTION,
        ),
        (
            [
                ("tests.x", "test"),
                ("reconciler.service.reservations", "ReservationService.reserve"),
                ("reconciler.repository.dynamodb", "DynamoDBStore.commit_reservation"),
            ],
            PIPELINE,
        ),
        ([("tests.x", "test"), ("reconciler.repository.dynamodb", "DynamoDBStore.ledger_for_user")], SETUP),
        ([("emulator.cli", "up"), ("emulator.resources", "provision")], SETUP),
    ],
)
def test_calls_are_attributed_by_the_innermost_principal_boundary(stack, principal):
    assert attribute(_frames(*stack))[0] == principal


def test_the_recorder_wraps_the_installed_implementation_and_calls_through(monkeypatch):
    from botocore.client import BaseClient

    from tests.least_privilege import recorder

    seen = []

    def simulator(self, operation_name, api_params):  # e.g. an emulator-fidelity patch installed earlier
        seen.append(operation_name)
        return {"answered": "by the simulator"}

    monkeypatch.setattr(BaseClient, "_make_api_call", simulator)
    recorder.install()
    wrapped = BaseClient._make_api_call
    assert wrapped is not simulator and wrapped.__wrapped__ is simulator
    client = types.SimpleNamespace(meta=types.SimpleNamespace(service_model=types.SimpleNamespace(service_name="sqs")))
    assert wrapped(client, "GetQueueUrl", {"QueueName": "cc-reconciler-dlq-unit"}) == {"answered": "by the simulator"}
    assert seen == ["GetQueueUrl"]
    assert ["setup", "sqs:GetQueueUrl", "queue/cc-reconciler-dlq-{stage}"] in [r[:3] for r in recorder.records()]


def test_iam_wildcards_match_as_iam_does():
    grant = Grant("p", "s", "kms:GenerateDataKey*", "arn:aws:kms:us-east-1:1:key/*")
    assert grant.allows("kms:GenerateDataKeyWithoutPlaintext", "arn:aws:kms:us-east-1:1:key/abc")
    assert not grant.allows("kms:Decrypt", "arn:aws:kms:us-east-1:1:key/abc")
    secret = Grant("p", "s", "secretsmanager:GetSecretValue", "arn:aws:secretsmanager:r:1:secret:meta-agents/openai-??????")
    assert secret.allows("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:r:1:secret:meta-agents/openai-AbCdEf")
    assert not secret.allows("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:r:1:secret:meta-agents/openai-admin-AbCdEf")
