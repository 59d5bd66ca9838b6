"""The names the runtime, the CLI and the infrastructure share: one source for each of them.

Resource names per stage (the v1 runbook's names are a contract with the people who operate it), the
metric namespace and metric names, the service and secret names, the environment the infrastructure sets
for the function, the tables' index and attribute contract, and the event contract.

`infra` imports this module; no module of the runtime imports `infra` (tests/unit/test_architecture.py). It
imports nothing but the domain's event names and the tables' attribute names (domain/attributes.py), so the CDK
app, the Lambda and the installed CLI all load it cheaply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.domain.attributes import (  # noqa: F401 - the tables' attribute names, re-exported: see that module
    AMOUNT_PAID_ATTRIBUTE,
    APPLIED_BY_REQUEST_ATTRIBUTE,
    BALANCE_BEFORE_ATTRIBUTE,
    BALANCE_EVENT_KEY,
    CATEGORY_ATTRIBUTE,
    CHANGE_BY_KEY,
    CREATED_AT_ATTRIBUTE,
    CREDIT_EXPIRES_AT_ATTRIBUTE,
    CURRENCY_ATTRIBUTE,
    EXPIRING_NOTICE_ATTRIBUTE,
    EXPIRY_PENDING_ATTRIBUTE,
    EXPIRY_PENDING_VALUE,
    GOODWILL_CREDITS_ATTRIBUTE,
    HELD_AT_ATTRIBUTE,
    HELD_ATTRIBUTE,
    HOLD,
    HOLD_EXPIRED,
    HOLD_EXPIRES_AT_ATTRIBUTE,
    HOLD_RELEASED_BY_ATTRIBUTE,
    HOLD_USER_ATTRIBUTE,
    JOB_ID_ATTRIBUTE,
    LAST_AUDIT_FIX_ATTRIBUTE,
    LAST_CHANGE_ATTRIBUTE,
    LAST_LEDGER_ENTRY_ATTRIBUTE,
    LEDGER_ID_ATTRIBUTE,
    LOW_OVERRIDE_ATTRIBUTE,
    MONEY_ATTRIBUTES,
    OVERDRAFT_ATTRIBUTE,
    OVERDRAFT_OVERRIDE_ATTRIBUTE,
    PAID_CREDITS_ATTRIBUTE,
    PAYMENT_REFERENCE_ATTRIBUTE,
    PIPELINE_JOB_ATTRIBUTES,
    PROMOTIONAL_CREDITS_ATTRIBUTE,
    REMAINING_ATTRIBUTE,
    RESERVED_AS_ATTRIBUTE,
    TIMESTAMP_ATTRIBUTE,
    UNSETTLED_ATTRIBUTE,
    UNSETTLED_VALUE,
    UPDATED_AT_ATTRIBUTE,
    USER_ID_ATTRIBUTE,
    USER_LEDGER_SORT_KEY,
    VERSION_ATTRIBUTE,
)
from reconciler.domain.credits_in import CREDITS_IN_DETAIL_TYPES, CREDITS_IN_SOURCE
from reconciler.domain.events import EVENT_SOURCE, FAILED, RENDERED, SMOKE_TEST_SOURCE, SMOKE_TEST_USER

STAGES: tuple[str, ...] = ("dev", "staging", "prod")

# Powertools' service name and metric namespace: the function's environment, its metrics, the alarms and
# dashboard that read them, and the CLI's `metrics` command.
SERVICE_NAME = "credit-reconciler"
METRICS_NAMESPACE = "Reconciler"
SERVICE_DIMENSION = {"Name": "service", "Value": SERVICE_NAME}
STAGE_DIMENSION = "stage"

# Secrets Manager secret holding the triage model's API key (read only when a stage enables triage).
OPENAI_SECRET_NAME = "meta-agents/openai"  # noqa: S105 - the secret's name, not its value

# The function's handler (one for events and timer-scan ticks).
HANDLER = "reconciler.handlers.entry.handler"
# The balance-events stream function's handler.
BALANCE_EVENTS_HANDLER = "reconciler.handlers.balance_stream.handler"
# The hold function's handler (docs/pipeline.md).
HOLDS_HANDLER = "reconciler.handlers.hold_api.handler"
# The deployed shadow's handler (docs/migration.md, step 1): v2 decides v1's events and writes only its decisions.
SHADOW_HANDLER = "reconciler.handlers.shadow_events.handler"
# The shadow's decisions table: one item per event decided, and one claim per job it settled (its exactly-once).
SHADOW_JOB_KEY = "jobId"
SHADOW_ENTRY_KEY = "entry"

# The events the function settles (EventBridge source and detail-types); the rule's pattern is built from them.
SETTLED_EVENT_SOURCE = EVENT_SOURCE
SETTLED_DETAIL_TYPES: tuple[str, ...] = (RENDERED, FAILED)
# The post-deploy smoke test (scripts/smoke-test.py): its own source, which the events rule also admits (the archive
# does not), its own user, whose balance changes the balance-events function never publishes, and its job ids.
SMOKE_TEST_EVENT_SOURCE = SMOKE_TEST_SOURCE
# Credits in (docs/events.md, "Credits in"): published by billing and support, applied by the same function.
CREDITS_IN_EVENT_SOURCE = CREDITS_IN_SOURCE
CREDITS_IN_EVENT_DETAIL_TYPES: tuple[str, ...] = CREDITS_IN_DETAIL_TYPES
SMOKE_TEST_DETAIL_TYPE = RENDERED
SMOKE_TEST_USER_ID = SMOKE_TEST_USER
# The function's scheduled input that takes the liability snapshot (handlers/entry.py; its rule sends {"job": this}).
LIABILITY_SNAPSHOT_JOB = "liability-snapshot"
SMOKE_TEST_JOB_PREFIX = "smoke-test-"


class Metric:
    """Every metric the reconciler emits, in namespace METRICS_NAMESPACE (docs/metrics.md)."""

    SETTLEMENTS = "Settlements"
    ADJUSTMENTS = "Adjustments"
    CREDITS_DEBITED = "CreditsDebited"
    CREDITS_REFUNDED = "CreditsRefunded"
    OVERDRAFTS = "Overdrafts"
    DUPLICATE_EVENTS = "DuplicateEvents"
    CONFLICTING_EVENTS = "ConflictingEvents"
    INVALID_EVENTS = "InvalidEvents"
    # Events of an archive replay (`reconciler events replay`) the function had already handled: settled (a duplicate),
    # or refused as invalid when they first arrived (dead-lettered then, with their alert; not again).
    REPLAYED_EVENTS_SKIPPED = "ReplayedEventsSkipped"
    SETTLEMENT_RETRIES = "SettlementRetries"
    SCANNED_JOBS = "ScannedJobs"
    SCAN_SETTLEMENTS = "ScanSettlements"
    STUCK_JOBS = "StuckJobs"
    UNSETTLEABLE_JOBS = "UnsettleableJobs"
    SCAN_DEFERRED_JOBS = "ScanDeferredJobs"
    ALERTS_PUBLISHED = "AlertsPublished"
    ALERTS_GROUPED = "AlertsGrouped"
    ALERT_FAILURES = "AlertFailures"
    TRIAGE_FAILURES = "TriageFailures"
    # The hold function's: holds placed, and holds answered insufficient or refused.
    HOLDS_PLACED = "HoldsPlaced"
    HOLDS_REFUSED = "HoldsRefused"
    # The timer scan's: holds it released at their expiry (their jobs never settled in time).
    HOLDS_EXPIRED = "HoldsExpired"
    # The balance-events stream function's.
    BALANCE_EVENTS_PUBLISHED = "BalanceEventsPublished"
    BALANCE_EVENTS_ALREADY_PUBLISHED = "BalanceEventsAlreadyPublished"
    BALANCE_EVENT_FAILURES = "BalanceEventFailures"
    DAMAGED_BALANCE_RECORDS = "DamagedBalanceRecords"
    BAD_THRESHOLD_OVERRIDES = "BadThresholdOverrides"
    # Credits in (purchases, grants, revocations): applications, and the credits they added or took back.
    CREDITS_IN_APPLIED = "CreditsInApplied"
    CREDITS_ADDED = "CreditsAdded"
    CREDITS_REVOKED = "CreditsRevoked"
    # The balance-events function's check of every Credits change: changes of a posted balance no entry explains.
    UNEXPLAINED_BALANCE_CHANGES = "UnexplainedBalanceChanges"

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(value for key, value in vars(cls).items() if key.isupper())


# Balance events (docs/events.md): their EventBridge source and bus, and the stream function's environment
# (infra/constructs/balance_events.py sets exactly these, config.py BalanceEventsConfig reads them).
BALANCE_EVENT_SOURCE = "credits.reconciler"
DEFAULT_EVENT_BUS = "default"
BALANCE_EVENT_DETAIL_TYPES: tuple[str, ...] = ("credits.low", "credits.exhausted", "credits.overdrawn", "credits.restored")
# What the timer scan publishes (same source and bus) for each hold it released at its expiry (docs/schemas/).
HOLD_EXPIRED_DETAIL_TYPE = "credits.hold.expired"
# What the rule left of a purchase or a grant was removed at its expiry; and, the stage's lead time before, that it will
# expire (docs/ledger.md, "Credits that expire"; docs/schemas/).
CREDITS_EXPIRED_DETAIL_TYPE = "credits.expired"
CREDITS_EXPIRING_DETAIL_TYPE = "credits.expiring"
ENV_BALANCE_EVENTS_TABLE = "BALANCE_EVENTS_TABLE_NAME"
ENV_EVENT_SOURCE = "BALANCE_EVENT_SOURCE"
ENV_EVENT_BUS = "BALANCE_EVENT_BUS"
ENV_LOW_THRESHOLD = "LOW_BALANCE_THRESHOLD"
ENV_OVERDRAFT_ALERT_LEVEL = "OVERDRAFT_ALERT_LEVEL"
# The thresholds every stage deploys (infra/config.py BalanceEventSettings) unless a user's Credits item overrides them.
DEFAULT_LOW_BALANCE_THRESHOLD = 10
DEFAULT_OVERDRAFT_ALERT_LEVEL = 0


def usable_event_source(source: str) -> bool:
    """EventBridge's Source: 1 to 256 characters of these, and never "aws." (reserved for AWS services)."""
    return bool(re.fullmatch(r"[A-Za-z0-9._-]{1,256}", source)) and not source.lower().startswith("aws.")


# The function's environment: infra/constructs/reconciler_function.py sets exactly these, config.py reads them.
ENV_STAGE = "STAGE"
ENV_JOBS_TABLE = "JOBS_TABLE_NAME"
ENV_CREDITS_TABLE = "CREDITS_TABLE_NAME"
ENV_LEDGER_TABLE = "LEDGER_TABLE_NAME"
ENV_USER_LEDGER_TABLE = "USER_LEDGER_TABLE_NAME"
ENV_SETTLEMENTS_TABLE = "SETTLEMENTS_TABLE_NAME"
# Reservations on a Jobs item (reservedCredits, reservedAs) count only on jobs created before this moment: the
# stage's first deploy of settlement records (docs/pipeline.md). Later ones were written by another writer.
ENV_LEGACY_RESERVATIONS_BEFORE = "LEGACY_RESERVATIONS_BEFORE"
ENV_DLQ_URL = "DLQ_URL"
ENV_OPS_TOPIC_ARN = "OPS_TOPIC_ARN"
ENV_SHADOW_TABLE = "SHADOW_DECISIONS_TABLE_NAME"  # the deployed shadow's only writable table
ENV_OPENAI_SECRET_NAME = "OPENAI_SECRET_NAME"  # noqa: S105 - an environment variable's name
ENV_PRICE_OVERRIDES = "PRICE_OVERRIDES"
ENV_SCAN_GRACE_MINUTES = "SCAN_GRACE_MINUTES"
ENV_STUCK_JOB_HOURS = "STUCK_JOB_HOURS"
# A hold's expiry when the pipeline gives none, and the latest it may give (minutes from the hold).
ENV_HOLD_EXPIRY_MINUTES = "HOLD_EXPIRY_MINUTES"
ENV_HOLD_EXPIRY_MAX_MINUTES = "HOLD_EXPIRY_MAX_MINUTES"
ENV_TRIAGE_ENABLED = "TRIAGE_ENABLED"
# "false" drops the dimensionless (v1 runbook) copy of every metric for a stage (docs/metrics.md).
ENV_METRICS_DIMENSIONLESS = "METRICS_DIMENSIONLESS"


def writes_dimensionless(environment: Mapping[str, str]) -> bool:
    """Whether a function with this environment writes the dimensionless copy of its metrics (anything but "false")."""
    return environment.get(ENV_METRICS_DIMENSIONLESS, "true").strip().lower() != "false"


# Optional tuning of the notifier (docs/triage.md); the infrastructure sets none of them today, the defaults apply.
ENV_OPENAI_BASE_URL = "OPENAI_BASE_URL"
ENV_TRIAGE_MODEL = "TRIAGE_MODEL"
ENV_TRIAGE_TIMEOUT = "TRIAGE_TIMEOUT_SECONDS"
ENV_ALERT_WINDOW = "ALERT_WINDOW_SECONDS"
ENV_ALERT_MAX_PER_WINDOW = "ALERT_MAX_PER_WINDOW"

# The tables' contract: index names (infra/constructs/tables.py creates them); the attribute and key names are
# domain/attributes.py's, re-exported above.
LEDGER_BY_USER_INDEX = "userId-timestamp-index"
JOBS_UNSETTLED_INDEX = "unsettled-createdAt-index"


# Settlements-{stage}: the reconciler's record of each job's money (domain/records.py), keyed by jobId; only the
# reconciler writes it. A record holding an open hold carries holdUser (its user), which puts it in the sparse
# open-holds index (partition holdUser, sort heldAt): a user's open holds are one Query, all of them one Scan.
OPEN_HOLDS_INDEX = "open-holds-index"
# Ledger-{stage}: a purchase or a grant with an expiry carries expiryPending until its expiry is booked, which puts it in
# the sparse expiring-credits index (partition expiryPending, sort expiresAt): the timer scan's one Query for expiries
# and notices, whatever the size of the ledger.
EXPIRING_CREDITS_INDEX = "expiring-credits-index"


def user_ledger_key(timestamp: str, ledger_id: str) -> str:
    """UserLedger's sort key: time first, so a user's postings come back in time order; the ledger id makes it
    unique (two postings of one job share their timestamp)."""
    return f"{timestamp}#{ledger_id}"


# A dead letter as the function sends it (repository/sqs_dead_letters.py) and operators read it
# (ops/dead_letter_replay.py): the message attributes that say why the event was refused, and how a body that SQS
# would have refused was sent (a JSON string literal holding the original text exactly) or cut.
class DeadLetterAttribute:
    ERROR_TYPE = "errorType"
    FIELD = "field"
    REASON = "reason"
    STAGE = "stage"
    EVENT_ID = "eventId"
    BODY_ENCODING = "bodyEncoding"
    BODY_TRUNCATED = "bodyTruncated"


JSON_STRING_ENCODING = "json-string"

# The alarms of a stage, cc-reconciler-{concern}-{stage} (infra/constructs/alarms.py, in this order). The ops
# topic's and its key's policies admit CloudWatch for exactly these alarm ARNs; the CLI lists and silences them.
ALARM_PREFIX = "cc-reconciler-"
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
    # Where a message can still be lost or stuck on its way out: a failure record Lambda could not put in the DLQ,
    # events that left Lambda's async queue without a successful run, events waiting in that queue, and ops alerts
    # SNS could not deliver to a subscriber.
    "dlq-delivery-failures",
    "async-events-dropped",
    "async-event-age",
    "alert-dead-letters",
    "alert-dead-letters-age",
)
# The hold function's alarms (infra/constructs/hold_function.py, in this order); the ops topic admits them too.
HOLD_ALARM_CONCERNS: tuple[str, ...] = ("holds-errors", "holds-throttles")
# The balance-events function's alarms (infra/constructs/balance_events.py, in this order); the ops topic admits them too.
BALANCE_EVENT_ALARM_CONCERNS: tuple[str, ...] = (
    "balance-events-errors",
    "balance-events-iterator-age",
    "balance-events-failures",
    "balance-events-failed-batches",
    "balance-events-delivery-failures",
    "balance-events-failed-batches-age",
    "unexplained-balance-changes",
)


# Every alarm of a stage: the ops topic's and its key's policies admit exactly these, and each has a runbook line.
EVERY_ALARM_CONCERN: tuple[str, ...] = ALARM_CONCERNS + BALANCE_EVENT_ALARM_CONCERNS + HOLD_ALARM_CONCERNS
# The deployed shadow's alarm (infra/constructs/shadow.py, its own stack beside v1: docs/migration.md step 1b), on
# the same ops topic; the topic's and its key's policies admit it too, so it still pages once v2 adopts the topic.
SHADOW_ALARM_CONCERNS: tuple[str, ...] = ("shadow-dlq-depth",)
OPS_TOPIC_ALARM_CONCERNS: tuple[str, ...] = EVERY_ALARM_CONCERN + SHADOW_ALARM_CONCERNS


class ConfigError(ValueError):
    """The environment or the requested stage does not describe a usable reconciler."""


class UnknownStageError(ConfigError):
    """The requested stage has no configuration."""


def checked_stage(stage: str) -> str:
    if stage not in STAGES:
        raise UnknownStageError(f"unknown stage {stage!r}; valid stages: {', '.join(STAGES)}")
    return stage


@dataclass(frozen=True)
class StageLimits:
    # The function's reserved concurrency: infra deploys it, `reconciler resume` restores it.
    reserved_concurrency: int
    # `adjust` above this many credits (either sign) needs --yes-large or a typed confirmation.
    large_adjustment: int
    # The timer scan settles a job whose events are this late (minutes), and reports one unsettled this long (hours):
    # infra sets them in the function's environment, config.py reads them (these are also its defaults).
    scan_grace_minutes: int = 15
    stuck_job_hours: int = 6
    # A hold expires this long after it is made unless the pipeline asks otherwise (the longest render, 4 h, fits
    # with room to spare), and never later than the maximum; the timer scan then releases it (docs/contract.md).
    hold_expiry_minutes: int = 360
    hold_expiry_max_minutes: int = 1440
    # A purchase or a grant may expire (its `expiresAt`) at most this long after it comes in; `credits.expiring` is
    # published this long before a credit expires, once (docs/ledger.md, "Credits that expire").
    credit_expiry_max_days: int = 3 * 366
    credit_expiring_notice_hours: int = 72
    # Jobs created before this moment may carry a reservation made on their Jobs item by the v2 code that came
    # before settlement records (every stage that ran that code ran it before this release); later reservation
    # attributes on a Jobs item were written by another writer and count for nothing. None of v1's jobs has one.
    legacy_reservations_before: str = "2026-12-07T00:00:00.000Z"


STAGE_LIMITS: dict[str, StageLimits] = {
    "dev": StageLimits(reserved_concurrency=10, large_adjustment=100_000),
    "staging": StageLimits(reserved_concurrency=10, large_adjustment=100_000),
    "prod": StageLimits(reserved_concurrency=10, large_adjustment=10_000),
}


@dataclass(frozen=True)
class ResourceNames:
    """Physical names of a stage's resources; the v1 runbook, the runtime and the CLI rely on them."""

    stage: str

    def __post_init__(self) -> None:
        checked_stage(self.stage)

    @property
    def limits(self) -> StageLimits:
        return STAGE_LIMITS[self.stage]

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
    def app_stacks(self) -> tuple[str, str, str]:
        """The stacks the pipeline deploys, in order."""
        return self.data_stack, self.compute_stack, self.monitoring_stack

    @property
    def ci_stack(self) -> str:
        """The CI roles, deployed by an account admin, never by the pipeline (docs/infrastructure.md, "CI roles")."""
        return f"cc-reconciler-ci-{self.stage}"

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
    def user_ledger_table(self) -> str:
        return f"UserLedger-{self.stage}"

    @property
    def settlements_table(self) -> str:
        return f"Settlements-{self.stage}"

    @property
    def tables(self) -> tuple[str, ...]:
        """Every table of the stage (what `backup` covers): the books and the balance events' markers."""
        return self.jobs_table, self.credits_table, self.ledger_table, self.user_ledger_table, self.settlements_table, self.balance_events_table

    @property
    def dead_letter_queue(self) -> str:
        return f"cc-reconciler-dlq-{self.stage}"

    @property
    def ops_topic(self) -> str:
        return f"ops-alerts-{self.stage}"

    @property
    def alerts_dead_letter_queue(self) -> str:
        """Where SNS puts the ops alerts it could not deliver to a subscriber (the subscriptions' redrive policy)."""
        return f"cc-reconciler-alerts-dlq-{self.stage}"

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
    def credits_in_rule(self) -> str:
        """Purchases, grants and revocations (source credits.billing) to the function (docs/events.md, "Credits in")."""
        return f"cc-reconciler-credits-in-{self.stage}"

    @property
    def billing_policy(self) -> str:
        """What billing's (and support's) role may do: put the credits-in events, nothing else (docs/infrastructure.md)."""
        return f"cc-reconciler-billing-{self.stage}"

    @property
    def timer_scan_rule(self) -> str:
        return f"cc-reconciler-timer-scan-{self.stage}"

    @property
    def liability_snapshot_rule(self) -> str:
        """The schedule of the liability snapshot (the function's job LIABILITY_SNAPSHOT_JOB: docs/events.md)."""
        return f"cc-reconciler-liability-snapshot-{self.stage}"

    @property
    def event_archive(self) -> str:
        return f"cc-reconciler-archive-{self.stage}"

    @property
    def dashboard(self) -> str:
        return f"cc-reconciler-{self.stage}"

    def alarm(self, concern: str) -> str:
        return f"{ALARM_PREFIX}{concern}-{self.stage}"

    def is_alarm(self, alarm_name: str) -> bool:
        return alarm_name.startswith(ALARM_PREFIX) and alarm_name.endswith(f"-{self.stage}")

    @property
    def hold_function(self) -> str:
        """The hold API the pipeline invokes (docs/pipeline.md)."""
        return f"cc-reconciler-reserve-{self.stage}"

    @property
    def pipeline_policy(self) -> str:
        """What the pipeline's role may do to the reconciler's resources (docs/infrastructure.md)."""
        return f"cc-reconciler-pipeline-{self.stage}"

    @property
    def balance_events_table(self) -> str:
        return f"BalanceEvents-{self.stage}"

    @property
    def balance_events_function(self) -> str:
        return f"cc-reconciler-balance-events-{self.stage}"

    @property
    def balance_events_failure_queue(self) -> str:
        return f"cc-reconciler-balance-events-failures-{self.stage}"

    # The deployed shadow (`--context mode=shadow`, docs/migration.md step 1): beside v1, under names v1 does not use.
    @property
    def shadow_stack(self) -> str:
        return f"cc-reconciler-shadow-{self.stage}"

    @property
    def shadow_function(self) -> str:
        return f"cc-reconciler-shadow-{self.stage}"

    @property
    def shadow_table(self) -> str:
        return f"ShadowDecisions-{self.stage}"

    @property
    def shadow_dead_letter_queue(self) -> str:
        return f"cc-reconciler-shadow-dlq-{self.stage}"

    @property
    def shadow_rule(self) -> str:
        return f"cc-reconciler-shadow-events-{self.stage}"

    @property
    def operator_read_only_policy(self) -> str:
        return f"cc-reconciler-operator-read-only-{self.stage}"

    @property
    def operator_break_glass_policy(self) -> str:
        return f"cc-reconciler-operator-break-glass-{self.stage}"
