"""A dry run of the timer scan: the deployed function's decisions (service.container.build_timer_scan), nothing written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
