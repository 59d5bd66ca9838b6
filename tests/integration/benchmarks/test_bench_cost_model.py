"""The cost model computes from what a run measured: request counts, units, log bytes, stream records and the
function's settings, each line item at its price (benchmarks/prices.py)."""

from __future__ import annotations

import pytest

from benchmarks.cost import (
    LOG_BYTES_BEFORE,
    REQUEST_ROUND_TRIP_MS,
    ROUND_TRIP_MS,
    alert_usd,
    archive_usd,
    event_bytes,
    events_per_second,
    fixed_monthly,
    function_run_usd,
    hold_line_items,
    invocation_ms,
    kms_requests_ceiling,
    kms_usd,
    line_items,
    max_memory_mb,
    metric_series_usd,
    per_million,
    platform_log_bytes,
    replay_line_items,
)
from benchmarks.prices import PRICES, price
from benchmarks.units import stream_record
from reconciler.domain.crossings import Thresholds
from reconciler.domain.stream_filter import balance_event_filters

SETTINGS = {"memory_mb": 512, "architecture": "arm64", "async_retries": 2}
PEAK = 57  # a measured "Max Memory Used", MB (benchmarks.measure.max_memory)


def test_a_settling_path_costs_its_units_its_round_trips_and_one_invocation():
    counts = {"total": 2, "sqs": {}, "units": [4.0, 7.0], "outcome": "settled"}
    row = per_million(counts, cpu_ms=0.4, settings=SETTINGS)
    assert row["invocations"] == 1e6
    assert row["duration_ms"] == 21  # 0.4 ms CPU + 2 x 10 ms, rounded up
    assert row["dynamodb_usd"] == pytest.approx(4 * 0.125 + 7 * 0.625)
    assert row["lambda_usd"] == pytest.approx(0.5 * 0.021 * 1e6 * price("lambda_gb_s_arm") + 0.20)
    assert row["sqs_usd"] == 0


def test_a_path_that_raises_is_retried_by_lambda_then_parked_in_the_dlq():
    counts = {"total": 2, "sqs": {}, "units": [0.0, 2.0], "outcome": "raised KeyError('userId')"}
    row = per_million(counts, cpu_ms=0.3, settings=SETTINGS)
    assert row["invocations"] == 3e6  # the first attempt + 2 asynchronous retries
    assert row["wru"] == 6e6  # every attempt makes the same writes
    assert row["sqs_requests"] == 1e6  # Lambda's on-failure destination
    assert row["sqs_usd"] == pytest.approx(0.40)


def test_a_duration_is_the_cpu_and_a_round_trip_per_request_to_each_service():
    # The round trip: DynamoDB's documented single-digit milliseconds at their top (9) + 1 ms in the region.
    assert REQUEST_ROUND_TRIP_MS == 9 + 1 and set(ROUND_TRIP_MS) == {"dynamodb", "sqs", "sns", "events"}
    assert invocation_ms(0.4, {"dynamodb": 3, "sqs": 1, "sns": 1}) == 51  # 0.4 + 5 requests x 10 ms, rounded up
    assert invocation_ms(0.4, {}) == 1
    # A path's calls are counted by service: its DynamoDB and SQS requests (section 1) and its alert's SNS publish
    counts = {"total": 2, "sqs": {"SendMessage": 1}, "units": [0.0, 0.0], "outcome": "rejected"}
    row = per_million(counts, cpu_ms=0.3, settings=SETTINGS, alerts=1)
    assert row["calls"] == {"dynamodb": 2, "sqs": 1, "sns": 1}
    assert row["duration_ms"] == 41  # 0.3 + 4 x 10
    assert per_million(counts, cpu_ms=0.3, settings=SETTINGS)["duration_ms"] == 31  # no alert: one request fewer


def test_an_alerting_path_of_ours_lasts_its_publish_longer():
    results = results_with([])
    results["telemetry"]["per_kind"]["reserved"] = {**results["telemetry"]["per_kind"]["reserved"], "alerts_first": 1}
    ours, baseline = line_items("reserved", "ours", results), line_items("reserved", "v1", results)
    assert ours["calls"] == {"dynamodb": 2, "sqs": 0, "sns": 1} and baseline["calls"] == {"dynamodb": 2, "sqs": 0, "sns": 0}
    assert (ours["duration_ms"], baseline["duration_ms"]) == (31, 21)


def test_events_per_second_follow_duration_and_invocations():
    assert events_per_second({"duration_ms": 20, "invocations": 1e6}, concurrency=10) == 500
    assert events_per_second({"duration_ms": 20, "invocations": 2e6}, concurrency=10) == 250
    assert REQUEST_ROUND_TRIP_MS > 0


def test_lambdas_own_lines_are_start_end_and_report():
    # "START RequestId: <36> Version: $LATEST\n": 17 + 36 + 17 + 1; "END RequestId: <36>\n": 15 + 36 + 1; "REPORT RequestId:
    # <36>" 54, "\tDuration: 21.00 ms" 19, "\tBilled Duration: 21 ms" 23, "\tMemory Size: 512 MB" 20, "\tMax Memory Used: 57 MB" 23,
    # "\t\n" 2.
    assert platform_log_bytes(512, 21, PEAK) == 71 + 52 + (54 + 19 + 23 + 20 + 23 + 2)
    assert platform_log_bytes(512, 21, PEAK) == platform_log_bytes(512, 21.4, PEAK)  # only the duration's digits move it
    assert platform_log_bytes(512, 21, 128) == platform_log_bytes(512, 21, PEAK) + 1  # and the measured peak's


def test_the_report_lines_peak_is_the_runs_measurement_per_function():
    # Each function's REPORT line carries its own measured peak (digits differ here so a mix-up shows in the bytes).
    results = results_with([])
    assert (max_memory_mb(results, "reconciler"), max_memory_mb(results, "hold"), max_memory_mb(results, "balance_events")) == (PEAK, 155, 9)
    del results["memory"]
    with pytest.raises(ValueError, match="rerun make bench"):
        max_memory_mb(results, "reconciler")


def test_alerts_are_published_and_delivered_to_each_subscription():
    assert alert_usd(1, ["email", "https"]) == pytest.approx(0.50 + 20.00 + 0.60)
    assert alert_usd(0, ["email"]) == 0
    assert alert_usd(1, ["sqs"]) == pytest.approx(0.50)


def test_an_alert_on_the_encrypted_topic_costs_at_most_a_data_key_and_a_month_at_most_the_reuse_period_allows():
    # SNS: R = B / D * (2 * P) per topic, D = 300 s (docs.aws.amazon.com/sns/latest/dg/sns-key-management.html)
    assert kms_usd(1, kms_topics=1) == pytest.approx(2 * 0.03 / 10_000 * 1e6)  # $6.00 per million alerts, each a data key
    assert kms_usd(0.5, kms_topics=1) == pytest.approx(3.00)
    assert kms_usd(1, kms_topics=0) == 0  # an unencrypted (or SSE-SQS) destination calls no KMS key
    assert kms_requests_ceiling() == 30 * 86400 / 300 * 2  # 17,280 a month for the one publishing role
    assert kms_requests_ceiling(principals=3, seconds=2_419_200) == 48_384  # the guide's 28-day month, 3 principals


def test_a_paths_kms_line_follows_its_alerts_and_a_month_caps_it():
    from benchmarks.cost_report import month_usd

    results = results_with([])
    results["telemetry"]["per_kind"]["reserved"] = {**results["telemetry"]["per_kind"]["reserved"], "alerts_first": 1}
    row = line_items("reserved", "ours", results)
    assert row["items"]["kms"] == pytest.approx(6.00)
    assert line_items("reserved", "v1", results)["items"]["kms"] == 0  # the baselines send no alerts
    quiet = {"items": {"kms": 6.00}, "total_usd": 6.00, "alerts": 0.0}
    assert month_usd(quiet, 1000, ceiling=1e9) == pytest.approx(0.006)  # under the reuse cap: a data key an alert
    assert month_usd(quiet, 100_000_000, ceiling=1e9) == pytest.approx(17_280 * 0.03 / 10_000)  # at most 2 per 5 minutes


def test_every_price_has_a_source():
    assert all(entry.source.startswith("https://aws.amazon.com/") and entry.usd >= 0 for entry in PRICES.values())


def credits(before: int | None, after: int) -> dict:
    image = lambda balance: {"userId": {"S": "u"}, "remaining": {"N": str(balance)}}  # noqa: E731
    return stream_record({"userId": {"S": "u"}}, None if before is None else image(before), image(after))


BALANCE = {"no_crossing": {"cpu_ms": 0.06}, "crossing": {"cpu_ms": 0.2}}
FILTERS = balance_event_filters(Thresholds(10, 0))
BALANCE_SETTINGS = {
    "memory_mb": 256,
    "architecture": "arm64",
    "filters": FILTERS,
    "batching_window_s": 5,
    "low_threshold": 10,
    "overdraft_alert_level": 0,
}
# What benchmarks/balance_function.py measures of one invocation: a change that crosses nothing, and one that crosses.
QUIET_RUN = {"dynamodb": {}, "units": [0.0, 0.0], "events": {}, "entries": 0, "log_bytes": 0, "emf_bytes": 0, "failed": 0}
CROSSING_RUN = {
    "dynamodb": {"Query": 2, "GetItem": 1, "PutItem": 1},
    "units": [1.5, 2.0],
    "events": {"PutEvents": 1},
    "entries": 1,
    "log_bytes": 250,
    "emf_bytes": 260,
    "failed": 0,
}


def results_with(records: list[dict], runs: list[dict] | None = None, outcome: str = "settled") -> dict:
    counts = {
        "total": 2,
        "sqs": {},
        "units": [0.5, 7.0],
        "outcome": outcome,
        "stored_bytes": 1000,
        "stream_records": {"Credits": records},
        "balance_runs": runs if runs is not None else [QUIET_RUN] * len(records),
    }
    kind = {"log_bytes": 360, "emf_bytes": 428, "alerts_first": 0, "alert_log_bytes": 0}
    settings = {
        **SETTINGS,
        "balance_events": BALANCE_SETTINGS,
        "credits_table": "Credits",
        "alert_protocols": ["email", "https"],
        "kms_topics": 1,
        "kms_queues": 0,
        "point_in_time_recovery": True,
        "hold_function": {"memory_mb": 256, "architecture": "arm64"},
        "fixed": {"alarms": 12, "composite_alarms": 0, "dashboards": 1, "kms_keys": 1, "secrets": 1, "archive_retention_days": 30, "schedules": []},
    }
    return {
        "function": settings,
        "requests": {
            "reserved": {"ours": counts, "v1": counts},
            "no_job": {"ours": counts, "v1": counts, "powertools": counts},
            "reservation": {"ours": {**counts, "total": 3, "units": [1.5, 5.0]}},
        },
        "cpu": {"per_kind": {"reserved": {"cpu_median_ms": 0.4}, "no_job": {"cpu_median_ms": 0.4}, "duplicate": {"cpu_median_ms": 0.2}}},
        "telemetry": {
            "per_kind": {"reserved": kind, "no_job": kind},
            "balance": BALANCE,
            "hold": {"cpu_ms": 0.5, "log_bytes": 266, "emf_bytes": 240},
            "series": [["A", ""], ["A", "service,stage"], ["B", ""]],
        },
        "replay": {"messages": 1000, "sqs_total": 1101},
        "memory": {"reconciler": {"max_memory_mb": PEAK}, "hold": {"max_memory_mb": 155}, "balance_events": {"max_memory_mb": 9}},
    }


def test_one_balance_function_run_is_priced_from_what_it_did():
    usd, log_bytes = function_run_usd(CROSSING_RUN, 0.2, BALANCE_SETTINGS, PEAK)
    duration = 51  # 0.2 ms CPU + 5 requests (4 DynamoDB, 1 EventBridge) x 10 ms, rounded up
    assert log_bytes == platform_log_bytes(256, duration, PEAK) + 250 + 260
    expected = (
        0.20  # the invocation
        + 0.25 * 0.051 * 1e6 * price("lambda_gb_s_arm")
        + 1.5 * 0.125
        + 2.0 * 0.625  # its units
        + log_bytes * 1e6 / 1e9 * 0.50
        + 1.00  # one event put
    )
    assert usd == pytest.approx(expected)


def test_a_healthy_users_settlement_does_not_invoke_the_balance_function_through_the_filters():
    row = line_items("reserved", "ours", results_with([credits(1000, 975)]))
    assert (row["stream_records"], row["balance_invocations"]) == (1, 0)
    assert row["items"]["balance_events"] == 0
    # Without the filters: one invocation of 1 ms (no request made) at 256 MB and Lambda's own lines, per record.
    expected = 0.20 + 0.25 * 0.001 * 1e6 * price("lambda_gb_s_arm") + platform_log_bytes(256, 1, 9) * 1e6 / 1e9 * 0.50
    assert row["before"]["balance_events"] == pytest.approx(expected)


def test_a_crossing_is_delivered_and_priced_as_measured():
    row = line_items("reserved", "ours", results_with([credits(12, 8)], [CROSSING_RUN]))
    assert (row["balance_invocations"], row["balance_entries"]) == (1, 1)
    assert row["items"]["balance_events"] == pytest.approx(function_run_usd(CROSSING_RUN, 0.2, BALANCE_SETTINGS, 9)[0])


def test_records_without_measured_runs_are_an_error_not_a_free_function():
    results = results_with([credits(12, 8)])
    del results["requests"]["reserved"]["ours"]["balance_runs"]
    with pytest.raises(ValueError, match="rerun make bench"):
        line_items("reserved", "ours", results)


def test_every_line_item_adds_up_and_storage_is_billed_per_month_kept():
    row = line_items("reserved", "ours", results_with([]))
    assert set(row["items"]) == {"lambda", "dynamodb", "sqs", "sns", "kms", "logs", "archive", "balance_events"}
    assert row["total_usd"] == pytest.approx(sum(row["items"].values()))
    own = 360 + 428 + platform_log_bytes(512, 21, PEAK)
    assert row["items"]["logs"] == pytest.approx(own * 1e6 / 1e9 * 0.50)
    assert row["before"]["logs"] == pytest.approx((own - 360 + LOG_BYTES_BEFORE["reserved"]) * 1e6 / 1e9 * 0.50)
    assert row["storage_usd_month"] == pytest.approx(1000 * 1e6 / 1e9 * (0.25 + 0.20))
    assert row["items"]["archive"] == pytest.approx(archive_usd(event_bytes("reserved"), 30))
    # The baselines as written log nothing of their own, archive nothing and have no balance events.
    baseline = line_items("reserved", "v1", results_with([credits(12, 8)], [CROSSING_RUN]))
    assert baseline["items"]["logs"] == pytest.approx(platform_log_bytes(512, 21, PEAK) * 1e6 / 1e9 * 0.50)
    assert baseline["items"]["balance_events"] == 0 and baseline["items"]["sns"] == 0 and baseline["items"]["archive"] == 0


def test_the_archive_bills_the_events_bytes_in_and_kept_for_its_retention():
    # 1 M events of 500 bytes = 0.5 GB: $0.10/GB in, $0.023/GB-month for 60 days (2 months).
    assert archive_usd(500, 60) == pytest.approx(0.5 * (0.10 + 2 * 0.023))
    assert archive_usd(500, 0) == pytest.approx(0.5 * (0.10 + 365 / 30 * 0.023))  # kept for ever: a year counted
    assert archive_usd(500, None) == 0  # no archive in the template
    assert 300 < event_bytes("reserved") < 1000


def test_a_replay_is_the_replayers_sqs_requests_and_the_function_again():
    results = results_with([])
    row, path = replay_line_items("ours", results), line_items("no_job", "ours", results)
    assert row["replayer_sqs_per_message"] == pytest.approx(1.101)
    assert row["items"]["sqs"] == pytest.approx(path["items"]["sqs"] + 1.101 * 0.40)
    assert row["items"]["dynamodb"] == path["items"]["dynamodb"] and row["items"]["lambda"] == path["items"]["lambda"]
    assert row["items"]["archive"] == 0  # a replay is an Invoke, not an event put on the bus
    assert row["total_usd"] == pytest.approx(sum(row["items"].values()))


def test_fixed_monthly_lines_follow_the_template():
    results = results_with([])
    results["function"]["fixed"]["schedules"] = ["rate(5 minutes)"]
    fixed = fixed_monthly(results)
    assert fixed["ticks"] == 8640
    assert fixed["lines"]["alarms"] == pytest.approx(12 * 0.10)
    assert (fixed["lines"]["dashboards"], fixed["lines"]["KMS keys"], fixed["lines"]["secrets"]) == (3.00, 1.00, 0.40)
    assert fixed["lines"]["custom metrics"] == pytest.approx(3 * 0.30)
    tick = 0.20 / 1e6 + 0.5 * 0.011 * price("lambda_gb_s_arm") + 0.5 * 0.125 / 1e6 + platform_log_bytes(512, 11, PEAK) / 1e9 * 0.50
    assert fixed["lines"]["timer scan"] == pytest.approx(8640 * tick)
    assert fixed["usd_month"] == pytest.approx(sum(fixed["lines"].values()))


def test_only_the_timer_scans_schedule_counts_as_ticks():
    """The liability snapshot's schedule is priced per run of its Scan (docs/capacity.md, "Credits in"), not as a tick."""
    from benchmarks.capacity import _fixed_resources

    def rule(name: str, schedule: str) -> dict:
        return {"Type": "AWS::Events::Rule", "Properties": {"Name": name, "ScheduleExpression": schedule}}

    resources = {
        "Scan": rule("cc-reconciler-timer-scan-prod", "rate(5 minutes)"),
        "Snapshot": rule("cc-reconciler-liability-snapshot-prod", "rate(1 hour)"),
        "Events": {"Type": "AWS::Events::Rule", "Properties": {"Name": "cc-reconciler-events-prod", "EventPattern": {}}},
    }
    assert _fixed_resources(resources, "cc-reconciler-timer-scan-prod")["schedules"] == ["rate(5 minutes)"]


def test_custom_metrics_are_a_fixed_monthly_cost_per_series():
    metrics = metric_series_usd(results_with([]))
    assert (metrics["series"], metrics["names"], metrics["dimension_sets"]) == (3, 2, ["", "service,stage"])
    assert metrics["usd_month"] == pytest.approx(3 * 0.30)


def test_a_month_caps_the_alerts_at_what_grouping_lets_through():
    from benchmarks.cost_report import alert_ceiling, month_usd

    r = {"function": {"reserved_concurrency": 10}}
    ceiling = alert_ceiling(r)
    assert ceiling == 10 * 10 * 8640  # 10 containers x 10 messages x 8,640 five-minute windows in 30 days
    row = {"items": {"sns": 21.1, "lambda": 1.0}, "total_usd": 22.1, "alerts": 1.0, "storage_usd_month": 0.0}
    assert month_usd(row, 1_000_000, ceiling) == pytest.approx(1.0 + 21.1 * ceiling / 1e6)
    assert month_usd(row, 100_000, ceiling) == pytest.approx(22.1 / 10)  # under the ceiling: every alert


def test_a_hold_is_the_hold_functions_invocation_its_units_logs_and_the_balance_function():
    results = results_with([credits(1000, 970)])
    row = hold_line_items(results)
    assert row["duration_ms"] == 31  # 0.5 ms CPU + 3 requests x 10 ms, rounded up
    assert row["items"]["lambda"] == pytest.approx(0.20 + 0.25 * 0.031 * 1e6 * price("lambda_gb_s_arm"))
    assert row["items"]["dynamodb"] == pytest.approx(1.5 * 0.125 + 5.0 * 0.625)
    assert row["items"]["logs"] == pytest.approx((platform_log_bytes(256, 31, 155) + 266 + 240) * 1e6 / 1e9 * 0.50)
    assert row["before"]["logs"] - row["items"]["logs"] == pytest.approx((293 - 266) * 1e6 / 1e9 * 0.50)
    assert (row["stream_records"], row["balance_invocations"], row["items"]["balance_events"]) == (1, 0, 0)
    assert row["total_usd"] == pytest.approx(sum(row["items"].values()))


def test_the_prod_template_has_one_kms_encrypted_topic_and_no_kms_encrypted_queue(stage_templates):
    from benchmarks.capacity import _kms_encrypted

    resources = {lid: r for template in stage_templates("prod").values() for lid, r in template.get("Resources", {}).items()}
    # The ops topic (alerts) on its customer-managed key; every queue SQS-managed (no KMS request, nothing to price)
    assert (_kms_encrypted(resources, "AWS::SNS::Topic"), _kms_encrypted(resources, "AWS::SQS::Queue")) == (1, 0)
    assert any(r["Type"] == "AWS::SQS::Queue" for r in resources.values())
