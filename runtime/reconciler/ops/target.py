"""Where the operations run: a deployed stage (standard credential chain) or a local endpoint.

This module does not import the emulator: the stack that `python -m emulator up` runs is known here
only through its state file (one per stage), a small JSON contract that emulator/stack.py writes.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from reconciler import bootstrap
from reconciler.config import RuntimeConfig
from reconciler.contract import ResourceNames
from reconciler.ops.operator_error import OpsError
from reconciler.repository.dynamodb_operations import OperationsStore

# Where `--local` finds the stacks `python -m emulator up` saved: a directory, one `{stage}.json` each
# (tests point it at a temporary directory).
STATE_DIR_ENV = "RECONCILER_LOCAL_STATE_DIR"

# A RequestResponse invoke waits for the whole function run (30 s timeout).
INVOKE_CONFIG = bootstrap.CLIENT_CONFIG.merge(Config(read_timeout=60, retries={"mode": "standard", "max_attempts": 1}))


_BOTOCORE_SESSION: Any = None


def _shared_botocore_session() -> Any:
    """One botocore session (its loaded service models) for local stacks, whose credentials are explicit."""
    global _BOTOCORE_SESSION
    if _BOTOCORE_SESSION is None:
        import botocore.session

        _BOTOCORE_SESSION = botocore.session.get_session()
    return _BOTOCORE_SESSION


def local_state_dir() -> Path:
    configured = os.environ.get(STATE_DIR_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "credit-reconciler"


def local_state_path(stage: str) -> Path:
    return local_state_dir() / f"{stage}.json"


@dataclass(frozen=True)
class LocalEndpoint:
    """What the CLI needs of a running local stack (the state file `python -m emulator up` writes)."""

    stage: str
    endpoint: str
    region: str
    credentials: dict[str, str]
    dlq_url: str
    runtime_environment: dict[str, str] = field(default_factory=dict)
    pid: int | None = None

    @classmethod
    def load(cls, stage: str) -> LocalEndpoint:
        path = local_state_path(stage)
        if not path.exists():
            running = sorted(p.stem for p in local_state_dir().glob("*.json"))
            hint = f" (running: {', '.join(running)}; pass --stage)" if running else ""
            raise OpsError(f"no local {stage} stack is running: start one with `python -m emulator --stage {stage} up` in a checkout{hint}")
        data = json.loads(path.read_text())
        return cls(
            stage=data["stage"],
            endpoint=data["endpoint"],
            region=data["region"],
            credentials=data["credentials"],
            dlq_url=data["dlqUrl"],
            runtime_environment=data.get("runtimeEnvironment", {}),
            pid=data.get("pid"),
        )


@dataclass
class Target:
    stage: str
    endpoint_url: str | None = None
    local: LocalEndpoint | None = None
    profile: str | None = None
    region: str | None = None
    notes: list[str] = field(default_factory=list)  # said on stderr by the CLI

    @classmethod
    def resolve(
        cls, stage: str, endpoint_url: str | None = None, use_local: bool = False, profile: str | None = None, region: str | None = None
    ) -> Target:
        RuntimeConfig.for_stage(stage)  # unknown stage -> ConfigError
        if use_local:
            stack = LocalEndpoint.load(stage)
            return cls(stage, endpoint_url or stack.endpoint, stack)
        return cls(stage, endpoint_url, profile=profile, region=region)

    @property
    def names(self) -> ResourceNames:
        return ResourceNames(self.stage)

    @property
    def is_local(self) -> bool:
        """An endpoint override means no real Lambda: replay and the scan run the code in-process."""
        return self.endpoint_url is not None

    @cached_property
    def session(self) -> Any:
        if self.local is not None:
            return bootstrap.aws_session(credentials=self.local.credentials, region=self.local.region, botocore_session=_shared_botocore_session())
        return bootstrap.aws_session(profile=self.profile, region=self.region)

    def client(self, service: str, config: Config = bootstrap.CLIENT_CONFIG) -> Any:
        return bootstrap.aws_client(service, session=self.session, endpoint_url=self.endpoint_url, config=config)

    @cached_property
    def store(self) -> OperationsStore:
        return bootstrap.operations_store(RuntimeConfig.for_stage(self.stage), self.client("dynamodb"))

    @cached_property
    def actor(self) -> str:
        """Who is acting, recorded on every entry this tool writes."""
        if self.is_local:
            return f"local:{getpass.getuser()}"
        return self.client("sts").get_caller_identity()["Arn"]

    @cached_property
    def dlq_url(self) -> str:
        if self.local is not None:
            return self.local.dlq_url
        return self.client("sqs").get_queue_url(QueueName=self.names.dead_letter_queue)["QueueUrl"]

    def runtime_config(self) -> RuntimeConfig:
        """The function's configuration (prices, scan timings) as deployed, so the CLI decides as it does.

        Locally: the local stack's own environment; behind a bare --endpoint-url, the function's
        configuration there if it has one, else the stage's defaults (said in a note)."""
        if self.local is not None:
            return RuntimeConfig.from_env(self.local.runtime_environment)
        try:
            response = self.client("lambda").get_function_configuration(FunctionName=self.names.function)
        except ClientError as error:
            if not self.is_local or error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            self.notes.append(
                f"no function {self.names.function} at {self.endpoint_url}: using the {self.stage} stage's default prices and scan timings"
            )
            return RuntimeConfig.for_stage(self.stage, dlq_url=self.dlq_url)
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

    def depth(self) -> dict[str, int]:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]
        attributes = self._client.get_queue_attributes(QueueUrl=self.url, AttributeNames=names)["Attributes"]
        return {name: int(attributes.get(name, 0)) for name in names}

    def approximate_count(self) -> int:
        return self.depth()["ApproximateNumberOfMessages"]

    def purge(self) -> None:
        self._client.purge_queue(QueueUrl=self.url)
