"""Least-privilege managed policies for the people who run the `reconciler` CLI against a stage.

Two variants, attached by the account's admins to an on-call role or group (docs/infrastructure.md):

- read-only: every inspecting command (`balance`, `ledger`, `job show`, `audit` without --fix, `dlq list|show`,
  `alarms status|history`, `metrics`, `logs tail`, and the --dry-run of `scan`, `pause`, `resume`, `events replay`);
- break-glass: read-only plus every writing command (`adjust`, `audit --fix`, `scan`, `dlq replay|delete|purge`,
  `alarms enable|disable`, `pause`, `resume`, `events replay` and the `aws events describe-replay` it prints, `backup`).

The statements are exactly what `reconciler.cli`/`reconciler.ops` call (tests/least_privilege records the CLI's
calls across the test suite and fails if a call is not allowed, or a grant is never used). `sts:GetCallerIdentity`
(who is acting, written on every manual ledger entry) needs no permission.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Acknowledgment, ArnFormat, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import StageConfig
from infra.constructs.tables import ReconcilerTables
from reconciler import contract


@dataclass(frozen=True)
class Grant:
    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: dict | None = None


class OperatorAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        tables: ReconcilerTables,
        dead_letter_queue: sqs.IQueue,
        function: lambda_.IFunction,
        log_group: logs.ILogGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        names = config.names
        jobs, credits, ledger = tables.jobs.table_arn, tables.credits.table_arn, tables.ledger.table_arn
        user_ledger, settlements = tables.user_ledger.table_arn, tables.settlements.table_arn
        balance_events = stack.format_arn(service="dynamodb", resource="table", resource_name=names.balance_events_table)
        shadow_decisions = stack.format_arn(service="dynamodb", resource="table", resource_name=names.shadow_table)
        ledger_by_user = f"{ledger}/index/{contract.LEDGER_BY_USER_INDEX}"
        open_holds = f"{settlements}/index/{contract.OPEN_HOLDS_INDEX}"
        jobs_unsettled = f"{jobs}/index/{contract.JOBS_UNSETTLED_INDEX}"
        # `alarms disable|enable` acts on every cc-reconciler-*-{stage} alarm the CLI finds (its own filter).
        alarms = stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=names.alarm("*"),
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        archive = stack.format_arn(service="events", resource="archive", resource_name=names.event_archive)
        # `events replay` names its replays cc-reconciler-{stage}-{time} (reconciler.ops.control.replay_name).
        replays = stack.format_arn(service="events", resource="replay", resource_name=f"cc-reconciler-{config.stage}-*")
        rule = stack.format_arn(service="events", resource="rule", resource_name=names.events_rule)

        read_only = (
            # balance, audit (and adjust/audit --fix read the balance first); scan and job show read the job and
            # its settlement record; adjust and job show look Ledger entries up by id.
            Grant("ReadItems", ("dynamodb:GetItem",), (credits, jobs, ledger, settlements)),
            # ledger USER, audit USER, job show: one user's history, never a scan: a Query of the user's UserLedger
            # postings (job show: those at the job's settledAt) and of Ledger's by-user index.
            Grant("ReadLedgerByUser", ("dynamodb:Query",), (user_ledger, ledger_by_user)),
            # audit and ledger --all: scans of balances and both ledgers; migrate: of the Jobs v1 left (docs/migration.md).
            Grant("AuditScan", ("dynamodb:Scan",), (credits, ledger, user_ledger, jobs)),
            # shadow report --deployed: the deployed shadow's decisions (its own stack's table, by name: docs/migration.md).
            Grant("ReadShadowDecisions", ("dynamodb:Scan",), (shadow_decisions,)),
            # scan --dry-run: the timer scan's sparse-index query; audit: holds made on Jobs items before records.
            Grant("ReadUnsettledJobs", ("dynamodb:Query",), (jobs_unsettled,)),
            # audit: the open holds of one user (a Query) or of all (a Scan) in the settlement records' sparse index.
            Grant("ReadOpenHolds", ("dynamodb:Query", "dynamodb:Scan"), (open_holds,)),
            # dlq list/show: receive, then release at once (visibility 0); the queue URL and its depth.
            Grant(
                "PeekDeadLetters",
                ("sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"),
                (dead_letter_queue.queue_arn,),
            ),
            # scan, dlq replay: the function's configuration (prices, scan timings) as deployed, and whether it is paused;
            # pause/resume: its state before changing it.
            Grant(
                "ReadFunction",
                ("lambda:GetFunctionConfiguration", "lambda:GetFunctionConcurrency", "lambda:GetFunctionEventInvokeConfig"),
                (function.function_arn,),
            ),
            # events replay: the archive and the rule the replay is filtered to.
            Grant("ReadArchive", ("events:DescribeArchive",), (archive,)),
            Grant("ReadRule", ("events:DescribeRule",), (rule,)),
            # alarms status / history: listing calls over every alarm (the CLI keeps this stage's); metrics: the
            # runbook's numbers. None of the three has resource-level permissions.
            Grant(
                "ReadAlarmsAndMetrics",
                ("cloudwatch:DescribeAlarms", "cloudwatch:DescribeAlarmHistory", "cloudwatch:GetMetricStatistics"),
                ("*",),
            ),
            # balance-events USER: one user's recent balance events (one Query of BalanceEvents-{stage}); liability: the
            # snapshot the function's schedule writes there (one GetItem).
            Grant(
                "ReadBalanceEvents",
                ("dynamodb:Query", "dynamodb:GetItem"),
                (balance_events,),
            ),
            # logs tail: the function's own log group.
            Grant("ReadFunctionLogs", ("logs:FilterLogEvents",), (log_group.log_group_arn,)),
        )
        break_glass = (
            *read_only,
            # adjust, audit --fix, scan: balance and its ledger entry in one transaction; scan settles jobs.
            Grant("WriteBalances", ("dynamodb:UpdateItem",), (credits,)),
            # Append-only for people too: new entries (and, in adjust, a check that the v1-style id of the same
            # reference is not taken), never an update or delete of an entry. Operators' entries go to Ledger;
            # the scan's settlements post to UserLedger, as the function's do.
            Grant("AppendLedger", ("dynamodb:PutItem", "dynamodb:ConditionCheckItem"), (ledger,)),
            Grant("AppendUserLedger", ("dynamodb:PutItem",), (user_ledger,)),
            # scan: a settlement mirrors itself onto the Jobs item, or writes a lost mirror back; never a whole item.
            Grant("SettleJobs", ("dynamodb:UpdateItem",), (jobs,)),
            # scan: a settlement's record (created, or a hold's record settled).
            Grant("RecordSettlements", ("dynamodb:PutItem", "dynamodb:UpdateItem"), (settlements,)),
            # backup: on-demand backups of every table of the stage (ResourceNames.tables), the balance events' markers too.
            Grant("BackUpTables", ("dynamodb:CreateBackup",), (jobs, credits, ledger, user_ledger, settlements, balance_events)),
            # dlq replay (a message is deleted only once the function settled it), dlq delete, dlq purge.
            Grant("DrainDeadLetters", ("sqs:DeleteMessage", "sqs:PurgeQueue"), (dead_letter_queue.queue_arn,)),
            # dlq replay (the deployed function), pause and resume.
            Grant("ReplayAndPause", ("lambda:InvokeFunction", "lambda:PutFunctionConcurrency"), (function.function_arn,)),
            # alarms enable/disable (maintenance).
            Grant("AlarmActions", ("cloudwatch:EnableAlarmActions", "cloudwatch:DisableAlarmActions"), (alarms,)),
            # events replay: from the stage's archive; then the `aws events describe-replay` it prints to watch it.
            Grant("ReplayArchive", ("events:StartReplay",), (archive,)),
            Grant("WatchReplay", ("events:DescribeReplay",), (replays,)),
            # adjust, audit --fix, scan: what they change counts in the function's Adjustments metric (v1's rate alarm).
            # PutMetricData has no resource-level permissions; its one condition key keeps it to the Reconciler namespace.
            Grant(
                "CountAdjustments",
                ("cloudwatch:PutMetricData",),
                ("*",),
                {"StringEquals": {"cloudwatch:namespace": contract.METRICS_NAMESPACE}},
            ),
        )
        self.read_only = self._policy("ReadOnly", names.operator_read_only_policy, read_only, "read-only", config)
        self.break_glass = self._policy("BreakGlass", names.operator_break_glass_policy, break_glass, "break-glass", config)
        unscoped = (
            "cloudwatch:DescribeAlarms, DescribeAlarmHistory and GetMetricStatistics, used without resource-level permissions "
            "(the CLI filters alarms to this stage's)"
        )
        Validations.of(self.read_only).acknowledge(
            Acknowledgment(id="AwsSolutions::AwsSolutions-IAM5[Resource::*]", reason=f"ReadAlarmsAndMetrics: {unscoped}.")
        )
        Validations.of(self.break_glass).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                reason=f"ReadAlarmsAndMetrics, CountAdjustments: {unscoped}; cloudwatch:PutMetricData, which has none either, "
                "held to the Reconciler namespace by its condition.",
            )
        )
        # Each acknowledgement names the one statement it excuses (tests/infra/test_infra_compliance.py).
        Validations.of(self.break_glass).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:cloudwatch:{config.region}:"
                f"{config.account}:alarm:{names.alarm('*')}]",
                reason="AlarmActions: alarm actions on every alarm of this stage (cc-reconciler-*-{stage}), the set the CLI's "
                "`alarms disable|enable` acts on.",
            ),
            Acknowledgment(
                id=f"AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:events:{config.region}:{config.account}:replay/"
                f"cc-reconciler-{config.stage}-*]",
                reason="WatchReplay: events:DescribeReplay on the replays `events replay` starts, each named cc-reconciler-{stage}-{time}.",
            ),
        )

    def _policy(self, construct_id: str, name: str, grants: tuple[Grant, ...], variant: str, config: StageConfig) -> iam.ManagedPolicy:
        return iam.ManagedPolicy(
            self,
            construct_id,
            managed_policy_name=name,
            description=f"Operators of the credit reconciler ({config.stage}), {variant}: the reconciler CLI's calls only",
            statements=[
                iam.PolicyStatement(sid=grant.sid, actions=list(grant.actions), resources=list(grant.resources), conditions=grant.conditions)
                for grant in grants
            ],
        )
