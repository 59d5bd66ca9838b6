"""The cost model (docs/benchmarks.md section 7) and docs/capacity.md, both computed from a run's measured figures
(docs/benchmarks.json) and the deployed function's settings as synthesized. Nothing here is a measurement: every
figure is measured elsewhere in the run, taken from the synthesized template, or an assumption stated here and in
the document."""

from __future__ import annotations

import json
from typing import Any

from benchmarks.cost import ASSUMED_SCAN_PAGE_MS, IN_REGION_HOP_MS, RENDER_PATHS, REQUEST_ROUND_TRIP_MS, SINGLE_DIGIT_MS, events_per_second
from benchmarks.cost_report import render_line_items, render_metrics, render_month, render_prices, render_savings
from benchmarks.credits_in_units import render_credits_in
from benchmarks.prices import price
from benchmarks.requests import OURS, POWERTOOLS, SCENARIOS, WHO, WHO_LABELS

# DynamoDB's documented per-partition throughput (Developer Guide, "Best practices for designing and using partition
# keys effectively": a partition serves at most 3,000 RCU and 1,000 WCU per second). One item never spans partitions.
PARTITION_WRU_PER_S, PARTITION_RRU_PER_S = 1000, 3000
VOLUMES = (1_000_000, 10_000_000, 100_000_000)
SECONDS_PER_MONTH = 30 * 86400


def function_settings(stage: str = "prod") -> dict[str, Any]:
    """What the cost model reads from the stage's synthesized template (the same synthesis `cdk deploy` uses): the
    reconciler function's memory, timeout, concurrency, architecture, tracing and async retries; the balance-events
    function's memory and its mapping's filters and batching window; the ops topic's subscriptions; PITR."""
    from emulator.stack import templates_for
    from reconciler.contract import ResourceNames

    names = ResourceNames(stage)
    resources = {lid: r for template in templates_for(stage).values() for lid, r in template.get("Resources", {}).items()}
    logical_id, props = _function(resources, names.function)
    invoke: dict[str, Any] = next(
        (
            r["Properties"]
            for r in resources.values()
            if r["Type"] == "AWS::Lambda::EventInvokeConfig" and r["Properties"].get("FunctionName") == {"Ref": logical_id}
        ),
        {},
    )
    env = props.get("Environment", {}).get("Variables", {})
    tables = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::DynamoDB::Table"]
    return {
        "stage": stage,
        "function": names.function,
        "memory_mb": props["MemorySize"],
        "timeout_s": props["Timeout"],
        "reserved_concurrency": props.get("ReservedConcurrentExecutions"),
        "architecture": (props.get("Architectures") or ["x86_64"])[0],
        "tracing": (props.get("TracingConfig") or {}).get("Mode", "PassThrough"),
        "powertools_trace_disabled": env.get("POWERTOOLS_TRACE_DISABLED", "(unset)"),
        "dimensionless_metrics": env.get("METRICS_DIMENSIONLESS", "true"),
        "async_retries": invoke.get("MaximumRetryAttempts", 2),  # Lambda's default is 2
        "max_event_age_s": invoke.get("MaximumEventAgeInSeconds", 21600),  # default 6 hours
        "balance_events": _balance_events(resources, names.balance_events_function),
        "hold_function": _memory_and_architecture(resources, names.hold_function),
        "alert_protocols": sorted(r["Properties"]["Protocol"] for r in resources.values() if r["Type"] == "AWS::SNS::Subscription"),
        # Encrypted with a KMS key (a customer-managed one: SSE-SQS queues call no KMS): what the alerts pay KMS for.
        "kms_topics": _kms_encrypted(resources, "AWS::SNS::Topic"),
        "kms_queues": _kms_encrypted(resources, "AWS::SQS::Queue"),
        "point_in_time_recovery": all(t.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") for t in tables),
        "fixed": _fixed_resources(resources, names.timer_scan_rule),
    }


def _fixed_resources(resources: dict[str, dict], timer_scan_rule: str) -> dict[str, Any]:
    """What the stage bills by the month whatever its traffic: alarms, dashboards, customer-managed keys, secrets;
    the event archive's retention and the timer scan's schedule (the cost model's fixed lines)."""

    def count(kind: str) -> int:
        return sum(1 for r in resources.values() if r["Type"] == kind)

    archives = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Events::Archive"]
    rules = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Events::Rule"]
    # The timer scan's ticks only: the liability snapshot's runs are priced in "Credits in" (each a Scan of Credits).
    schedules = [rule["ScheduleExpression"] for rule in rules if "ScheduleExpression" in rule and rule.get("Name") == timer_scan_rule]
    return {
        "alarms": count("AWS::CloudWatch::Alarm"),
        "composite_alarms": count("AWS::CloudWatch::CompositeAlarm"),
        "dashboards": count("AWS::CloudWatch::Dashboard"),
        "kms_keys": count("AWS::KMS::Key"),
        "secrets": count("AWS::SecretsManager::Secret"),
        "archive_retention_days": archives[0].get("RetentionDays", 0) if archives else None,  # 0: kept for ever
        "schedules": schedules,
    }


def _kms_encrypted(resources: dict[str, dict], kind: str) -> int:
    return sum(1 for r in resources.values() if r["Type"] == kind and r.get("Properties", {}).get("KmsMasterKeyId"))


def _function(resources: dict[str, dict], name: str) -> tuple[str, dict]:
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Lambda::Function" and resource["Properties"].get("FunctionName") == name:
            return logical_id, resource["Properties"]
    raise LookupError(f"no function {name} in the templates")


def _memory_and_architecture(resources: dict[str, dict], name: str) -> dict[str, Any]:
    _, props = _function(resources, name)
    return {"function": name, "memory_mb": props["MemorySize"], "architecture": (props.get("Architectures") or ["x86_64"])[0]}


def _balance_events(resources: dict[str, dict], name: str) -> dict[str, Any]:
    _, props = _function(resources, name)
    mapping = next(r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping")
    env = props.get("Environment", {}).get("Variables", {})
    return {
        "function": name,
        "memory_mb": props["MemorySize"],
        "architecture": (props.get("Architectures") or ["x86_64"])[0],
        "filters": [json.loads(f["Pattern"]) for f in (mapping.get("FilterCriteria") or {}).get("Filters", [])],
        "batching_window_s": mapping.get("MaximumBatchingWindowInSeconds", 0),
        "low_threshold": int(env.get("LOW_BALANCE_THRESHOLD", 10)),
        "overdraft_alert_level": int(env.get("OVERDRAFT_ALERT_LEVEL", 0)),
    }


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
        f"* **Assumed** in-region round trip of one DynamoDB, SQS, SNS or EventBridge request: {REQUEST_ROUND_TRIP_MS:g} ms (not "
        f'measured: the bench runs on moto): DynamoDB\'s documented "single-digit millisecond performance at any scale" (DynamoDB '
        f'Developer Guide, "What is Amazon DynamoDB?") at its top, {SINGLE_DIGIT_MS:g} ms, + {IN_REGION_HOP_MS:g} ms for the hop in '
        "the region; the other services, which publish no figure, at the same. An invocation lasts the handler's measured CPU time "
        "for its path plus one round trip per request it makes, each counted by service (section 1; an alert is one SNS publish)."
    )
    w(f"* **Assumed** single-threaded Scan speed on DynamoDB: one 1 MB page per {ASSUMED_SCAN_PAGE_MS:g} ms.")
    w(
        f"* **Configured** (prod template): `{s['function']}`, {s['memory_mb']} MB, {s['architecture']}, timeout {s['timeout_s']} s, "
        f"reserved concurrency {concurrency}, asynchronous retries {s['async_retries']}, maximum event age {s['max_event_age_s'] / 3600:g} h, "
        f"X-Ray tracing {s['tracing']} (POWERTOOLS_TRACE_DISABLED {s['powertools_trace_disabled']})."
    )
    w(
        f"* **Configured** (prod template): `{s['balance_events']['function']}`, {s['balance_events']['memory_mb']} MB, "
        f"{s['balance_events']['architecture']}, on the Credits stream with {len(s['balance_events']['filters'])} filters and a "
        f"{s['balance_events']['batching_window_s']} s batching window; ops topic subscriptions: {', '.join(s['alert_protocols']) or 'none'}; "
        f"point-in-time recovery {'on' if s['point_in_time_recovery'] else 'off'} for every table."
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
        f"user's settlements effectively run one at a time; at the assumed {REQUEST_ROUND_TRIP_MS:g} ms per transaction that is about "
        f"{1000 / REQUEST_ROUND_TRIP_MS:,.0f} per second (**an estimate**: moto serialises every request, so the bench cannot show "
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

    render_line_items(r, w)
    render_savings(r, w)
    render_metrics(r, w)
    render_month(r, w)
    stored = req["reserved"][OURS]["stored_bytes"]
    w(
        f"Storage: a settled render with a reservation leaves {stored:,} bytes stored on our side (items and index entries, DynamoDB's "
        "100-byte item overhead included; measured). Each month of events adds "
        + ", ".join(f"{stored * v / 1e9:,.1f} GB at {v // 1_000_000} M" for v in VOLUMES)
        + f", each GB billed {_usd(price('dynamodb_storage_gb_month'))} (+ {_usd(price('dynamodb_pitr_gb_month'))} for point-in-time "
        "recovery) every month from then on (the ledger is kept)."
    )
    w("")
    render_credits_in(w, r)
    w("## Prices")
    w("")
    render_prices(w)

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
            f"**{minutes:,.0f} min** single-threaded (assumed page time), {_usd(rru * price('dynamodb_rru'))} of read units per full audit."
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
            f"(at {biggest['messages']:,} messages), so about {per_message * REQUEST_ROUND_TRIP_MS:.0f} ms per message at the assumed round "
            f"trip: {1000 / (per_message * REQUEST_ROUND_TRIP_MS) * 3600:,.0f} messages an hour from one machine. A backlog larger than "
            "an hour of that (a long outage at high volume) wants several replayers on the same queue (SQS hides a message one "
            "replayer holds from the others) or a re-drive to the function itself."
        )
    w(
        "* **Timer scan** (the scheduled tick) queries the sparse unsettled index, so its cost follows the jobs left unsettled, not "
        "the table (docs/benchmarks.md section 5)."
    )


__all__ = ["POWERTOOLS", "events_per_second", "function_settings", "render_capacity"]
