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
  balance-events      the stream function, invoked for the Credits stream records its mapping's filters keep:
                      invocations, GB-seconds and its own log lines; its PutEvents per crossing (EventBridge)
  storage, PITR       bytes the event leaves stored, billed every month they are kept (a separate column)
  custom metrics      a fixed monthly cost per metric series (name and dimension set), not per event
Not caused by the reconciler and not counted: the pipeline's own PutEvents of the video event (its bill), rule
delivery to Lambda and asynchronous invocation (no charge), stream reads by Lambda (no charge), X-Ray in prod (off).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from benchmarks.prices import price
from reconciler.domain.crossings import Thresholds, crossings, whole_number
from reconciler.domain.stream_filter import matches

ASSUMED_REQUEST_MS = 10.0  # assumed in-region round trip of one DynamoDB, SQS, SNS or EventBridge request (not measured here)
ASSUMED_SCAN_PAGE_MS = 100.0  # assumed time for one 1 MB Scan page on DynamoDB, one thread (not measured here)
V1_CLAIMED_MS, V1_CLAIMED_MB, V1_CLAIMED_EPS = 300.0, 85.0, 33.0
RENDER_PATHS = ("reserved", "no_job", "failed_reserved")
# A REPORT line's "Max Memory Used" (measured peak RSS of a cold invocation, rounded up; docs/benchmarks.md section 3).
ASSUMED_MAX_MEMORY_MB = 50

# The function's own bytes per event before issue #27's compact lines, for the saving: `python -m benchmarks._child
# telemetry OUT 20` run on commit 1fe38e0's runtime (Powertools' default keys on every line), median of warm
# invocations of each kind, ids as long as real ones. The EMF records did not change.
LOG_BYTES_BEFORE = {"reserved": 930, "no_job": 863, "failed_reserved": 885, "duplicate": 808, "conflict": 827, "invalid": 733}


def platform_log_bytes(memory_mb: int, duration_ms: float) -> int:
    """Lambda's own lines of one invocation, in the format Lambda's developer guide documents for the text log
    format (START, END, REPORT; a cold start adds "Init Duration" to REPORT, a traced one an XRAY line: not
    counted), with a 36-character request id."""
    request = "8f5079ee-1c2b-4697-b07a-ac58fc914c95"
    lines = (
        f"START RequestId: {request} Version: $LATEST\n",
        f"END RequestId: {request}\n",
        f"REPORT RequestId: {request}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {math.ceil(duration_ms)} ms\t"
        f"Memory Size: {memory_mb} MB\tMax Memory Used: {ASSUMED_MAX_MEMORY_MB} MB\t\n",
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


def per_million(counts: dict, cpu_ms: float | None, settings: dict, duration_ms: float | None = None) -> dict:
    """The reconciler function, DynamoDB and SQS for one million events of a path: a path that raises (the
    baselines on an invalid event) is invoked again by Lambda's asynchronous retries, each attempt making the same
    calls, then parked by Lambda in the DLQ."""
    raised = counts["outcome"].startswith("raised")
    invocations = 1 + settings["async_retries"] if raised else 1
    sqs_per_event = sum(counts["sqs"].values()) * invocations + (1 if raised else 0)  # + the on-failure destination's message
    requests = counts["total"] + sum(counts["sqs"].values())
    # Duration of one invocation: the handler's measured CPU for this path (ours, as a proxy for all three: a few
    # tenths of a millisecond against the round trips) + one assumed round trip per request, rounded up to 1 ms.
    if duration_ms is None:
        duration_ms = math.ceil((cpu_ms or 0.0) + requests * ASSUMED_REQUEST_MS)
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


def balance_records(counts: dict, table: str, filters: list[dict], thresholds: Thresholds) -> tuple[int, int, int]:
    """(Credits stream records the event writes, those the mapping's filters deliver, crossings among them)."""
    records = counts.get("stream_records", {}).get(table, [])
    delivered = [record for record in records if matches(filters, record)]
    return len(records), len(delivered), sum(len(_crossings(record, thresholds)) for record in delivered)


def _crossings(record: dict, thresholds: Thresholds) -> list:
    """The stage-default crossings of one record (the bench's users carry no override)."""
    data = record["dynamodb"]

    def balance(image: dict | None) -> int | None:
        # A stream image's number is its text ({"N": "25"}); whole_number takes numbers only, as DynamoDB gives them.
        return None if image is None else whole_number(Decimal((image.get("remaining") or {}).get("N", "0"))) or 0

    after = balance(data.get("NewImage"))
    return [] if after is None else crossings(balance(data.get("OldImage")), after, thresholds)


def balance_function_usd(invocations: float, crossings_per_event: float, balance: dict, settings: dict) -> float:
    """The balance-events function per million events: its invocations (no crossing: its measured CPU; a crossing:
    its CPU and 5 round trips, two ledger Queries, GetItem, PutEvents, PutItem), their logs, and the events put."""
    plain, crossing = balance["no_crossing"], balance["crossing"]
    plain_ms = math.ceil(plain["cpu_ms"])
    crossing_ms = math.ceil(crossing["cpu_ms"] + 5 * ASSUMED_REQUEST_MS)
    quiet = invocations - crossings_per_event
    compute = lambda_usd(quiet, settings["memory_mb"], settings["architecture"], plain_ms)
    compute += lambda_usd(crossings_per_event, settings["memory_mb"], settings["architecture"], crossing_ms)
    log_bytes = quiet * platform_log_bytes(settings["memory_mb"], plain_ms)
    log_bytes += crossings_per_event * (platform_log_bytes(settings["memory_mb"], crossing_ms) + crossing["log_bytes"] + crossing["emf_bytes"])
    return compute + logs_usd(log_bytes) + crossings_per_event * price("eventbridge_event") * 1e6


def line_items(scenario: str, who: str, results: dict) -> dict[str, Any]:
    """Every line item of one million events of a path, in USD, and what they count. The baselines, as written
    for the bench, log nothing of their own, emit no metrics, send no alerts and have no balance events: they pay
    Lambda's own log lines only (a v1 with our logs and metrics would pay ours)."""
    settings, counts = results["function"], results["requests"][scenario][who]
    row = per_million(counts, results["cpu"]["per_kind"][scenario]["cpu_median_ms"], settings)
    invocations = row["invocations"] / 1e6
    own = results["telemetry"]["per_kind"][scenario] if who == "ours" else None
    log_bytes = invocations * platform_log_bytes(settings["memory_mb"], row["duration_ms"])
    alerts = 0.0
    if own is not None:
        alerts = own["alerts_first"]  # at most one alert message per event (the first of its group in a window)
        log_bytes += own["log_bytes"] + own["emf_bytes"] + alerts * own["alert_log_bytes"]
    balance = settings["balance_events"]
    thresholds = Thresholds(balance["low_threshold"], balance["overdraft_alert_level"])
    records, delivered, crossed = balance_records(counts, settings["credits_table"], balance["filters"], thresholds) if own else (0, 0, 0)
    items = {
        "lambda": row["lambda_usd"],
        "dynamodb": row["dynamodb_usd"],
        "sqs": row["sqs_usd"],
        "sns": alert_usd(alerts, settings["alert_protocols"]),
        "logs": logs_usd(log_bytes),
        "balance_events": balance_function_usd(delivered, crossed, results["telemetry"]["balance"], balance),
    }
    before = {"balance_events": balance_function_usd(records, crossed, results["telemetry"]["balance"], balance)}
    if own is not None:
        before["logs"] = logs_usd(log_bytes - own["log_bytes"] + LOG_BYTES_BEFORE[scenario])
    storage = counts.get("stored_bytes", 0) / 1e9 * 1e6
    pitr = settings["point_in_time_recovery"]
    return {
        **row,
        "items": items,
        "total_usd": sum(items.values()),
        "before": before,
        "log_bytes": log_bytes,
        "log_bytes_before_own": LOG_BYTES_BEFORE[scenario] if own is not None else None,
        "alerts": alerts,
        "stream_records": records,
        "balance_invocations": delivered,
        "storage_usd_month": storage * (price("dynamodb_storage_gb_month") + (price("dynamodb_pitr_gb_month") if pitr else 0.0)),
    }


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
    from benchmarks.requests import SCENARIOS, V1, WHO

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
                "logs": logs_usd(platform_log_bytes(settings["memory_mb"], V1_CLAIMED_MS)),
            }
            claimed["total_usd"] = sum(claimed["items"].values())
            rows[f"{scenario}/v1-claimed"] = claimed
    return rows
