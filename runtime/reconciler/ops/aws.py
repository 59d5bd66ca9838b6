"""Where the operations run: a deployed stage (standard credential chain) or a local endpoint."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from reconciler.config import RuntimeConfig
from reconciler.local.stack import STATE_FILE, LocalStack
from reconciler.ops.errors import OpsError
from reconciler.ops.names import StageNames
from reconciler.repository.aws import CLIENT_CONFIG
from reconciler.repository.dynamodb import DynamoDBStore

# A RequestResponse invoke waits for the whole function run (30 s timeout).
# Where `--local` finds the stack `reconciler local up` saved (tests point it at a temporary file).
STATE_PATH_ENV = "RECONCILER_LOCAL_STATE"

INVOKE_CONFIG = CLIENT_CONFIG.merge(Config(read_timeout=60, retries={"mode": "standard", "max_attempts": 1}))


@dataclass
class Target:
    stage: str
    endpoint_url: str | None = None
    local: LocalStack | None = None

    @classmethod
    def resolve(cls, stage: str, endpoint_url: str | None = None, use_local: bool = False) -> "Target":
        RuntimeConfig.for_stage(stage)  # unknown stage -> ConfigError
        if use_local:
            try:
                stack = LocalStack.load(local_state_path())
            except FileNotFoundError as error:
                raise OpsError(str(error)) from None
            if stack.stage != stage:
                raise OpsError(f"the local stack runs stage {stack.stage!r}; pass --stage {stack.stage}")
            return cls(stage, endpoint_url or stack.endpoint, stack)
        return cls(stage, endpoint_url)

    @property
    def names(self) -> StageNames:
        return StageNames(self.stage)

    @property
    def is_local(self) -> bool:
        """An endpoint override means no real Lambda: replay and the smoke test run the code in-process."""
        return self.endpoint_url is not None

    def client(self, service: str, config: Config = CLIENT_CONFIG) -> Any:
        if self.local is not None:
            return self.local.session().client(service, endpoint_url=self.endpoint_url, config=config)
        return boto3.session.Session().client(service, endpoint_url=self.endpoint_url, config=config)

    @cached_property
    def store(self) -> DynamoDBStore:
        return DynamoDBStore(self.client("dynamodb"), RuntimeConfig.for_stage(self.stage))

    @cached_property
    def actor(self) -> str:
        """Who is acting, recorded on every entry this tool writes."""
        if self.is_local:
            return f"local:{getpass.getuser()}"
        return self.client("sts").get_caller_identity()["Arn"]

    @cached_property
    def dlq_url(self) -> str:
        if self.local is not None:
            return self.local.resources.dlq_url
        return self.client("sqs").get_queue_url(QueueName=self.names.dead_letter_queue)["QueueUrl"]

    def runtime_config(self) -> RuntimeConfig:
        """The function's configuration (prices, scan timings) as deployed, so the CLI decides as it does."""
        if self.local is not None:
            env = self.local.resources.runtime_environment()
        else:
            response = self.client("lambda").get_function_configuration(FunctionName=self.names.function)
            env = response.get("Environment", {}).get("Variables", {})
        return RuntimeConfig.from_env(env)


class SqsQueue:
    """The DLQ as dead_letters.Queue wants it."""

    def __init__(self, client: Any, url: str) -> None:
        self._client = client
        self.url = url

    def receive(self, max_messages: int, visibility_seconds: int) -> list[dict]:
        return self._client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=max_messages,
            VisibilityTimeout=visibility_seconds,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        ).get("Messages", [])

    def delete(self, receipt_handle: str) -> None:
        self._client.delete_message(QueueUrl=self.url, ReceiptHandle=receipt_handle)

    def release(self, receipt_handle: str) -> None:
        self._client.change_message_visibility(QueueUrl=self.url, ReceiptHandle=receipt_handle, VisibilityTimeout=0)

    def approximate_count(self) -> int:
        attributes = self._client.get_queue_attributes(QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def local_state_path() -> Path:
    return Path(os.environ.get(STATE_PATH_ENV) or STATE_FILE)
