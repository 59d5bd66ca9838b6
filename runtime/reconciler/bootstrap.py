"""The composition root: the one place that builds AWS clients, stores, services and the notifier.

The handlers, the timer scan, the CLI (through ops/target.py), the local stack, the simulator and the
benchmarks all get their objects from here; every other module receives what it needs as arguments.

What a Lambda container keeps between invocations (`default_session`, `event_processor`, `timer_scan`,
`balance_event_service`, `shared_notifier`) is cached here, and `reset_container()` forgets it (tests and the
local stack start a new "container").
Imports that only the timer scan, the notifier or the CLI need are made inside the functions that need them,
so the event path's cold start does not pay for them.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from reconciler.config import RuntimeConfig, load_config
from reconciler.contract import ResourceNames
from reconciler.domain.pricing import PriceBook
from reconciler.repository.dynamodb import DynamoDBStore
from reconciler.repository.sqs_dead_letters import SqsDeadLetters
from reconciler.service.event_settlement import EventProcessor, SettlementService
from reconciler.service.ports import DeadLetters

if TYPE_CHECKING:
    from reconciler.config import BalanceEventsConfig, ShadowConfig
    from reconciler.notify.notifier import Notifier
    from reconciler.repository.credits_in_store import CreditsInStore
    from reconciler.repository.dynamodb_operations import OperationsStore
    from reconciler.service.balance_changes import BalanceChangeService
    from reconciler.service.balance_event_publishing import BalanceEventService
    from reconciler.service.credits_application import CreditsInService
    from reconciler.service.liability_snapshot import LiabilitySnapshotJob
    from reconciler.service.ports import CreditsInStore as CreditsInPort
    from reconciler.service.ports import Publisher, SettlementStore, StreamChange
    from reconciler.service.reservations import ReservationService
    from reconciler.service.shadow_decisions import ShadowDecider
    from reconciler.service.timer_scan import TimerScan

    # mypy (make gate) holds the AWS adapters to the ports' Protocols; tests/port_conformance.py does the fakes.
    def _adapters_implement_the_ports(store: DynamoDBStore, letters: SqsDeadLetters) -> tuple[SettlementStore, DeadLetters]:
        return store, letters

    def _credits_in_adapter_implements_its_port(store: CreditsInStore) -> CreditsInPort:
        return store


# Short timeouts: a hung call must fail fast enough for our own retries inside the 30 s Lambda timeout.
# botocore's standard mode retries throttling and 5xx; the service layer retries conflicts on top.
CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}, tcp_keepalive=True)
# Tighter for alerts and the triage secret: they are worth less than the invocation's time.
ALERT_CLIENT_CONFIG = Config(connect_timeout=1, read_timeout=3, retries={"mode": "standard", "max_attempts": 2})
SECRET_CLIENT_CONFIG = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 2})


# --- clients ---------------------------------------------------------------------------------------


def aws_session(
    *, profile: str | None = None, region: str | None = None, credentials: Mapping[str, str] | None = None, botocore_session: Any = None
) -> Any:
    """A boto3 session: the standard credential chain, a named profile, or explicit (local stack) credentials."""
    if credentials is not None:
        return boto3.session.Session(
            aws_access_key_id=credentials["aws_access_key_id"],
            aws_secret_access_key=credentials["aws_secret_access_key"],
            region_name=region,
            botocore_session=botocore_session,
        )
    return boto3.session.Session(profile_name=profile, region_name=region)


# Sessions are not thread-safe, clients are. The handlers run on the container's one thread, but a triage note
# makes its Secrets Manager client on its own thread, which can still be at it when the alert's SNS client is made
# (the note timed out): clients of the shared session are made one at a time.
_DEFAULT_SESSION_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def default_session() -> boto3.session.Session:
    """The container's one Session: each Session loads and keeps its own copy of botocore's data (endpoints,
    partitions, models), so one per client cost a cold invocation about 8 MB of peak memory.

    Its clients still read the region and AWS_ENDPOINT_URL from the environment when each is made; the credentials
    (and a profile or config file) are resolved once per Session, as for a client kept by the container. Changed
    credentials need reset_container(), as a new container does."""
    return boto3.session.Session()


def aws_client(service: str, *, session: Any = None, endpoint_url: str | None = None, config: Config = CLIENT_CONFIG) -> Any:
    """A client for `service`, of `session` or of the container's default session; AWS_ENDPOINT_URL (the local
    stack) and the credential chain apply as usual."""
    if session is not None:
        return session.client(service, endpoint_url=endpoint_url, config=config)
    with _DEFAULT_SESSION_LOCK:
        shared: Any = default_session()  # Any: the stubs type a client only for a literal service name
        return shared.client(service, endpoint_url=endpoint_url, config=config)


def alert_sns_client() -> Any:
    return aws_client("sns", config=ALERT_CLIENT_CONFIG)


def secrets_provider() -> Any:
    # Powertools parameters (and its client) are loaded on the first triage note only.
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto3_client=aws_client("secretsmanager", config=SECRET_CLIENT_CONFIG))


# --- stores and use cases ---------------------------------------------------------------------------


def settlement_store(config: RuntimeConfig, dynamodb: Any = None) -> DynamoDBStore:
    return DynamoDBStore(dynamodb or aws_client("dynamodb"), config)


def operations_store(config: RuntimeConfig, dynamodb: Any = None) -> OperationsStore:
    """The CLI's whole-table reads and repairs (audit, ledger scans, corrections): never on the event path."""
    from reconciler.repository.dynamodb_operations import OperationsStore

    return OperationsStore(dynamodb or aws_client("dynamodb"), config)


def settlement_service(store: Any, config: RuntimeConfig, **options: Any) -> SettlementService:
    """Settlement with the stage's prices; `options` (backoff) for tests that must not sleep."""
    return SettlementService(store, PriceBook.with_overrides(config.price_overrides), legacy_before=config.legacy_reservations_before, **options)


def build_processor(
    config: RuntimeConfig, dynamodb: Any = None, sqs: Any = None, dead_letters: DeadLetters | None = None, **options: Any
) -> EventProcessor:
    settlement = settlement_service(settlement_store(config, dynamodb), config, **options)
    return EventProcessor(settlement, dead_letters or SqsDeadLetters(sqs or aws_client("sqs"), config.dlq_url, config.stage))


def build_credits_in_service(
    config: RuntimeConfig, dynamodb: Any = None, sqs: Any = None, dead_letters: DeadLetters | None = None, **options: Any
) -> CreditsInService:
    """Purchases, grants and revocations (source credits.billing): their own store, the function's DLQ."""
    from reconciler.repository.credits_in_store import CreditsInStore
    from reconciler.service.credits_application import CreditsInService

    store = CreditsInStore(dynamodb or aws_client("dynamodb"), config)
    options.setdefault("max_expiry", timedelta(days=ResourceNames(config.stage).limits.credit_expiry_max_days))
    return CreditsInService(store, dead_letters or SqsDeadLetters(sqs or aws_client("sqs"), config.dlq_url, config.stage), **options)


def build_timer_scan(store: Any, config: RuntimeConfig, publisher: Publisher | None = None) -> TimerScan:
    """The timer scan with the function's prices, grace and stuck thresholds; with a `publisher` (the scheduled
    function's EventBridge), it also releases expired holds and announces each. The operators' `reconciler scan`
    passes none: expiry is the function's alone, so no expired hold goes unannounced. The same goes for credits'
    expiries and notices (a store beside `store`, on its client and tables)."""
    from reconciler.repository.credit_expiry_store import CreditExpiryStore
    from reconciler.service.credit_expiry import CreditExpiryService
    from reconciler.service.hold_expiry import HoldExpiryService
    from reconciler.service.timer_scan import TimerScan

    lead = timedelta(hours=ResourceNames(config.stage).limits.credit_expiring_notice_hours)
    credits = None if publisher is None else CreditExpiryService(CreditExpiryStore(store.client, store.config), publisher, notice_lead=lead)
    return TimerScan(
        store,
        settlement_service(store, config),
        grace=timedelta(minutes=config.scan_grace_minutes),
        stuck_after=timedelta(hours=config.stuck_job_hours),
        expiry=None if publisher is None else HoldExpiryService(store, publisher=publisher),
        credit_expiry=credits,
    )


def build_reservations(store: Any, config: RuntimeConfig) -> ReservationService:
    from reconciler.domain.holds import HoldExpiry
    from reconciler.service.reservations import ReservationService

    expiry = HoldExpiry(timedelta(minutes=config.hold_expiry_minutes), timedelta(minutes=config.hold_expiry_max_minutes))
    return ReservationService(store, PriceBook.with_overrides(config.price_overrides), legacy_before=config.legacy_reservations_before, expiry=expiry)


def hold_expiry_publisher(events: Any = None) -> Publisher:
    """`credits.hold.expired` on the default bus, under the balance events' source (docs/events.md)."""
    from reconciler.contract import BALANCE_EVENT_SOURCE, DEFAULT_EVENT_BUS
    from reconciler.repository.balance_event_store import EventBridgePublisher

    return EventBridgePublisher(events or aws_client("events"), BALANCE_EVENT_SOURCE, DEFAULT_EVENT_BUS)


@lru_cache(maxsize=1)
def hold_service() -> ReservationService:
    """The hold function's use case, kept by its container (handlers/hold_api.py)."""
    config = load_config()
    return build_reservations(settlement_store(config), config)


def stream_change(raw_record: dict[str, Any]) -> StreamChange:
    """One Credits stream record as the balance-events service reads it (the stream adapter decodes it)."""
    from reconciler.repository.balance_event_store import decode_stream_record

    return decode_stream_record(raw_record)


def build_balance_event_service(config: BalanceEventsConfig, dynamodb: Any = None, events: Any = None) -> BalanceEventService:
    """The balance-events stream function's use case, with its EventBridge, BalanceEvents and ledger adapters."""
    from reconciler.repository.balance_event_store import BalanceEventLog, EventBridgePublisher, LedgerLookup
    from reconciler.service.balance_event_publishing import BalanceEventService

    dynamodb = dynamodb or aws_client("dynamodb")
    return BalanceEventService(
        defaults=config.thresholds,
        publisher=EventBridgePublisher(events or aws_client("events"), config.event_source, config.event_bus),
        log=BalanceEventLog(dynamodb, config.balance_events_table),
        ledger=LedgerLookup(dynamodb, config.ledger_table, config.user_ledger_table),
    )


def build_shadow_decider(config: ShadowConfig, dynamodb: Any = None) -> ShadowDecider:
    """The deployed shadow (docs/migration.md step 1): v2's settlement service on the CLI's `shadow decide` store (the
    live tables' reads, its writes captured), each decision recorded in the shadow's own table."""
    from reconciler.repository.shadow_log import DynamoDBShadowLog
    from reconciler.service.shadow_decisions import ShadowDecider

    dynamodb = dynamodb or aws_client("dynamodb")
    runtime = config.runtime
    log = DynamoDBShadowLog(dynamodb, config.decisions_table)
    return ShadowDecider(settlement_store(runtime, dynamodb), lambda store: settlement_service(store, runtime), log)


def build_balance_change_service() -> BalanceChangeService:
    """The stream function's other use case: every balance change explained, from the record alone (no AWS call)."""
    from reconciler.service.balance_changes import BalanceChangeService

    return BalanceChangeService()


def build_notifier(config: RuntimeConfig, **overrides: Any) -> Notifier:
    """The notifier a handler uses, tuned by its configuration (config.notifier); triage only when the stage enables it."""
    from reconciler.notify.grouping import DEFAULT_MAX_PER_WINDOW, DEFAULT_WINDOW_SECONDS, GroupingWindow
    from reconciler.notify.notifier import Notifier

    tuning = config.notifier
    triage_factory = None
    if config.triage_enabled:

        def triage_factory() -> Any:
            from reconciler.notify.triage import DEFAULT_BASE_URL, DEFAULT_MODEL, DEFAULT_TIMEOUT_SECONDS, Triage

            return Triage(
                secret_name=config.openai_secret_name,
                base_url=tuning.openai_base_url or DEFAULT_BASE_URL,
                model=tuning.triage_model or DEFAULT_MODEL,
                timeout=tuning.triage_timeout_seconds or DEFAULT_TIMEOUT_SECONDS,
                provider_factory=secrets_provider,
            )

    options: dict[str, Any] = dict(
        sns_factory=alert_sns_client,
        grouping=GroupingWindow(
            window_seconds=tuning.alert_window_seconds or DEFAULT_WINDOW_SECONDS,
            max_per_window=tuning.alert_max_per_window or DEFAULT_MAX_PER_WINDOW,
        ),
        triage_factory=triage_factory,
        prices=PriceBook.with_overrides(config.price_overrides),
    )
    options.update(overrides)
    return Notifier(config.stage, config.ops_topic_arn, **options)


# --- what a Lambda container keeps ------------------------------------------------------------------


@lru_cache(maxsize=1)
def event_processor() -> EventProcessor:
    return build_processor(load_config())


@lru_cache(maxsize=1)
def credits_in_service() -> CreditsInService:
    return build_credits_in_service(load_config())


@lru_cache(maxsize=1)
def timer_scan() -> TimerScan:
    return build_timer_scan(event_processor().settlement.store, load_config(), hold_expiry_publisher())


def build_liability_snapshot_job(config: RuntimeConfig, dynamodb: Any = None) -> LiabilitySnapshotJob:
    """The scheduled liability snapshot: Credits scanned, the totals put in BalanceEvents (config.balance_events_table)."""
    from reconciler.config import ConfigError
    from reconciler.contract import ENV_BALANCE_EVENTS_TABLE
    from reconciler.domain.ledger import iso_timestamp
    from reconciler.repository.liability_store import LiabilitySnapshotTable
    from reconciler.service.liability_snapshot import LiabilitySnapshotJob

    if not config.balance_events_table:
        raise ConfigError(f"the liability snapshot needs {ENV_BALANCE_EVENTS_TABLE}")
    store = LiabilitySnapshotTable(dynamodb or aws_client("dynamodb"), config.credits_table, config.balance_events_table)
    return LiabilitySnapshotJob(store, iso_timestamp)


@lru_cache(maxsize=1)
def liability_snapshot_job() -> LiabilitySnapshotJob:
    return build_liability_snapshot_job(load_config())


@lru_cache(maxsize=1)
def balance_event_service() -> BalanceEventService:
    from reconciler.config import load_balance_config

    return build_balance_event_service(load_balance_config())


@lru_cache(maxsize=1)
def shadow_decider() -> ShadowDecider:
    from reconciler.config import load_shadow_config

    return build_shadow_decider(load_shadow_config())


@lru_cache(maxsize=1)
def balance_change_service() -> BalanceChangeService:
    return build_balance_change_service()


@lru_cache(maxsize=1)
def stream_notifier() -> Notifier | None:
    """The stream function's notifier (unexplained balance changes), or None where it has no ops topic."""
    from reconciler.config import load_balance_config
    from reconciler.notify.notifier import Notifier

    config = load_balance_config()
    return Notifier(config.stage, config.ops_topic_arn, sns_factory=alert_sns_client) if config.ops_topic_arn else None


@lru_cache(maxsize=1)
def shared_notifier() -> Notifier:
    """The container's notifier (its grouping state lives as long as the container); built on first alert."""
    return build_notifier(load_config())


def flush_due() -> None:
    """Sends held-back counts whose window ended, if this container has a notifier; never builds one."""
    if shared_notifier.cache_info().currsize:
        shared_notifier().flush()


def reset_container() -> None:
    """Forgets everything a container keeps, configuration included (a new Lambda container)."""
    from reconciler.config import load_balance_config, load_shadow_config

    caches: tuple[Any, ...] = (  # typed: mypy cannot join this many lru_cache wrappers
        load_config,
        load_balance_config,
        load_shadow_config,
        shadow_decider,
        default_session,
        event_processor,
        credits_in_service,
        timer_scan,
        balance_event_service,
        balance_change_service,
        liability_snapshot_job,
        stream_notifier,
        shared_notifier,
        hold_service,
    )
    for cached in caches:
        cached.cache_clear()
