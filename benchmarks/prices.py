"""Every price the cost model uses, in one place, each with its source.

AWS list prices for us-east-1 (N. Virginia), free tiers ignored, as published on each service's pricing page in
2025; the pages were not re-read live for this table (this machine has no web access): check them before quoting a
figure, and change a price here only (docs/capacity.md renders this table).
"""

from __future__ import annotations

from dataclasses import dataclass

PRICE_DATE = "AWS list prices for us-east-1 as published in 2025 (free tiers ignored; recorded 2026-12-07)"


@dataclass(frozen=True)
class Price:
    usd: float  # per `unit`
    unit: str
    source: str


PRICES: dict[str, Price] = {
    "dynamodb_wru": Price(0.625 / 1e6, "write request unit (on-demand)", "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "dynamodb_rru": Price(0.125 / 1e6, "read request unit (on-demand)", "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "dynamodb_storage_gb_month": Price(0.25, "GB-month stored (Standard table class)", "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "dynamodb_pitr_gb_month": Price(
        0.20, "GB-month of table size under point-in-time recovery", "https://aws.amazon.com/dynamodb/pricing/on-demand/"
    ),
    # "GetRecords API calls invoked by AWS Lambda as part of DynamoDB triggers are free."
    "dynamodb_stream_read_by_lambda": Price(0.0, "stream read request by a Lambda trigger", "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "lambda_request": Price(0.20 / 1e6, "invocation", "https://aws.amazon.com/lambda/pricing/"),
    "lambda_gb_s_arm": Price(0.0000133334, "GB-second (arm64)", "https://aws.amazon.com/lambda/pricing/"),
    "lambda_gb_s_x86": Price(0.0000166667, "GB-second (x86_64)", "https://aws.amazon.com/lambda/pricing/"),
    "sqs_request": Price(0.40 / 1e6, "request (standard queue, per 64 KB)", "https://aws.amazon.com/sqs/pricing/"),
    "sns_publish": Price(0.50 / 1e6, "publish (per 64 KB)", "https://aws.amazon.com/sns/pricing/"),
    "sns_email": Price(2.00 / 1e5, "e-mail notification", "https://aws.amazon.com/sns/pricing/"),
    "sns_https": Price(0.60 / 1e6, "HTTP/S notification", "https://aws.amazon.com/sns/pricing/"),
    "sns_sqs": Price(0.0, "notification to an SQS queue", "https://aws.amazon.com/sns/pricing/"),
    "eventbridge_event": Price(1.00 / 1e6, "custom event put on a bus (per 64 KB)", "https://aws.amazon.com/eventbridge/pricing/"),
    # Event replay: what an archive ingests, and what it keeps (the stage's archive of the render events).
    "eventbridge_archive_gb": Price(0.10, "GB of events archived (processing)", "https://aws.amazon.com/eventbridge/pricing/"),
    "eventbridge_archive_gb_month": Price(0.023, "GB-month of archive storage", "https://aws.amazon.com/eventbridge/pricing/"),
    # Lambda's logs are "vended logs": $0.50 per GB for the first 10 TB a month, as standard ingestion.
    "logs_ingested_gb": Price(0.50, "GB ingested (CloudWatch Logs, Lambda)", "https://aws.amazon.com/cloudwatch/pricing/"),
    "logs_stored_gb_month": Price(0.03, "GB-month archived (compressed)", "https://aws.amazon.com/cloudwatch/pricing/"),
    # One metric = one name + dimension set; an EMF record creates them. Prorated by the hour of the month it is sent.
    "custom_metric_month": Price(0.30, "custom metric-month (first 10,000)", "https://aws.amazon.com/cloudwatch/pricing/"),
    "cloudwatch_alarm_month": Price(0.10, "standard-resolution metric alarm-month", "https://aws.amazon.com/cloudwatch/pricing/"),
    "cloudwatch_composite_alarm_month": Price(0.50, "composite alarm-month", "https://aws.amazon.com/cloudwatch/pricing/"),
    "cloudwatch_dashboard_month": Price(3.00, "dashboard-month (past the free 3 an account)", "https://aws.amazon.com/cloudwatch/pricing/"),
    "kms_key_month": Price(1.00, "customer-managed KMS key-month", "https://aws.amazon.com/kms/pricing/"),
    "secret_month": Price(0.40, "Secrets Manager secret-month", "https://aws.amazon.com/secrets-manager/pricing/"),
    "xray_trace": Price(5.00 / 1e6, "trace recorded (only where a stage traces)", "https://aws.amazon.com/xray/pricing/"),
}


def price(key: str) -> float:
    return PRICES[key].usd
