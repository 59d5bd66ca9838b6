"""docs/capacity.md's cost sections: the prices with their sources, every line item per path and per million events,
what the cuts of issue #27 saved, the fixed monthly metrics, and the month at 1 M to 100 M events."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.cost import (
    REQUEST_ROUND_TRIP_MS,
    batched_balance_usd,
    fixed_monthly,
    kms_requests_ceiling,
    max_memory_mb,
    metric_series_usd,
    platform_log_bytes,
)
from benchmarks.prices import PRICE_DATE, PRICES, price
from benchmarks.requests import LOW_BALANCE, OURS, RESERVATION, SCENARIOS, WHO, WHO_LABELS

Writer = Callable[[str], None]
ITEMS = (
    ("lambda", "reconciler Lambda"),
    ("dynamodb", "DynamoDB"),
    ("sqs", "SQS"),
    ("sns", "SNS (at most)"),
    ("kms", "KMS (at most)"),
    ("logs", "CloudWatch Logs"),
    ("archive", "EventBridge archive"),
    ("balance_events", "balance-events function (Lambda, DynamoDB, logs, EventBridge)"),
)
REPLAY = ("replay", "replay of a dead-lettered render (`reconciler dlq replay`)")
VOLUMES = (1_000_000, 10_000_000, 100_000_000)


def usd(value: float) -> str:
    if 0 < value < 0.01:
        return f"${value:.4f}"
    return f"${value:,.2f}" if value < 1000 else f"${value:,.0f}"


def render_prices(w: Writer) -> None:
    w(f"Every price, in one place (benchmarks/prices.py): {PRICE_DATE}.")
    w("")
    w("| price | per | source |")
    w("|---|---|---|")
    for key, entry in PRICES.items():
        per = entry.usd * 1e6 if entry.usd < 0.01 and entry.usd else entry.usd
        scale = " per million" if entry.usd < 0.01 and entry.usd else ""
        w(f"| `{key}` | ${per:g}{scale} per {entry.unit} | {entry.source} |")
    w("")


def platform_bytes(r: dict) -> int:
    """Lambda's own lines of one invocation of our slowest settling path (they vary by a byte or two with its duration)."""
    return platform_log_bytes(r["function"]["memory_mb"], r["cost"][f"reserved/{OURS}"]["duration_ms"], max_memory_mb(r, "reconciler"))


def render_line_items(r: dict, w: Writer) -> None:
    s, cost = r["function"], r["cost"]
    balance = s["balance_events"]
    w("## Cost per million events, every line item")
    w("")
    w(
        "If every event of a million took that path; USD. **Measured**: requests and units (section 1 of docs/benchmarks.md), "
        "handler CPU, the function's log and EMF bytes per event and the alerts it sends (docs/benchmarks.md section 8), the "
        "Credits stream records each event writes and which of them the balance-events mapping delivers "
        f"(`reconciler.domain.stream_filter` on the prod template's {len(balance['filters'])} filters: none since every change is "
        "checked for its explanation, so all), bytes stored, and each "
        "function's \"Max Memory Used\" on its REPORT line: the packaged handler's peak RSS over these events in a process of "
        f"its own ({_peaks(r)}; a floor: Lambda counts its runtime client too). Lambda bills the configured memory, not the "
        "memory used: the GB-seconds are at the configured size, and the peak only sizes the REPORT line. **Configured**: "
        f"the prod template ({s['memory_mb']} MB {s['architecture']} reconciler, {balance['memory_mb']} MB balance-events function, "
        f"batching window {balance['batching_window_s']} s, alert subscriptions: {', '.join(s['alert_protocols']) or 'none'}, "
        f"point-in-time recovery {'on' if s['point_in_time_recovery'] else 'off'}). **Assumed**: {REQUEST_ROUND_TRIP_MS:g} ms per "
        "request round trip (DynamoDB's documented single-digit milliseconds at their top + 1 ms in the region), for every "
        "DynamoDB, SQS, SNS and EventBridge request a path makes."
    )
    w("")
    w("| event | who | " + " | ".join(label for _, label in ITEMS) + " | **total** | storage + PITR, per month kept |")
    w("|---|---|" + "---|" * (len(ITEMS) + 2))
    for scenario, label in (*SCENARIOS, LOW_BALANCE, REPLAY, RESERVATION):
        for who in WHO:
            row = cost.get(f"{scenario}/{who}")
            if row is None:
                continue
            cells = [f"{row['items'][key]:.3f}" for key, _ in ITEMS]
            w(
                f"| {label if who == OURS else ''} | {WHO_LABELS[who]} | "
                + " | ".join(cells)
                + f" | **{row['total_usd']:.2f}** | {row['storage_usd_month']:.3f} |"
            )
    w("")
    w(
        "Lambda: requests and GB-seconds (a baseline that raises is invoked 3 times, Lambda's retries). SNS: an alert is published "
        "for a conflict or an invalid event, at most one per event (the first of its group in a 5-minute window per container; the "
        "rest are counted into it: docs/triage.md), delivered to every subscription; whatever the volume, at most "
        "concurrency x 10 messages per 5 minutes. CloudWatch Logs: the function's own lines and EMF records plus Lambda's START, "
        "END and REPORT lines (their documented format, about "
        f"{platform_bytes(r)} bytes an invocation). EventBridge archive: the stage archives every render event it receives "
        f"(ingestion per GB and storage for its {_retention(r)}), by the event's size. Balance-events: the real function run on "
        "each Credits stream record the event wrote (benchmarks/balance_function.py: its calls, units, events put, log and EMF "
        "bytes measured; its duration its CPU + a round trip a request), for every record (the unexplained-change check needs "
        "them all), one invocation a record, the most it can be (a quiet shard; its batching window divides that: next "
        "section). The bench's users hold 1,000 credits, so their settlements cross no threshold and put no event; the "
        "low-balance render's change is published. A replay: the "
        "replayer's SQS requests per message (measured) and the function invoked again on a render of a job never seen; an "
        "operator's machine runs the replayer. A hold: the pipeline's synchronous call to the hold function (its CPU, log line "
        "and EMF record measured on a stubbed store, its units on the stage), so a render with a hold costs the hold's row plus "
        "its settlement's; a baseline's reservation is the pipeline's own write on the Jobs item, not priced here. "
        "The baselines as written log nothing of their own, emit no metrics, archive nothing "
        "and send no alerts; they pay Lambda's lines only (a v1 with our logs and metrics would pay ours). Not billed here: the "
        "pipeline's PutEvents of the video event (its account), rule delivery and asynchronous invocation, stream reads by Lambda "
        '(free: "GetRecords API calls invoked by AWS Lambda as part of DynamoDB triggers are free", DynamoDB pricing), X-Ray (off '
        "in prod). KMS: the ops topic's key, at most 2 requests (a data key) an alert; SNS reuses a data key for up to 5 minutes "
        "per publishing principal, so a month of alerts costs at most "
        f"{kms_requests_ceiling():,.0f} requests ({usd(kms_requests_ceiling() * price('kms_request'))}) whatever the volume "
        f'(Amazon SNS Developer Guide, "Key management"); KMS-encrypted topics {r["function"]["kms_topics"]}, queues '
        f"{r['function']['kms_queues']} (the queues use SQS-managed encryption, which calls no KMS key)."
    )
    w("")


def _peaks(r: dict) -> str:
    names = {"reconciler": "reconciler", "hold": "hold", "balance_events": "balance-events"}
    return ", ".join(f"{label} {max_memory_mb(r, function)} MB" for function, label in names.items())


def _retention(r: dict) -> str:
    days = r["function"].get("fixed", {}).get("archive_retention_days")
    return "retention, kept for ever: one year counted" if days == 0 else f"{days}-day retention"


def render_savings(r: dict, w: Writer) -> None:
    cost, tel = r["cost"], r["telemetry"]
    w("## What the cuts save, per million events")
    w("")
    w(
        "**Log bytes** (the function's own line per outcome, issue #27): before, Powertools' default keys on every line (service, "
        "function name, memory and ARN, code location, timestamp, an X-Ray trace id), measured on the runtime before the change "
        "with the same child (`benchmarks/cost.py`, LOG_BYTES_BEFORE); after, this run. The hold function's line repeated the job "
        "id (its answer's jobId beside the request's job_id) and named no user; it now names the job once and the user "
        "(HOLD_LOG_BYTES_BEFORE, measured at eb28513)."
    )
    w("")
    w("| event | own line before, bytes | after | + EMF record | + Lambda's lines | logs $ before | after | saved $ |")
    w("|---|---|---|---|---|---|---|---|")
    for scenario, label in SCENARIOS:
        row, own = cost[f"{scenario}/{OURS}"], tel["per_kind"][scenario]
        before, after = row["before"]["logs"], row["items"]["logs"]
        w(
            f"| {label} | {row['log_bytes_before_own']:,} | {own['log_bytes']:,.0f} | {own['emf_bytes']:,.0f} | {platform_bytes(r)} | "
            f"{before:.3f} | {after:.3f} | {before - after:.3f} |"
        )
    hold = cost.get(f"{RESERVATION[0]}/{OURS}")
    if hold is not None:
        before, after = hold["before"]["logs"], hold["items"]["logs"]
        w(
            f"| {RESERVATION[1]} | {hold['log_bytes_before_own']:,} | {tel['hold']['log_bytes']:,.0f} | {tel['hold']['emf_bytes']:,.0f} | "
            f"{platform_log_bytes(r['function']['hold_function']['memory_mb'], hold['duration_ms'], max_memory_mb(r, 'hold'))} | "
            f"{before:.3f} | {after:.3f} | "
            f"{before - after:.3f} |"
        )
    w("")
    render_batching(r, w)
    w(
        "Per path, at one invocation a record (a quiet shard, the most it can be): before, a mapping without filters; after, "
        f"the prod mapping's {len(r['function']['balance_events']['filters'])} filters (none: every Credits record reaches the "
        'function, the unexplained-change check needs them all: docs/events.md, "Which records reach the function"), so '
        "filtering saves nothing here. Priced from the measured runs of the function on each record "
        "(benchmarks/balance_function.py)."
    )
    w("")
    w(
        "| event | Credits records per event | invocations per million before | after | events put per million | "
        "balance-events $ before | after | saved $ |"
    )
    w("|---|---|---|---|---|---|---|---|")
    for scenario, label in (*SCENARIOS, LOW_BALANCE, RESERVATION):
        row = cost.get(f"{scenario}/{OURS}")
        if row is None:
            continue
        before, after = row["before"]["balance_events"], row["items"]["balance_events"]
        w(
            f"| {label} | {row['stream_records']} | {row['stream_records'] * 1e6:,.0f} | {row['balance_invocations'] * 1e6:,.0f} | "
            f"{row['balance_entries'] * 1e6:,.0f} | {before:.3f} | {after:.3f} | {before - after:.3f} |"
        )
    w("")


def render_batching(r: dict, w: Writer) -> None:
    """The balance-events invocations per million Credits records at each rate, window 0 against the prod window
    (benchmarks/stream_batching.py), and what a batch changes in an invocation's cost."""
    found = r.get("stream_batching")
    if not found:
        w("**Balance-events invocations**: not measured in this run (`python -m benchmarks.run --section stream_batching`).")
        w("")
        return
    mapping, batch, rates = found["mapping"], found["batch"], found["rates"]
    window, n = mapping["batching_window_s"], batch["records"]
    w(
        "**Balance-events invocations** (issue #27): the mapping cannot filter (below), so what cuts invocations is its "
        f"batching window: 0 s before, {window} s in prod now. **Measured** (counts, exact: "
        "tests/integration/benchmarks/test_bench_stream_batching.py): the local stack's event source mapping "
        "(emulator/stream_poller.py: Lambda's batching per shard as the Lambda Developer Guide documents it, "
        '"Batching behavior": an invocation when the window ends, the '
        f"batch of {mapping['batch_size']} is full or the payload reaches 6 MB, the next window from the end of the last "
        f"invocation), polled every {found['poll_interval_s']:g} s as Lambda polls a shard, fed {rates[0]['before']['records']:,} "
        "Credits records of settled renders at each steady rate on one shard, on a simulated clock "
        "(benchmarks/stream_batching.py). Without a window Lambda still sends whatever one poll read in one invocation, so a "
        "busy shard was batched before too. Priced per million records that cross nothing (the common case: no request) by "
        "the price model below."
    )
    w("")
    w(
        "| records a second on a shard | invocations per million before (window 0 s) | records an invocation, at most | "
        f"after (window {window} s) | records an invocation, at most | balance-events $ per million records before | after | saved $ |"
    )
    w("|---|---|---|---|---|---|---|---|")
    for row in rates:
        before, after = row["before"], row["after"]
        usd_before = batched_balance_usd(before["per_million"], r)["usd"]
        usd_after = batched_balance_usd(after["per_million"], r)["usd"]
        w(
            f"| {before['rate_per_s']:g} | {before['per_million']:,.0f} | {before['largest_batch']} | {after['per_million']:,.0f} | "
            f"{after['largest_batch']} | {usd_before:.3f} | {usd_after:.3f} | {usd_before - usd_after:.3f} |"
        )
    w("")
    single = batched_balance_usd(1e6, r)
    low, high = batch["cpu_ratio_range"]
    w(
        f"One invocation of {n} such records against {n} invocations of one (the real handler, its clients stubbed: "
        f"benchmarks/stream_batching.py): own log lines {batch['batched']['log_bytes']} bytes against "
        f"{batch['single']['log_bytes']}, EMF records {batch['batched']['emf_bytes']} against {batch['single']['emf_bytes']}, "
        f"AWS requests {batch['batched']['calls']} against {batch['single']['calls']} (an explained record that crosses nothing "
        f"logs nothing and reads nothing); CPU {batch['cpu_ratio']:.2f}x the singles' (median of {batch['repetitions']} "
        f"interleaved repetitions, {low:.2f}-{high:.2f}). So a batch saves per invocation: Lambda's request charge, its "
        "START/END/REPORT lines and the CPU an invocation spends beside its records. Priced: section 8's one-record CPU "
        f"({r['telemetry']['balance']['no_crossing']['cpu_ms']:.2f} ms) split by that ratio into "
        f"{single['cpu_invocation_ms']:.3f} ms an invocation and {single['cpu_record_ms']:.3f} ms a record, each invocation "
        "billed to the next millisecond. A quiet shard (a record less often than a window) gains nothing: the window "
        "starts when the last invocation ends, so its next record goes at once. The window delays a balance event and an "
        f"unexplained change's metric by at most {window} s (docs/events.md). A record that crosses a threshold costs its "
        "crossing's requests and events besides (the low-balance row below)."
    )
    w("")


def render_metrics(r: dict, w: Writer) -> None:
    metrics, fixed = metric_series_usd(r), fixed_monthly(r)
    s = r["function"]
    w("## Fixed monthly")
    w("")
    w(
        "Billed every month whatever the traffic, per stage: the custom metric series (measured, below), the alarms, dashboards, "
        "customer-managed keys and secrets of the prod template (counted there), and the timer scan's "
        f"{fixed['ticks']:,.0f} ticks a month on its schedule (an invocation, one Query of the sparse index at its 0.5 RRU minimum "
        "when nothing waits, Lambda's lines; a tick's CPU taken as a duplicate's, not measured)."
    )
    w("")
    w("| line | $ a month |")
    w("|---|---|")
    for name, value in fixed["lines"].items():
        w(f"| {name} | {usd(value)} |")
    w(f"| **total** | **{usd(fixed['usd_month'])}** |")
    w("")
    w(
        f"Every EMF record defines its metrics once per dimension set, and CloudWatch bills each name and dimension set as a metric "
        f"for the month it is sent in, whatever the number of values. Measured over every event kind, a timer-scan tick and the "
        f"balance-events function: **{metrics['series']} series** ({metrics['names']} names x {len(metrics['dimension_sets'])} "
        f"dimension sets: {', '.join(repr(d) if d else '(none)' for d in metrics['dimension_sets'])}) = "
        f"**{usd(metrics['usd_month'])} a month** per stage that sends them. The dimensionless set is the v1 runbook's copy "
        f"(METRICS_DIMENSIONLESS {s['dimensionless_metrics']} in prod, docs/metrics.md): it doubles the series, "
        f"{usd(metrics['usd_month'] / 2)} a month of the figure."
    )
    w("")


def alert_ceiling(r: dict) -> float:
    """Alert messages a month can carry whatever the volume: each container sends at most DEFAULT_MAX_PER_WINDOW a
    window (reconciler.notify.grouping), and at most the reserved concurrency of containers run at once."""
    from reconciler.notify.grouping import DEFAULT_MAX_PER_WINDOW, DEFAULT_WINDOW_SECONDS

    return r["function"]["reserved_concurrency"] * DEFAULT_MAX_PER_WINDOW * 30 * 86400 / DEFAULT_WINDOW_SECONDS


def month_usd(row: dict, volume: int, ceiling: float) -> float:
    """A month of `volume` events of one path: every line item, the alerts capped at the ceiling and their KMS requests
    at the data key reuse's, one month of storage."""
    sns = row["items"].get("sns", 0.0) * volume / 1e6
    capped = sns * min(1.0, ceiling / (row.get("alerts", 0.0) * volume)) if sns else 0.0
    kms = row["items"].get("kms", 0.0) * volume / 1e6
    kms_capped = min(kms, kms_requests_ceiling() * price("kms_request"))
    return (row["total_usd"] + row.get("storage_usd_month", 0.0)) * volume / 1e6 - sns + capped - kms + kms_capped


def render_month(r: dict, w: Writer) -> None:
    cost, ceiling = r["cost"], alert_ceiling(r)
    metrics = fixed_monthly(r)["usd_month"]
    w("## Cost per month")
    w("")
    w(
        "Every line item above, per path, if every event of the month took that path, plus the fixed monthly lines (ours) and one month "
        "of storage and PITR for the month's events (they are billed again every month they are kept). Alerts are capped at what "
        f"the grouping lets through whatever the volume: {ceiling:,.0f} messages a month (reserved concurrency x 10 a 5-minute "
        f"window), and their KMS requests at {kms_requests_ceiling():,.0f} (a data key per 5 minutes). A real month is a mix: "
        "mostly renders, some failures, few duplicates."
    )
    w("")
    w("| event | who | " + " | ".join(f"{v // 1_000_000} M events" for v in VOLUMES) + " |")
    w("|---|---|" + "---|" * len(VOLUMES))
    for scenario, label in SCENARIOS:
        for who in WHO:
            row = cost[f"{scenario}/{who}"]
            fixed = metrics if who == OURS else 0.0
            cells = [usd(month_usd(row, v, ceiling) + fixed) for v in VOLUMES]
            w(f"| {label if who == OURS else ''} | {WHO_LABELS[who]} | " + " | ".join(cells) + " |")
    w("")
    w(
        "A negative storage figure (a held job's failure) is an event that shrinks what its hold stored. Not counted for the "
        "baselines: the traceback Lambda logs when one raises (an invalid event), a few hundred bytes an attempt."
    )
    w("")
