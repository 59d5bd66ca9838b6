"""The cost model: every AWS line item one event causes, per million events of one path, for ours and both
baselines, computed from what a `make bench` run measured (docs/benchmarks.json) and the prod template. Nothing here
is a measurement; every figure is measured elsewhere in the run, read from the template, a price (benchmarks/prices.py)
or an assumption named here and stated in docs/capacity.md.

Line items of one event (per million: times 1e6):
  reconciler Lambda   invocations (Lambda's retries of a baseline that raises included) and GB-seconds
  DynamoDB            read and write request units (benchmarks/units.py), at the consistency used, before filters
  SQS                 dead letters (ours) and Lambda's on-failure deliveries
  SNS                 ops alerts: at most one message per event (grouping sends fewer: docs/triage.md), delivered to
                      each subscription of the stage
  CloudWatch Logs     bytes ingested: the function's own lines and EMF records (measured) and Lambda's START, END and
                      REPORT lines of every invocation (their documented format)
  EventBridge archive the stage's archive of the render events: the event's bytes ingested and kept for its retention
  balance-events      the stream function run on the Credits stream records the event writes (measured by running
                      it: benchmarks/balance_function.py), for the records its mapping's filters deliver: invocations,
                      GB-seconds, its DynamoDB units, its log lines and EMF records, the events it puts (EventBridge)
  storage, PITR       bytes the event leaves stored, billed every month they are kept (a separate column)
  fixed monthly       custom metric series (name and dimension set), alarms, dashboards, KMS keys, secrets, the
                      timer scan's ticks: not per event
A replay (`reconciler dlq replay`) is priced as a path of its own: the replayer's SQS requests and the function
invoked again. Not caused by the reconciler and not counted: the pipeline's own PutEvents of the video event (its
bill), rule delivery to Lambda and asynchronous invocation (no charge), stream reads by Lambda ("GetRecords API
calls invoked by AWS Lambda as part of DynamoDB triggers are free", DynamoDB pricing), X-Ray in prod (off).
KMS                 the requests SNS makes to the ops topic's key for the alerts (at most 2 an alert: see kms_usd)
"""

from __future__ import annotations

import math
from typing import Any

from benchmarks.prices import price
from reconciler.domain.stream_filter import matches

# An invocation lasts its handler's measured CPU plus, for every request it makes, one round trip (moto cannot show
# AWS's latency). DynamoDB answers in "single-digit millisecond" time ("Single-digit millisecond performance at any
# scale": DynamoDB Developer Guide, "What is Amazon DynamoDB?", Characteristics,
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Introduction.html): taken at its top, 9 ms, plus
# 1 ms for the hop from the function to the service in the region (assumed). SQS, SNS and EventBridge publish no
# latency figure; they are taken at DynamoDB's.
SINGLE_DIGIT_MS, IN_REGION_HOP_MS = 9.0, 1.0
REQUEST_ROUND_TRIP_MS = SINGLE_DIGIT_MS + IN_REGION_HOP_MS
ROUND_TRIP_MS = {"dynamodb": REQUEST_ROUND_TRIP_MS, "sqs": REQUEST_ROUND_TRIP_MS, "sns": REQUEST_ROUND_TRIP_MS, "events": REQUEST_ROUND_TRIP_MS}
ASSUMED_SCAN_PAGE_MS = 100.0  # assumed time for one 1 MB Scan page on DynamoDB, one thread (not measured here)
V1_CLAIMED_MS, V1_CLAIMED_MB, V1_CLAIMED_EPS = 300.0, 85.0, 33.0
RENDER_PATHS = ("reserved", "no_job", "failed_reserved")
# Paths priced with the handler CPU and telemetry of another measured kind running the same code path.
MEASURED_AS = {"low_balance": "no_job"}
REPLAYED_PATH = "no_job"  # a replayed render: the event a DLQ holds after RetriesExhausted, settled on replay

# The function's own bytes per event before issue #27's compact lines, for the saving: `python -m benchmarks._child
# telemetry OUT 20` run on commit 1fe38e0's runtime (Powertools' default keys on every line), median of warm
# invocations of each kind, ids as long as real ones. The EMF records did not change.
LOG_BYTES_BEFORE = {"reserved": 930, "no_job": 863, "failed_reserved": 885, "duplicate": 808, "conflict": 827, "invalid": 733}
# The hold function's line before it named the job once (the answer's jobId repeated the request's job_id; no user):
# the child's hold request on commit eb28513's runtime.
HOLD_LOG_BYTES_BEFORE = 293


def max_memory_mb(results: dict, function: str) -> int:
    """A function's REPORT line "Max Memory Used": its packaged handler's peak RSS over the events priced here,
    measured by the run (benchmarks.measure.max_memory). Only the log line carries it: Lambda bills the configured
    memory (the GB-seconds below), not the memory used."""
    memory = results.get("memory")
    if not memory:
        raise ValueError("the run has no peak memory of the functions measured: rerun make bench")
    return int(memory[function]["max_memory_mb"])


def platform_log_bytes(memory_mb: int, duration_ms: float, max_memory_mb: int) -> int:
    """Lambda's own lines of one invocation, in the format Lambda's developer guide documents for the text log
    format (START, END, REPORT; a cold start adds "Init Duration" to REPORT, a traced one an XRAY line: not
    counted), with a 36-character request id; `memory_mb` configured, `max_memory_mb` the measured peak."""
    request = "8f5079ee-1c2b-4697-b07a-ac58fc914c95"
    lines = (
        f"START RequestId: {request} Version: $LATEST\n",
        f"END RequestId: {request}\n",
        f"REPORT RequestId: {request}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {math.ceil(duration_ms)} ms\t"
        f"Memory Size: {memory_mb} MB\tMax Memory Used: {max_memory_mb} MB\t\n",
    )
    return sum(len(line.encode()) for line in lines)


def logs_usd(bytes_per_event: float) -> float:
    """CloudWatch Logs ingestion of one million events writing this many bytes each."""
    return bytes_per_event * 1e6 / 1e9 * price("logs_ingested_gb")


def lambda_usd(invocations: float, memory_mb: int, architecture: str, duration_ms: float) -> float:
    """Requests and GB-seconds of `invocations` (per million events: a count per event)."""
    gb_s = invocations * memory_mb / 1024 * duration_ms / 1000
    per_gb_s = price("lambda_gb_s_arm") if architecture == "arm64" else price("lambda_gb_s_x86")
    return (gb_s * per_gb_s + invocations * price("lambda_request")) * 1e6


def invocation_ms(cpu_ms: float, calls: dict[str, float]) -> int:
    """One invocation's duration: its CPU + one round trip (ROUND_TRIP_MS) per request it makes to each service
    (`calls`: requests by service, as the bench counted them), rounded up to Lambda's 1 ms."""
    return math.ceil(cpu_ms + sum(count * ROUND_TRIP_MS[service] for service, count in calls.items()))


def per_million(counts: dict, cpu_ms: float | None, settings: dict, duration_ms: float | None = None, alerts: float = 0.0) -> dict:
    """The reconciler function, DynamoDB and SQS for one million events of a path: a path that raises (the
    baselines on an invalid event) is invoked again by Lambda's asynchronous retries, each attempt making the same
    calls, then parked by Lambda in the DLQ. `alerts`: SNS publishes an invocation makes (ours' alert)."""
    raised = counts["outcome"].startswith("raised")
    invocations = 1 + settings["async_retries"] if raised else 1
    sqs_per_event = sum(counts["sqs"].values()) * invocations + (1 if raised else 0)  # + the on-failure destination's message
    calls = {"dynamodb": counts["total"], "sqs": sum(counts["sqs"].values()), "sns": alerts}
    # The handler's measured CPU for this path (ours, as a proxy for all three: a few tenths of a millisecond
    # against the round trips) + a round trip per request.
    if duration_ms is None:
        duration_ms = invocation_ms(cpu_ms or 0.0, calls)
    rru, wru = (u * invocations for u in counts["units"])
    dynamodb = (rru * price("dynamodb_rru") + wru * price("dynamodb_wru")) * 1e6
    lambda_cost = lambda_usd(invocations, settings["memory_mb"], settings["architecture"], duration_ms)
    sqs = sqs_per_event * price("sqs_request") * 1e6
    return {
        "invocations": invocations * 1e6,
        "requests": counts["total"] * invocations * 1e6,
        "rru": rru * 1e6,
        "wru": wru * 1e6,
        "sqs_requests": sqs_per_event * 1e6,
        "duration_ms": duration_ms,
        "calls": calls,
        "gb_s": invocations * settings["memory_mb"] / 1024 * duration_ms / 1000 * 1e6,
        "dynamodb_usd": dynamodb,
        "lambda_usd": lambda_cost,
        "sqs_usd": sqs,
        "total_usd": dynamodb + lambda_cost + sqs,
        "stored_bytes": counts.get("stored_bytes", 0),
    }


def events_per_second(row: dict, concurrency: int) -> float:
    """Sustained events per second `concurrency` warm instances can take on a path (one event at a time each)."""
    invocations_per_event = row["invocations"] / 1e6
    return concurrency * 1000 / (row["duration_ms"] * invocations_per_event)


# --- every line item ------------------------------------------------------------------------------------------


def alert_usd(alerts_per_event: float, protocols: list[str]) -> float:
    """SNS for one million events sending this many alerts each: the publish and one delivery per subscription."""
    delivery = sum(price(f"sns_{protocol}") for protocol in protocols)
    return alerts_per_event * (price("sns_publish") + delivery) * 1e6


# SNS on a topic encrypted with a KMS key: "R = B / D * (2 * P)" KMS requests per topic, B the billing period, D the
# data key reuse period ("Amazon SNS reuses a data key for up to 5 minutes"), P the publishing principals (Amazon SNS
# Developer Guide, "Key management", Estimating AWS KMS costs: https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html).
# So a publish costs at most 2 requests (GenerateDataKey and Decrypt, a data key of its own when no other publish of the
# same principal came in the 5 minutes before), and a principal at most 2 per 5 minutes, whatever the volume.
SNS_KMS_REQUESTS_PER_DATA_KEY = 2
SNS_DATA_KEY_REUSE_S = 300


def kms_usd(alerts_per_event: float, kms_topics: int) -> float:
    """KMS for one million events sending this many alerts each to an encrypted topic: at most a data key an alert
    (a quiet topic); the month's requests are capped by the data key reuse (kms_requests_ceiling)."""
    if not kms_topics:
        return 0.0
    return alerts_per_event * SNS_KMS_REQUESTS_PER_DATA_KEY * price("kms_request") * 1e6


def kms_requests_ceiling(principals: int = 1, seconds: float = 30 * 86400) -> float:
    """KMS requests a month one topic can cause whatever the volume: B / D * (2 * P). The alerts' one publishing
    principal is the reconciler function's role (every container shares it)."""
    return seconds / SNS_DATA_KEY_REUSE_S * SNS_KMS_REQUESTS_PER_DATA_KEY * principals


def function_run_usd(run: dict, cpu_ms: float, settings: dict, max_mb: int) -> tuple[float, float]:
    """(USD, log bytes) of a million invocations of the balance-events function like `run`, measured by
    benchmarks/balance_function.py: its requests and units, the events it put, its own log and EMF bytes; its
    duration is its CPU (measured, stubbed AWS) + a round trip per request it made."""
    duration_ms = invocation_ms(cpu_ms, {"dynamodb": sum(run["dynamodb"].values()), "events": sum(run["events"].values())})
    compute = lambda_usd(1, settings["memory_mb"], settings["architecture"], duration_ms)
    rru, wru = run["units"]
    dynamodb = (rru * price("dynamodb_rru") + wru * price("dynamodb_wru")) * 1e6
    log_bytes = platform_log_bytes(settings["memory_mb"], duration_ms, max_mb) + run["log_bytes"] + run["emf_bytes"]
    return compute + dynamodb + logs_usd(log_bytes) + run["entries"] * price("eventbridge_event") * 1e6, log_bytes


def balance_function(counts: dict, table: str, settings: dict, cpu: dict, max_mb: int) -> dict[str, float]:
    """The balance-events function for one event's Credits stream records: the records, those the mapping's filters
    deliver (one invocation each: the worst case, a quiet shard; a batching window or a busy shard shares them), the
    events it put, and its USD per million events after the filters and before them (every record delivered)."""
    records = counts.get("stream_records", {}).get(table, [])
    runs = counts.get("balance_runs")
    if records and runs is None:
        raise ValueError("the run has Credits stream records but no balance-events function measured: rerun make bench")
    found = {"records": len(records), "delivered": 0, "entries": 0, "usd": 0.0, "usd_unfiltered": 0.0}
    for record, run in zip(records, runs or [], strict=True):
        usd, _ = function_run_usd(run, cpu["crossing" if run["entries"] else "no_crossing"]["cpu_ms"], settings, max_mb)
        found["usd_unfiltered"] += usd
        if matches(settings["filters"], record):
            found["delivered"] += 1
            found["entries"] += run["entries"]
            found["usd"] += usd
    return found


def balance_row(counts: dict, results: dict) -> dict[str, float]:
    """balance_function for one path's counts, with the run's settings, CPU and measured peak memory."""
    settings = results["function"]
    telemetry, max_mb = results["telemetry"]["balance"], max_memory_mb(results, "balance_events")
    return balance_function(counts, settings["credits_table"], settings["balance_events"], telemetry, max_mb)


def per_invocation_and_per_record(single: float, batched: float, records: int) -> tuple[float, float]:
    """A figure measured over `records` invocations of one record (`single`, their total) and over one invocation
    of all of them (`batched`), split into its part per invocation and its part per record (linear in the records)."""
    per_invocation = (single - batched) / (records - 1)
    return per_invocation, (batched - per_invocation) / records


def batched_balance_usd(invocations_per_million: float, results: dict) -> dict[str, float]:
    """USD per million Credits records that cross nothing (explained: no AWS request), delivered in this many
    invocations (benchmarks/stream_batching.py): Lambda's request, GB-seconds and START/END/REPORT lines per
    invocation, each billed to the 1 ms; CPU and the function's own bytes split into a part per invocation and a
    part per record from a batch against single records, the CPU scaled to the run's one-record figure."""
    batch, settings = results["stream_batching"]["batch"], results["function"]["balance_events"]
    records = batch["records"]
    single_cpu_ms = results["telemetry"]["balance"]["no_crossing"]["cpu_ms"]
    cpu_invocation, cpu_record = per_invocation_and_per_record(records * single_cpu_ms, batch["cpu_ratio"] * records * single_cpu_ms, records)
    own = [batch[way]["log_bytes"] + batch[way]["emf_bytes"] for way in ("single", "batched")]
    bytes_invocation, bytes_record = per_invocation_and_per_record(own[0], own[1], records)
    invocations = invocations_per_million / 1e6  # per record
    duration_ms = invocation_ms(cpu_invocation + cpu_record / invocations, {})
    platform = platform_log_bytes(settings["memory_mb"], duration_ms, max_memory_mb(results, "balance_events"))
    compute = lambda_usd(invocations, settings["memory_mb"], settings["architecture"], duration_ms)
    logs = logs_usd((platform + bytes_invocation) * invocations + bytes_record)
    return {"usd": compute + logs, "duration_ms": duration_ms, "cpu_invocation_ms": cpu_invocation, "cpu_record_ms": cpu_record}


def archive_usd(event_bytes: int, retention_days: int | None) -> float:
    """The stage's archive of the render events per million events: ingestion and storage for its retention
    (0: kept for ever, counted here as one year)."""
    if retention_days is None:
        return 0.0
    gb = event_bytes * 1e6 / 1e9
    months = (retention_days or 365) / 30
    return gb * (price("eventbridge_archive_gb") + months * price("eventbridge_archive_gb_month"))


def event_bytes(kind: str) -> int:
    """The size of a video event of `kind` as put on the bus, ids as long as real ones (benchmarks/_child.py)."""
    import json

    from benchmarks._child import realistic_event

    return len(json.dumps(realistic_event(kind, 0), separators=(",", ":")).encode())


def line_items(scenario: str, who: str, results: dict) -> dict[str, Any]:
    """Every line item of one million events of a path, in USD, and what they count. The baselines, as written
    for the bench, log nothing of their own, emit no metrics, send no alerts, archive nothing and have no balance
    events: they pay Lambda's own log lines only (a v1 with our logs and metrics would pay ours)."""
    settings, counts = results["function"], results["requests"][scenario][who]
    kind = MEASURED_AS.get(scenario, scenario)  # the handler's CPU and telemetry of the same code path
    own = results["telemetry"]["per_kind"][kind] if who == "ours" else None
    alerts = own["alerts_first"] if own is not None else 0.0  # at most one alert message per event (the first of its group in a window)
    row = per_million(counts, results["cpu"]["per_kind"][kind]["cpu_median_ms"], settings, alerts=alerts)
    invocations = row["invocations"] / 1e6
    # A baseline's REPORT line is given ours: the same work on the same runtime (not measured apart).
    log_bytes = invocations * platform_log_bytes(settings["memory_mb"], row["duration_ms"], max_memory_mb(results, "reconciler"))
    if own is not None:
        log_bytes += own["log_bytes"] + own["emf_bytes"] + alerts * own["alert_log_bytes"]
    no_balance = {"records": 0, "delivered": 0, "entries": 0, "usd": 0.0, "usd_unfiltered": 0.0}
    balance = balance_row(counts, results) if own else no_balance
    archived = archive_usd(event_bytes(kind), settings.get("fixed", {}).get("archive_retention_days")) if own else 0.0
    items = {
        "lambda": row["lambda_usd"],
        "dynamodb": row["dynamodb_usd"],
        "sqs": row["sqs_usd"],
        "sns": alert_usd(alerts, settings["alert_protocols"]),
        "kms": kms_usd(alerts, settings["kms_topics"]),
        "logs": logs_usd(log_bytes),
        "archive": archived,
        "balance_events": balance["usd"],
    }
    before = {"balance_events": balance["usd_unfiltered"]}
    if own is not None:
        before["logs"] = logs_usd(log_bytes - own["log_bytes"] + LOG_BYTES_BEFORE[kind])
    storage = counts.get("stored_bytes", 0) / 1e9 * 1e6
    pitr = settings["point_in_time_recovery"]
    return {
        **row,
        "items": items,
        "total_usd": sum(items.values()),
        "before": before,
        "log_bytes": log_bytes,
        "log_bytes_before_own": LOG_BYTES_BEFORE[kind] if own is not None else None,
        "alerts": alerts,
        "stream_records": balance["records"],
        "balance_invocations": balance["delivered"],
        "balance_entries": balance["entries"],
        "storage_usd_month": storage * (price("dynamodb_storage_gb_month") + (price("dynamodb_pitr_gb_month") if pitr else 0.0)),
    }


def hold_line_items(results: dict) -> dict[str, Any]:
    """A hold, per million: the pipeline's synchronous call to the hold function before a held render (ours only;
    a baseline's reservation is the pipeline's own write on the Jobs item). The function's measured CPU, log line and
    EMF record (stubbed store), the units of its calls (measured on the stage), the balance-events function on the
    Credits record it writes."""
    from benchmarks.requests import OURS, RESERVATION

    settings, counts, hold = results["function"], results["requests"][RESERVATION[0]][OURS], results["telemetry"]["hold"]
    function = settings["hold_function"]
    duration_ms = invocation_ms(hold["cpu_ms"], {"dynamodb": counts["total"]})
    rru, wru = counts["units"]
    balance = balance_row(counts, results)
    platform = platform_log_bytes(function["memory_mb"], duration_ms, max_memory_mb(results, "hold"))
    items = {
        "lambda": lambda_usd(1, function["memory_mb"], function["architecture"], duration_ms),
        "dynamodb": (rru * price("dynamodb_rru") + wru * price("dynamodb_wru")) * 1e6,
        "sqs": 0.0,
        "sns": 0.0,
        "kms": 0.0,
        "logs": logs_usd(platform + hold["log_bytes"] + hold["emf_bytes"]),
        "archive": 0.0,
        "balance_events": balance["usd"],
    }
    storage = counts.get("stored_bytes", 0) / 1e9 * 1e6
    pitr = price("dynamodb_pitr_gb_month") if settings["point_in_time_recovery"] else 0.0
    return {
        "items": items,
        "total_usd": sum(items.values()),
        "duration_ms": duration_ms,
        "before": {"logs": logs_usd(platform + HOLD_LOG_BYTES_BEFORE + hold["emf_bytes"]), "balance_events": balance["usd_unfiltered"]},
        "log_bytes_before_own": HOLD_LOG_BYTES_BEFORE,
        "stream_records": balance["records"],
        "balance_invocations": balance["delivered"],
        "balance_entries": balance["entries"],
        "storage_usd_month": storage * (price("dynamodb_storage_gb_month") + pitr),
    }


def replay_line_items(who: str, results: dict) -> dict[str, Any]:
    """One dead-lettered render replayed by `reconciler dlq replay`, per million messages: the replayer's SQS
    requests per message (receive in tens, delete each: measured, docs/benchmarks.md section 6) and the function
    invoked once more with the event, on the path of a render of a job never seen (measured above). The replayer
    runs on an operator's machine (no AWS charge)."""
    replay = results.get("replay") or {}
    if "messages" not in replay:
        raise ValueError(f"the run has no DLQ replay measured: {replay.get('missing')}")
    row = line_items(REPLAYED_PATH, who, results)
    replayer_sqs = replay["sqs_total"] / replay["messages"] * price("sqs_request") * 1e6
    items = {**row["items"], "sqs": row["items"]["sqs"] + replayer_sqs, "archive": 0.0}  # a replay is not put on the bus
    return {**row, "items": items, "total_usd": sum(items.values()), "replayer_sqs_per_message": replay["sqs_total"] / replay["messages"]}


def fixed_monthly(results: dict) -> dict[str, Any]:
    """What the stage bills each month whatever its traffic: the custom metric series (measured), alarms,
    dashboards, customer-managed keys and secrets (counted in the prod template), and the timer scan's ticks on its
    schedule (each an invocation and a Query of the sparse index, at its minimum when nothing is unsettled)."""
    fixed, settings = results["function"].get("fixed", {}), results["function"]
    lines = {
        "custom metrics": metric_series_usd(results)["usd_month"],
        "alarms": fixed.get("alarms", 0) * price("cloudwatch_alarm_month")
        + fixed.get("composite_alarms", 0) * price("cloudwatch_composite_alarm_month"),
        "dashboards": fixed.get("dashboards", 0) * price("cloudwatch_dashboard_month"),
        "KMS keys": fixed.get("kms_keys", 0) * price("kms_key_month"),
        "secrets": fixed.get("secrets", 0) * price("secret_month"),
    }
    ticks = sum(30 * 24 * 60 / minutes for minutes in map(_schedule_minutes, fixed.get("schedules", [])))
    tick_ms = invocation_ms(results["cpu"]["per_kind"]["duplicate"]["cpu_median_ms"], {"dynamodb": 1})  # one Query
    lines["timer scan"] = (
        lambda_usd(ticks / 1e6, settings["memory_mb"], settings["architecture"], tick_ms)
        + ticks * 0.5 * price("dynamodb_rru")
        + logs_usd(ticks / 1e6 * platform_log_bytes(settings["memory_mb"], tick_ms, max_memory_mb(results, "reconciler")))
    )
    return {"lines": lines, "ticks": ticks, "usd_month": sum(lines.values())}


def _schedule_minutes(expression: str) -> float:
    """rate(N minute[s]|hour[s]|day[s]) in minutes."""
    amount, unit = expression.removeprefix("rate(").removesuffix(")").split()
    return float(amount) * {"minute": 1, "hour": 60, "day": 1440}[unit.rstrip("s")]


def metric_series_usd(results: dict) -> dict[str, Any]:
    """Custom metrics: one per name and dimension set emitted in a month, whatever the volume."""
    series = results["telemetry"]["series"]
    dimension_sets = sorted({dimensions for _, dimensions in series})
    return {
        "series": len(series),
        "names": len({name for name, _ in series}),
        "dimension_sets": dimension_sets,
        "usd_month": len(series) * price("custom_metric_month"),
    }


def cost_model(results: dict) -> dict[str, dict]:
    """Per million events of each path, for ours and both baselines (and v1 as claimed for the render paths)."""
    from benchmarks.requests import LOW_BALANCE, OURS, RESERVATION, SCENARIOS, V1, WHO

    settings = results["function"]
    rows: dict[str, dict] = {}
    for scenario, _ in SCENARIOS:
        for who in WHO:
            rows[f"{scenario}/{who}"] = line_items(scenario, who, results)
        if scenario in RENDER_PATHS:
            claimed = per_million(results["requests"][scenario][V1], None, settings, duration_ms=V1_CLAIMED_MS)
            claimed["items"] = {
                "lambda": claimed["lambda_usd"],
                "dynamodb": claimed["dynamodb_usd"],
                "sqs": claimed["sqs_usd"],
                "logs": logs_usd(platform_log_bytes(settings["memory_mb"], V1_CLAIMED_MS, round(V1_CLAIMED_MB))),
            }
            claimed["total_usd"] = sum(claimed["items"].values())
            rows[f"{scenario}/v1-claimed"] = claimed
    if "hold" in results["telemetry"] and "hold_function" in settings:
        rows[f"{RESERVATION[0]}/{OURS}"] = hold_line_items(results)
    if LOW_BALANCE[0] in results["requests"]:
        rows[f"{LOW_BALANCE[0]}/{OURS}"] = line_items(LOW_BALANCE[0], OURS, results)
    if "messages" in (results.get("replay") or {}):
        for who in WHO:
            rows[f"replay/{who}"] = replay_line_items(who, results)
    return rows
