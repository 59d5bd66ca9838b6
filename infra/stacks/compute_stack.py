"""The reconciler function, the rules, schedule and archive around it, the hold function, and the operators' and
the pipeline's managed policies."""

from __future__ import annotations

from aws_cdk import Stack
from constructs import Construct

from infra.config import StageConfig
from infra.constructs.balance_events import BalanceEventsFunction
from infra.constructs.credits_in import BillingAccess, CreditsInRule
from infra.constructs.event_schemas import EventSchemas
from infra.constructs.hold_function import HoldFunction, PipelineAccess
from infra.constructs.liability_snapshot import LiabilitySnapshot
from infra.constructs.operator_access import OperatorAccess
from infra.constructs.reconciler_function import ReconcilerFunction, function_environment
from infra.stacks.data_stack import DataStack


class ComputeStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, data: DataStack, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.reconciler = ReconcilerFunction(
            self,
            "Reconciler",
            config=config,
            tables=data.tables,
            dead_letter_queue=data.dead_letter_queue.queue,
            ops_topic=data.ops_topic.topic,
        )
        self.liability_snapshot = LiabilitySnapshot(
            self,
            "LiabilitySnapshot",
            config=config,
            function=self.reconciler.function,
            role=self.reconciler.role,
            credits=data.tables.credits,
            balance_events=data.balance_events.table,
        )
        environment = function_environment(config, data.tables, data.dead_letter_queue.queue, data.ops_topic.topic)
        self.holds = HoldFunction(self, "Holds", config=config, tables=data.tables, environment=environment)
        self.pipeline_access = PipelineAccess(self, "PipelineAccess", config=config, tables=data.tables, hold_function=self.holds.function)
        self.credits_in = CreditsInRule(
            self, "CreditsIn", config=config, function=self.reconciler.function, dead_letter_queue=data.dead_letter_queue.queue
        )
        self.billing_access = BillingAccess(self, "BillingAccess", config=config)
        self.event_schemas = EventSchemas(self, "EventSchemas", config=config)
        self.balance_events = BalanceEventsFunction(
            self, "BalanceEvents", config=config, tables=data.tables, data=data.balance_events, ops_topic=data.ops_topic.topic
        )
        self.operator_access = OperatorAccess(
            self,
            "OperatorAccess",
            config=config,
            tables=data.tables,
            dead_letter_queue=data.dead_letter_queue.queue,
            function=self.reconciler.function,
            log_group=self.reconciler.log_group,
        )
