"""Each port's two sides for the shared contracts (settlement_store_contract.py, dead_letters_contract.py): the
in-memory fake (tests/fakes.py), run by tests/unit/contract, and the AWS adapter on in-process moto with the dev
stage's tables and queue created from the synthesized template, run by tests/integration/contract."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.contract import JSON_STRING_ENCODING, DeadLetterAttribute
from reconciler.domain.ledger import LedgerEntry
from reconciler.ops.dead_letter_replay import parse_message
from reconciler.repository.dynamodb import DynamoDBStore, from_item, ledger_item, to_item
from reconciler.repository.sqs_dead_letters import SqsDeadLetters
from tests.fakes import InMemoryDeadLetters, InMemorySettlementStore

if TYPE_CHECKING:
    from tests.aws import Aws


class FakeTables:
    """The fake store, and the fake's own view of what it holds."""

    def __init__(self) -> None:
        self.store = InMemorySettlementStore()
        self.operations = self.store  # get_balance and get_ledger_entry, as the CLI's Adjuster reads them

    def put_job(self, **attributes: Any) -> None:
        self.store.put_job(**attributes)

    def put_ledger_entry(self, entry: LedgerEntry) -> None:
        self.store.put_ledger_entry(entry)

    def balance(self, user_id: str) -> int | None:
        return self.store.balance_of(user_id)

    def put_balance(self, **attributes: Any) -> None:
        """A Credits item as another writer (or damage) left it, attribute names as in the table."""
        self.store.balances[attributes["userId"]] = {name: value for name, value in attributes.items() if name != "userId"}

    def balance_item(self, user_id: str) -> dict[str, Any] | None:
        item = self.store.balances.get(user_id)
        return None if item is None else {"userId": user_id, **item}

    def held(self, user_id: str) -> int:
        return self.store.held_of(user_id)

    def ledger(self, user_id: str) -> list[LedgerEntry]:
        return self.store.ledger_of(user_id)

    def job_item(self, job_id: str) -> dict[str, Any] | None:
        return self.store.job_item(job_id)

    def record_item(self, job_id: str) -> dict[str, Any] | None:
        return self.store.record_item(job_id)


class MotoTables:
    """DynamoDBStore on the moto stage; arranged and inspected with raw table requests."""

    def __init__(self, stage: Aws) -> None:
        self.stage = stage
        self.dynamodb = stage.client("dynamodb")
        self.config = stage.config
        self.store = DynamoDBStore(self.dynamodb, self.config)
        self.operations = stage.store()  # the CLI's store: get_balance and get_ledger_entry for the Adjuster

    def put_job(self, **attributes: Any) -> None:
        self.stage.put_job(**{name: value for name, value in attributes.items() if value is not None})

    def put_ledger_entry(self, entry: LedgerEntry) -> None:
        self.dynamodb.put_item(TableName=self.config.ledger_table, Item=to_item(ledger_item(entry)))

    def balance(self, user_id: str) -> int | None:
        return self.stage.balance(user_id)

    def put_balance(self, **attributes: Any) -> None:
        self.dynamodb.put_item(TableName=self.config.credits_table, Item=to_item(attributes))

    def balance_item(self, user_id: str) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(TableName=self.config.credits_table, Key=to_item({"userId": user_id}), ConsistentRead=True).get("Item")
        return from_item(item) if item else None

    def held(self, user_id: str) -> int:
        return self.stage.held(user_id)

    def ledger(self, user_id: str) -> list[LedgerEntry]:
        return self.stage.ledger(user_id)

    def job_item(self, job_id: str) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(TableName=self.config.jobs_table, Key=to_item({"jobId": job_id}), ConsistentRead=True).get("Item")
        return from_item(item) if item else None

    def record_item(self, job_id: str) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(TableName=self.config.settlements_table, Key=to_item({"jobId": job_id}), ConsistentRead=True).get("Item")
        return from_item(item) if item else None


@dataclass(frozen=True)
class ReadBack:
    """A dead letter as whoever reads the queue gets it back."""

    message_id: str
    original: Any
    error_type: str
    field: str
    reason: str
    event_id: str | None


class FakeQueue:
    def __init__(self) -> None:
        self.port = InMemoryDeadLetters()

    def read_back(self) -> list[ReadBack]:
        return [ReadBack(m.message_id, m.original, m.error_type, m.field, m.reason, m.event_id) for m in self.port.sent]


class SqsQueue:
    """SqsDeadLetters on the moto stage's DLQ, read back through the CLI's reader (ops/dead_letter_replay.py)."""

    def __init__(self, stage: Aws) -> None:
        self.sqs = stage.client("sqs")
        self.url = stage.resources.dlq_url
        self.port = SqsDeadLetters(self.sqs, self.url, "dev")

    def read_back(self) -> list[ReadBack]:
        messages = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get("Messages", [])
        return [self._read(message) for message in messages]

    @staticmethod
    def _read(message: dict) -> ReadBack:
        letter = parse_message(message)
        attributes = {name: value["StringValue"] for name, value in message.get("MessageAttributes", {}).items()}
        original = letter.event
        if original is None:  # not a JSON object: the text as sent, unwrapped if it was sent as a JSON string literal
            original = json.loads(letter.body) if attributes.get(DeadLetterAttribute.BODY_ENCODING) == JSON_STRING_ENCODING else letter.body
        return ReadBack(letter.message_id, original, attributes["errorType"], attributes["field"], attributes["reason"], attributes.get("eventId"))
