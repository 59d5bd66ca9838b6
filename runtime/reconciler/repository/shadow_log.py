"""The deployed shadow's decisions table, ShadowDecisions-{stage} (docs/migration.md step 1): the only table the
shadow function writes. Partition key jobId, sort key entry: `event#<eventId>` holds one decision, `settled` the
job's claim (the event whose settlement the shadow counts: its exactly-once, as v2's settlement record is v2's).

A decision is kept whole as JSON text: it is a report's line, never a balance; no number passes through DynamoDB's."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from botocore.exceptions import ClientError

from reconciler.contract import SHADOW_ENTRY_KEY, SHADOW_JOB_KEY
from reconciler.json_text import dumps
from reconciler.repository.dynamodb import pages

CLAIM = "settled"
EVENT_PREFIX = "event#"
NO_JOB = "(no job id)"  # the partition of events that name no job (rejected: v2 would dead-letter them)


def _key(job_id: str | None, entry: str) -> dict[str, Any]:
    return {SHADOW_JOB_KEY: {"S": job_id if isinstance(job_id, str) and job_id else NO_JOB}, SHADOW_ENTRY_KEY: {"S": entry}}


class DynamoDBShadowLog:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self.dynamodb = dynamodb
        self.table = table

    def decided(self, event_id: str, job_id: str | None) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(TableName=self.table, Key=_key(job_id, EVENT_PREFIX + event_id), ConsistentRead=True).get("Item")
        return json.loads(item["decision"]["S"]) if item else None

    def settled(self, job_id: str) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(TableName=self.table, Key=_key(job_id, CLAIM), ConsistentRead=True).get("Item")
        return json.loads(item["decision"]["S"]) if item else None

    def claim(self, decision: Mapping[str, Any]) -> bool:
        """The job's first settlement in the shadow; False when another event claimed it first (a retry of the same
        event finds its own claim and keeps it)."""
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item={**_key(decision["jobId"], CLAIM), "eventId": {"S": decision["eventId"]}, "decision": {"S": dumps(decision, sort_keys=True)}},
                ConditionExpression="attribute_not_exists(#job) OR eventId = :event",
                ExpressionAttributeNames={"#job": SHADOW_JOB_KEY},
                ExpressionAttributeValues={":event": {"S": decision["eventId"]}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def record(self, decision: Mapping[str, Any]) -> None:
        item = {**_key(decision.get("jobId"), EVENT_PREFIX + decision["eventId"]), "decision": {"S": dumps(decision, sort_keys=True)}}
        self.dynamodb.put_item(TableName=self.table, Item=item)

    def decisions(self) -> Iterator[dict[str, Any]]:
        """Every decision (the report's: `reconciler shadow report --deployed`), in no particular order."""
        request = {"TableName": self.table, "ConsistentRead": True}
        for page in pages(self.dynamodb.scan, request):
            for item in page.get("Items", []):
                if item[SHADOW_ENTRY_KEY]["S"].startswith(EVENT_PREFIX):
                    yield json.loads(item["decision"]["S"])
