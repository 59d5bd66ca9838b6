"""Stage-level controls for an incident: alarms, pause and resume, backups, archive replay. The use case over the
ports (ops/operator_ports.py); the naming and wording they need are plain functions, testable without AWS."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from reconciler.contract import ALARM_PREFIX, ResourceNames
from reconciler.domain.events import DEAD_LETTER_REFUSED_SUFFIX
from reconciler.ops.operator_error import InvalidInput, NotFound
from reconciler.ops.operator_ports import Alarm, Alarms, Archive, Backups, Functions, FunctionState


def compact_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def backup_name(table: str, moment: datetime) -> str:
    """`Credits-prod-20261128T101500Z`: the table name already carries the stage; only [A-Za-z0-9_.-]."""
    return f"{table}-{compact_timestamp(moment)}"


def replay_name(stage: str, moment: datetime, dead_letter_refused: bool = False) -> str:
    """`cc-reconciler-prod-20261128T101500Z`; the function reads the suffix of one that dead-letters what it refuses."""
    return f"cc-reconciler-{stage}-{compact_timestamp(moment)}" + (DEAD_LETTER_REFUSED_SUFFIX if dead_letter_refused else "")


def describe_pause(replay_command: str) -> str:
    """What happens to events while the function's reserved concurrency is 0. Since 2021-08-30 Lambda neither queues
    nor retries an asynchronous event of such a function: it goes to the on-failure destination (the DLQ) at once,
    unrun (AWS Compute Blog, "Introducing new asynchronous invocation metrics for AWS Lambda": "Zero reserved
    concurrency: No retry"). The maximum event age plays no part."""
    return (
        "events sent while paused go to the DLQ at once, unrun (Lambda does not retry at reserved concurrency 0); "
        f"after the function is back, replay them: `{replay_command}`"
    )


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


@dataclass
class StageControls:
    names: ResourceNames
    alarms: Alarms
    functions: Functions
    backups: Backups
    archive: Archive

    # --- alarms ------------------------------------------------------------------------------------------

    def stage_alarms(self) -> list[Alarm]:
        """The stage's alarms (cc-reconciler-*-{stage}), by name."""
        return sorted((a for a in self.alarms.with_prefix(ALARM_PREFIX) if self.names.is_alarm(a.name)), key=lambda a: a.name)

    def select_alarms(self, wanted: list[str]) -> list[str]:
        """The alarms named (full names or concerns such as `errors`), or all of the stage's when none are."""
        available = [alarm.name for alarm in self.stage_alarms()]
        if not available:
            raise NotFound(f"no cc-reconciler-*-{self.names.stage} alarms found")
        if not wanted:
            return available
        chosen = []
        for name in wanted:
            full = self.full_alarm_name(name)
            if full not in available:
                raise NotFound(f"no alarm {full}; this stage's alarms: {', '.join(available) or 'none'}")
            chosen.append(full)
        return chosen

    def full_alarm_name(self, name: str) -> str:
        return name if name.startswith(ALARM_PREFIX) else self.names.alarm(name)

    def set_alarm_actions(self, alarm_names: list[str], enabled: bool) -> None:
        self.alarms.set_actions(alarm_names, enabled)

    def alarm_history(self, wanted: list[str], since: datetime, until: datetime, limit: int) -> list[dict]:
        """State changes and action/configuration updates of the stage's alarms (or the named ones), newest first."""
        full_names = [self.full_alarm_name(name) for name in wanted]
        items = []
        for change in self.alarms.history(since, until):
            if self.names.is_alarm(change.alarm) and (not full_names or change.alarm in full_names):
                items.append({"timestamp": change.timestamp, "alarm": change.alarm, "type": change.type, "summary": change.summary})
                if len(items) >= limit:
                    break
        return items

    # --- pause / resume ------------------------------------------------------------------------------------

    def function_state(self) -> FunctionState:
        return self.functions.state(self.names.function)

    def set_concurrency(self, concurrency: int) -> None:
        self.functions.set_concurrency(self.names.function, concurrency)

    def configured_concurrency(self) -> int:
        """The stage's reserved concurrency as infra deploys it (reconciler.contract.STAGE_LIMITS)."""
        return self.names.limits.reserved_concurrency

    # --- backups ---------------------------------------------------------------------------------------------

    def backup(self, moment: datetime, dry_run: bool) -> list[dict]:
        """On-demand backups of every table of the stage (or, dry, their names)."""
        created = []
        for table in self.names.tables:
            name, arn = (backup_name(table, moment), None) if dry_run else self.backups.create(table, backup_name(table, moment))
            created.append({"table": table, "backupName": name, "backupArn": arn})
        return created

    # --- archive replay ----------------------------------------------------------------------------------

    def plan_replay(self, start: datetime, end: datetime, now: datetime, dead_letter_refused: bool = False) -> ReplayPlan:
        if start >= end:
            raise InvalidInput("--from must be before --to")
        if end > now:
            raise InvalidInput("--to is in the future; an archive replay covers past events only")
        archive_arn, bus_arn, rule_arn = self.archive.arns(self.names.event_archive, self.names.events_rule)
        return ReplayPlan(replay_name(self.names.stage, now, dead_letter_refused), archive_arn, bus_arn, rule_arn, start, end)

    def start_replay(self, plan: ReplayPlan) -> None:
        self.archive.start_replay(plan.request())
