"""Stage-level controls: alarms, pause/resume, backups, archive replay. Thin boto3 calls; the naming
and the wording they need are plain functions so they can be tested without AWS."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from reconciler.contract import ALARM_PREFIX, ResourceNames
from reconciler.ops.operator_error import OpsError

# Lambda's default when no event invoke config exists.
DEFAULT_MAX_EVENT_AGE_SECONDS = 6 * 3600


def compact_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def backup_name(table: str, moment: datetime) -> str:
    """`Credits-prod-20261128T101500Z`: the table name already carries the stage; only [A-Za-z0-9_.-]."""
    return f"{table}-{compact_timestamp(moment)}"


def replay_name(stage: str, moment: datetime) -> str:
    return f"cc-reconciler-{stage}-{compact_timestamp(moment)}"


def describe_hold(max_event_age_seconds: int) -> str:
    hours, rest = divmod(max_event_age_seconds, 3600)
    span = f"{hours} hours" if not rest else f"{max_event_age_seconds // 60} minutes"
    return f"events are held for up to {span}, then go to the DLQ"


# --- alarms ----------------------------------------------------------------------------------


def stage_alarms(cloudwatch: Any, names: ResourceNames) -> list[dict]:
    alarms: list[dict] = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=ALARM_PREFIX, AlarmTypes=["MetricAlarm", "CompositeAlarm"]):
        for kind in ("MetricAlarms", "CompositeAlarms"):
            alarms.extend(alarm for alarm in page.get(kind, []) if names.is_alarm(alarm["AlarmName"]))
    return sorted(alarms, key=lambda alarm: alarm["AlarmName"])


def select_alarms(available: list[str], wanted: list[str], names: ResourceNames) -> list[str]:
    """The alarms named (full names or concerns such as `errors`), or all of the stage's when none are."""
    if not wanted:
        return list(available)
    chosen = []
    for name in wanted:
        full = name if name.startswith(ALARM_PREFIX) else names.alarm(name)
        if full not in available:
            raise OpsError(f"no alarm {full}; this stage's alarms: {', '.join(available) or 'none'}")
        chosen.append(full)
    return chosen


def alarm_history(cloudwatch: Any, names: ResourceNames, alarm_names: list[str], since: datetime, until: datetime, limit: int) -> list[dict]:
    """State changes and action/configuration updates of the stage's alarms, newest first."""
    items = []
    request: dict = {"StartDate": since, "EndDate": until, "ScanBy": "TimestampDescending"}
    for page in cloudwatch.get_paginator("describe_alarm_history").paginate(**request):
        for item in page.get("AlarmHistoryItems", []):
            name = item.get("AlarmName", "")
            if names.is_alarm(name) and (not alarm_names or name in alarm_names):
                items.append(
                    {"timestamp": item.get("Timestamp"), "alarm": name, "type": item.get("HistoryItemType"), "summary": item.get("HistorySummary")}
                )
        if len(items) >= limit:
            break
    return items[:limit]


def set_alarm_actions(cloudwatch: Any, alarm_names: list[str], enabled: bool) -> None:
    for start in range(0, len(alarm_names), 100):  # the API's limit per call
        batch = alarm_names[start : start + 100]
        if enabled:
            cloudwatch.enable_alarm_actions(AlarmNames=batch)
        else:
            cloudwatch.disable_alarm_actions(AlarmNames=batch)


# --- pause / resume --------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionState:
    function_name: str
    reserved_concurrency: int | None
    max_event_age_seconds: int


def function_state(lambda_client: Any, function_name: str) -> FunctionState:
    concurrency = lambda_client.get_function_concurrency(FunctionName=function_name).get("ReservedConcurrentExecutions")
    try:
        config = lambda_client.get_function_event_invoke_config(FunctionName=function_name)
        age = int(config.get("MaximumEventAgeInSeconds") or DEFAULT_MAX_EVENT_AGE_SECONDS)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        age = DEFAULT_MAX_EVENT_AGE_SECONDS
    return FunctionState(function_name, None if concurrency is None else int(concurrency), age)


def set_concurrency(lambda_client: Any, function_name: str, concurrency: int) -> None:
    lambda_client.put_function_concurrency(FunctionName=function_name, ReservedConcurrentExecutions=concurrency)


def configured_concurrency(stage: str) -> int:
    """The stage's reserved concurrency as infra deploys it (reconciler.contract.STAGE_LIMITS, which infra deploys)."""
    return ResourceNames(stage).limits.reserved_concurrency


# --- backups ---------------------------------------------------------------------------------


def create_backups(dynamodb: Any, tables: tuple[str, ...], moment: datetime) -> list[dict]:
    created = []
    for table in tables:
        details = dynamodb.create_backup(TableName=table, BackupName=backup_name(table, moment))["BackupDetails"]
        created.append({"table": table, "backupName": details["BackupName"], "backupArn": details["BackupArn"]})
    return created


# --- archive replay --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayPlan:
    name: str
    archive_arn: str
    bus_arn: str
    rule_arn: str
    start: datetime
    end: datetime

    def request(self) -> dict:
        return dict(
            ReplayName=self.name,
            Description="Replay of render events by the reconciler CLI",
            EventSourceArn=self.archive_arn,
            EventStartTime=self.start,
            EventEndTime=self.end,
            # Only the reconciler's rule sees the replayed events; other consumers of the bus do not.
            Destination={"Arn": self.bus_arn, "FilterArns": [self.rule_arn]},
        )


def plan_replay(events: Any, names: ResourceNames, start: datetime, end: datetime, now: datetime) -> ReplayPlan:
    if start >= end:
        raise OpsError("--from must be before --to")
    if end > now:
        raise OpsError("--to is in the future; an archive replay covers past events only")
    archive = events.describe_archive(ArchiveName=names.event_archive)
    rule = events.describe_rule(Name=names.events_rule)
    return ReplayPlan(replay_name(names.stage, now), archive["ArchiveArn"], archive["EventSourceArn"], rule["Arn"], start, end)
