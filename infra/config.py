"""Every difference between stages, in one typed place.

Constructs and stacks read a `StageConfig`; none of them branches on the stage name.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_logs as logs

# AWS's published Powertools layer of this version is attached to the function;
# keep it equal to the aws-lambda-powertools pin in requirements.txt (a test checks).
POWERTOOLS_VERSION = "3.37.0"

DEFAULT_STAGE = "dev"


class UnknownStageError(ValueError):
    """The requested stage has no configuration."""


@dataclass(frozen=True)
class ResourceNames:
    """Physical names of the stage's resources; the v1 runbook and the runtime rely on them."""

    stage: str

    @property
    def data_stack(self) -> str:
        return f"cc-reconciler-data-{self.stage}"

    @property
    def compute_stack(self) -> str:
        return f"cc-reconciler-compute-{self.stage}"

    @property
    def monitoring_stack(self) -> str:
        return f"cc-reconciler-monitoring-{self.stage}"

    @property
    def jobs_table(self) -> str:
        return f"Jobs-{self.stage}"

    @property
    def credits_table(self) -> str:
        return f"Credits-{self.stage}"

    @property
    def ledger_table(self) -> str:
        return f"Ledger-{self.stage}"

    @property
    def dead_letter_queue(self) -> str:
        return f"cc-reconciler-dlq-{self.stage}"

    @property
    def ops_topic(self) -> str:
        return f"ops-alerts-{self.stage}"

    @property
    def function(self) -> str:
        return f"cc-agent-reconciler-{self.stage}"

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.function}"

    @property
    def events_rule(self) -> str:
        return f"cc-reconciler-events-{self.stage}"

    @property
    def timer_scan_rule(self) -> str:
        return f"cc-reconciler-timer-scan-{self.stage}"

    @property
    def event_archive(self) -> str:
        return f"cc-reconciler-archive-{self.stage}"

    @property
    def dashboard(self) -> str:
        return f"cc-reconciler-{self.stage}"

    def alarm(self, concern: str) -> str:
        return f"cc-reconciler-{concern}-{self.stage}"


@dataclass(frozen=True)
class StageConfig:
    stage: str
    removal_policy: RemovalPolicy
    deletion_protection: bool
    point_in_time_recovery: bool
    log_retention: logs.RetentionDays
    alarm_actions_enabled: bool
    timer_scan_rate: Duration
    # Model -> credits per second, as decimal strings (the runtime parses them with Decimal).
    price_overrides: Mapping[str, str]
    reserved_concurrency: int
    event_archive_retention_days: int
    async_invoke_max_retries: int
    async_invoke_max_event_age: Duration
    scan_grace_minutes: int
    stuck_job_hours: int
    triage_enabled: bool

    def __post_init__(self) -> None:
        for model, price in self.price_overrides.items():
            if not Decimal(price) > 0:
                raise ValueError(f"price override for {model!r} must be a positive decimal, got {price!r}")
        # Frozen all the way down: a read-only view, so no construct can alter a stage's prices.
        object.__setattr__(self, "price_overrides", MappingProxyType(dict(self.price_overrides)))

    @property
    def names(self) -> ResourceNames:
        return ResourceNames(self.stage)


_STAGES: dict[str, StageConfig] = {
    "dev": StageConfig(
        stage="dev",
        removal_policy=RemovalPolicy.DESTROY,
        deletion_protection=False,
        point_in_time_recovery=True,
        log_retention=logs.RetentionDays.ONE_WEEK,
        alarm_actions_enabled=False,  # dev alarms change state but page nobody
        timer_scan_rate=Duration.minutes(15),
        # Dev renders cost half on the HD models, so test accounts last; `test` keeps its contractual 1 credit/s.
        price_overrides={"hd-v1": "2", "hd-v2": "2.5"},
        reserved_concurrency=10,
        event_archive_retention_days=7,
        async_invoke_max_retries=2,
        async_invoke_max_event_age=Duration.hours(6),
        scan_grace_minutes=15,
        stuck_job_hours=6,
        triage_enabled=False,  # no OpenAI calls from dev
    ),
    "staging": StageConfig(
        stage="staging",
        # Staging data is disposable but keeping it on stack deletion makes a mistaken destroy recoverable.
        removal_policy=RemovalPolicy.RETAIN,
        deletion_protection=False,
        point_in_time_recovery=True,
        log_retention=logs.RetentionDays.ONE_MONTH,
        alarm_actions_enabled=True,
        timer_scan_rate=Duration.minutes(10),
        price_overrides={},
        reserved_concurrency=10,
        event_archive_retention_days=14,
        async_invoke_max_retries=2,
        async_invoke_max_event_age=Duration.hours(6),
        scan_grace_minutes=15,
        stuck_job_hours=6,
        triage_enabled=True,
    ),
    "prod": StageConfig(
        stage="prod",
        removal_policy=RemovalPolicy.RETAIN,
        deletion_protection=True,
        point_in_time_recovery=True,
        log_retention=logs.RetentionDays.THREE_MONTHS,
        alarm_actions_enabled=True,
        timer_scan_rate=Duration.minutes(5),
        price_overrides={},  # prod charges the published prices only
        reserved_concurrency=10,
        event_archive_retention_days=90,
        async_invoke_max_retries=2,
        async_invoke_max_event_age=Duration.hours(6),
        scan_grace_minutes=15,
        stuck_job_hours=6,
        triage_enabled=True,
    ),
}

STAGES: tuple[str, ...] = tuple(_STAGES)


def config_for(stage: str) -> StageConfig:
    try:
        return _STAGES[stage]
    except KeyError:
        raise UnknownStageError(f"unknown stage {stage!r}; valid stages: {', '.join(STAGES)}") from None

# Powertools names, shared by the function's environment and the alarms that read its metrics.
SERVICE_NAME = "credit-reconciler"
METRICS_NAMESPACE = "Reconciler"
