"""Every difference between stages, in one typed place.

Constructs and stacks read a `StageConfig`; none of them branches on the stage name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Literal, Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_logs as logs

# AWS's published Powertools layer of this version is attached to the function;
# keep it equal to the aws-lambda-powertools pin in requirements.txt (a test checks).
POWERTOOLS_VERSION = "3.37.0"
# AWS's public SSM parameter holding that layer's ARN (CloudFormation resolves it at deploy time; CI checks
# that it exists in the stage's region before deploying).
POWERTOOLS_LAYER_PARAMETER = f"/aws/service/powertools/python/arm64/python3.12/{POWERTOOLS_VERSION}"

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

    @property
    def balance_events_table(self) -> str:
        return f"BalanceEvents-{self.stage}"

    @property
    def balance_events_function(self) -> str:
        return f"cc-reconciler-balance-events-{self.stage}"

    @property
    def balance_events_failure_queue(self) -> str:
        return f"cc-reconciler-balance-events-failures-{self.stage}"

    @property
    def operator_read_only_policy(self) -> str:
        return f"cc-reconciler-operator-read-only-{self.stage}"

    @property
    def operator_break_glass_policy(self) -> str:
        return f"cc-reconciler-operator-break-glass-{self.stage}"


@dataclass(frozen=True)
class AlertSubscription:
    """Where `ops-alerts-{stage}` delivers: an e-mail address, an HTTPS endpoint (a chat or paging webhook)
    or an SQS queue ARN (e.g. a chat integration's queue). E-mail and HTTPS subscriptions must be confirmed
    by their owner after the first deploy (docs/infrastructure.md)."""

    protocol: Literal["email", "https", "sqs"]
    endpoint: str

    def __post_init__(self) -> None:
        checks = {
            "email": r"[^@\s]+@[^@\s]+\.[^@\s]+",
            "https": r"https://\S+",
            "sqs": r"arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]+",
        }
        if self.protocol not in checks:
            raise ValueError(f"unsupported alert subscription protocol {self.protocol!r}; use one of {sorted(checks)}")
        if not re.fullmatch(checks[self.protocol], self.endpoint):
            raise ValueError(f"{self.endpoint!r} is not a valid {self.protocol} endpoint")


@dataclass(frozen=True)
class BalanceEventSettings:
    """Balance events (docs/events.md): their EventBridge source on the default bus, and the thresholds a user's
    Credits item may override (`lowBalanceThreshold`, `overdraftAlertLevel`)."""

    source: str = "credits.reconciler"
    low_threshold: int = 10  # credits.low below this many credits (a whole number >= 1)
    overdraft_alert_level: int = 0  # credits.overdrawn below this balance (<= 0; 0: any negative balance)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,256}", self.source) or self.source.lower().startswith("aws."):
            raise ValueError(f"balance event source {self.source!r} is not a usable EventBridge source")
        if self.low_threshold < 1 or self.overdraft_alert_level > 0:
            raise ValueError("balance events: the low threshold must be >= 1 and the overdraft alert level <= 0")


@dataclass(frozen=True)
class StageConfig:
    stage: str
    # Where the stage deploys: the stacks are environment-specific, so `cdk deploy` with credentials for any
    # other account fails instead of deploying there. CI checks its role's account against this too.
    account: str
    region: str
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
    # Stack termination protection: a `cdk destroy` or a console delete of the stack fails.
    termination_protection: bool
    # Subscribers of ops-alerts-{stage}; none in the constructs themselves.
    alert_subscriptions: tuple[AlertSubscription, ...]
    # Also emit every metric without dimensions (the v1 runbook's series). At most one stage per account and
    # region may do so, or their counts mix (a test checks; docs/metrics.md).
    dimensionless_metrics: bool
    balance_events: BalanceEventSettings = BalanceEventSettings()

    def __post_init__(self) -> None:
        if not re.fullmatch(r"\d{12}", self.account):
            raise ValueError(f"{self.stage}: account must be 12 digits, got {self.account!r}")
        if not re.fullmatch(r"[a-z]{2}(-gov)?-[a-z]+-\d", self.region):
            raise ValueError(f"{self.stage}: not a region name: {self.region!r}")
        for model, price in self.price_overrides.items():
            if not Decimal(price) > 0:
                raise ValueError(f"price override for {model!r} must be a positive decimal, got {price!r}")
        # Frozen all the way down: a read-only view, so no construct can alter a stage's prices.
        object.__setattr__(self, "price_overrides", MappingProxyType(dict(self.price_overrides)))

    @property
    def names(self) -> ResourceNames:
        return ResourceNames(self.stage)


# PLACEHOLDERS until the accounts exist: replace with the real account ids before the first deploy
# (docs/infrastructure.md, "Before the first deploy"). Until then a deploy fails on the account check
# rather than landing anywhere else.
DEV_ACCOUNT = "111111111111"
STAGING_ACCOUNT = "222222222222"
PROD_ACCOUNT = "333333333333"

_STAGES: dict[str, StageConfig] = {
    "dev": StageConfig(
        stage="dev",
        account=DEV_ACCOUNT,
        region="us-east-1",
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
        termination_protection=False,
        alert_subscriptions=(),  # dev alarm actions are disabled; the function's own alerts have no reader
        dimensionless_metrics=True,
    ),
    "staging": StageConfig(
        stage="staging",
        account=STAGING_ACCOUNT,
        region="us-east-1",
        # Staging data is disposable but keeping it on stack deletion makes a mistaken destroy recoverable.
        # RETAIN_ON_UPDATE_OR_DELETE (CloudFormation `RetainExceptOnCreate`): kept on update and delete, but
        # removed when the create that made it rolls back, so a failed first deploy can simply be retried
        # (with plain Retain the fixed-name tables survive the rollback and the retry fails "already exists").
        removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
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
        termination_protection=False,
        alert_subscriptions=(AlertSubscription("email", "reconciler-staging-alerts@example.com"),),
        dimensionless_metrics=True,
    ),
    "prod": StageConfig(
        stage="prod",
        account=PROD_ACCOUNT,
        region="us-east-1",
        removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
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
        termination_protection=True,
        alert_subscriptions=(
            AlertSubscription("email", "reconciler-oncall@example.com"),
            AlertSubscription("https", "https://paging.example.com/hooks/reconciler-prod"),
        ),
        dimensionless_metrics=True,
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

# The alarms of a stage, cc-reconciler-{concern}-{stage} (infra/constructs/alarms.py, in this order). The ops
# topic's and its key's policies admit CloudWatch for exactly these alarm ARNs.
ALARM_CONCERNS: tuple[str, ...] = (
    "errors",
    "adjustments",
    "dlq-depth",
    "dlq-age",
    "throttles",
    "conflicts",
    "stuck-jobs",
    "invalid-events",
    "alert-failures",
    "unsettleable-jobs",
    "dynamodb-throttles",
    "contention",
    "events-failed",
    "events-dropped",
    "events-dead-lettered",
    "duration",
)
# The balance-events alarms (infra/constructs/balance_events.py, in this order); the ops topic admits them too.
BALANCE_EVENT_ALARM_CONCERNS: tuple[str, ...] = (
    "balance-events-errors",
    "balance-events-iterator-age",
    "balance-events-failures",
    "balance-events-failed-batches",
)
