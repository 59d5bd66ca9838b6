"""`make bench`: runs every benchmark of issues #5 and #12 and rewrites docs/benchmarks.md, docs/benchmarks.json and
docs/capacity.md. Never fails on timing.

python -m benchmarks.run [--quick] [--scale N [--scale-only scan,audit]] [--resume]   (--render: rewrite both documents
from docs/benchmarks.json; --section NAME: run that one section of those in SECTIONS_ALONE, merge its results into
docs/benchmarks.json and rewrite both documents from it, the other sections' figures as they were)

Each section's results are written to build/bench/partial.json as it completes (benchmarks/progress.py): after a crash,
--resume runs only the sections that file lacks.

The timer scan, the audit and the DLQ replay run at 0.1x and 1x today's sizes (a factor of 10 between two measured
points); --scale N adds N x to all three, or to those --scale-only names (`make bench SCALE=10 SCALE_ONLY=scan,audit`).
10x is not in the default run: on
moto, loading 200,000 items takes minutes, every Scan page sorts the whole table and every transaction copies the
tables it touches, so the 10x points alone take longer than the rest of the run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import measure, progress
from benchmarks.capacity import function_settings, render_capacity
from benchmarks.cli_startup import cli_startup, render_cli_startup
from benchmarks.common import machine
from benchmarks.cost import REQUEST_ROUND_TRIP_MS, V1_CLAIMED_EPS, V1_CLAIMED_MB, V1_CLAIMED_MS, cost_model
from benchmarks.holds import hold_latency
from benchmarks.prices import PRICE_DATE
from benchmarks.progress import Sections
from benchmarks.requests import OURS, POWERTOOLS, RESERVATION, SCENARIOS, V1, WHO, WHO_LABELS, count_requests
from benchmarks.stream_batching import render_stream_batching, stream_batching

DOCS = Path(__file__).resolve().parents[1] / "docs"
DOC = DOCS / "benchmarks.md"
RAW = DOCS / "benchmarks.json"
CAPACITY = DOCS / "capacity.md"

# Today's sizes (1x): jobs in the timer-scan table (settled, unsettled), audit (users, ledger entries), replay messages.
SCAN_SETTLED, SCAN_UNSETTLED = 20_000, 100
AUDIT_USERS, AUDIT_ENTRIES = 1000, 20_000
REPLAY_MESSAGES = 1000
# Sections that need no local stack and no other section's results: one can be rerun alone (--section NAME).
SECTIONS_ALONE: dict[str, Callable[[bool], dict]] = {"stream_batching": stream_batching}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def scales(quick: bool, extra: float | None, only: set[str] | None = None) -> dict[str, list[float]]:
    if quick:
        return {"scan": [0.1], "audit": [0.1], "replay": [0.1]}
    chosen: dict[str, list[float]] = {"scan": [0.1, 1], "audit": [0.1, 1], "replay": [0.1, 1]}
    if only is not None and not only <= set(chosen):
        raise SystemExit(f"--scale-only takes some of {sorted(chosen)}, got {sorted(only)}")
    if extra:
        for name, points in chosen.items():
            if extra not in points and (only is None or name in only):
                points.append(extra)
    return chosen


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    extra = float(argv[argv.index("--scale") + 1]) if "--scale" in argv else None
    only = set(argv[argv.index("--scale-only") + 1].split(",")) if "--scale-only" in argv else None
    if "--render" in argv:  # rewrite the documents from the last run's docs/benchmarks.json
        write_documents(json.loads(RAW.read_text()))
        return 0
    if "--section" in argv:
        return run_one_section(argv[argv.index("--section") + 1], quick)
    fresh = {"machine": machine(), "quick": quick, "scales": scales(quick, extra, only)}
    run = Sections.resumed_or_new(fresh, "--resume" in argv, path=progress.PARTIAL, log=log)
    quick = run.results["quick"]
    run_stubbed_sections(run, quick)
    run_stack_sections(run, quick)
    for name in ("scan", "audit", "replay"):
        run.run(name, f"item 5/6: {name} at each scale", _scaled_points(name, run.results["scales"][name]))
    run.run("cli_startup", "item 10: the CLI's start-up beside the aws CLI's", lambda: {"cli_startup": cli_startup(repetitions=3 if quick else 9)})
    results = run.finish()
    write_documents(results)
    RAW.write_text(json.dumps(results, indent=1, default=str))
    log(f"wrote docs/benchmarks.md, docs/capacity.md and docs/benchmarks.json in {results['elapsed_s']:.0f} s")
    return 0


def run_one_section(name: str, quick: bool) -> int:
    """One section measured again, its results merged into the last run's and both documents rewritten from them."""
    if name not in SECTIONS_ALONE:
        raise SystemExit(f"--section takes one of {sorted(SECTIONS_ALONE)}, got {name!r}")
    results = json.loads(RAW.read_text())
    log(f"section {name} alone, into the run of {results['machine']['date']}")
    results.update(SECTIONS_ALONE[name](quick))
    write_documents(results)
    RAW.write_text(json.dumps(results, indent=1, default=str))
    log("wrote docs/benchmarks.md, docs/capacity.md and docs/benchmarks.json")
    return 0


def run_stubbed_sections(run: Sections, quick: bool) -> None:
    """What needs no local stack: the template's settings, the handler's CPU, telemetry, memory and imports."""

    def settings() -> dict:
        with _quiet():
            return {"function": function_settings("prod")}

    run.run("function", "the prod function's settings, from its synthesized template", settings)
    run.run(
        "cpu",
        "item 2: handler CPU time (stubbed DynamoDB, fresh child processes)",
        lambda: {"cpu": measure.handler_cpu(per_kind=300 if quick else 2000, repetitions=3)},
    )
    run.run(
        "telemetry",
        "logs, metrics and alerts per event (stubbed AWS, a fresh child process)",
        lambda: {"telemetry": measure.telemetry(per_kind=5 if quick else 20)},
    )
    run.run(
        "memory",
        "peak memory of each packaged function over its priced events (stubbed AWS, a fresh child process each)",
        lambda: {"memory": measure.max_memory(per_kind=5 if quick else 20)},
    )
    run.run(
        "stream_batching",
        "issue #27: balance-events invocations per million records by rate and batching window (counts; a batch's CPU ratio)",
        lambda: stream_batching(quick),
    )
    run.run(
        "imports",
        "item 3: import times and event-path modules",
        lambda: {
            "imports": measure.import_times(repetitions=5 if quick else 9),
            "heaviest": measure.heaviest_imports(),
            "event_path_modules": measure.modules_on_event_path()["present"],
        },
    )


def run_stack_sections(run: Sections, quick: bool) -> None:
    """What runs against local stacks: request counts and cold invocations, throughput, the hold API's latency."""
    from emulator.stack import local_stack

    def fresh_stack():
        with _quiet(), local_stack("dev") as stack:
            yield stack

    def holds() -> dict:
        with _quiet():
            return {"holds": hold_latency(calls=50 if quick else 300, repetitions=3)}

    run.run(
        "requests",
        "item 1: request counts and capacity units, then cold invocations (moto server, real HTTP)",
        lambda: _on_one_stack(run.results, quick),
    )
    run.run(
        "throughput",
        "item 4: throughput, 10 threads, every run on a fresh stack",
        lambda: {"throughput": measure.throughput(contextlib.contextmanager(fresh_stack), events_per_run=60 if quick else 200, repetitions=3)},
    )
    run.run("holds", "item 9: the hold API's latency per call (Invoke over HTTP to the local stack)", holds)


def _on_one_stack(results: dict, quick: bool) -> dict:
    """Item 1's request counts and units, the largest item, and item 3's cold invocations, on one local stack."""
    from emulator.stack import local_stack
    from reconciler.config import RuntimeConfig

    with _quiet(), local_stack("dev") as stack:
        config = RuntimeConfig.from_env()
        counts = count_requests(stack.client("dynamodb"), stack.client("sqs"), config, prefix="bench", events=stack.client("events"))
        requests = {scenario: {who: _counted(c) for who, c in by_who.items()} for scenario, by_who in counts.items()}
        found = {
            "requests": requests,
            "function": {**results["function"], "credits_table": config.credits_table},  # the bench's stream records are keyed by it
            "max_item_bytes": _max_item_bytes(stack),
        }
        log("item 3: cold invocations (peak RSS), tracing off and on")
        found["cold"] = measure.cold_invocations(stack, repetitions=3 if quick else 5)
    return found


def _counted(c: Any) -> dict:
    return {
        "dynamodb": c.dynamodb,
        "sqs": c.sqs,
        "total": c.dynamodb_total,
        "outcome": c.outcome,
        "units": list(c.units),
        "partitions": c.partitions,
        "user_partition_wru": c.user_partition_wru(),
        "stored_bytes": c.stored_bytes,
        "stored_by_table": c.stored_by_table,
        "stream_records": c.stream_records,
        "balance_runs": c.balance_runs,
    }


def _scaled_points(name: str, scale_list: list[float]) -> Callable[[], dict]:
    """Item 5 or 6 as a section: the scan, the audit or the replay at each scale, every point on a fresh stack."""
    from emulator.stack import local_stack

    runner = {"scan": _scan_point, "audit": _audit_point, "replay": _replay_point}[name]

    def measure_points() -> dict:
        points = []
        for scale in scale_list:
            with _quiet(), local_stack("dev") as stack:
                log(f"item 5/6: {name} at {scale:g}x")
                points.append({"scale": scale, **runner(stack, scale)})
        # The sections' own text describes the 1x point (or the only one).
        return {f"{name}_points": points, name: next((p for p in points if p["scale"] == 1), points[-1])}

    return measure_points


def _scan_point(stack, scale: float) -> dict:
    return measure.timer_scan(stack, settled_jobs=round(SCAN_SETTLED * scale), unsettled_jobs=max(1, round(SCAN_UNSETTLED * scale)))


def _audit_point(stack, scale: float) -> dict:
    return measure.audit(stack, users=max(1, round(AUDIT_USERS * scale)), entries=round(AUDIT_ENTRIES * scale))


def _replay_point(stack, scale: float) -> dict:
    return measure.dlq_replay(stack, messages=max(10, round(REPLAY_MESSAGES * scale)))


def write_documents(results: dict) -> None:
    results["cost"] = cost_model(results)
    DOCS.mkdir(parents=True, exist_ok=True)
    DOC.write_text(render(results))
    CAPACITY.write_text(render_capacity(results))


@contextlib.contextmanager
def _quiet():
    """The CDK synthesis prints a Node.js notice on stderr-like streams; keep the bench output readable."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield


def _max_item_bytes(stack) -> int:
    from benchmarks.common import item_size

    dynamodb = stack.client("dynamodb")
    biggest = 0
    for table in dynamodb.list_tables()["TableNames"]:
        for item in dynamodb.scan(TableName=table).get("Items", []):
            biggest = max(biggest, item_size(item))
    return biggest


# --- the document ----------------------------------------------------------------------------


def _ops(counts: dict) -> str:
    return " + ".join(f"{n} {op}" for op, n in counts.items()) or "none"


def _ratio_cell(row: dict) -> str:
    low, high = row["ratio_range"]
    cpu_low, cpu_high = row["cpu_ratio_range"]
    return (
        f"{row['median_ms']:.0f} ms = {row['ratio_to_boto3']:.2f}x wall ({low:.2f}-{high:.2f}), "
        f"{row['cpu_ratio_to_boto3']:.2f}x CPU ({cpu_low:.2f}-{cpu_high:.2f})"
    )


def _load_sentence(load: list[float] | None) -> str:
    if not load:
        return ""
    return f" The machine's 1-minute load average: {load[0]:.2f} before the imports, {load[1]:.2f} after ({os.cpu_count()} cores)."


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def _growth(points: list[dict], size_key: str, measures: list[tuple[str, str]]) -> list[str]:
    """Rows of a growth table, each later point against the first: size ratio, and each measure's ratio."""
    rows = []
    first = points[0]
    for point in points:
        cells = [f"{point['scale']:g}x", f"{point[size_key]:,}"]
        for key, fmt in measures:
            value = point[key]
            ratio = f" (x{value / first[key]:.1f})" if point is not first and first[key] else ""
            cells.append(f"{value:{fmt}}{ratio}")
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def render(r: dict) -> str:
    m = r["machine"]
    req = r["requests"]
    cpu = r["cpu"]
    tp = r["throughput"]["summary"]
    cold = r["cold"]
    imp = r["imports"]["rows"]
    scan = r["scan"]
    c = r["cost"]
    out: list[str] = []
    w = out.append
    w("<!-- GENERATED by `make bench` (python -m benchmarks.run): do not edit by hand; rerun instead. -->")
    w("# Benchmarks")
    w("")
    w(
        f"Ran on: {m['cpu']}; {m['python']} on {m['platform']}; {m['date']}; boto3 {m['boto3']}, botocore {m['botocore']}, "
        f"moto {m['moto']}, Powertools {m['powertools']}. Whole run: {r['elapsed_s']:.0f} s{' (QUICK sizes)' if r['quick'] else ''}."
    )
    w("")
    w(
        "Rerun with `make bench` (rewrites this file, docs/capacity.md and docs/benchmarks.json; `make bench SCALE=100` adds the 100x "
        "sizes). Figures are medians over the repetitions stated; timings never fail the run. The request counts are exact and are "
        "asserted by `tests/integration/benchmarks/` in `make test`."
    )
    w(
        "Two baselines, both **written for these benchmarks** (v1's own code is not in this repository): the **v1-style baseline** "
        "(`benchmarks/baseline_v1.py`: separate GetItem/UpdateItem/PutItem calls, read-modify-write balance, skip-if-processed duplicate "
        "check) and the same **made idempotent with Powertools' idempotency utility** (`benchmarks/baseline_powertools.py`: "
        "`idempotent_function` with the DynamoDB persistence layer on a table of its own, keyed by the event id), the alternative a "
        "team would reach for. Capacity is in docs/capacity.md."
    )
    w("")
    w("## Summary")
    w("")
    w("| | " + " | ".join(WHO_LABELS[who] for who in WHO) + " |")
    w("|---|" + "---|" * len(WHO))
    for scenario, label in SCENARIOS:
        w(
            f"| DynamoDB requests, RRU / WRU: {label} | "
            + " | ".join(f"{req[scenario][who]['total']}, {req[scenario][who]['units'][0]:g} / {req[scenario][who]['units'][1]:g}" for who in WHO)
            + " |"
        )
    for scenario, label in SCENARIOS:
        w(f"| Cost per million, USD: {label} | " + " | ".join(f"{c[f'{scenario}/{who}']['total_usd']:.2f}" for who in WHO) + " |")
    sp, hot = tp["spread"], tp["hot"]
    reps = r["throughput"]["repetitions"]
    w("| Throughput, 10 threads, 200 distinct users (events/s, moto server) | " + " | ".join(f"{sp[who]['events_per_s']:.1f}" for who in WHO) + " |")
    w("| Throughput, 10 threads, one user (events/s, moto server) | " + " | ".join(f"{hot[who]['events_per_s']:.1f}" for who in WHO) + " |")
    w("| Books balance after the one-user runs | " + " | ".join(f"{hot[who]['books_balance_runs']}/{reps} runs" for who in WHO) + " |")
    w("")
    entry, traced = imp[measure.SHIPPED], imp.get(measure.TRACED)
    w("| ours | measured | target or reference |")
    w("|---|---|---|")
    w(f"| Handler CPU per event, median (stubbed DynamoDB) | {cpu['all_median_ms']:.2f} ms | v1 claims ~{V1_CLAIMED_MS:.0f} ms (incl. DB) |")
    w(
        f"| Import of `reconciler.handlers.entry` from the asset as shipped, tracing off, vs `import boto3` (median of "
        f"{r['imports']['repetitions']} interleaved repetitions, range) | {_ratio_cell(entry)} | at most 1.5x |"
    )
    if traced:
        w(f"| The same with tracing on (a stage that traces) | {_ratio_cell(traced)} | only tracing stages pay |")
    w(f"| Peak RSS of one cold invocation, tracing off | {cold['maxrss_mb']:.0f} MB | at most 60 MB; v1 claims ~{V1_CLAIMED_MB:.0f} MB |")
    if "tracing_on" in cold:
        w(f"| The same with tracing on | {cold['tracing_on']['maxrss_mb']:.0f} MB | |")
    w(
        f"| Timer scan: items read for {scan['unsettled_jobs']:,} unsettled among {scan['full_scan']['items']:,} jobs | "
        f"{scan['query']['items']:,} ({scan['query']['requests']} request) | a full Scan: {scan['full_scan']['items']:,} |"
    )
    w("")

    w("## 1. Requests and capacity units per event")
    w("")
    w(
        "Counted at the botocore level (`before-call` handlers on the clients' event systems) against the moto server over HTTP. "
        "Capacity units are what real on-demand DynamoDB would charge for the same calls, computed by `benchmarks/requests.py`'s "
        "`UnitMeter` (benchmarks/units.py) from each call, the tables' own key schemas and global secondary indexes (DescribeTable) "
        "and the item before and after the call, by DynamoDB's published rules (tests/integration/benchmarks/test_unit_meter.py checks them on "
        "known requests): reads 0.5 (eventually consistent) or 1 (consistent) per 4 KB of the whole items read, a Query or Scan page "
        "by every item it read before its filter and projection, transactional 2; writes 1 per 1 KB of the larger of the item before "
        "and after, also when a condition fails, transactional 2; per global secondary index 1 to put an item in or take it out, 2 "
        "when its index key changes, 1 when only a projected attribute changes. "
        f"Largest item in the tables after the run: {r['max_item_bytes']} bytes."
    )
    w("")
    w("| event | who | requests | RRU / WRU | outcome |")
    w("|---|---|---|---|---|")
    for scenario, label in (*SCENARIOS, RESERVATION):
        for who in WHO:
            if who not in req[scenario]:
                continue
            o = req[scenario][who]
            sqs = f" + SQS {_ops(o['sqs'])}" if o["sqs"] else ""
            w(
                f"| {label if who == next(iter(req[scenario])) else ''} | {WHO_LABELS[who]} | {o['total']} ({_ops(o['dynamodb'])}){sqs} | "
                f"{o['units'][0]:g} / {o['units'][1]:g} | {o['outcome']} |"
            )
    w("")
    w(
        "Fewer requests is not fewer units: a transaction costs twice the units of the same writes done singly. The Powertools "
        "baseline adds its own record to every event (a conditional PutItem first, an UpdateItem with the answer after): a redelivery "
        "costs one failed conditional write (1 WRU; the stored answer comes back with it, `ReturnValuesOnConditionCheckFailure`), an "
        "event v1 rejects a PutItem and a DeleteItem before the error reaches Lambda, which retries it. Neither baseline is atomic."
    )
    w("")

    w("## 2. Handler CPU time per event")
    w("")
    w(
        "Through the real `reconciler.handlers.entry.handler` (Powertools Logger and Metrics; tracing off) with a fake "
        "Lambda context, DynamoDB and SQS answered by an in-memory stub (canned responses, no moto, no network), logs and EMF metrics "
        f"written to /dev/null. {cpu['events']:,} events a run (interleaved kinds, after a warm-up), {cpu['repetitions']} runs in fresh "
        "processes; median of the runs' medians and p99s. `core` = `EventProcessor.process` alone (parse, validate, decide, build the "
        "request), wall time."
    )
    w("")
    w("| event | outcome | CPU median | CPU p99 | wall median | core only (no Powertools) |")
    w("|---|---|---|---|---|---|")
    outcomes = cpu.get("outcomes", {})
    for kind, row in cpu["per_kind"].items():
        w(
            f"| {kind} | {outcomes.get(kind, '?')} | {row['cpu_median_ms']:.3f} ms | {row['cpu_p99_ms']:.3f} ms | "
            f"{row['wall_median_ms']:.3f} ms | {row['core_median_ms']:.3f} ms |"
        )
    w(f"| all | | {cpu['all_median_ms']:.3f} ms | {cpu['all_p99_ms']:.3f} ms | | |")
    w("")
    w(
        f"Against v1's ~{V1_CLAIMED_MS:.0f} ms per event: {cpu['all_median_ms'] / V1_CLAIMED_MS:.4f}x. **Not like for like**: v1's figure "
        "includes its database round trips; this one replaces the network by a stub, so it is only the handler's own work."
    )
    w("")

    w("## 3. Cold start and memory")
    w("")
    compiled = r["imports"].get("compiled_for_this_python", False)
    w(
        f"Import time in fresh interpreters ({r['imports']['repetitions']} repetitions, each importing every row once, interleaved), "
        "wall and CPU (user + system, which other jobs on the machine disturb less). Each repetition's time is divided by the "
        "`import boto3` of the same repetition; the table gives the median of those ratios and their range (lowest-highest), so "
        "a reader can see how far one run may land from another. The function's modules come from its asset as synthesized "
        "(infra/runtime_asset.py: the runtime without the operator tooling, with unchecked-hash bytecode for Python 3.12, Lambda's) "
        "and from the same asset without bytecode (what Lambda ran before: /var/task is read-only, so every cold start compiled "
        f"them again). Python here: {r['imports'].get('python', '?')}"
        + ("." if compiled else ": not 3.12, so the asset's bytecode is ignored and both rows compile from source.")
        + " Tracing off is the bench's environment (POWERTOOLS_TRACE_DISABLED=true); tracing on is a stage that traces."
        + _load_sentence(r["imports"].get("load_average"))
    )
    w("")
    w("| module | wall median | ratio (range) | CPU median | ratio (range) |")
    w("|---|---|---|---|---|")
    for module, row in imp.items():
        w(
            f"| `{module}` | {row['median_ms']:.0f} ms | {row['ratio_to_boto3']:.2f} ({row['ratio_range'][0]:.2f}-{row['ratio_range'][1]:.2f}) | "
            f"{row['cpu_median_ms']:.0f} ms | {row['cpu_ratio_to_boto3']:.2f} ({row['cpu_ratio_range'][0]:.2f}-{row['cpu_ratio_range'][1]:.2f}) |"
        )
    w("")
    w(
        "Heaviest imports on the cold path of `reconciler.handlers.entry`, tracing off (`-X importtime`, self time summed by top-level "
        "package, one run):"
    )
    w("")
    w("| package | self time |")
    w("|---|---|")
    for name, ms in r["heaviest"]:
        w(f"| `{name}` | {ms:.1f} ms |")
    w("")
    bare = imp.get(measure.SOURCE_ONLY)
    if bare:
        w(
            f"Shipping the bytecode: the import takes {entry['cpu_median_ms']:.0f} ms CPU from the asset as shipped against "
            f"{bare['cpu_median_ms']:.0f} ms from the same asset without it ({bare['cpu_median_ms'] - entry['cpu_median_ms']:.0f} ms "
            "less per cold start). What `boto3` brings (`multiprocessing`, `html`, `dateutil`, `s3transfer`) is part of "
            "`import boto3` itself."
        )
        w("")
    present = r["event_path_modules"]
    w(
        "Modules that must not load on the event path (the X-Ray SDK, Powertools' data classes and parameters, the "
        "timer scan, the notifier, CLI/ops, local stack, moto): "
        + ("none loaded by `reconciler.handlers.entry` (asserted in tests/benchmarks)." if not present else f"**loaded: {', '.join(present)}**")
    )
    w("")
    on = cold.get("tracing_on", {})
    w(
        "One cold invocation in a fresh process (import, real boto3 clients, one `video.rendered` settled against the moto server; "
        f"{cold['repetitions']} processes each way): peak RSS **{cold['maxrss_mb']:.0f} MB** with tracing off"
        + (f", {on['maxrss_mb']:.0f} MB with tracing on" if on else "")
        + f" (v1 claims ~{V1_CLAIMED_MB:.0f} MB); a bare `python` that imports boto3 and makes the same two clients: "
        f"{cold['boto3_two_clients_maxrss_mb']:.0f} MB. Import {cold['import_ms']:.0f} ms, first invocation {cold['first_invoke_ms']:.0f} ms "
        f"(client creation + 2 local HTTP requests). Outcomes: {', '.join(cold['outcomes'])}. RSS on Lambda differs (its runtime "
        "process has its own baseline)."
    )
    w("")

    w("## 4. Throughput against the moto server")
    w("")
    t = r["throughput"]
    w(
        f"{t['events_per_run']} `video.rendered` events a run, {t['threads']} worker threads sharing one client each side, real HTTP to "
        f"moto on 127.0.0.1, {t['repetitions']} runs per row, every run on a fresh stack of its own, medians. moto serialises requests "
        "and copies tables per transaction, so absolute rates say little about AWS; the retries and the books do. Books: every "
        "user's balance must equal initial credits + the ledger sum."
    )
    w("")
    w("| run | who | events/s | requests/event | attempts/event (max) | errors | books balance | lost updates per run |")
    w("|---|---|---|---|---|---|---|---|")
    for mode, label in (("spread", "200 users"), ("hot", "1 user")):
        for who in WHO:
            s = tp[mode][who]
            w(
                f"| {label} | {WHO_LABELS[who]} | {s['events_per_s']:.1f} | {s['requests_per_event']:.2f} | {s['attempts_per_event']:.2f} "
                f"({s['max_attempts']}) | {s['errors']} | {s['books_balance_runs']}/{t['repetitions']} | {s['lost_updates']} |"
            )
    w("")
    kinds = sorted({k for mode in tp.values() for s in mode.values() for run in s["runs"] for k in run["outcomes"] if k.startswith("error")})
    if kinds:
        w("Errors seen (exception and AWS error code): " + "; ".join(f"`{k}`" for k in kinds) + ".")
        w("")
    if kinds or tp["hot"][OURS]["books_balance_runs"] < t["repetitions"]:
        w(
            "**Caveat:** errors or unbalanced books on our side under concurrency point at the emulator first: moto's "
            "`transact_write_items` deep-copies the tables it touches and restores them when a transaction is cancelled, so on moto's own "
            "multi-threaded server a cancelled transaction can undo another thread's commit. The local stack therefore runs moto one request "
            "at a time (`emulator/fidelity.py`, SerializedApp); if this note appears, that serialisation did not hold for this run."
        )
        w("")
    w(
        f"v1 claims 10 concurrent ≈ {V1_CLAIMED_EPS:.0f} events/s on AWS; these rates are moto's and are not comparable to it. "
        "The baselines have no condition on the balance and so lose updates on one user: Powertools' idempotency makes a *redelivered* "
        "event safe, not two different events racing on one balance."
    )
    w("")

    w("## 5. Timer scan")
    w("")
    ss = scan["settle_side"]
    w(
        "Jobs table loaded with batch_write_item: N settled jobs without the `unsettled` attribute and N/200 with "
        '`unsettled = "PENDING"` (status rendered/failed, createdAt 2025-01-01), plus up to 100 settled first by `TimerScan.run` '
        "(the settling columns). moto's ConsumedCapacity is a constant, so the query's items and bytes are counted from its "
        "responses, and the units computed with DynamoDB's rules (eventually consistent: 0.5 RCU per 4 KB a page). The full Scan "
        "columns are computed from the items in the table (a Scan page stops at 1 MB): scanning moto's table itself would take longer "
        "than the rest of the benchmark."
    )
    w("")
    w(
        "| size | jobs in the table | query: items read | query: requests | full Scan: items | full Scan: pages on DynamoDB | "
        "settling: requests | settling: s (moto) |"
    )
    w("|---|---|---|---|---|---|---|---|")
    for point in r["scan_points"]:
        jobs = point["full_scan"]["items"]
        w(
            f"| {point['scale']:g}x | {jobs:,} | {point['query']['items']:,} | {point['query']['requests']} | {point['full_scan']['items']:,} | "
            f"{point['full_scan']['requests_dynamodb']:,} | {point['settle_side']['total']:,} | {point['settle_side']['seconds']:.1f} |"
        )
    w("")
    if len(r["scan_points"]) > 1:
        a, b = r["scan_points"][0], r["scan_points"][-1]
        w(
            f"Growth from {a['scale']:g}x to {b['scale']:g}x (measured): the query reads x{b['query']['items'] / a['query']['items']:.1f} items "
            f"for x{b['unsettled_jobs'] / a['unsettled_jobs']:.1f} unsettled jobs (linear in the unsettled jobs; the settled ones are not in "
            f"the sparse index); a full Scan would read x{b['full_scan']['items'] / a['full_scan']['items']:.1f} (linear in the table); "
            "settling costs 1 query page + 2 requests per job at any size."
        )
    else:
        w("One size only in this run.")
    w(
        f"At {scan['unsettled_jobs']:,} unsettled: `TimerScan.run` examined {ss['examined']}, settled {ss['settled']} with {ss['total']} "
        f"requests ({_ops(ss['requests'])}), before the big table was loaded (moto copies the whole table per transaction)."
    )
    w("")

    w("## 6. Audit and DLQ replay")
    w("")
    audits = [p for p in r["audit_points"] if "missing" not in p]
    if not audits:
        w(f"Audit: not measured, missing: {r['audit'].get('missing')}.")
    else:
        w(
            "Audit (`Auditor.audit_all`, no progress output) over N ledger entries for N/20 users (10 planted discrepancies), fresh "
            "stack each: each user's top-up in Ledger, the job charges in UserLedger, as the books are kept. Items, bytes, DynamoDB "
            "pages and RRU are what the Scan pages read (before any filter), charged at the consistency the audit uses: strongly "
            "consistent, 1 RRU per 4 KB."
        )
        w("")
        w("| size | ledger entries | requests (moto) | items read | bytes read | pages on DynamoDB | RRU | s (moto) | found |")
        w("|---|---|---|---|---|---|---|---|---|")
        for point in audits:
            w(
                f"| {point['scale']:g}x | {point['entries']:,} | {point['total']} | {point['items_read']:,} | {point['bytes_read']:,} | "
                f"{point['pages_dynamodb']:,} | {point['rru_dynamodb']:,.0f} | {point['seconds']:.1f} | {point['discrepancies_found']} |"
            )
        w("")
        if len(audits) > 1:
            a, b = audits[0], audits[-1]
            w(
                f"Growth from {a['scale']:g}x to {b['scale']:g}x (measured): x{b['entries'] / a['entries']:.0f} entries, "
                f"x{b['bytes_read'] / a['bytes_read']:.1f} bytes read, x{b['seconds'] / a['seconds']:.1f} time on moto: linear in the ledger "
                "plus the balances, read by one machine."
            )
            w("")
    replays = [p for p in r["replay_points"] if "missing" not in p]
    if not replays:
        w(f"DLQ replay: not measured, missing: {r['replay'].get('missing')}.")
    else:
        w(
            "DLQ replay (`reconciler.ops.dead_letter_replay.replay` with `InProcessInvoker`, no progress output), fresh stack each, "
            "`rendered` events of 100 users:"
        )
        w("")
        w("| size | messages | SQS requests | DynamoDB requests | requests per message | s (moto) | ms per message (moto) | result | left |")
        w("|---|---|---|---|---|---|---|---|---|")
        for point in replays:
            per = (point["sqs_total"] + point["dynamodb_total"]) / point["messages"]
            w(
                f"| {point['scale']:g}x | {point['messages']:,} | {point['sqs_total']:,} | {point['dynamodb_total']:,} | {per:.2f} | "
                f"{point['seconds']:.1f} | {point['seconds'] / point['messages'] * 1000:.0f} | {point['summary']} | {point['left_in_queue']} |"
            )
        w("")
        if len(replays) > 1:
            a, b = replays[0], replays[-1]
            w(
                f"Growth from {a['scale']:g}x to {b['scale']:g}x (measured): requests "
                f"x{(b['sqs_total'] + b['dynamodb_total']) / (a['sqs_total'] + a['dynamodb_total']):.1f} "
                f"for x{b['messages'] / a['messages']:.0f} messages (linear: a constant number per message); time on moto "
                f"x{b['seconds'] / a['seconds']:.1f}, faster than linear because moto deep-copies every table a transaction touches, "
                "and the tables grow with the replay. On DynamoDB a transaction's cost does not depend on the table's size."
            )
        w("")
    not_run = {name: [n for n in (10, 100) if n > max(points)] for name, points in r["scales"].items()}
    if not r["quick"] and any(not_run.values()):
        w(
            "Not run in this run: "
            + "; ".join(f"{name} at {', '.join(f'{n}x' for n in sizes)}" for name, sizes in not_run.items() if sizes)
            + " (`make bench SCALE=10` or `SCALE=100`, `SCALE_ONLY=scan,audit` for some of them; 100x is 2,020,000 jobs, "
            "2,000,000 ledger entries and 100,000 replayed "
            "messages). On moto they are slow for reasons of its own, not DynamoDB's: every item is a Python object in the moto "
            "server (gigabytes at 10x), every Scan page sorts the whole table, and every transaction copies the tables it touches, "
            "so a replay's time grows with the square of its size. The growth stated above is between measured points; "
            "docs/capacity.md carries it to larger volumes and says where it does."
        )
        w("")

    w("## 7. Cost model per million events")
    w("")
    fn = r["function"]
    w(
        f'Every line item, priced in benchmarks/prices.py (sources and date in docs/capacity.md, "Prices"; {PRICE_DATE}). Lambda at '
        f"{fn['memory_mb']} MB {fn['architecture']} (the prod template). Duration: the handler's measured median CPU for the path "
        f"(section 2; ours, as a proxy for all three) + {REQUEST_ROUND_TRIP_MS:g} ms per DynamoDB, SQS, SNS or EventBridge request it "
        f"makes (an in-region round trip from DynamoDB's documented single-digit milliseconds, not measured here: docs/capacity.md), "
        f"rounded up to 1 ms; `v1 as claimed` uses v1's {V1_CLAIMED_MS:.0f} ms. A baseline that "
        f"raises is invoked {1 + fn['async_retries']} times (Lambda's asynchronous retries, prod template) and then parked in the DLQ "
        "by Lambda (1 SQS message). Units from section 1; logs and alerts from section 8; the archive from each event's bytes; the "
        "balance-events function run on the Credits stream records of section 1, for those the prod mapping's filters deliver. "
        "docs/capacity.md explains each column and adds storage, "
        "point-in-time recovery and the fixed monthly metrics."
    )
    w("")
    w(
        "| per million | invocations | requests | RRU | WRU | duration | GB-s | Lambda $ | DynamoDB $ | SQS $ | Logs $ | SNS $ (at most) "
        "| archive $ | balance-events $ | total $ |"
    )
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for scenario, label in SCENARIOS:
        keys = [(f"{scenario}/{who}", WHO_LABELS[who]) for who in WHO]
        if f"{scenario}/v1-claimed" in c:
            keys.append((f"{scenario}/v1-claimed", f"v1 as claimed ({V1_CLAIMED_MS:.0f} ms)"))
        for index, (key, who_label) in enumerate(keys):
            row, items = c[key], c[key]["items"]
            name = f"{label}: {who_label}" if index == 0 else f"... {who_label}"
            w(
                f"| {name} | {row['invocations'] / 1e6:g} M | {row['requests'] / 1e6:g} M | {row['rru'] / 1e6:g} M | {row['wru'] / 1e6:g} M | "
                f"{row['duration_ms']:.0f} ms | {row['gb_s']:,.0f} | {items['lambda']:.2f} | {items['dynamodb']:.2f} | {items['sqs']:.2f} | "
                f"{items['logs']:.2f} | {items.get('sns', 0):.2f} | {items.get('archive', 0):.2f} | {items.get('balance_events', 0):.2f} | "
                f"**{row['total_usd']:.2f}** |"
            )
    w("")
    w("Ours against each baseline, total per million (ratio < 1: ours is cheaper):")
    w("")
    w("| event | ours / v1-style | ours / v1 + Powertools idempotency | ours / v1 as claimed |")
    w("|---|---|---|---|")
    for scenario, label in SCENARIOS:
        ours = c[f"{scenario}/{OURS}"]["total_usd"]
        claimed = c.get(f"{scenario}/v1-claimed")
        w(
            f"| {label} | {_ratio(ours, c[f'{scenario}/{V1}']['total_usd'])} | {_ratio(ours, c[f'{scenario}/{POWERTOOLS}']['total_usd'])} | "
            f"{_ratio(ours, claimed['total_usd']) if claimed else '-'} |"
        )
    w("")
    render_telemetry(r, w)
    render_holds(r, w)
    render_cli_startup(r, w)
    render_stream_batching(r, w)
    return "\n".join(out)


def render_holds(r: dict, w: Any) -> None:
    h = r.get("holds")
    if not h:
        return
    w("")
    w("## 9. The hold API's latency per call")
    w("")
    w(
        f"`python -m benchmarks.holds`: {h['calls']} jobs held, held again and released through Lambda's Invoke over HTTP to the local "
        f"stack, on {h['repetitions']} fresh stacks; the median of their p50 and p99 (the range in brackets). It measures moto's DynamoDB "
        "behind a werkzeug server and our handler in-process, not AWS (docs/pipeline.md)."
    )
    w("")
    w("| call | p50 ms | p99 ms |")
    w("|---|---|---|")
    for kind, s in h["summary"].items():
        p50 = f"{s['p50_ms']:.1f} ({s['p50_range'][0]:.1f}-{s['p50_range'][1]:.1f})"
        w(f"| {kind} | {p50} | {s['p99_ms']:.1f} ({s['p99_range'][0]:.1f}-{s['p99_range'][1]:.1f}) |")


def render_telemetry(r: dict, w: Any) -> None:
    tel = r["telemetry"]
    w("## 8. Logs, metrics and alerts per event")
    w("")
    w(
        f"Through the real `reconciler.handlers.entry.handler` with DynamoDB, SQS and SNS stubbed (benchmarks/_child.py `telemetry`), "
        f"{tel['repetitions']} events of each kind with ids as long as real ones (UUID event and job ids) and a trace header per "
        "invocation, as Lambda sets it: the function's own JSON lines and its EMF records, in bytes as CloudWatch ingests them "
        "(UTF-8, with the newline), medians of the warm invocations. The first invocation of a container adds `cold_start`; the first "
        "conflict or invalid event of a 5-minute window also publishes an alert and logs it (the alert column and its bytes)."
    )
    w("")
    w("| event | own lines | own bytes | EMF records | EMF bytes | alerts (first, later) | alert's own line, bytes | metric series |")
    w("|---|---|---|---|---|---|---|---|")
    for scenario, label in SCENARIOS:
        k = tel["per_kind"][scenario]
        w(
            f"| {label} | {k['log_lines']:g} | {k['log_bytes']:,.0f} | {k['emf_lines']:g} | {k['emf_bytes']:,.0f} | {k['alerts_first']}, "
            f"{k['alerts_later']} | {k['alert_log_bytes']:,.0f} | {len(k['series'])} |"
        )
    b = tel["balance"]
    w("")
    w(
        f"The balance-events function, one record a batch: a change that crosses nothing {b['no_crossing']['cpu_ms']:.2f} ms CPU, "
        f"{b['no_crossing']['log_bytes']} bytes of own lines; one that crosses the low threshold {b['crossing']['cpu_ms']:.2f} ms CPU "
        f"(its five AWS calls stubbed), {b['crossing']['log_bytes']} + {b['crossing']['emf_bytes']} bytes. Metric series over all "
        f"of it (every event kind, a timer-scan tick, the balance-events function): {len(tel['series'])}."
    )
    w("")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
