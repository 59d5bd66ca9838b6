"""The measurements behind `make bench`, one function per item of issue #5. Each returns plain data."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks._child import STUB_ENV
from benchmarks.baseline_powertools import PowertoolsIdempotentV1
from benchmarks.baseline_v1 import V1Baseline
from benchmarks.common import RequestCounter, batch_put, item_size, median, percentile, rendered
from benchmarks.requests import OURS, V1, WHO, ensure_idempotency_table
from benchmarks.units import UnitMeter, page_read_units
from reconciler import bootstrap
from reconciler.bootstrap import build_processor
from reconciler.config import RuntimeConfig
from reconciler.contract import USER_LEDGER_SORT_KEY, user_ledger_key
from reconciler.domain.ledger import iso_timestamp
from reconciler.repository.dynamodb import to_item
from reconciler.repository.dynamodb_operations import OperationsStore

REPO_ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


class LockedCounter(RequestCounter):
    """RequestCounter safe for worker threads sharing one client."""

    def __init__(self, *clients: Any) -> None:
        self._lock = threading.Lock()
        super().__init__(*clients)

    def _on_call(self, model: Any = None, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1

    def _on_send(self, **_: Any) -> None:
        with self._lock:
            self.attempts += 1


def _child(args: list[str], env: dict[str, str] | None = None, stdout=subprocess.DEVNULL) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.json")
        subprocess.run(
            [PYTHON, "-m", "benchmarks._child", args[0], out, *args[1:]], cwd=REPO_ROOT, env=env or os.environ.copy(), stdout=stdout, check=True
        )
        with open(out) as handle:
            return json.load(handle)


# --- item 2: handler CPU time with a stubbed DynamoDB ---------------------------------------


def handler_cpu(per_kind: int = 2000, repetitions: int = 3) -> dict:
    """Median/p99 per kind of event, per repetition (a fresh child each), then the median over repetitions."""
    env = {**os.environ, **STUB_ENV}
    env.pop("AWS_ENDPOINT_URL", None)
    runs = [_child(["cpu", str(per_kind)], env) for _ in range(repetitions)]
    kinds = list(runs[0]["handler"])
    table = {}
    for kind in kinds:
        table[kind] = {
            "cpu_median_ms": median(median(r["handler"][kind]["cpu"]) for r in runs) / 1e6,
            "cpu_p99_ms": median(percentile(r["handler"][kind]["cpu"], 0.99) for r in runs) / 1e6,
            "wall_median_ms": median(median(r["handler"][kind]["wall"]) for r in runs) / 1e6,
            "core_median_ms": median(median(r["core"][kind]) for r in runs) / 1e6,
        }
    all_cpu = [median([v for kind in kinds for v in r["handler"][kind]["cpu"]]) for r in runs]
    all_p99 = [percentile([v for kind in kinds for v in r["handler"][kind]["cpu"]], 0.99) for r in runs]
    return {
        "per_kind": table,
        "outcomes": runs[0]["outcomes"],
        "events": per_kind * len(kinds),
        "repetitions": repetitions,
        "all_median_ms": median(all_cpu) / 1e6,
        "all_p99_ms": median(all_p99) / 1e6,
    }


# --- item 3: cold start ---------------------------------------------------------------------

ENTRY_MODULES = ("reconciler.handlers.entry", "reconciler.handlers.video_events", "reconciler.handlers.scheduled_scan")


# Where a stage turns tracing on: in Lambda (LAMBDA_TASK_ROOT), not disabled; the X-Ray daemon address and trace
# header Lambda sets (a local address: nothing listens there, the SDK's UDP sends go nowhere).
TRACING_ON_ENV = {
    "POWERTOOLS_TRACE_DISABLED": "false",
    "LAMBDA_TASK_ROOT": str(REPO_ROOT / "runtime"),
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
}
ENTRY = ENTRY_MODULES[0]
SHIPPED = "reconciler.handlers.entry (asset as shipped)"
SOURCE_ONLY = "reconciler.handlers.entry (asset without bytecode)"
TRACED = "reconciler.handlers.entry (as shipped, tracing on)"


def import_times(repetitions: int = 7) -> dict:
    """Wall and CPU time of `import X` in fresh interpreters, interleaved with `import boto3` (the reference), each as a
    ratio to the `import boto3` of its own repetition; the median ratio and its range over the repetitions.

    The function's modules are imported from its asset as synthesized (infra/runtime_asset.py), with the bytecode for
    Lambda's Python it ships, and from the same asset without it (what Lambda ran before: every module compiled at
    each cold start). The bytecode is 3.12's: run under another Python, the rows say so and compile from source."""
    from infra.constructs.reconciler_function import RUNTIME_DIR
    from infra.runtime_asset import LAMBDA_PYTHON, staged_runtime

    # The installed packages' bytecode first (Python writes it on first import, as the Lambda runtime ships boto3's),
    # then no writing at all: the asset without bytecode must stay without it.
    writing = {k: v for k, v in {**os.environ, **STUB_ENV}.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([PYTHON, "-c", f"import boto3, {ENTRY}"], env=writing, cwd=REPO_ROOT, check=True)
    env = {**os.environ, **STUB_ENV, "PYTHONDONTWRITEBYTECODE": "1"}
    shipped = staged_runtime(RUNTIME_DIR)
    bare = tempfile.TemporaryDirectory()
    shutil.copytree(shipped, bare.name, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    on = {"PYTHONPATH": str(shipped)}
    modules = [
        ("boto3", "boto3", env),
        (SHIPPED, ENTRY, {**env, **on}),
        (SOURCE_ONLY, ENTRY, {**env, "PYTHONPATH": bare.name}),
        *((f"{m} (asset as shipped)", m, {**env, **on}) for m in ENTRY_MODULES[1:]),
        (TRACED, ENTRY, {**env, **on, **TRACING_ON_ENV, "LAMBDA_TASK_ROOT": str(shipped)}),
    ]
    load_before = os.getloadavg()[0]
    wall, cpu = _interleaved_imports(modules, repetitions)
    load_after = os.getloadavg()[0]
    bare.cleanup()
    rows = {label: {**_ratios(wall, label, ""), **_ratios(cpu, label, "cpu_")} for label in wall}
    return {
        "rows": rows,
        "repetitions": repetitions,
        "compiled_for_this_python": sys.version_info[:2] == LAMBDA_PYTHON,
        "python": sys.version.split()[0],
        # The machine's 1-minute load average before and after: how much other work competed with the imports.
        "load_average": [load_before, load_after],
    }


def _interleaved_imports(modules: list[tuple[str, str, dict]], repetitions: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    wall: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    code = (
        "import time; t = time.perf_counter_ns(); c = time.process_time_ns(); import {m}; "
        "print(time.perf_counter_ns() - t, time.process_time_ns() - c)"
    )
    for _ in range(repetitions):
        for label, module, module_env in modules:
            out = subprocess.run([PYTHON, "-c", code.format(m=module)], env=module_env, cwd=REPO_ROOT, capture_output=True, text=True, check=True)
            wall_ns, cpu_ns = out.stdout.split()
            wall[label].append(int(wall_ns) / 1e6)
            cpu[label].append(int(cpu_ns) / 1e6)
    return wall, cpu


def _ratios(times: dict[str, list[float]], label: str, prefix: str) -> dict[str, Any]:
    """Median time; the median, lowest and highest of the per-repetition ratios to boto3 (same repetition)."""
    ratios = sorted(mine / reference for mine, reference in zip(times[label], times["boto3"], strict=True))
    return {
        f"{prefix}median_ms": median(times[label]),
        f"{prefix}ratio_to_boto3": median(ratios),
        f"{prefix}ratio_range": [ratios[0], ratios[-1]],
    }


def heaviest_imports(module: str = "reconciler.handlers.entry", top: int = 10) -> list[tuple[str, float]]:
    """Self import time summed by top-level package, from one `-X importtime` run (microseconds -> ms)."""
    env = {**os.environ, **STUB_ENV}
    out = subprocess.run([PYTHON, "-X", "importtime", "-c", f"import {module}"], env=env, cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    by_package: Counter[str] = Counter()
    for line in out.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s*(\S+)", line)
        if match:
            by_package[match.group(3).split(".")[0]] += int(match.group(1))
    return [(name, micros / 1000) for name, micros in by_package.most_common(top)]


def modules_on_event_path() -> dict:
    return _child(["modules", "reconciler.handlers.entry"], {**os.environ, **STUB_ENV})


def telemetry(per_kind: int = 20) -> dict:
    """What the function writes to CloudWatch per event kind (its log lines and EMF records, medians of warm
    invocations; the first invocation's extra bytes: cold_start and, for conflicts and invalid events, the alert's
    own line), the alerts it publishes, and every metric series it, the hold function and the balance-events function
    emit."""
    env = {**os.environ, **STUB_ENV}
    env.pop("AWS_ENDPOINT_URL", None)
    raw = _child(["telemetry", str(per_kind)], env)
    kinds = {}
    for kind, runs in raw["events"].items():
        warm = runs[1:]
        kinds[kind] = {
            "log_bytes": median(r["log_bytes"] for r in warm),
            "log_lines": median(r["log_lines"] for r in warm),
            "emf_bytes": median(r["emf_bytes"] for r in warm),
            "emf_lines": median(r["emf_lines"] for r in warm),
            "alerts_first": runs[0]["alerts"],
            "alerts_later": sum(r["alerts"] for r in warm),
            "alert_log_bytes": runs[0]["log_bytes"] - median(r["log_bytes"] for r in warm) if runs[0]["alerts"] else 0,
            "series": runs[0]["series"],
        }
    found = {tuple(s) for runs in raw["events"].values() for r in runs for s in r["series"]}
    found |= {tuple(s) for s in raw["scan_tick_series"]}
    found |= {tuple(s) for case in raw["balance"].values() for s in case["series"]}
    found |= {tuple(s) for s in raw["hold"]["series"]}
    return {"per_kind": kinds, "balance": raw["balance"], "hold": raw["hold"], "series": sorted(list(s) for s in found), "repetitions": per_kind}


def cold_invocations(stack: Any, repetitions: int = 5) -> dict:
    """Peak RSS and times of a fresh process doing one real invocation against the local stack, tracing off (as
    the bench's environment has it) and on (as in a stage that traces)."""
    dynamodb = stack.client("dynamodb")
    config = RuntimeConfig.from_env()
    runs: dict[str, list[dict]] = {"off": [], "on": []}
    for index in range(repetitions):
        for tracing in ("off", "on"):
            user = f"cold-user-{tracing}-{index}"
            dynamodb.put_item(TableName=config.credits_table, Item=to_item({"userId": user, "remaining": 1000}))
            event = rendered(f"cold-e-{tracing}-{index}", f"cold-j-{tracing}-{index}", user)
            env = {**os.environ, **stack.environment(), "BENCH_COLD_EVENT": json.dumps(event), **(TRACING_ON_ENV if tracing == "on" else {})}
            runs[tracing].append(_child(["cold"], env))
    reference = []
    code = (
        "import boto3; from benchmarks._child import peak_rss_kb; boto3.client('dynamodb', region_name='us-east-1'); "
        "boto3.client('sqs', region_name='us-east-1'); print(peak_rss_kb())"
    )
    for _ in range(repetitions):
        out = subprocess.run([PYTHON, "-c", code], env={**os.environ, **STUB_ENV}, cwd=REPO_ROOT, capture_output=True, text=True, check=True)
        reference.append(int(out.stdout.strip()))
    off, on = runs["off"], runs["on"]
    return {
        "repetitions": repetitions,
        "outcomes": sorted({r["outcome"] for r in off + on}),
        "maxrss_mb": median(r["maxrss_kb"] for r in off) / 1024,
        "import_ms": median(r["import_ms"] for r in off),
        "first_invoke_ms": median(r["first_invoke_ms"] for r in off),
        "tracing_on": {
            "maxrss_mb": median(r["maxrss_kb"] for r in on) / 1024,
            "import_ms": median(r["import_ms"] for r in on),
            "first_invoke_ms": median(r["first_invoke_ms"] for r in on),
        },
        "boto3_two_clients_maxrss_mb": median(reference) / 1024,
    }


# --- item 4: throughput against the moto server ---------------------------------------------

INITIAL_CREDITS = 1_000_000
COST_PER_EVENT = 20  # 10 s of standard-v1 at 2 credits/s


def throughput(new_stack: Callable[[], Any], events_per_run: int = 200, repetitions: int = 3, threads: int = 10) -> dict:
    """Every run on a local stack of its own (`new_stack()`, a context manager): moto copies every table a transaction
    touches, so a stack shared by runs slows the later ones and grows the moto server (past 5 GB for our 1,200
    settlements on one stack, measured)."""
    results: dict[str, dict[str, list[dict]]] = {mode: {who: [] for who in WHO} for mode in ("spread", "hot")}
    for rep in range(repetitions):
        for mode in ("spread", "hot"):
            for who in WHO:
                with new_stack() as stack:
                    _throughput_run(who, mode, rep, stack, results, events_per_run, threads)
    summary: dict[str, dict[str, Any]] = {}
    for mode, by_who in results.items():
        summary[mode] = {}
        for who, runs in by_who.items():
            summary[mode][who] = {
                "events_per_s": median(r["events_per_s"] for r in runs),
                "requests_per_event": median(r["requests_per_event"] for r in runs),
                "attempts_per_event": median(r["attempts_per_event"] for r in runs),
                "max_attempts": max(r["max_attempts"] for r in runs),
                "errors": sum(v for r in runs for k, v in r["outcomes"].items() if k.startswith("error")),
                "books_balance_runs": sum(1 for r in runs if r["books_balance"]),
                "lost_updates": [r["lost_updates"] for r in runs],
                "runs": runs,
            }
    return {"events_per_run": events_per_run, "repetitions": repetitions, "threads": threads, "summary": summary}


def _throughput_run(who: str, mode: str, rep: int, stack: Any, results: dict, events_per_run: int, threads: int) -> None:
    config = RuntimeConfig.from_env()
    dynamodb = stack.client("dynamodb")
    store = bootstrap.operations_store(config, dynamodb)  # the books check reads balances and ledgers
    counter = LockedCounter(dynamodb)
    tables = (config.jobs_table, config.credits_table, config.ledger_table)
    if who == OURS:
        processor = build_processor(config, dynamodb=dynamodb, sqs=stack.client("sqs"))

        def run(event: dict) -> tuple[str, int]:
            try:
                outcome = processor.process(event)
                return outcome.kind, outcome.attempts
            except Exception as error:  # noqa: BLE001 - counted and reported, e.g. RetriesExhausted
                return f"error:{_describe(error)}", 0
    else:
        implementation: Any = (
            V1Baseline(dynamodb, *tables) if who == V1 else PowertoolsIdempotentV1(dynamodb, *tables, ensure_idempotency_table(dynamodb))
        )

        def run(event: dict) -> tuple[str, int]:
            try:
                return implementation.process(event).kind, 1
            except Exception as error:  # noqa: BLE001 - counted and reported, like ours
                return f"error:{type(error).__name__}", 0

    prefix = f"tp-{mode}-{who}-{rep}"
    users = [f"{prefix}-u{i}" for i in range(events_per_run if mode == "spread" else 1)]
    batch_put(dynamodb, config.credits_table, (to_item({"userId": u, "remaining": INITIAL_CREDITS}) for u in users))
    events = [rendered(f"{prefix}-e{i}", f"{prefix}-j{i}", users[i % len(users)], seconds=10) for i in range(events_per_run)]
    counter.reset()
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(run, events))
    elapsed = time.perf_counter() - started
    requests = counter.total
    books = _check_books(store, dynamodb, config, users, events_per_run)
    kinds = Counter(kind for kind, _ in outcomes)
    results[mode][who].append(
        {
            "seconds": elapsed,
            "events_per_s": events_per_run / elapsed,
            "requests": requests,
            "requests_per_event": requests / events_per_run,
            "attempts_per_event": sum(a for _, a in outcomes) / events_per_run,
            "max_attempts": max(a for _, a in outcomes),
            "outcomes": dict(kinds),
            **books,
        }
    )


def _describe(error: BaseException) -> str:
    """The exception's type and, for AWS errors, its code (following the cause chain)."""
    cause: BaseException | None = error
    while cause is not None:
        response = getattr(cause, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code", "?")
            reasons = [r.get("Code") for r in response.get("CancellationReasons", [])]
            return f"{type(error).__name__}({code}{' ' + ','.join(map(str, reasons)) if reasons else ''})"
        cause = cause.__cause__
    return type(error).__name__


def _check_books(store: OperationsStore, dynamodb: Any, config: RuntimeConfig, users: list[str], events: int) -> dict:
    """Balance == initial + ledger sum for every user; lost updates = charges in the ledger the balance lacks."""
    mismatched = 0
    lost = 0
    ledger_entries = 0
    for user in users:
        stored = store.get_balance(user)
        balance = (stored.remaining if stored else None) or 0
        entries = list(store.ledger_for_user(user))
        ledger_entries += len(entries)
        ledger_sum = sum(e.signed_amount for e in entries)
        if balance != INITIAL_CREDITS + ledger_sum:
            mismatched += 1
            lost += (balance - (INITIAL_CREDITS + ledger_sum)) // COST_PER_EVENT
    return {"books_balance": mismatched == 0, "users_mismatched": mismatched, "lost_updates": lost, "ledger_entries": ledger_entries}


# --- item 5: timer scan on a big Jobs table -------------------------------------------------


SETTLE_SIDE_MAX = 100  # jobs settled in the settling half: 1 query page + 2 requests a job at any size


def timer_scan(stack: Any, settled_jobs: int = 20_000, unsettled_jobs: int = 100) -> dict:
    """The scan's query on a Jobs table of `settled_jobs` + 2 x `unsettled_jobs` items, and, on a table of its own,
    the settling of up to SETTLE_SIDE_MAX unsettled jobs (moto copies every table a transaction touches)."""
    from reconciler.domain.pricing import PriceBook
    from reconciler.service.event_settlement import SettlementService
    from reconciler.service.timer_scan import TimerScan

    config = RuntimeConfig.from_env()
    dynamodb = stack.client("dynamodb")
    store = bootstrap.settlement_store(config, dynamodb)
    old = "2025-01-01T00:00:00.000Z"
    users = [f"scan-user-{i}" for i in range(10)]
    batch_put(dynamodb, config.credits_table, (to_item({"userId": u, "remaining": 100_000}) for u in users))

    # Settlement side, on a table that holds only the unsettled jobs (moto copies tables per transaction).
    settle_count = min(unsettled_jobs, SETTLE_SIDE_MAX)
    batch_put(dynamodb, config.jobs_table, _unsettled_items("a", settle_count, users, old))
    settlement = SettlementService(store, PriceBook.with_overrides(config.price_overrides))
    scan = TimerScan(store, settlement, grace=timedelta(minutes=config.scan_grace_minutes), stuck_after=timedelta(hours=config.stuck_job_hours))
    counter = RequestCounter(dynamodb)
    started = time.perf_counter()
    report = scan.run()
    settle_side = {
        "requests": counter.snapshot(),
        "total": counter.total,
        "settled": len(report.settled),
        "examined": report.examined,
        "seconds": time.perf_counter() - started,
    }

    # Query side, on the big table: settled jobs (no marker) + unsettled ones.
    loaded: list[int] = []  # the size of every item put into the big table

    def sized(items):
        for item in items:
            loaded.append(item_size(item))
            yield item

    started = time.perf_counter()
    load_requests = batch_put(dynamodb, config.jobs_table, sized(_settled_items(settled_jobs, users, old))) + batch_put(
        dynamodb, config.jobs_table, sized(_unsettled_items("b", unsettled_jobs, users, old))
    )
    load_seconds = time.perf_counter() - started
    # The jobs the settling half settled are in the table too, as they are now.
    for start in range(0, settle_count, 100):
        keys = [{"jobId": {"S": f"unsettled-a-{i:05d}"}} for i in range(start, min(start + 100, settle_count))]
        answer = dynamodb.batch_get_item(RequestItems={config.jobs_table: {"Keys": keys}})
        loaded.extend(item_size(item) for item in answer["Responses"][config.jobs_table])

    pages = PageMeter(dynamodb)
    counter.reset()
    before = iso_timestamp(datetime.now(UTC) - timedelta(minutes=config.scan_grace_minutes))
    started = time.perf_counter()
    found = list(store.unsettled_jobs(created_before=before))
    query_seconds = time.perf_counter() - started
    pages.close()
    read = pages.summary()
    query = {
        "requests": counter.total,
        "items": read["items_read"],
        "bytes": read["bytes_read"],
        "found": len(found),
        "rcu": read["rru_dynamodb"],
        "seconds": query_seconds,
    }
    full_scan = _full_scan(loaded)
    return {
        "settled_jobs": settled_jobs,
        "unsettled_jobs": unsettled_jobs,
        "settle_side": settle_side,
        "load_requests": load_requests,
        "load_seconds": load_seconds,
        "query": query,
        "full_scan": full_scan,
    }


def _unsettled_items(phase: str, count: int, users: list[str], old: str):
    """Unsettled jobs of the timer scan's benchmark: half rendered, half failed, a quarter with a reservation."""
    for i in range(count):
        item = {
            "jobId": f"unsettled-{phase}-{i:05d}",
            "userId": users[i % len(users)],
            "status": "rendered" if i % 2 == 0 else "failed",
            "model": "standard-v1",
            "seconds": 10,
            "createdAt": old,
            "updatedAt": old,
            "unsettled": "PENDING",
        }
        if i % 4 == 0:
            item["reservedCredits"] = 20
        yield to_item(item)


def _settled_items(count: int, users: list[str], old: str):
    """Settled jobs (no unsettled marker): what the scan's index never holds."""
    for i in range(count):
        yield to_item(
            {
                "jobId": f"settled-{i:06d}",
                "userId": users[i % len(users)],
                "status": "rendered",
                "model": "standard-v1",
                "seconds": 10,
                "createdAt": old,
                "updatedAt": old,
                "settledAs": "rendered",
                "settledAt": old,
                "settledByEvent": f"event-{i:06d}",
                "chargedCredits": 20,
                "releasedCredits": 0,
                "refundedCredits": 0,
            }
        )


def _full_scan(loaded: list[int]) -> dict:
    # A full Scan reads every item: computed from the items loaded (moto sorts the whole table for every Scan page,
    # which at 10x takes longer than everything else here). DynamoDB stops a page at 1 MB and charges each page's
    # bytes rounded up to 4 KB, eventually consistent.
    total_bytes = sum(loaded)
    return {
        "requests_dynamodb": max(1, math.ceil(total_bytes / (1024 * 1024))),
        "items": len(loaded),
        "bytes": total_bytes,
        "rcu": math.ceil(total_bytes / 4096) * 0.5,
    }


class PageMeter:
    """Every Scan/Query page a client receives, with what DynamoDB would read and charge for it (`UnitMeter`'s
    rules: the items the page read before its filter and projection, at the request's consistency, rounded up to
    4 KB per page), and the page count on DynamoDB (which stops a page at 1 MB read; moto pages differently)."""

    def __init__(self, dynamodb: Any) -> None:
        self.dynamodb = dynamodb
        self.meter = UnitMeter(dynamodb)
        self.pages: list[dict[str, Any]] = []  # per page: returned, read (items), bytes (read), rru
        self.tables: set[str] = set()
        self._pending: list[dict] = []
        for operation in ("Scan", "Query"):
            dynamodb.meta.events.register(f"after-call.dynamodb.{operation}", self._on_page)
            dynamodb.meta.events.register(f"before-parameter-build.dynamodb.{operation}", self._on_request)

    def _on_request(self, params: Any = None, **_: Any) -> None:
        if not self.meter.busy:
            self._pending.append(dict(params or {}))
            self.tables.add((params or {}).get("TableName", "?"))

    def _on_page(self, model: Any = None, parsed: Any = None, **_: Any) -> None:
        if self.meter.busy or not self._pending:
            return
        params, parsed = self._pending.pop(), parsed or {}
        read = self.meter.items_read(model.name, params, parsed)
        self.pages.append(
            {
                "returned": len(parsed.get("Items", [])),
                "read": len(read),
                "bytes": sum(item_size(item) for item in read),
                "rru": page_read_units(read, params),
            }
        )

    def close(self) -> None:
        for operation in ("Scan", "Query"):
            self.dynamodb.meta.events.unregister(f"after-call.dynamodb.{operation}", self._on_page)
            self.dynamodb.meta.events.unregister(f"before-parameter-build.dynamodb.{operation}", self._on_request)

    def summary(self) -> dict:
        total = sum(page["bytes"] for page in self.pages)
        return {
            "items_returned": sum(page["returned"] for page in self.pages),
            "items_read": sum(page["read"] for page in self.pages),
            "bytes_read": total,
            "pages_moto": len(self.pages),
            "pages_dynamodb": max(1, math.ceil(total / (1024 * 1024))),
            "rru_dynamodb": sum(page["rru"] for page in self.pages),
            "tables": sorted(self.tables),
        }


# --- item 6: audit and DLQ replay (the CLI engineer's runtime/reconciler/ops) ----------------


def dlq_replay(stack: Any, messages: int = 1000) -> dict:
    try:
        from reconciler.ops.aws import SqsQueue
        from reconciler.ops.dead_letter_replay import replay
        from reconciler.ops.target import InProcessInvoker, RecordingDeadLetters
    except ImportError as error:
        return {
            "missing": f"reconciler.ops.dead_letter_replay.replay / reconciler.ops.target.InProcessInvoker / reconciler.ops.aws.SqsQueue: {error}"
        }
    config = RuntimeConfig.from_env()
    dynamodb, sqs = stack.client("dynamodb"), stack.client("sqs")
    url = config.dlq_url
    load_started = time.perf_counter()
    for start in range(0, messages, 10):
        entries = []
        for i in range(start, min(start + 10, messages)):
            event = rendered(f"dlq-e{i}", f"dlq-j{i}", f"dlq-user-{i % 100}")
            attributes = {"errorType": "RetriesExhausted", "field": "-", "reason": "benchmark", "stage": config.stage, "eventId": event["id"]}
            entries.append(
                {
                    "Id": str(i),
                    "MessageBody": json.dumps(event),
                    "MessageAttributes": {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
                }
            )
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    load_seconds = time.perf_counter() - load_started
    ddb_counter, sqs_counter = RequestCounter(dynamodb), RequestCounter(sqs)
    started = time.perf_counter()
    invoke = InProcessInvoker(build_processor(config, dynamodb=dynamodb, dead_letters=RecordingDeadLetters()))
    report = replay(SqsQueue(sqs, url), invoke, max_messages=messages)
    elapsed = time.perf_counter() - started
    left = int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"])
    return {
        "messages": messages,
        "seconds": elapsed,
        "load_seconds": load_seconds,
        "summary": report.summary(),
        "dynamodb": ddb_counter.snapshot(),
        "dynamodb_total": ddb_counter.total,
        "sqs": sqs_counter.snapshot(),
        "sqs_total": sqs_counter.total,
        "left_in_queue": left,
    }


def audit(stack: Any, users: int = 1000, entries: int = 20_000, discrepancies: int = 10) -> dict:
    try:
        from reconciler.ops.audit import Auditor
    except ImportError as error:
        return {"missing": f"reconciler.ops.audit.Auditor: {error}"}
    config = RuntimeConfig.from_env()
    dynamodb = stack.client("dynamodb")
    store = bootstrap.operations_store(config, dynamodb)
    per_user = entries // users
    # As the books are kept: each user's top-up is an operator's entry in Ledger, the job charges are postings in
    # UserLedger (keyed by user and time); the audit merges both.
    ledger, postings, sums = [], [], Counter[str]()
    for i in range(entries):
        user = f"audit-user-{i % users:04d}"
        kind = "credit" if i < users else "debit"  # each user: one top-up, then debits
        amount = 1000 if kind == "credit" else 7
        sums[user] += amount if kind == "credit" else -amount
        ledger_id, timestamp = f"audit-{i:06d}#charge", f"2025-06-21T12:{i // 3600 % 60:02d}:{i // 60 % 60:02d}.{i % 1000:03d}Z"
        entry = {
            "ledgerId": ledger_id,
            "userId": user,
            "timestamp": timestamp,
            "type": kind,
            "amount": amount,
            "description": "benchmark",
            "reference": f"audit-{i:06d}",
        }
        if kind == "credit":
            ledger.append(to_item(entry))
        else:
            postings.append(to_item({USER_LEDGER_SORT_KEY: user_ledger_key(timestamp, ledger_id), **entry}))
    balances = [
        to_item({"userId": user, "remaining": total + (1 if n < discrepancies else 0)}) for n, (user, total) in enumerate(sorted(sums.items()))
    ]
    started = time.perf_counter()
    load_requests = (
        batch_put(dynamodb, config.ledger_table, ledger)
        + batch_put(dynamodb, config.user_ledger_table, postings)
        + batch_put(dynamodb, config.credits_table, balances)
    )
    load_seconds = time.perf_counter() - started
    counter = RequestCounter(dynamodb)
    pages = PageMeter(dynamodb)
    started = time.perf_counter()
    found = Auditor(store).audit_all()
    elapsed = time.perf_counter() - started
    pages.close()
    return {
        **pages.summary(),
        "users": users,
        "entries": entries,
        "per_user": per_user,
        "seconds": elapsed,
        "requests": counter.snapshot(),
        "total": counter.total,
        "discrepancies_found": len(found),
        "discrepancies_planted": discrepancies,
        "load_requests": load_requests,
        "load_seconds": load_seconds,
    }
