"""Every difference between stages, in one typed place.

Constructs and stacks read a `StageConfig`; none of them branches on the stage name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from types import MappingProxyType
from typing import Literal

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_logs as logs

from reconciler.contract import (
    BALANCE_EVENT_SOURCE,
    DEFAULT_LOW_BALANCE_THRESHOLD,
    DEFAULT_OVERDRAFT_ALERT_LEVEL,
    STAGES,
    ResourceNames,
    StageLimits,
    checked_stage,
    usable_event_source,
)

# AWS's published Powertools layer of this version is attached to the function;
# keep it equal to the aws-lambda-powertools pin in requirements.txt (a test checks).
POWERTOOLS_VERSION = "3.37.0"
# AWS's public SSM parameter holding that layer's ARN (CloudFormation resolves it at deploy time; CI checks
# that it exists in the stage's region before deploying).
POWERTOOLS_LAYER_PARAMETER = f"/aws/service/powertools/python/arm64/python3.12/{POWERTOOLS_VERSION}"

DEFAULT_STAGE = "dev"

# PLACEHOLDER until the repository's home is settled: the GitHub repository (owner/name) whose workflows the CI roles
# trust through GitHub's OIDC provider (infra/constructs/ci_access.py). Replace before creating the CI roles
# (docs/infrastructure.md, "Before the first deploy").
CI_REPOSITORY = "example-org/credit-reconciler"
assert re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", CI_REPOSITORY), "CI_REPOSITORY is owner/name"


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


MAX_BATCHING_WINDOW_SECONDS = 300


@dataclass(frozen=True)
class BalanceEventSettings:
    """Balance events (docs/events.md): their EventBridge source on the default bus, and the thresholds a user's
    Credits item may override (`lowBalanceThreshold`, `overdraftAlertLevel`)."""

    source: str = BALANCE_EVENT_SOURCE
    low_threshold: int = DEFAULT_LOW_BALANCE_THRESHOLD  # credits.low below this many credits (a whole number >= 1)
    overdraft_alert_level: int = DEFAULT_OVERDRAFT_ALERT_LEVEL  # credits.overdrawn below this balance (<= 0; 0: any negative balance)
    # The stream mapping's batching window (Lambda allows 0 to 300 s): a balance event and an unexplained change's
    # metric wait up to this long more, and every record of a burst shares an invocation (docs/capacity.md).
    batching_window_seconds: int = 5

    def __post_init__(self) -> None:
        if not usable_event_source(self.source):
            raise ValueError(f"balance event source {self.source!r} is not a usable EventBridge source")
        if self.low_threshold < 1 or self.overdraft_alert_level > 0:
            raise ValueError("balance events: the low threshold must be >= 1 and the overdraft alert level <= 0")
        if not 0 <= self.batching_window_seconds <= MAX_BATCHING_WINDOW_SECONDS:
            raise ValueError(f"balance events: the batching window is 0 to {MAX_BATCHING_WINDOW_SECONDS} s (Lambda's bound for streams)")


# What a deploy builds for a stage (`--context mode=NAME`): "full", v2 itself (data, compute and monitoring stacks);
# "shadow", beside a live v1 before the takeover, only the deployed shadow's stack (docs/migration.md step 1).
Mode = Literal["full", "shadow"]
MODES: tuple[Mode, ...] = ("full", "shadow")


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
    event_archive_retention_days: int
    async_invoke_max_retries: int
    async_invoke_max_event_age: Duration
    triage_enabled: bool
    # Stack termination protection: a `cdk destroy` or a console delete of the stack fails.
    termination_protection: bool
    # Subscribers of ops-alerts-{stage}; none in the constructs themselves.
    alert_subscriptions: tuple[AlertSubscription, ...]
    # Also emit every metric without dimensions (the v1 runbook's series). At most one stage per account and
    # region may do so, or their counts mix (a test checks; docs/metrics.md).
    dimensionless_metrics: bool
    # X-Ray active tracing of every function (Lambda's own; no SDK in the function: docs/tracing.md). Off, the role
    # gets no X-Ray grant (POWERTOOLS_TRACE_DISABLED). Turning it on is this one line plus a deploy.
    tracing: bool
    balance_events: BalanceEventSettings = BalanceEventSettings()
    # How often the function's scheduled job snapshots the book's liability (service/liability_snapshot.py): one
    # eventually consistent Scan of Credits per run (docs/capacity.md), nothing per event.
    liability_snapshot_minutes: int = 60
    # Where v1.0 lives (docs/migration.md): "adopt" imports its tables, DLQ and topic into the data stack (infra/adoption.py)
    # before v2's first deploy; "create" creates everything (a fresh account).
    takeover: Literal["adopt", "create"] = "create"
    mode: Mode = "full"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"{self.stage}: mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.takeover not in ("adopt", "create"):
            raise ValueError(f"{self.stage}: takeover must be 'adopt' or 'create', got {self.takeover!r}")
        if self.takeover == "adopt" and self.removal_policy == RemovalPolicy.DESTROY:
            raise ValueError(f"{self.stage}: adopted resources hold v1's live data; a removal policy of DESTROY would delete them with the stack")
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

    @property
    def limits(self) -> StageLimits:
        """What the runtime and the operators share of a stage's settings (reserved concurrency, which `resume`
        restores; the timer scan's timings; the adjustment guard): reconciler.contract.STAGE_LIMITS, the one place."""
        return self.names.limits


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
        event_archive_retention_days=7,
        async_invoke_max_retries=2,
        async_invoke_max_event_age=Duration.hours(6),
        triage_enabled=False,  # no OpenAI calls from dev
        termination_protection=False,
        alert_subscriptions=(),  # dev alarm actions are disabled; the function's own alerts have no reader
        dimensionless_metrics=True,
        tracing=True,
        balance_events=BalanceEventSettings(batching_window_seconds=5),
        liability_snapshot_minutes=360,
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
        event_archive_retention_days=14,
        async_invoke_max_retries=2,
        async_invoke_max_event_age=Duration.hours(6),
        triage_enabled=True,
        termination_protection=False,
        alert_subscriptions=(AlertSubscription("email", "reconciler-staging-alerts@example.com"),),
        dimensionless_metrics=True,
        tracing=True,  # latency is investigated here: prod's code and settings, plus traces
        takeover="adopt",  # v1.0 runs here (`sam deploy --config-env staging`)
        balance_events=BalanceEventSettings(batching_window_seconds=30),
        liability_snapshot_minutes=60,
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
        event_archive_retention_days=90,
        async_invoke_max_retries=2,
        async_invoke_max_event_age=Duration.hours(6),
        triage_enabled=True,
        termination_protection=True,
        alert_subscriptions=(
            AlertSubscription("email", "reconciler-oncall@example.com"),
            AlertSubscription("https", "https://paging.example.com/hooks/reconciler-prod"),
        ),
        dimensionless_metrics=True,
        # Off: metrics and logs with request ids carry prod. Tracing no longer costs the cold start (Lambda's own,
        # no SDK: docs/tracing.md); it stays off for the price of the traces.
        tracing=False,
        takeover="adopt",  # v1.0 runs here (`sam deploy --config-env prod`)
        # 30 s: balance events and the unexplained-change alarm stay within two minutes; invocations at most 2/min/shard.
        balance_events=BalanceEventSettings(batching_window_seconds=30),
        liability_snapshot_minutes=60,
    ),
}

assert tuple(_STAGES) == STAGES, "every stage of the contract has a configuration, and no other"


def config_for(stage: str) -> StageConfig:
    return _STAGES[checked_stage(stage)]


def for_first_deploy(config: StageConfig) -> StageConfig:
    """A stage's first create (`make deploy FIRST_DEPLOY=1`, docs/migration.md): no stack termination protection and
    no table deletion protection, so that a failed create rolls back and can simply be retried; the next deploy turns
    both on (the pre-deploy check refuses a first deploy without it, and it on an existing stack)."""
    return replace(config, termination_protection=False, deletion_protection=False)


class UnknownModeError(ValueError):
    pass


def for_mode(config: StageConfig, mode: str) -> StageConfig:
    """The stage in a deploy mode (`--context mode=shadow`). The shadow's stack is temporary, destroyed after the
    cutover: no termination protection, whatever the stage's."""
    if mode not in MODES:
        raise UnknownModeError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
    if mode == "shadow":
        return replace(config, mode="shadow", termination_protection=False)
    return replace(config, mode="full")
