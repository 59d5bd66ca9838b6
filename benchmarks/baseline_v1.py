"""BASELINE ONLY - NOT PRODUCTION CODE. A reference implementation of the v1.0 request pattern.

v1.0's source is not in this repository; its README (docs in /work/shared/reference/credit-reconciler-v1.md)
describes separate Credits/Jobs/Ledger writes. This module reproduces that *style* so the benchmarks can
compare request counts, capacity units and behaviour under concurrency with the same tables and events:

    1. GetItem   Jobs     - the duplicate check: skip a job already marked as processed
    2. GetItem   Credits  - read the balance
    3. UpdateItem Credits - write the new balance (computed from what was read, no condition)
    4. PutItem   Ledger   - one per ledger entry (release of a reservation, then the charge / refund)
    5. UpdateItem Jobs    - mark the job processed

Assumptions (stated, not known facts about v1): reads are eventually consistent (the default); the new
balance is written as an absolute value computed from the read (a read-modify-write with no condition),
so concurrent events for one user can lose updates; a job already marked processed is skipped whatever
the event says, so a contradicting terminal event is dropped without a record; an invalid event raises
(Lambda's async retries then its DLQ handle it: no SQS request from the function's own code).
The ledger ids are the same deterministic ids as ours, so a ledger sum is comparable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from reconciler.domain.ledger import iso_timestamp
from reconciler.domain.pricing import PriceBook

BASELINE_LABEL = "v1-style baseline (benchmarks/baseline_v1.py)"


@dataclass(frozen=True)
class BaselineOutcome:
    kind: str  # "settled" | "skipped"
    charged: int = 0
    credited: int = 0


class V1Baseline:
    """v1-style settlement: one request per read and per write, no transaction, no condition."""

    def __init__(self, dynamodb: Any, jobs_table: str, credits_table: str, ledger_table: str, prices: PriceBook | None = None) -> None:
        self.dynamodb = dynamodb
        self.jobs_table = jobs_table
        self.credits_table = credits_table
        self.ledger_table = ledger_table
        self.prices = prices or PriceBook()

    def process(self, raw_event: Mapping[str, Any] | str) -> BaselineOutcome:
        event = json.loads(raw_event) if isinstance(raw_event, str) else raw_event
        detail = event["detail"]
        kind = {"video.rendered": "rendered", "video.failed": "failed"}[event["detail-type"]]
        job_id, user_id = detail["jobId"], detail["userId"]
        now = iso_timestamp()

        # 1. duplicate check
        job = self.dynamodb.get_item(TableName=self.jobs_table, Key={"jobId": {"S": job_id}}).get("Item")
        if job and "processedAt" in job:
            return BaselineOutcome("skipped")
        reserved = int(job["reservedCredits"]["N"]) if job and "reservedCredits" in job else 0

        # 2. balance
        credits = self.dynamodb.get_item(TableName=self.credits_table, Key={"userId": {"S": user_id}}).get("Item")
        balance = int(Decimal(credits["remaining"]["N"])) if credits else 0

        entries: list[tuple[str, str, int, str]] = []  # (suffix, type, amount, description)
        if kind == "rendered":
            cost = self.prices.cost(detail["model"], Decimal(str(detail["seconds"])))
            if reserved:
                entries.append(("release", "credit", reserved, "Release of reserved credits"))
            entries.append(("charge", "debit", cost, f"Render of {detail['seconds']}s on {detail['model']}"))
        elif reserved:
            entries.append(("refund", "credit", reserved, "Refund of failed render"))
        delta = sum(amount if kind_ == "credit" else -amount for _, kind_, amount, _ in entries)

        # 3. balance write (read-modify-write)
        if entries:
            self.dynamodb.update_item(
                TableName=self.credits_table,
                Key={"userId": {"S": user_id}},
                UpdateExpression="SET remaining = :new, updatedAt = :now",
                ExpressionAttributeValues={":new": {"N": str(balance + delta)}, ":now": {"S": now}},
            )
        # 4. ledger entries
        for suffix, entry_type, amount, description in entries:
            self.dynamodb.put_item(
                TableName=self.ledger_table,
                Item={
                    "ledgerId": {"S": f"{job_id}#{suffix}"},
                    "userId": {"S": user_id},
                    "timestamp": {"S": now},
                    "type": {"S": entry_type},
                    "amount": {"N": str(amount)},
                    "description": {"S": description},
                    "reference": {"S": job_id},
                    "eventId": {"S": event["id"]},
                },
            )
        # 5. job
        self.dynamodb.update_item(
            TableName=self.jobs_table,
            Key={"jobId": {"S": job_id}},
            UpdateExpression="SET #s = :s, userId = :u, processedAt = :now",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": kind}, ":u": {"S": user_id}, ":now": {"S": now}},
        )
        charged = sum(a for _, t, a, _ in entries if t == "debit")
        return BaselineOutcome("settled", charged=charged, credited=sum(a for _, t, a, _ in entries if t == "credit"))
