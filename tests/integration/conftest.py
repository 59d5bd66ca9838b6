"""The runtime's fixtures: the dev stage's resources, created from the synthesized template, in moto."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from emulator.resources import LocalResources, provision
from emulator.server import moto_server, reset
from emulator.stack import templates_for
from reconciler.config import RuntimeConfig
from reconciler.domain.ledger import adjustment_entry, balance_delta, iso_timestamp
from reconciler.domain.pricing import PriceBook
from reconciler.repository.dynamodb_operations import OperationsStore
from reconciler.repository.sqs_dead_letters import SqsDeadLetters
from reconciler.service.event_settlement import EventProcessor, SettlementService
from reconciler.service.retrying import Backoff


@pytest.fixture(scope="session")
def dev_templates() -> dict[str, dict]:
    return templates_for("dev")


@dataclass
class Aws:
    """A provisioned dev stage on some endpoint, with helpers to arrange and inspect state."""

    resources: LocalResources
    session: Any
    endpoint: str | None = None

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint)

    @property
    def config(self) -> RuntimeConfig:
        return RuntimeConfig.from_env(self.resources.runtime_environment())

    def store(self, dynamodb: Any = None) -> OperationsStore:
        return OperationsStore(dynamodb or self.client("dynamodb"), self.config)

    def processor(self, dynamodb: Any = None, prices: PriceBook | None = None, sleep=lambda _: None) -> EventProcessor:
        config = self.config
        backoff = lambda deadline: Backoff(deadline=deadline, sleep=sleep)  # noqa: E731
        service = SettlementService(self.store(dynamodb), prices or PriceBook(), backoff=backoff, legacy_before=config.legacy_reservations_before)
        return EventProcessor(service, SqsDeadLetters(self.client("sqs"), self.resources.dlq_url, "dev"))

    def activate(self) -> None:
        """Lets the real Lambda handler find these resources through its environment."""
        os.environ.update(self.resources.runtime_environment())
        if self.endpoint:
            os.environ["AWS_ENDPOINT_URL"] = self.endpoint

    # --- arrange -----------------------------------------------------------------------------

    def seed_balance(self, user_id: str, credits: int) -> None:
        """An opening balance written the reconciler's way: balance and ledger entry together."""
        store = self.store()
        entry = adjustment_entry(user_id, credits, "opening balance", f"opening-{user_id}", "test", iso_timestamp())
        store.commit_adjustment(entry)

    def put_job(self, **item: Any) -> None:
        self.store()  # table names from config
        self.client("dynamodb").put_item(TableName=self.config.jobs_table, Item={k: _attr(v) for k, v in item.items()})

    # --- inspect -----------------------------------------------------------------------------

    def balance(self, user_id: str) -> int | None:
        found = self.store().get_balance(user_id)
        return found.remaining if found else None

    def ledger(self, user_id: str) -> list:
        return list(self.store().ledger_for_user(user_id))

    def ledger_sum(self, user_id: str) -> int:
        return balance_delta(self.ledger(user_id))

    def held(self, user_id: str) -> int:
        item = self.client("dynamodb").get_item(TableName=self.config.credits_table, Key={"userId": {"S": user_id}}, ConsistentRead=True).get("Item")
        return int((item or {}).get("held", {}).get("N", 0))

    def all_ledger_ids(self) -> list[str]:
        """Both ledgers: Ledger (operators' entries, history) and UserLedger (job postings)."""
        ids = []
        for table in (self.config.ledger_table, self.config.user_ledger_table):
            items = self.client("dynamodb").scan(TableName=table, ProjectionExpression="ledgerId")["Items"]
            ids += [item["ledgerId"]["S"] for item in items]
        return sorted(ids)

    def job(self, job_id: str):
        return self.store().get_job(job_id)

    def record(self, job_id: str):
        """The job's settlement record (the reconciler's own: its hold and its settlement)."""
        return self.store().get_record(job_id)

    def dead_letters(self) -> list[dict]:
        sqs = self.client("sqs")
        messages = sqs.receive_message(
            QueueUrl=self.resources.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
        ).get("Messages", [])
        return [{"body": m["Body"], **{name: value["StringValue"] for name, value in m.get("MessageAttributes", {}).items()}} for m in messages]

    def item_counts(self) -> dict[str, int]:
        dynamodb = self.client("dynamodb")
        config = self.config
        tables = (config.jobs_table, config.credits_table, config.ledger_table, config.user_ledger_table)
        return {table: dynamodb.scan(TableName=table, Select="COUNT")["Count"] for table in tables}


def _attr(value: Any) -> dict:
    from reconciler.repository.dynamodb import to_item

    return to_item({"v": value})["v"]


@pytest.fixture
def aws(dev_templates) -> Iterator[Aws]:
    """In-process moto with the dev stage's tables, queue, topic and rule."""
    with mock_aws():
        session = boto3.session.Session()
        resources = provision(dev_templates, "dev", session)
        yield Aws(resources=resources, session=session)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server on 127.0.0.1 for the session (real HTTP); tests reset it."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws_server(moto_endpoint, dev_templates) -> Aws:
    """The dev stage on the moto server, freshly provisioned for each test."""
    reset(moto_endpoint)
    session = boto3.session.Session()

    class _Endpoint:
        def client(self, service: str) -> Any:
            return session.client(service, endpoint_url=moto_endpoint)

    resources = provision(dev_templates, "dev", _Endpoint())
    return Aws(resources=resources, session=session, endpoint=moto_endpoint)
