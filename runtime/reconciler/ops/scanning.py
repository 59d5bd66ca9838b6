"""The timer scan as the deployed function runs it, optionally without writing anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from reconciler.config import RuntimeConfig
from reconciler.domain.pricing import PriceBook
from reconciler.service.settlement import SettlementService
from reconciler.service.timer_scan import TimerScan


@dataclass
class DryRunStore:
    """Reads from the real store, keeps the writes it is asked for: the same decisions, nothing written."""

    store: Any
    writes: list = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def commit_settlement(self, settlement: Any) -> None:
        self.writes.append(settlement)

    def record_conflict(self, conflict: Any) -> None:
        self.writes.append(conflict)


def build_timer_scan(store: Any, config: RuntimeConfig) -> TimerScan:
    """Wired like handlers/timer_scan.py: same prices, grace and stuck thresholds as the function."""
    settlement = SettlementService(store, PriceBook.with_overrides(config.price_overrides))
    return TimerScan(store, settlement, grace=timedelta(minutes=config.scan_grace_minutes), stuck_after=timedelta(hours=config.stuck_job_hours))
