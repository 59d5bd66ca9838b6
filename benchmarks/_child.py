"""Code that runs in a fresh child interpreter (cold imports, CPU timing with stdout on /dev/null).

    python -m benchmarks._child cpu  OUT.json EVENTS_PER_KIND
    python -m benchmarks._child cold OUT.json      (environment points at a local stack; one invocation)
    python -m benchmarks._child telemetry OUT.json EVENTS_PER_KIND   (log and EMF bytes per event kind, stubbed AWS)
    python -m benchmarks._child modules OUT.json MODULE
    python -m benchmarks._child memory OUT.json FUNCTION EVENTS_PER_KIND   (peak RSS of one function over its priced events)

Results go to OUT.json; the child's stdout (the handler's logs and EMF metrics) is the parent's choice,
/dev/null when timing.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import resource
import sys
import time
import uuid
from typing import ClassVar, cast

# Names a Lambda entry point must not pull in on the event path (they serve other paths or tools).
NOT_ON_EVENT_PATH = (
    "aws_xray_sdk",  # never: tracing is Lambda's own (docs/tracing.md)
    "aws_lambda_powertools.utilities.data_classes",  # its package imports every event class Powertools has
    "aws_lambda_powertools.utilities.parameters",
    "reconciler.handlers.scheduled_scan",
    "reconciler.service.timer_scan",
    "reconciler.notify",
    "reconciler.cli",
    "reconciler.ops",
    "emulator",
    "moto",
)

STUB_ENV = {
    "STAGE": "dev",
    "JOBS_TABLE_NAME": "Jobs-dev",
    "CREDITS_TABLE_NAME": "Credits-dev",
    "LEDGER_TABLE_NAME": "Ledger-dev",
    "USER_LEDGER_TABLE_NAME": "UserLedger-dev",
    "SETTLEMENTS_TABLE_NAME": "Settlements-dev",
    "DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/cc-reconciler-dlq-dev",
    "POWERTOOLS_SERVICE_NAME": "credit-reconciler",
    "POWERTOOLS_METRICS_NAMESPACE": "Reconciler",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "stub",
    "AWS_SECRET_ACCESS_KEY": "stub",
}

# The balance-events function's own settings, beside STUB_ENV's.
BALANCE_ENV = {"BALANCE_EVENTS_TABLE_NAME": "BalanceEvents-dev", "BALANCE_EVENT_SOURCE": "credits.reconciler", "LOW_BALANCE_THRESHOLD": "10"}


def peak_rss_kb() -> int:
    """This process's own peak RSS. Not ru_maxrss: Linux keeps it across execve, so a child forked from a
    large parent (this benchmark, with CDK synthesis in it) would report the parent's peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


USER = "user-7f3a9c21"  # as long as a real user id
KINDS = ("reserved", "no_job", "failed_reserved", "duplicate", "conflict", "invalid")
# What each kind must come out as: a stub that no longer matches the store's calls shows here, not as a wrong timing.
EXPECTED = {
    "reserved": "settled",
    "no_job": "settled",
    "failed_reserved": "settled",
    "duplicate": "duplicate",
    "conflict": "conflict",
    "invalid": "rejected",
}


class StubDynamoDB:
    """Answers the event path's reads and writes with canned responses, whatever calls the store makes: an item
    keyed by jobId is the job's settlement record (Settlements) or the job (Jobs), its id's prefix picking its state;
    one keyed by userId is the balance."""

    BALANCE: ClassVar[dict] = {"userId": {"S": USER}, "remaining": {"N": "1000"}}

    def _item(self, key: dict, table: str = "") -> dict:
        if "jobId" not in key:
            return dict(self.BALANCE) if set(key) == {"userId"} else {}  # no BalanceEvents marker (userId + eventKey)
        job_id = key["jobId"]["S"]
        user = {"S": USER}
        if table.startswith("Settlements"):
            return self._record(job_id, user)
        if job_id.startswith(("reserved", "failed_reserved")):
            return {
                "jobId": {"S": job_id},
                "userId": user,
                "status": {"S": "submitted"},
                "reservedCredits": {"N": "30"},
                "createdAt": {"S": "2025-06-21T12:00:00.000Z"},
                "unsettled": {"S": "PENDING"},
            }
        if job_id.startswith(("duplicate", "conflict")):
            return {
                "jobId": {"S": job_id},
                "userId": user,
                "status": {"S": "rendered"},
                "settledAs": {"S": "rendered"},
                "settledByEvent": {"S": "first"},
                "createdAt": {"S": "2025-06-21T12:00:00.000Z"},
            }
        return {}

    @staticmethod
    def _record(job_id: str, user: dict) -> dict:
        if job_id.startswith(("reserved", "failed_reserved")):
            held = {"heldCredits": {"N": "30"}, "holdUser": user, "heldAt": {"S": "2025-06-21T12:00:00.000Z"}, "holdModel": {"S": "standard-v1"}}
            return {"jobId": {"S": job_id}, "userId": user, **held, "unitPrice": {"N": "2"}}
        if job_id.startswith(("duplicate", "conflict")):
            return {"jobId": {"S": job_id}, "userId": user, "settledAs": {"S": "rendered"}, "settledByEvent": {"S": "first"}}
        return {}

    def get_item(self, Key, TableName="", **_):  # noqa: N803 (boto3's parameter names)
        item = self._item(Key, TableName)
        return {"Item": item} if item else {}

    def transact_get_items(self, TransactItems):  # noqa: N803
        responses = [self._item(part["Get"]["Key"]) for part in TransactItems]
        return {"Responses": [{"Item": item} if item else {} for item in responses]}

    def transact_write_items(self, **_):
        return {}

    def update_item(self, **_):
        return {}

    def put_item(self, **_):
        return {}

    def query(self, **_):
        return {"Items": []}


class StubSQS:
    def send_message(self, **_):
        return {"MessageId": "00000000-0000-0000-0000-000000000000"}


def event_for(kind: str, index: int) -> dict:
    from benchmarks.common import failed, rendered

    job = f"{kind}-{index}"
    if kind in ("conflict", "failed_reserved"):
        return failed(f"ev-{kind}-{index}", job, USER)
    event = rendered(f"ev-{kind}-{index}", job, USER, seconds=12.5)
    if kind == "invalid":
        del event["detail"]["userId"]
    return event


def cpu(out: str, per_kind: int) -> None:
    os.environ.update(STUB_ENV)
    from emulator.invoker import LocalContext
    from reconciler import bootstrap
    from reconciler.bootstrap import build_processor
    from reconciler.config import load_config
    from reconciler.handlers import entry

    processor = build_processor(load_config(), dynamodb=StubDynamoDB(), sqs=StubSQS())
    bootstrap.event_processor = lambda: processor  # type: ignore[assignment]  # the handler's container, with the stub instead of the network
    context = LocalContext("cc-agent-reconciler-dev")
    # Warm up (first call builds caches), then interleave the kinds so no kind gets a warmer cache.
    outcomes = {kind: entry.handler(event_for(kind, -1), context).get("outcome") for kind in KINDS}
    results: dict[str, dict[str, list[int]]] = {kind: {"cpu": [], "wall": []} for kind in KINDS}
    core: dict[str, list[int]] = {kind: [] for kind in KINDS}
    for index in range(per_kind):
        for kind in KINDS:
            event = event_for(kind, index)
            c0, w0 = time.process_time_ns(), time.perf_counter_ns()
            entry.handler(event, context)
            c1, w1 = time.process_time_ns(), time.perf_counter_ns()
            results[kind]["cpu"].append(c1 - c0)
            results[kind]["wall"].append(w1 - w0)
    # The same events without the Powertools decorators (parse, validate, decide, build the request).
    for index in range(per_kind):
        for kind in KINDS:
            event = event_for(kind, index)
            w0 = time.perf_counter_ns()
            processor.process(event)
            core[kind].append(time.perf_counter_ns() - w0)
    with open(out, "w") as handle:
        json.dump({"handler": results, "core": core, "outcomes": outcomes}, handle)


class StubSNS:
    def __init__(self) -> None:
        self.published = 0

    def publish(self, **_):
        self.published += 1
        return {"MessageId": "00000000-0000-0000-0000-000000000000"}


def realistic_event(kind: str, index: int) -> dict:
    """The stub's event of `kind` with ids as long as real ones: a UUID event id (EventBridge), a job id of a
    prefix and a UUID (the stub reads the job's state from the prefix)."""
    event = event_for(kind, index)
    event["id"] = str(uuid.UUID(int=index + 1))
    event["detail"]["jobId"] = f"{kind}-{uuid.UUID(int=index + 2)}"
    return event


def telemetry(out: str, per_kind: int) -> None:
    """What the handler writes per event kind, as Lambda would ingest it: its log lines and EMF records (bytes and
    lines, apart), the metric series those records define, and the alerts it publishes. Lambda sets a new
    _X_AMZN_TRACE_ID for every invocation, traced or not, so each invocation gets one here."""
    os.environ.update(STUB_ENV)
    os.environ["OPS_TOPIC_ARN"] = "arn:aws:sns:us-east-1:123456789012:ops-alerts-dev"
    from emulator.invoker import LocalContext
    from reconciler import bootstrap
    from reconciler.bootstrap import build_processor
    from reconciler.config import load_config
    from reconciler.handlers import entry
    from reconciler.observability import logger

    sns = StubSNS()
    bootstrap.alert_sns_client = lambda: sns  # the notifier's SNS client, stubbed
    processor = build_processor(load_config(), dynamodb=StubDynamoDB(), sqs=StubSQS())
    bootstrap.event_processor = lambda: processor  # type: ignore[assignment]
    logs = io.StringIO()
    cast(logging.StreamHandler, logger.registered_handler).setStream(logs)  # Powertools logs through a StreamHandler
    results: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    for index in range(per_kind):
        for kind in KINDS:
            os.environ["_X_AMZN_TRACE_ID"] = f"Root=1-{index:08x}-{uuid.UUID(int=index).hex[:24]};Parent={index:016x};Sampled=0"
            logs.seek(0), logs.truncate()
            emf, published = io.StringIO(), sns.published
            with contextlib.redirect_stdout(emf):
                entry.handler(realistic_event(kind, index), LocalContext("cc-agent-reconciler-prod"))
            results[kind].append({**_lines(logs.getvalue(), "log"), **_lines(emf.getvalue(), "emf"), "alerts": sns.published - published})
            results[kind][-1]["series"] = _series(emf.getvalue())
    tick = {"source": "aws.events", "detail-type": "Scheduled Event", "id": str(uuid.UUID(int=7)), "detail": {}}
    with contextlib.redirect_stdout(io.StringIO()) as emf:
        entry.handler(tick, LocalContext("cc-agent-reconciler-prod"))
    report = {
        "events": results,
        "scan_tick_series": _series(emf.getvalue()),
        "balance": balance_telemetry(logs, per_kind),
        "hold": hold_telemetry(logs, per_kind),
    }
    with open(out, "w") as handle:
        json.dump(report, handle)


class StubEvents:
    def put_events(self, **_):
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "11111111-2222-3333-4444-555555555555"}]}


def credits_record(index: int, before: int, after: int) -> dict:
    """A Credits stream record of one balance change the reconciler made, as Lambda hands it to the balance-events
    function: its version up by one and its change recorded (`lastChange`), so the function finds it explained (the
    common case; an unexplained change logs and alerts besides)."""
    image = {"userId": {"S": USER}, "updatedAt": {"S": "2026-12-07T10:00:00.000Z"}}
    change = {"remaining": {"N": str(after - before)}, "by": {"S": f"job-{index:08d}"}}
    data = {
        "Keys": {"userId": {"S": USER}},
        "OldImage": {**image, "remaining": {"N": str(before)}, "version": {"N": str(index + 1)}},
        "NewImage": {**image, "remaining": {"N": str(after)}, "version": {"N": str(index + 2)}, "lastChange": {"M": change}},
        "SequenceNumber": str(10**20 + index),
    }
    return {"eventID": str(index), "eventName": "MODIFY", "eventSource": "aws:dynamodb", "dynamodb": data}


def balance_telemetry(logs: io.StringIO, repetitions: int) -> dict:
    """The balance-events function on one record a batch: a change that crosses nothing, and one that crosses the
    low threshold (its calls stubbed): CPU per invocation, log and EMF bytes, metric series."""
    os.environ.update(BALANCE_ENV)
    from emulator.invoker import LocalContext
    from reconciler import bootstrap
    from reconciler.config import load_balance_config
    from reconciler.handlers import balance_stream

    service = bootstrap.build_balance_event_service(load_balance_config(), dynamodb=StubDynamoDB(), events=StubEvents())
    bootstrap.balance_event_service = lambda: service  # type: ignore[assignment]
    found: dict[str, dict] = {}
    for name, (before, after) in (("no_crossing", (500, 480)), ("crossing", (12, 8))):
        cpu: list[int] = []
        for index in range(repetitions + 1):
            logs.seek(0), logs.truncate()
            with contextlib.redirect_stdout(io.StringIO()) as emf:
                c0 = time.process_time_ns()
                balance_stream.handler({"Records": [credits_record(index, before, after)]}, LocalContext("cc-reconciler-balance-events-prod"))
                cpu.append(time.process_time_ns() - c0)
            found[name] = {**_lines(logs.getvalue(), "log"), **_lines(emf.getvalue(), "emf"), "series": _series(emf.getvalue())}
        found[name]["cpu_ms"] = sorted(cpu[1:])[len(cpu[1:]) // 2] / 1e6  # median, after the first (cold) one
    return found


def hold_telemetry(logs: io.StringIO, repetitions: int) -> dict:
    """The hold function placing a hold (the pipeline's call before a held render), its store stubbed: CPU per
    invocation (median after the first), its log line and EMF record in bytes, its metric series."""
    from emulator.invoker import LocalContext
    from reconciler import bootstrap
    from reconciler.config import load_config
    from reconciler.handlers import hold_api

    config = load_config()
    service = bootstrap.build_reservations(bootstrap.settlement_store(config, StubDynamoDB()), config)
    bootstrap.hold_service = lambda: service  # type: ignore[assignment]  # the container's use case, on the stub
    cpu: list[int] = []
    found: dict = {}
    for index in range(repetitions + 1):
        request = {"operation": "hold", "jobId": f"hold-{uuid.UUID(int=index + 1)}", "userId": USER, "model": "standard-v1", "estimatedSeconds": 15}
        logs.seek(0), logs.truncate()
        with contextlib.redirect_stdout(io.StringIO()) as emf:
            c0 = time.process_time_ns()
            hold_api.handler(request, LocalContext("cc-reconciler-reserve-prod"))
            cpu.append(time.process_time_ns() - c0)
        found = {**_lines(logs.getvalue(), "log"), **_lines(emf.getvalue(), "emf"), "series": _series(emf.getvalue())}
    found["cpu_ms"] = sorted(cpu[1:])[len(cpu[1:]) // 2] / 1e6
    return found


def _lines(text: str, prefix: str) -> dict:
    lines = [line for line in text.splitlines() if line.strip()]
    return {f"{prefix}_bytes": sum(len(line.encode()) + 1 for line in lines), f"{prefix}_lines": len(lines)}


def _series(emf_text: str) -> list[list]:
    """(metric, dimension names) of every EMF record: each pair is a custom metric series CloudWatch bills."""
    series: set[tuple[str, str]] = set()
    for line in emf_text.splitlines():
        if line.strip():
            for definition in json.loads(line)["_aws"]["CloudWatchMetrics"]:
                for metric in definition["Metrics"]:
                    series.update((metric["Name"], ",".join(dimensions)) for dimensions in definition["Dimensions"])
    return sorted([name, dimensions] for name, dimensions in series)


def cold(out: str) -> None:
    """One cold invocation against the environment's endpoint (the local stack): imports, clients, one event."""
    t0 = time.perf_counter_ns()
    from emulator.invoker import LocalContext  # after the measured import: not on the Lambda path
    from reconciler.handlers.entry import handler

    t1 = time.perf_counter_ns()
    event = json.loads(os.environ["BENCH_COLD_EVENT"])
    result = handler(event, LocalContext("cc-agent-reconciler-dev"))
    t2 = time.perf_counter_ns()
    with open(out, "w") as handle:
        json.dump(
            {
                "import_ms": (t1 - t0) / 1e6,
                "first_invoke_ms": (t2 - t1) / 1e6,
                "outcome": result.get("outcome"),
                "maxrss_kb": peak_rss_kb(),
            },
            handle,
        )


MEMORY_FUNCTIONS = ("reconciler", "hold", "balance_events")


def memory(out: str, function: str, per_kind: int) -> None:
    """One function's peak RSS over the events the cost model prices for it, in a process of its own, as a warm
    container serves them: what Lambda's REPORT line gives as "Max Memory Used". The function's boto3 clients are built
    as bootstrap builds them in Lambda (and kept, as the container keeps them); their calls are answered by the stubs.
    The parent puts the synthesized asset first on PYTHONPATH, so the packaged handler is what runs."""
    os.environ.update({**STUB_ENV, "OPS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:ops-alerts-prod"})
    os.environ.update(BALANCE_ENV)
    import reconciler
    from reconciler import bootstrap

    services = {"reconciler": ("dynamodb", "sqs", "sns"), "hold": ("dynamodb",), "balance_events": ("dynamodb", "events")}[function]
    clients = [bootstrap.aws_client(service) for service in services]
    invoke, cases = _memory_driver(function)
    outcomes: dict[str, str] = {}
    for index in range(per_kind):  # logs and EMF records go to the parent's choice of stdout (/dev/null)
        for case in cases:
            outcomes[case] = str(invoke(case, index))
    with open(out, "w") as handle:
        json.dump(
            {
                "function": function,
                "peak_rss_kb": peak_rss_kb(),
                "invocations": per_kind * len(cases),
                "cases": outcomes,
                "clients": len(clients),
                "reconciler_from": os.path.dirname(reconciler.__file__),
            },
            handle,
        )


def _memory_driver(function: str):
    """(invoke(case, index) -> outcome, the cases) of one function, its store and publishers stubbed."""
    from emulator.invoker import LocalContext
    from reconciler import bootstrap
    from reconciler.config import load_balance_config, load_config

    if function == "reconciler":
        from reconciler.handlers import entry

        processor, sns = bootstrap.build_processor(load_config(), dynamodb=StubDynamoDB(), sqs=StubSQS()), StubSNS()
        bootstrap.event_processor = lambda: processor  # type: ignore[assignment]
        bootstrap.alert_sns_client = lambda: sns
        context = LocalContext("cc-agent-reconciler-prod")
        return (lambda kind, index: entry.handler(realistic_event(kind, index), context).get("outcome")), KINDS
    if function == "hold":
        from reconciler.handlers import hold_api

        config = load_config()
        reservations = bootstrap.build_reservations(bootstrap.settlement_store(config, StubDynamoDB()), config)
        bootstrap.hold_service = lambda: reservations  # type: ignore[assignment]
        context = LocalContext("cc-reconciler-reserve-prod")
        request = {"operation": "hold", "userId": USER, "model": "standard-v1", "estimatedSeconds": 15}
        return (lambda _, index: hold_api.handler({**request, "jobId": f"hold-{uuid.UUID(int=index + 1)}"}, context).get("status")), ("hold",)
    from reconciler.handlers import balance_stream

    service = bootstrap.build_balance_event_service(load_balance_config(), dynamodb=StubDynamoDB(), events=StubEvents())
    bootstrap.balance_event_service = lambda: service  # type: ignore[assignment]
    context = LocalContext("cc-reconciler-balance-events-prod")
    changes = {"no_crossing": (500, 480), "crossing": (12, 8)}

    def invoke(case: str, index: int) -> object:
        answer = balance_stream.handler({"Records": [credits_record(index, *changes[case])]}, context)
        return len((answer or {}).get("batchItemFailures", []))

    return invoke, tuple(changes)


def modules(out: str, module: str) -> None:
    import importlib

    importlib.import_module(module)
    present = sorted({name for name in sys.modules for banned in NOT_ON_EVENT_PATH if name == banned or name.startswith(banned + ".")})
    with open(out, "w") as handle:
        json.dump({"present": present, "all": sorted(sys.modules)}, handle)


if __name__ == "__main__":
    command, target = sys.argv[1], sys.argv[2]
    if command == "cpu":
        cpu(target, int(sys.argv[3]))
    elif command == "cold":
        cold(target)
    elif command == "telemetry":
        telemetry(target, int(sys.argv[3]))
    elif command == "modules":
        modules(target, sys.argv[3])
    elif command == "memory":
        memory(target, sys.argv[3], int(sys.argv[4]))
    else:
        raise SystemExit(f"unknown command {command}")
