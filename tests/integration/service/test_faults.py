"""Faults injected at the DynamoDB client: the outcome is still exactly once."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from reconciler.service.ports import RetriesExhausted
from reconciler.service.reservations import ReservationService
from tests.events import rendered


def cancelled(reason: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"}, "CancellationReasons": [{"Code": reason}, {"Code": "None"}]},
        "TransactWriteItems",
    )


def throttled(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, operation)


class FaultyClient:
    """Wraps a real client; `faults[operation]` is a list of what each next call does:
    an exception to raise instead, "lose-answer" to commit and then lose the reply, or None to pass."""

    def __init__(self, real: Any, **faults: list) -> None:
        self._real = real
        self.faults = {op: list(plan) for op, plan in faults.items()}
        self.calls: list[str] = []

    def __getattr__(self, operation: str) -> Any:
        real = getattr(self._real, operation)

        def call(**request: Any) -> Any:
            self.calls.append(operation)
            plan = self.faults.get(operation)
            fault = plan.pop(0) if plan else None
            if isinstance(fault, Exception):
                raise fault
            response = real(**request)
            if fault == "lose-answer":
                raise ReadTimeoutError(endpoint_url="http://dynamodb")
            return response

        return call


@pytest.fixture
def user_with_reservation(aws):
    aws.seed_balance("u", 100)
    ReservationService(aws.store()).reserve("j", "u", "test", 10)
    return aws


def assert_settled_exactly_once(aws, expected_balance: int) -> None:
    assert aws.balance("u") == expected_balance == aws.ledger_sum("u")
    assert [e.ledger_id for e in aws.ledger("u")].count("job:1:j:charge") == 1
    assert aws.job("j").settled_as == "rendered"


def test_transaction_conflicts_are_retried_until_the_settlement_commits(user_with_reservation):
    aws = user_with_reservation
    client = FaultyClient(aws.client("dynamodb"), transact_write_items=[cancelled("TransactionConflict")] * 3)
    outcome = aws.processor(client).process(rendered("j", "u", seconds=4))
    assert outcome.kind == "settled" and outcome.attempts == 4
    assert_settled_exactly_once(aws, 96)


def test_throttled_reads_and_writes_are_retried(user_with_reservation):
    aws = user_with_reservation
    client = FaultyClient(
        aws.client("dynamodb"),
        get_item=[throttled("GetItem")],
        transact_write_items=[throttled("TransactWriteItems")],
    )
    outcome = aws.processor(client).process(rendered("j", "u", seconds=4))
    assert outcome.kind == "settled" and outcome.attempts == 3
    assert_settled_exactly_once(aws, 96)


def test_a_lost_commit_answer_is_recognised_as_applied_on_retry(user_with_reservation):
    # Given DynamoDB commits the settlement but the reply never reaches us
    aws = user_with_reservation
    client = FaultyClient(aws.client("dynamodb"), transact_write_items=["lose-answer"])
    # When the service retries
    outcome = aws.processor(client).process(rendered("j", "u", seconds=4))
    # Then it reads the job as settled by this very event in this very request: that settlement, reported
    # as settled (so its metrics are emitted), never a duplicate, and no second charge
    assert outcome.kind == "settled" and outcome.decision.recovered and outcome.attempts == 2
    assert (outcome.settlement.charged, outcome.settlement.released) == (4, 10)
    assert client.calls == ["get_item", "transact_write_items", "get_item"]
    assert_settled_exactly_once(aws, 96)


def test_a_lost_answer_then_a_lambda_retry_of_the_same_event_is_still_one_charge(user_with_reservation):
    aws = user_with_reservation
    client = FaultyClient(aws.client("dynamodb"), transact_write_items=["lose-answer"], get_item=[None] + [throttled("GetItem")] * 60)
    with pytest.raises(RetriesExhausted):
        aws.processor(client).process(rendered("j", "u", seconds=4))
    # Lambda delivers the event again later; the stored state says it was applied.
    assert aws.processor().process(rendered("j", "u", seconds=4)).kind == "duplicate"
    assert_settled_exactly_once(aws, 96)


def test_contention_that_outlasts_the_budget_raises_so_lambda_retries_and_writes_nothing(user_with_reservation):
    aws = user_with_reservation
    client = FaultyClient(aws.client("dynamodb"), transact_write_items=[cancelled("TransactionConflict")] * 60)
    with pytest.raises(RetriesExhausted):
        aws.processor(client).process(rendered("j", "u", seconds=4))
    assert aws.balance("u") == 90 and aws.job("j") is None and not aws.store().get_record("j").is_settled


class OperatorInTheMiddle(FaultyClient):
    """Sets the balance to `remaining` right before the first TransactWriteItems (after the job's read)."""

    def __init__(self, real: Any, credits_table: str, remaining: int) -> None:
        super().__init__(real)
        self._credits_table, self._remaining = credits_table, remaining

    def __getattr__(self, operation):
        call = super().__getattr__(operation)
        if operation != "transact_write_items" or self.calls.count("transact_write_items"):
            return call

        def adjust_then_call(**request):
            self._real.update_item(
                TableName=self._credits_table,
                Key={"userId": {"S": "u"}},
                UpdateExpression="SET remaining = :r",
                ExpressionAttributeValues={":r": {"N": str(self._remaining)}},
            )
            return call(**request)

        return adjust_then_call


def test_a_balance_drained_between_read_and_write_is_judged_an_overdraft_on_the_balance_the_refusal_returned(aws):
    # Given a user with 10 credits, drained to 3 by an operator right after the job's read
    aws.seed_balance("u", 10)
    client = OperatorInTheMiddle(aws.client("dynamodb"), aws.config.credits_table, 3)
    outcome = aws.processor(client).process(rendered("j", "u", seconds=5))
    # Then the covered debit is refused with the balance (3), and decided again as an overdraft: no read between
    assert client.calls == ["get_item", "transact_write_items", "transact_write_items"]
    assert outcome.attempts == 1 and outcome.settlement.balance_before == 3 and outcome.settlement.is_overdraft
    assert aws.balance("u") == -2 and aws.job("j").settled_into_overdraft is True


def test_a_balance_topped_up_between_read_and_write_needs_no_second_write(aws):
    # Given 3 credits, topped up to 10 right after the job's read, and a render of 5
    aws.seed_balance("u", 3)
    client = OperatorInTheMiddle(aws.client("dynamodb"), aws.config.credits_table, 10)
    outcome = aws.processor(client).process(rendered("j", "u", seconds=5))
    # Then the debit, decided as covered without a read, commits on the first write
    assert client.calls == ["get_item", "transact_write_items"]
    assert outcome.attempts == 1 and not outcome.settlement.is_overdraft and aws.balance("u") == 5


def server_error(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "500", "Message": "Internal"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, operation)


def test_a_server_error_after_botocores_retries_is_treated_as_a_possibly_committed_write(user_with_reservation):
    aws = user_with_reservation
    client = FaultyClient(aws.client("dynamodb"), get_item=[server_error("GetItem")], transact_write_items=[server_error("TransactWriteItems")])
    outcome = aws.processor(client).process(rendered("j", "u", seconds=4))
    assert outcome.kind == "settled" and outcome.attempts == 3
    assert_settled_exactly_once(aws, 96)
