"""The runbook's resource names and the CLI's per-stage limits (a contract; tests compare them with infra/config.py).

Kept here rather than imported from infra: `infra` is not packaged (the installed CLI cannot import it) and
it loads aws-cdk. tests/ops/test_names_and_controls.py checks every value against infra/config.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.config import STAGES, RuntimeConfig

ALARM_PREFIX = "cc-reconciler-"
METRICS_NAMESPACE = "Reconciler"
SERVICE_DIMENSION = {"Name": "service", "Value": "credit-reconciler"}


@dataclass(frozen=True)
class StageLimits:
    # The function's reserved concurrency as deployed (`resume` restores it); infra/config.py's value.
    reserved_concurrency: int
    # `adjust` above this many credits (either sign) needs --yes-large or a typed confirmation.
    large_adjustment: int


STAGE_LIMITS: dict[str, StageLimits] = {
    "dev": StageLimits(reserved_concurrency=10, large_adjustment=100_000),
    "staging": StageLimits(reserved_concurrency=10, large_adjustment=100_000),
    "prod": StageLimits(reserved_concurrency=10, large_adjustment=10_000),
}
assert tuple(STAGE_LIMITS) == STAGES


@dataclass(frozen=True)
class StageNames:
    stage: str

    @property
    def limits(self) -> StageLimits:
        RuntimeConfig.for_stage(self.stage)  # unknown stage -> ConfigError
        return STAGE_LIMITS[self.stage]

    @property
    def tables(self) -> tuple[str, str, str]:
        config = RuntimeConfig.for_stage(self.stage)  # validates the stage, too
        return config.jobs_table, config.credits_table, config.ledger_table

    @property
    def function(self) -> str:
        return f"cc-agent-reconciler-{self.stage}"

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.function}"

    @property
    def dead_letter_queue(self) -> str:
        return f"cc-reconciler-dlq-{self.stage}"

    @property
    def events_rule(self) -> str:
        return f"cc-reconciler-events-{self.stage}"

    @property
    def event_archive(self) -> str:
        return f"cc-reconciler-archive-{self.stage}"

    @property
    def ops_topic(self) -> str:
        return f"ops-alerts-{self.stage}"

    def alarm(self, concern: str) -> str:
        return f"{ALARM_PREFIX}{concern}-{self.stage}"

    def is_alarm(self, alarm_name: str) -> bool:
        return alarm_name.startswith(ALARM_PREFIX) and alarm_name.endswith(f"-{self.stage}")
