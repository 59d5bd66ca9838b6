"""BASELINE ONLY - NOT PRODUCTION CODE. The v1-style reconciler made idempotent with Powertools' idempotency utility.

What a team would reach for to stop v1 charging a redelivered event twice, without redesigning it: the same
`V1Baseline` (benchmarks/baseline_v1.py), wrapped by `idempotent_function` from
`aws_lambda_powertools.utilities.idempotency` with the DynamoDB persistence layer on a table of its own, keyed by
the EventBridge event id (`event_key_jmespath="id"`, as Powertools' EventBridge examples do) and Powertools'
defaults otherwise: a record expires after 1 hour, no local cache, no payload validation.

What the utility adds per event (Powertools 3.37, persistence/dynamodb.py and base.py):
    first delivery  PutItem (conditional: the key is new or expired) ... v1's own calls ... UpdateItem (the result)
    redelivery      the same PutItem, which fails its condition and returns the stored record with it
                    (ReturnValuesOnConditionCheckFailure=ALL_OLD): the stored answer, no other call
    v1 raises       PutItem, then DeleteItem (so a retry may run again), then the exception
It makes redeliveries of one event safe. It does not make v1 atomic: two different events for one user still
race on the balance (a lost update), and a crash between v1's writes still leaves them half done.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, cast

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function

from benchmarks.baseline_v1 import BaselineOutcome, V1Baseline
from reconciler.domain.pricing import PriceBook

REPLAYED = "replayed"  # the stored answer of an earlier delivery, returned by the utility


def create_idempotency_table(dynamodb: Any, name: str) -> None:
    """The table Powertools' documentation asks for: partition key `id` (string), TTL on `expiration`, on demand."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"})


class _Context:
    """The part of a Lambda context the utility reads: the function's 30 s timeout, as at the start of an invocation."""

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class PowertoolsIdempotentV1:
    """`V1Baseline.process` behind Powertools' idempotency utility (DynamoDB persistence layer)."""

    def __init__(
        self,
        dynamodb: Any,
        jobs_table: str,
        credits_table: str,
        ledger_table: str,
        idempotency_table: str,
        prices: PriceBook | None = None,
    ) -> None:
        self.v1 = V1Baseline(dynamodb, jobs_table, credits_table, ledger_table, prices)
        self.idempotency_table = idempotency_table
        persistence = DynamoDBPersistenceLayer(table_name=idempotency_table, boto3_client=dynamodb)
        # The hook marks an answer that came from the store, so the bench can tell a replay from a first settlement.
        config = IdempotencyConfig(event_key_jmespath="id", response_hook=lambda response, _record: {**response, "kind": REPLAYED})
        # What `@idempotent` on a handler does: the in-progress record then expires with the invocation.
        config.register_lambda_context(cast(Any, _Context()))  # duck-typed: the utility reads one method
        self._settle_once = idempotent_function(data_keyword_argument="event", persistence_store=persistence, config=config)(self._settle)

    def _settle(self, event: dict[str, Any]) -> dict[str, Any]:
        return asdict(self.v1.process(event))

    def process(self, raw_event: Mapping[str, Any] | str) -> BaselineOutcome:
        event = json.loads(raw_event) if isinstance(raw_event, str) else dict(raw_event)
        return BaselineOutcome(**self._settle_once(event=event))
