"""The deployed shadow's stack, `cc-reconciler-shadow-{stage}` (`--context mode=shadow`): deployed beside a live v1,
alone (none of v2's other stacks), and destroyed after the cutover (docs/migration.md step 1)."""

from __future__ import annotations

from aws_cdk import Stack
from constructs import Construct

from infra.config import StageConfig
from infra.constructs.shadow import DeployedShadow


class ShadowStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.shadow = DeployedShadow(self, "Shadow", config=config)
