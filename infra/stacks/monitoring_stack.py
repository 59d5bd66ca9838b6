"""Alarms and the dashboard; they watch the other two stacks and nothing depends on them."""

from __future__ import annotations

from aws_cdk import Stack
from constructs import Construct

from infra.config import StageConfig
from infra.constructs.alarms import ReconcilerAlarms
from infra.constructs.balance_events import BalanceEventsAlarms
from infra.constructs.dashboard import ReconcilerDashboard
from infra.constructs.hold_function import HoldAlarms
from infra.stacks.compute_stack import ComputeStack
from infra.stacks.data_stack import DataStack


class MonitoringStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, data: DataStack, compute: ComputeStack, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        function = compute.reconciler.function
        dead_letter_queue = data.dead_letter_queue.queue
        self.alarms = ReconcilerAlarms(
            self,
            "Alarms",
            config=config,
            function=function,
            dead_letter_queue=dead_letter_queue,
            ops_topic=data.ops_topic.topic,
            tables=data.tables.all,
            events_rule=compute.reconciler.events_rule,
            alert_dead_letter_queue=data.ops_topic.dead_letter_queue,
        )
        self.balance_event_alarms = BalanceEventsAlarms(
            self,
            "BalanceEventsAlarms",
            config=config,
            function=compute.balance_events.function,
            failure_queue=data.balance_events.failure_queue,
            ops_topic=data.ops_topic.topic,
        )
        self.hold_alarms = HoldAlarms(self, "HoldAlarms", config=config, function=compute.holds.function, ops_topic=data.ops_topic.topic)
        self.dashboard = ReconcilerDashboard(
            self,
            "Dashboard",
            config=config,
            function=function,
            dead_letter_queue=dead_letter_queue,
            alarms=[*self.alarms.all, *self.balance_event_alarms.all, *self.hold_alarms.all],
            tables=data.tables.all,
            events_rule=compute.reconciler.events_rule,
            balance_events_function=compute.balance_events.function,
            balance_events_failure_queue=data.balance_events.failure_queue,
            alert_dead_letter_queue=data.ops_topic.dead_letter_queue,
        )
