"""The cost model (docs/benchmarks.md section 7) and docs/capacity.md, both computed from a run's measured figures
(docs/benchmarks.json) and the deployed function's settings as synthesized. Nothing here is a measurement: every
figure is measured elsewhere in the run, taken from the synthesized template, or an assumption stated here and in
the document."""

from __future__ import annotations

import math
from typing import Any

from benchmarks.requests import OURS, POWERTOOLS, SCENARIOS, V1, WHO, WHO_LABELS

# AWS list prices, us-east-1, as published in 2025 (DynamoDB after the November 2024 price cut). Free tiers ignored.
PRICES = {
    "wru": 0.625 / 1e6,  # DynamoDB on-demand write request unit
    "rru": 0.125 / 1e6,  # DynamoDB on-demand read request unit
    "storage_gb_month": 0.25,  # DynamoDB Standard table class
    "lambda_gb_s_x86": 0.0000166667,
    "lambda_gb_s_arm": 0.0000133334,
    "lambda_request": 0.20 / 1e6,
    "sqs_request": 0.40 / 1e6,  # standard queue
}
PRICE_DATE = "AWS list prices for us-east-1 as published in 2025 (free tiers ignored)"
ASSUMED_REQUEST_MS = 10.0  # assumed in-region round trip of one DynamoDB or SQS request (not measured here)
ASSUMED_SCAN_PAGE_MS = 100.0  # assumed time for one 1 MB Scan page on DynamoDB, one thread (not measured here)
V1_CLAIMED_MS, V1_CLAIMED_MB, V1_CLAIMED_EPS = 300.0, 85.0, 33.0
# DynamoDB's documented per-partition throughput (Developer Guide, "Best practices for designing and using partition
# keys effectively": a partition serves at most 3,000 RCU and 1,000 WCU per second). One item never spans partitions.
PARTITION_WRU_PER_S, PARTITION_RRU_PER_S = 1000, 3000
VOLUMES = (1_000_000, 10_000_000, 100_000_000)
SECONDS_PER_MONTH = 30 * 86400
RENDER_PATHS = ("reserved", "no_job", "failed_reserved")


def function_settings(stage: str = "prod") -> dict[str, Any]:
    """The reconciler function's memory, timeout, concurrency, architecture, tracing and async retry settings, read
    from the stage's synthesized template (the same synthesis `cdk deploy` uses)."""
    from reconciler.contract import ResourceNames
    from reconciler.local.stack import templates_for

    name = ResourceNames(stage).function
    for template in templates_for(stage).values():
        resources = template.get("Resources", {})
        for logical_id, resource in resources.items():
            props = resource.get("Properties", {})
            if resource["Type"] != "AWS::Lambda::Function" or props.get("FunctionName") != name:
                continue
            invoke: dict[str, Any] = next(
                (
                    r["Properties"]
                    for r in resources.values()
                    if r["Type"] == "AWS::Lambda::EventInvokeConfig" and r["Properties"].get("FunctionName") == {"Ref": logical_id}
                ),
                {},
            )
            env = props.get("Environment", {}).get("Variables", {})
            return {
                "stage": stage,
                "function": name,
                "memory_mb": props["MemorySize"],
                "timeout_s": props["Timeout"],
                "reserved_concurrency": props.get("ReservedConcurrentExecutions"),
                "architecture": (props.get("Architectures") or ["x86_64"])[0],
                "tracing": (props.get("TracingConfig") or {}).get("Mode", "PassThrough"),
                "powertools_trace_disabled": env.get("POWERTOOLS_TRACE_DISABLED", "(unset)"),
                "async_retries": invoke.get("MaximumRetryAttempts", 2),  # Lambda's default is 2
                "max_event_age_s": invoke.get("MaximumEventAgeInSeconds", 21600),  # default 6 hours
            }
    raise LookupError(f"no function {name} in the {stage} templates")


# --- cost per event ------------------------------------------------------------------------------


def cost_model(results: dict) -> dict[str, dict]:
    """Per million events of each path, for ours and both baselines (and v1 as claimed for the render paths)."""
    cpu = results["cpu"]["per_kind"]
    settings = results["function"]
    rows: dict[str, dict] = {}
    for scenario, _ in SCENARIOS:
        for who in WHO:
            counts = results["requests"][scenario][who]
            rows[f"{scenario}/{who}"] = per_million(counts, cpu[scenario]["cpu_median_ms"], settings)
        if scenario in RENDER_PATHS:
            counts = results["requests"][scenario][V1]
            rows[f"{scenario}/v1-claimed"] = per_million(counts, None, settings, duration_ms=V1_CLAIMED_MS)
    return rows


def per_million(counts: dict, cpu_ms: float | None, settings: dict, duration_ms: float | None = None) -> dict:
    """One million events of a path: a path that raises (the baselines on an invalid event) is invoked again by
    Lambda's asynchronous retries, each attempt making the same calls, then parked by Lambda in the DLQ."""
    raised = counts["outcome"].startswith("raised")
    invocations = 1 + settings["async_retries"] if raised else 1
    sqs_per_event = sum(counts["sqs"].values()) * invocations + (1 if raised else 0)  # + the on-failure destination's message
    requests = counts["total"] + sum(counts["sqs"].values())
    # Duration of one invocation: the handler's measured CPU for this path (ours, as a proxy for all three: a few
    # tenths of a millisecond against the round trips) + one assumed round trip per request, rounded up to 1 ms.
    if duration_ms is None:
        duration_ms = math.ceil((cpu_ms or 0.0) + requests * ASSUMED_REQUEST_MS)
    gb = settings["memory_mb"] / 1024
    gb_s = invocations * gb * duration_ms / 1000 * 1e6
    rru, wru = (u * invocations for u in counts["units"])
    dynamodb = (rru * PRICES["rru"] + wru * PRICES["wru"]) * 1e6
    price_gb_s = PRICES["lambda_gb_s_arm"] if settings["architecture"] == "arm64" else PRICES["lambda_gb_s_x86"]
    lambda_usd = gb_s * price_gb_s + invocations * PRICES["lambda_request"] * 1e6
    sqs = sqs_per_event * PRICES["sqs_request"] * 1e6
    return {
        "invocations": invocations * 1e6,
        "requests": counts["total"] * invocations * 1e6,
        "rru": rru * 1e6,
        "wru": wru * 1e6,
        "sqs_requests": sqs_per_event * 1e6,
        "duration_ms": duration_ms,
        "gb_s": gb_s,
        "dynamodb_usd": dynamodb,
        "lambda_usd": lambda_usd,
        "sqs_usd": sqs,
        "total_usd": dynamodb + lambda_usd + sqs,
        "stored_bytes": counts.get("stored_bytes", 0),
    }


def events_per_second(row: dict, concurrency: int) -> float:
    """Sustained events per second `concurrency` warm instances can take on a path (one event at a time each)."""
    invocations_per_event = row["invocations"] / 1e6
    return concurrency * 1000 / (row["duration_ms"] * invocations_per_event)


# --- docs/capacity.md ----------------------------------------------------------------------------


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value < 1000 else f"${value:,.0f}"


def _n(value: float) -> str:
    return f"{value / 1e6:g} M" if value >= 1e6 else f"{value:,.0f}"


def render_capacity(r: dict) -> str:
    s = r["function"]
    cost = r["cost"]
    req = r["requests"]
    concurrency = s["reserved_concurrency"]
    out: list[str] = []
    w = out.append
    w("<!-- GENERATED by `make bench` (python -m benchmarks.run) from docs/benchmarks.json: do not edit by hand; rerun instead. -->")
    w("# Capacity")
    w("")
    w(
        f"What the reconciler can take and what it costs, computed from the figures `make bench` measured on {r['machine']['date']} "
        "(docs/benchmarks.md) and the function as synthesized for prod. Three kinds of figure appear here, and each says which it is: "
        "**measured** (request counts, capacity units by DynamoDB's rules, handler CPU, scan/audit/replay sizes), **configured** "
        "(the synthesized template, AWS's documented limits and list prices) and **assumed** (stated below; change them and rerun "
        "`python -m benchmarks.run --render`)."
    )
    w("")
    w("## Assumptions and settings")
    w("")
    w(
        f"* **Assumed** in-region round trip of one DynamoDB or SQS request: {ASSUMED_REQUEST_MS:g} ms (not measured: the bench runs "
        "on moto). An invocation lasts the handler's measured CPU time for its path plus one round trip per request."
    )
    w(f"* **Assumed** single-threaded Scan speed on DynamoDB: one 1 MB page per {ASSUMED_SCAN_PAGE_MS:g} ms.")
    w(
        f"* **Configured** (prod template): `{s['function']}`, {s['memory_mb']} MB, {s['architecture']}, timeout {s['timeout_s']} s, "
        f"reserved concurrency {concurrency}, asynchronous retries {s['async_retries']}, maximum event age {s['max_event_age_s'] / 3600:g} h, "
        f"X-Ray tracing {s['tracing']} (POWERTOOLS_TRACE_DISABLED {s['powertools_trace_disabled']})."
    )
    w(
        f"* **Configured** prices: {PRICE_DATE}: DynamoDB on-demand $0.625 per million WRU, $0.125 per million RRU, storage $0.25 "
        "per GB-month; Lambda $0.0000133334 per GB-second (arm64) and $0.20 per million requests; SQS $0.40 per million requests."
    )
    w(
        "* **Configured** DynamoDB limits: a partition serves at most 1,000 write and 3,000 read units per second (DynamoDB Developer "
        'Guide, "Best practices for designing and using partition keys effectively"); one item always lives in one partition; a '
        'transactional write costs 2 units per item ("Amazon DynamoDB Transactions: how it works", capacity management).'
    )
    w("")

    w(f"## Events per second at reserved concurrency {concurrency}")
    w("")
    w(
        f"Sustained rate of {concurrency} warm instances, each handling one event at a time: {concurrency} x 1000 / (invocation ms x "
        "invocations per event). A baseline that raises is invoked "
        f"{1 + s['async_retries']} times per event (Lambda's retries)."
    )
    w("")
    w("| event | " + " | ".join(f"{WHO_LABELS[who]}: ms, events/s" for who in WHO) + " |")
    w("|---|" + "---|" * len(WHO))
    for scenario, label in SCENARIOS:
        cells = []
        for who in WHO:
            row = cost[f"{scenario}/{who}"]
            cells.append(f"{row['duration_ms']:.0f} ms x {row['invocations'] / 1e6:g}: {events_per_second(row, concurrency):,.0f}")
        w(f"| {label} | " + " | ".join(cells) + " |")
    w("")
    monthly_peak = VOLUMES[-1] / SECONDS_PER_MONTH
    slowest = min(events_per_second(cost[f"{p}/{OURS}"], concurrency) for p in RENDER_PATHS)
    w(
        f"For scale: 100 M events a month average {monthly_peak:.1f} events/s; our slowest settling path takes {slowest:,.0f} events/s "
        f"at concurrency {concurrency}, {slowest / monthly_peak:,.0f}x that average. Lambda's own scaling is not the limit here; the "
        'reserved concurrency is (see "What to change").'
    )
    w("")

    w("## One hot user")
    w("")
    w(
        "Every event of one user writes that user's balance item (and, where the ledger is keyed by user, that user's ledger partition). "
        "The busiest such partition, measured per event (write units on partitions keyed by the event's user, by DynamoDB's rules):"
    )
    w("")
    w("| event | " + " | ".join(f"{WHO_LABELS[who]}: WRU on the user's busiest partition, ceiling events/s" for who in WHO) + " |")
    w("|---|" + "---|" * len(WHO))
    for scenario, label in SCENARIOS:
        cells = []
        for who in WHO:
            hot = req[scenario][who]["user_partition_wru"]
            cells.append(f"{hot:g}: {PARTITION_WRU_PER_S / hot:,.0f}" if hot else "0: -")
        w(f"| {label} | " + " | ".join(cells) + " |")
    w("")
    hot_ours = max(req[p][OURS]["user_partition_wru"] for p in RENDER_PATHS)
    w(
        f"**The ceiling** for one user on our path is the partition limit: {PARTITION_WRU_PER_S:,} WRU/s / {hot_ours:g} WRU = "
        f"**{PARTITION_WRU_PER_S / hot_ours:,.0f} settlements per second** (configured limit / measured units). Transactions lower it "
        "further: DynamoDB cancels a transaction that touches an item another transaction is writing (TransactionConflict), so one "
        f"user's settlements effectively run one at a time; at the assumed {ASSUMED_REQUEST_MS:g} ms per transaction that is about "
        f"{1000 / ASSUMED_REQUEST_MS:,.0f} per second (**an estimate**: moto serialises every request, so the bench cannot show "
        "conflicts; its one-user runs in docs/benchmarks.md section 4 show the re-decisions, not DynamoDB's conflict rate). The "
        "baselines have no such limit because they do not use transactions, and lose updates instead (section 4)."
    )
    w("")
    w("**Past the ceiling**, from the code (runtime/reconciler/repository/dynamodb.py, service/retrying.py, handlers/video_events.py):")
    w("")
    w(
        "1. DynamoDB cancels the transaction (TransactionCanceledException with reason TransactionConflict or ThrottlingError) or "
        "throttles the request (ThrottlingException). botocore's standard retry mode (3 attempts, `bootstrap.CLIENT_CONFIG`) retries a "
        "throttled request, not a cancelled transaction."
    )
    w(
        "2. The store reports either as `Contention`; the settlement reads, decides and writes again with full-jitter backoff (20 ms "
        f"doubling to a 500 ms cap, at most 50 attempts) until the invocation's deadline ({s['timeout_s']} s timeout less 3 s kept for "
        "logs and metrics). Every retry is decided afresh from what it reads, so a retry never charges twice."
    )
    w(
        f"3. If the deadline passes, `RetriesExhausted` fails the invocation; Lambda retries it {s['async_retries']} more times (its "
        "asynchronous retry, about 1 and 2 minutes later), then sends the event to the on-failure destination, the DLQ "
        "(`cc-reconciler-dlq-{stage}`, condition RetriesExhausted), where `reconciler dlq replay` sends it through again. No event is "
        "lost and none is charged twice; the user's balance lags until then."
    )
    w(
        f"4. More events than {concurrency} instances can take (any users): Lambda throttles the asynchronous invocations and keeps "
        f"them in its queue, retrying for up to {s['max_event_age_s'] / 3600:g} h (the maximum event age), then sends them to the "
        "same DLQ. Latency grows; nothing is dropped."
    )
    w("")

    w("## Cost per month")
    w("")
    w(
        "DynamoDB (request units) + Lambda (GB-seconds and requests) + SQS, per path, if every event of the month took that path "
        "(section 7 of docs/benchmarks.md per million, times the volume). A real month is a mix: mostly renders, some failures, "
        "few duplicates."
    )
    w("")
    w("| event | who | " + " | ".join(f"{v // 1_000_000} M events" for v in VOLUMES) + " |")
    w("|---|---|" + "---|" * len(VOLUMES))
    for scenario, label in SCENARIOS:
        for who in WHO:
            row = cost[f"{scenario}/{who}"]
            cells = [
                f"{_usd(row['total_usd'] * v / 1e6)} ({_usd(row['dynamodb_usd'] * v / 1e6)} + {_usd(row['lambda_usd'] * v / 1e6)}"
                + (f" + {_usd(row['sqs_usd'] * v / 1e6)}" if row["sqs_usd"] else "")
                + ")"
                for v in VOLUMES
            ]
            w(f"| {label if who == OURS else ''} | {WHO_LABELS[who]} | " + " | ".join(cells) + " |")
    w("")
    w("Cells: total (DynamoDB + Lambda [+ SQS]).")
    w("")
    stored = req["reserved"][OURS]["stored_bytes"]
    w(
        f"Storage: a settled render with a reservation leaves {stored:,} bytes stored on our side (items and index entries, DynamoDB's "
        "100-byte item overhead included; measured). Each month of events adds "
        + ", ".join(f"{stored * v / 1e9:,.1f} GB at {v // 1_000_000} M" for v in VOLUMES)
        + ", each GB billed $0.25 every month from then on (the ledger is kept)."
    )
    w("")

    w("## What to change, and when")
    w("")
    sustained = {p: events_per_second(cost[f"{p}/{OURS}"], concurrency) for p in RENDER_PATHS}
    floor = min(sustained.values())
    w(
        f"* **Reserved concurrency** ({concurrency}): raise it when peak traffic nears {floor:,.0f} events/s (the slowest settling path "
        f"above). Averaged over a month, {concurrency} instances cover {floor * SECONDS_PER_MONTH / 1e9:,.1f} billion events; the "
        "peak is what matters: with a peak 10x the average (**assumed**), raise it from about "
        f"{floor * SECONDS_PER_MONTH / 10 / 1e6:,.0f} M events a month. Raising it does not lift the one-user ceiling above, which is "
        "DynamoDB's, per item. `reconciler resume --concurrency N` sets it at run time; STAGE_LIMITS in runtime/reconciler/contract.py "
        "is the deployed value."
    )
    _cli_advice(r, w)
    w("")
    return "\n".join(out)


def _cli_advice(r: dict, w: Any) -> None:
    """CLI work that reads a whole table from one machine: when a parallel scan or an export to S3 should replace it."""
    audit_points = [p for p in r.get("audit_points", []) if "missing" not in p]
    settled = r["requests"]["reserved"][OURS]
    if not audit_points:
        return
    largest = max(audit_points, key=lambda p: p["entries"])
    per_entry = largest["bytes_read"] / max(1, largest["entries"])
    tables = largest.get("tables", [])
    # What a settled event adds to the tables the audit scans (measured per table; 100-byte item overhead included,
    # so a little more than a Scan returns). The balances the audit also reads grow with users, not events.
    per_event = sum(size for table, size in settled.get("stored_by_table", {}).items() if table in tables)
    w(
        f"* **Audit** (`reconciler audit`, and any command that lists the ledger across users) reads every balance and every ledger "
        f"entry with Scan from one machine ({', '.join(tables)}): measured {per_entry:,.0f} bytes read per ledger entry at "
        f"{largest['entries']:,} entries ({largest['pages_dynamodb']:,} pages of 1 MB on DynamoDB, {largest['rru_dynamodb']:,.0f} RRU: its scans "
        "are strongly consistent, 1 RRU per 4 KB read), "
        f"linear in the ledger (docs/benchmarks.md section 6). A settled render with a reservation adds {per_event:,} bytes to "
        "those tables (measured)."
    )
    # The audit's own reads, as measured: RRU per byte read follows the consistency it uses (strong: 1 per 4 KB).
    rru_per_byte = largest["rru_dynamodb"] / max(1, largest["bytes_read"])
    for volume in VOLUMES:
        gb_year = per_event * volume * 12 / 1e9
        pages = gb_year * 1e9 / (1024 * 1024)
        minutes = pages * ASSUMED_SCAN_PAGE_MS / 1000 / 60
        rru = gb_year * 1e9 * rru_per_byte
        w(
            f"  * {volume // 1_000_000} M events a month: after a year, about {gb_year:,.1f} GB to scan = {pages:,.0f} pages: "
            f"**{minutes:,.0f} min** single-threaded (assumed page time), {_usd(rru * PRICES['rru'])} of read units per full audit."
        )
    minutes_per_monthly_event = per_event * 12 / (1024 * 1024) * ASSUMED_SCAN_PAGE_MS / 1000 / 60  # a year of one event a month
    threshold = 15 / minutes_per_monthly_event if minutes_per_monthly_event else float("inf")
    w(
        f"  * Change: past about 15 minutes a run (from about {threshold / 1e6:,.1f} M events a month, after a year of them), give the "
        "scan `Segment`/`TotalSegments` (DynamoDB's parallel scan: N workers, about N times faster, the same units). Once a full "
        "audit costs more in read units than it is worth running often, or competes with the live table, audit an export instead: "
        "DynamoDB's export to S3 (point-in-time recovery is on for every stage) reads no table capacity and is billed per GB "
        "exported; audit it with Athena or a batch job. Per-user commands (`audit USER`, `ledger USER`) Query one user and do not "
        "grow with the table."
    )
    replay = [p for p in r.get("replay_points", []) if "missing" not in p]
    if replay:
        biggest = max(replay, key=lambda p: p["messages"])
        per_message = (biggest["dynamodb_total"] + biggest["sqs_total"]) / biggest["messages"]
        w(
            f"* **DLQ replay** (`reconciler dlq replay`) sends one message at a time: measured {per_message:.2f} requests per message "
            f"(at {biggest['messages']:,} messages), so about {per_message * ASSUMED_REQUEST_MS:.0f} ms per message at the assumed round "
            f"trip: {1000 / (per_message * ASSUMED_REQUEST_MS) * 3600:,.0f} messages an hour from one machine. A backlog larger than "
            "an hour of that (a long outage at high volume) wants several replayers on the same queue (SQS hides a message one "
            "replayer holds from the others) or a re-drive to the function itself."
        )
    w(
        "* **Timer scan** (the scheduled tick) queries the sparse unsettled index, so its cost follows the jobs left unsettled, not "
        "the table (docs/benchmarks.md section 5)."
    )


__all__ = ["POWERTOOLS", "cost_model", "events_per_second", "function_settings", "render_capacity"]
