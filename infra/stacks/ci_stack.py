"""The CI roles of one stage's account: deployed by an account admin (`python -m infra.ci_app`), never by the
pipeline, whose roles they are (docs/infrastructure.md, "CI roles")."""

from __future__ import annotations

from aws_cdk import Stack
from constructs import Construct

from infra.config import StageConfig
from infra.constructs.ci_access import CiAccess


class CiStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.access = CiAccess(self, "CiAccess", config=config)
