"""The runbook's resource names for a stage (a contract; tests compare them with infra/config.py).

Kept here rather than imported from infra so the CLI does not load aws-cdk on every command.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.config import RuntimeConfig

ALARM_PREFIX = "cc-reconciler-"


@dataclass(frozen=True)
class StageNames:
    stage: str

    @property
    def tables(self) -> tuple[str, str, str]:
        config = RuntimeConfig.for_stage(self.stage)  # validates the stage, too
        return config.jobs_table, config.credits_table, config.ledger_table

    @property
    def function(self) -> str:
        return f"cc-agent-reconciler-{self.stage}"

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

    def is_alarm(self, alarm_name: str) -> bool:
        return alarm_name.startswith(ALARM_PREFIX) and alarm_name.endswith(f"-{self.stage}")
