"""The one test harness for AWS: a stage provisioned from its synthesized templates (emulator/resources.py) on
in-process moto, on a moto server or in a local stack, with the composition root's objects (bootstrap.py) and the
helpers tests arrange and inspect state with. Fixtures build it (tests/integration/conftest.py, cli/conftest.py,
notify/conftest.py); no fixture composes stores or use cases by hand."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from emulator.resources import LocalResources, provision
from emulator.stack import LocalStack
from reconciler import bootstrap
from reconciler.config import RuntimeConfig
from reconciler.contract import OPENAI_SECRET_NAME
from reconciler.domain.ledger import adjustment_entry, balance_delta, iso_timestamp
from reconciler.repository.dynamodb import from_item, to_item
from reconciler.repository.dynamodb_operations import OperationsStore
from reconciler.service.event_settlement import EventProcessor
from reconciler.service.reservations import ReservationService
from reconciler.service.retrying import Backoff


@dataclass
class Published:
    """One message the stage's ops topic delivered: its subject, attributes and JSON document."""

    subject: str
    attributes: dict[str, str]
    document: dict[str, Any]


@dataclass
class Aws:
    """A provisioned stage on some endpoint (None: in-process moto, whose mock the caller holds)."""

    resources: LocalResources
    session: Any
    endpoint: str | None = None
    _reader_queue: str | None = field(default=None, repr=False)

    @classmethod
    def provisioned(cls, templates: Mapping[str, dict], stage: str = "dev", session: Any = None, endpoint: str | None = None) -> Aws:
        session = session or boto3.session.Session()
        made = cls(LocalResources(stage), session, endpoint)
        return cls(provision(templates, stage, made), session, endpoint)

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint)

    @property
    def config(self) -> RuntimeConfig:
        return RuntimeConfig.from_env(self.resources.runtime_environment())

    # --- the composition root's objects ---------------------------------------------------------------------

    def store(self, dynamodb: Any = None) -> OperationsStore:
        """The operators' store (a superset of the function's): arranges, inspects and acts."""
        return bootstrap.operations_store(self.config, dynamodb or self.client("dynamodb"))

    def processor(self, dynamodb: Any = None, sleep=lambda _: None) -> EventProcessor:
        """The function's use case, as its container builds it, on this stage (backing off without sleeping)."""
        backoff = lambda deadline: Backoff(deadline=deadline, sleep=sleep)  # noqa: E731
        return bootstrap.build_processor(self.config, dynamodb or self.client("dynamodb"), self.client("sqs"), backoff=backoff)

    def holds(self) -> ReservationService:
        """The hold function's use case on this stage."""
        return bootstrap.build_reservations(self.store(), self.config)

    @property
    def stack(self) -> LocalStack:
        """This stage as the emulator's local stack (its function environment, publishing, the invoker)."""
        assert self.endpoint is not None, "a local stack runs on a moto server"
        return LocalStack(self.endpoint, self.resources)

    def activate(self) -> None:
        """Lets the real Lambda handler find these resources through its environment."""
        os.environ.update(self.resources.runtime_environment())
        if self.endpoint:
            os.environ["AWS_ENDPOINT_URL"] = self.endpoint

    # --- arrange -----------------------------------------------------------------------------------------------

    def seed_balance(self, user_id: str, credits: int) -> None:
        """An opening balance written the reconciler's way: balance and ledger entry together."""
        entry = adjustment_entry(user_id, credits, "opening balance", f"opening-{user_id}", "test", iso_timestamp())
        self.store().commit_adjustment(entry)

    def put_job(self, **item: Any) -> None:
        self.put(self.config.jobs_table, item)

    def put(self, table: str, item: dict) -> None:
        self.client("dynamodb").put_item(TableName=table, Item=to_item(item))

    def dead_letter(self, body: str, **attributes: str) -> str:
        return self.client("sqs").send_message(
            QueueUrl=self.resources.dlq_url,
            MessageBody=body,
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )["MessageId"]

    def create_function(self, concurrency: int = 10, max_event_age: int = 21600) -> str:
        """The function in moto (a dummy zip: create works without Docker, only invoke would need it)."""
        iam, lam = self.client("iam"), self.client("lambda")
        role = iam.create_role(RoleName="reconciler-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        name = self.resources.function_name
        lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="x.handler", Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=concurrency)
        lam.put_function_event_invoke_config(FunctionName=name, MaximumEventAgeInSeconds=max_event_age, MaximumRetryAttempts=2)
        return name

    def put_secret(self, value: str) -> None:
        """The triage model's API key, where the stage's notifier reads it."""
        self.client("secretsmanager").create_secret(Name=OPENAI_SECRET_NAME, SecretString=value)

    # --- inspect -----------------------------------------------------------------------------------------------

    def balance(self, user_id: str) -> int | None:
        found = self.store().get_balance(user_id)
        return found.remaining if found else None

    def held(self, user_id: str) -> int:
        found = self.store().get_balance(user_id)
        return found.held if found else 0

    def credits_item(self, user_id: str) -> dict:
        """The user's Credits item as stored, every attribute (what a repair records on it, say)."""
        item = self.client("dynamodb").get_item(TableName=self.config.credits_table, Key=to_item({"userId": user_id}), ConsistentRead=True)["Item"]
        return from_item(item)

    def ledger(self, user_id: str) -> list:
        return list(self.store().ledger_for_user(user_id))

    def ledger_sum(self, user_id: str) -> int:
        return balance_delta(self.ledger(user_id))

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
        """The DLQ's messages (up to 10), body and attributes, left visible."""
        messages = (
            self.client("sqs")
            .receive_message(QueueUrl=self.resources.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0)
            .get("Messages", [])
        )
        return [{"body": m["Body"], **{name: value["StringValue"] for name, value in m.get("MessageAttributes", {}).items()}} for m in messages]

    def dlq_messages(self) -> list[dict]:
        """Every DLQ message as SQS gives it (five receives, then made visible again)."""
        sqs = self.client("sqs")
        found, handles = {}, []
        for _ in range(5):
            batch = sqs.receive_message(
                QueueUrl=self.resources.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30, MessageAttributeNames=["All"]
            ).get("Messages", [])
            handles += [m["ReceiptHandle"] for m in batch]
            found.update({m["MessageId"]: m for m in batch})
        for handle in handles:
            sqs.change_message_visibility(QueueUrl=self.resources.dlq_url, ReceiptHandle=handle, VisibilityTimeout=0)
        return list(found.values())

    def item_counts(self) -> dict[str, int]:
        dynamodb = self.client("dynamodb")
        config = self.config
        tables = (config.jobs_table, config.credits_table, config.ledger_table, config.user_ledger_table)
        return {table: dynamodb.scan(TableName=table, Select="COUNT")["Count"] for table in tables}

    @property
    def topic_arn(self) -> str:
        return self.resources.ops_topic_arn

    def read_ops_topic(self) -> Aws:
        """Subscribes a queue to the ops topic, so that `published()` can read what it delivers from now on."""
        sqs = self.client("sqs")
        self._reader_queue = sqs.create_queue(QueueName="ops-alerts-reader")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self._reader_queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.client("sns").subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn)
        return self

    def published(self) -> list[Published]:
        """Everything the ops topic delivered since `read_ops_topic()`, drained."""
        assert self._reader_queue is not None, "read_ops_topic() first"
        sqs = self.client("sqs")
        found = []
        while messages := sqs.receive_message(QueueUrl=self._reader_queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", []):
            for message in messages:
                envelope = json.loads(message["Body"])
                attributes = {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()}
                found.append(Published(envelope.get("Subject", ""), attributes, json.loads(envelope["Message"])))
                sqs.delete_message(QueueUrl=self._reader_queue, ReceiptHandle=message["ReceiptHandle"])
        return found
