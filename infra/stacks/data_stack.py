"""Stateful resources: the tables, the dead-letter queue and the ops topic.

Everything other stacks reference lives here, so this stack depends on none of them.
"""

from __future__ import annotations

from aws_cdk import Stack
from constructs import Construct

from infra.config import StageConfig
from infra.constructs.balance_events import BalanceEventsData
from infra.constructs.dead_letter_queue import DeadLetterQueue
from infra.constructs.ops_topic import OpsTopic
from infra.constructs.tables import ReconcilerTables


class DataStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.tables = ReconcilerTables(self, "Tables", config=config)
        self.dead_letter_queue = DeadLetterQueue(self, "DeadLetterQueue", config=config)
        self.ops_topic = OpsTopic(self, "OpsTopic", config=config)
        self.balance_events = BalanceEventsData(self, "BalanceEvents", config=config)
