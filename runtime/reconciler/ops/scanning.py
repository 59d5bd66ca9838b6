"""The timer scan run by an operator: its dry run (the deployed function's decisions, bootstrap.build_timer_scan, nothing
written), and its settlements' postings counted in the Adjustments metric as the function counts its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler.ops.operator_ports import AdjustmentCount

if TYPE_CHECKING:
    from reconciler.service.timer_scan import ScanReport, TimerScan


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


@dataclass
class OperatorScan:
    """`reconciler scan`: the function's timer scan; each settlement's postings are adjustments, as the handler counts them."""

    scan: TimerScan
    counted: AdjustmentCount

    def run(self) -> ScanReport:
        report = self.scan.run()
        self.counted.count(sum(len(outcome.settlement.entries) for outcome in report.settled if outcome.settlement is not None))
        return report
