"""One call to get a working local reconciler: endpoint, resources from the templates, handler wired."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import boto3

from emulator.invoker import LocalInvoker
from emulator.resources import LocalResources, provision
from emulator.server import CHECKOUT, LOCAL_ENV, LOCAL_REGION, moto_server

# Where the demo and `up` keep what the handlers print (git ignores it).
LOCAL_FILES = CHECKOUT / ".local-stack"


# A folder of synthesized stages, keyed by what the synthesis reads: the test session names its cache here
# (tests/least_privilege/synthesis.py), so that what it starts (the demo, the cutover rehearsal, `python -m emulator
# up`) reads a stage the session already synthesized from the same sources instead of synthesizing it again.
TEMPLATE_CACHE_VARIABLE = "CC_RECONCILER_TEMPLATE_CACHE"
# What build_app reads: the CDK code, the runtime (the contract, and the function's asset), the feature flags.
SYNTHESIS_INPUTS = ("infra", "runtime", "cdk.json")


@lru_cache(maxsize=4)
def templates_for(stage: str) -> dict[str, dict]:
    """The stage's synthesized CloudFormation templates (CDK synthesis in-process, no credentials)."""
    cached = _cached_templates(stage)
    if cached is not None:
        return cached
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from infra.app import synthesize_templates

    return synthesize_templates(stage)


def inputs_hash(stage: str, root: Path) -> str:
    """A key of everything the synthesis of `stage` reads below `root`: a changed source is another key."""
    digest = hashlib.sha256(f"{stage}\0{os.environ.get('CDK_CONTEXT_JSON', '')}\0".encode())
    for top in SYNTHESIS_INPUTS:
        base = root / top
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" in path.parts or path.suffix == ".pyc":  # not read by the synthesis, nor in the asset
                continue
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:32]


def _cached_templates(stage: str) -> dict[str, dict] | None:
    """The stage from the folder TEMPLATE_CACHE_VARIABLE names, if it holds one synthesized from these sources."""
    folder = os.environ.get(TEMPLATE_CACHE_VARIABLE)
    if not folder:
        return None
    try:  # an entry is written whole or not at all (os.replace)
        stacks = json.loads((Path(folder) / f"{stage}-{inputs_hash(stage, CHECKOUT)}.json").read_text())
    except (OSError, ValueError):
        return None
    # Only the stage's own app: the session's entry also holds its deployed shadow's stack (`mode` "shadow"), whose
    # table and second rule on v1's pattern a local stack of the stage must not get.
    return {name: stack["template"] for name, stack in stacks.items() if stack.get("mode", "full") == "full"}


@dataclass
class LocalStack:
    endpoint: str
    resources: LocalResources

    @property
    def stage(self) -> str:
        return self.resources.stage

    def environment(self) -> dict[str, str]:
        return {**LOCAL_ENV, "AWS_ENDPOINT_URL": self.endpoint, **self.resources.runtime_environment()}

    def activate(self) -> None:
        """Points this process (boto3 and the runtime's configuration) at the local stack."""
        os.environ.update(self.environment())
        from reconciler.bootstrap import reset_container

        reset_container()

    def session(self) -> Any:  # Any: the stubs type a client only for a literal service name
        return boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=LOCAL_REGION)  # noqa: S106 - moto accepts any

    def client(self, service: str) -> Any:
        return self.session().client(service, endpoint_url=self.endpoint)

    def invoker(self) -> LocalInvoker:
        from reconciler.handlers.entry import handler

        return LocalInvoker(
            sqs=self.client("sqs"),
            queue_url=self.resources.invoke_queue_url,
            dlq_url=self.resources.dlq_url,
            function_name=self.resources.function_name,
            handler=handler,
            max_attempts=1 + self.resources.max_retry_attempts,
        )

    def publish(self, events: list[dict]) -> list[str]:
        """Puts events on the local default bus, as the video pipeline does (Source, DetailType, Detail)."""
        return [entry.get("EventId", "") for entry in self.publish_entries(events)]

    def publish_entries(self, events: list[dict]) -> list[dict]:
        """Like publish, but returns put_events' result entry per event: EventId, or ErrorCode/ErrorMessage."""
        client = self.client("events")
        entries: list[dict] = []
        for start in range(0, len(events), 10):
            batch = events[start : start + 10]
            response = client.put_events(Entries=[_entry(event) for event in batch])
            entries.extend(response["Entries"])
        return entries

    def save(self, path: Path, pid: int | None = None) -> None:
        """The state file `reconciler --local` reads (reconciler.ops.target.LocalEndpoint): one per stage."""
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "stage": self.stage,
            "endpoint": self.endpoint,
            "region": LOCAL_REGION,
            "credentials": {"aws_access_key_id": LOCAL_ENV["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": LOCAL_ENV["AWS_SECRET_ACCESS_KEY"]},
            "dlqUrl": self.resources.dlq_url,
            "runtimeEnvironment": self.resources.runtime_environment(),
            "pid": pid,
            "resources": asdict(self.resources),
        }
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=2))
        temporary.replace(path)

    @classmethod
    def load(cls, path: Path) -> LocalStack:
        if not path.exists():
            raise FileNotFoundError(f"no local stack is running (no {path}): start one with `python -m emulator up`")
        data = json.loads(path.read_text())
        return cls(endpoint=data["endpoint"], resources=LocalResources(**data["resources"]))


def _entry(event: dict) -> dict:
    """Accepts either put_events entries or EventBridge envelopes (source/detail-type/detail)."""
    if "DetailType" in event:
        detail = event["Detail"]
        return {**event, "Detail": detail if isinstance(detail, str) else json.dumps(detail)}
    detail = event.get("detail", {})
    return {
        "Source": event.get("source", "video.generation"),
        "DetailType": event.get("detail-type", ""),
        "Detail": detail if isinstance(detail, str) else json.dumps(detail),
    }


def provision_stack(endpoint: str, stage: str = "dev", operable: bool = False, templates: dict[str, dict] | None = None) -> LocalStack:
    session: Any = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=LOCAL_REGION)  # noqa: S106 - moto accepts any

    class _EndpointSession:
        def client(self, service: str) -> Any:
            return session.client(service, endpoint_url=endpoint)

    return LocalStack(endpoint=endpoint, resources=provision(templates or templates_for(stage), stage, _EndpointSession(), operable=operable))


@contextmanager
def local_stack(stage: str = "dev") -> Iterator[LocalStack]:
    """A fresh moto server with the stage's resources, activated for this process; stopped on exit,
    and the process's environment is given back as it was."""
    saved_environment = dict(os.environ)
    try:
        with moto_server() as endpoint:
            stack = provision_stack(endpoint, stage)
            stack.activate()
            yield stack
    finally:
        os.environ.clear()
        os.environ.update(saved_environment)
