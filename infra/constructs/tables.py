"""The reconciler's DynamoDB tables and the indexes the runtime queries."""

from __future__ import annotations

from aws_cdk import CrossStackReferences, ReferenceStrength
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.config import StageConfig
from reconciler.contract import (
    CREATED_AT_ATTRIBUTE,
    CREDIT_EXPIRES_AT_ATTRIBUTE,
    EXPIRING_CREDITS_INDEX,
    EXPIRY_PENDING_ATTRIBUTE,
    HELD_AT_ATTRIBUTE,
    HOLD_USER_ATTRIBUTE,
    JOB_ID_ATTRIBUTE,
    JOBS_UNSETTLED_INDEX,
    LEDGER_BY_USER_INDEX,
    LEDGER_ID_ATTRIBUTE,
    OPEN_HOLDS_INDEX,
    TIMESTAMP_ATTRIBUTE,
    UNSETTLED_ATTRIBUTE,
    USER_ID_ATTRIBUTE,
    USER_LEDGER_SORT_KEY,
)


class ReconcilerTables(Construct):
    """Jobs, Credits, Ledger, UserLedger and Settlements, with the stage's durability settings."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        names = config.names

        self.jobs = self._table("Jobs", names.jobs_table, partition_key=JOB_ID_ATTRIBUTE)
        # Sparse: only unsettled jobs carry the attribute, so the timer scan reads
        # the unsettled jobs rather than the whole table.
        self.jobs.add_global_secondary_index(
            index_name=JOBS_UNSETTLED_INDEX,
            partition_key=dynamodb.Attribute(name=UNSETTLED_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=CREATED_AT_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )

        # The stream feeds the balance-events function (infra/constructs/balance_events.py); enabling it is an
        # in-place update of the table (no replacement), and settlement writes nothing more for it.
        self.credits = self._table("Credits", names.credits_table, partition_key=USER_ID_ATTRIBUTE, stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES)
        # Decided before the first deploy (docs/infrastructure.md, "Cross-stack references"): strong, whatever the app's
        # default becomes. The stream mapping in compute imports the stream ARN, so a data deploy that would replace
        # the stream fails loudly instead of leaving the mapping on a disabled stream (a weak reference is re-read only
        # when compute's template changes, and the CLI skips an unchanged stack).
        CrossStackReferences.of(self.credits).produce(ReferenceStrength.STRONG)

        self.ledger = self._table("Ledger", names.ledger_table, partition_key=LEDGER_ID_ATTRIBUTE)
        self.ledger.add_global_secondary_index(
            index_name=LEDGER_BY_USER_INDEX,
            partition_key=dynamodb.Attribute(name=USER_ID_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=TIMESTAMP_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        # Sparse: only a purchase or a grant whose expiry is not booked yet carries expiryPending, so the timer scan's
        # expiries and notices are one Query (docs/ledger.md, "Credits that expire"); +1 WRU per credit with an expiry.
        self.ledger.add_global_secondary_index(
            index_name=EXPIRING_CREDITS_INDEX,
            partition_key=dynamodb.Attribute(name=EXPIRY_PENDING_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=CREDIT_EXPIRES_AT_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        # The job postings, keyed by user and time: a user's history is a Query of the table, and a posting writes
        # no index (docs/ledger.md). Ledger keeps the operators' entries (adjustments, audit corrections) and every
        # entry written before UserLedger existed; readers merge the two.
        self.user_ledger = self._table("UserLedger", names.user_ledger_table, partition_key=USER_ID_ATTRIBUTE, sort_key=USER_LEDGER_SORT_KEY)
        # The reconciler's own record of each job's money, its hold and its settlement (domain/records.py): the proof
        # of settlement lives where only the reconciler writes, whatever the pipeline writes to its Jobs item.
        self.settlements = self._table("Settlements", names.settlements_table, partition_key=JOB_ID_ATTRIBUTE)
        # Sparse: only a record with an open hold carries holdUser, so a user's open holds are one Query (the audit)
        # and all of them one Scan of the index, whatever the number of jobs ever settled.
        self.settlements.add_global_secondary_index(
            index_name=OPEN_HOLDS_INDEX,
            partition_key=dynamodb.Attribute(name=HOLD_USER_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=HELD_AT_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )

    @property
    def all(self) -> tuple[dynamodb.Table, ...]:
        return (self.jobs, self.credits, self.ledger, self.user_ledger, self.settlements)

    def _table(
        self,
        construct_id: str,
        table_name: str,
        *,
        partition_key: str,
        sort_key: str | None = None,
        stream: dynamodb.StreamViewType | None = None,
    ) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            construct_id,
            table_name=table_name,
            partition_key=dynamodb.Attribute(name=partition_key, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=sort_key, type=dynamodb.AttributeType.STRING) if sort_key else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=self._config.point_in_time_recovery,
            ),
            deletion_protection=self._config.deletion_protection,
            removal_policy=self._config.removal_policy,
            stream=stream,
        )
