"""The run's simulated clock: every timestamp the product and the seeded world write during a run comes from it, so
a seed's verdict never depends on the day or the speed of the machine that runs it (the world's jobs from "an hour
ago" fall after the stage's cut-off whatever the wall clock says).

It starts at a fixed moment a week after the cut-off (oracle.CUT_OFF) and moves one millisecond at every reading: a
run lasts seconds of simulated time, like a real one, and no two readings are equal. The product reads time through
`datetime.now` in three modules (the ledger's `iso_timestamp`, which every use case's clock defaults to, the timer
scan's and the balance events' own); `simulated_time()` stands the clock in for `datetime` there for one run.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, tzinfo

START = datetime(2026, 12, 14, tzinfo=UTC)  # a week after oracle.CUT_OFF
STEP = timedelta(milliseconds=1)
# The product's modules that read the wall clock as datetime.now(UTC).
READERS = ("reconciler.domain.ledger", "reconciler.service.timer_scan", "reconciler.service.balance_event_publishing")


class SimulatedClock:
    def __init__(self, start: datetime = START) -> None:
        self.moment, self.lock = start, threading.Lock()

    def now(self) -> datetime:
        with self.lock:
            self.moment += STEP
            return self.moment

    def advance(self, delta: timedelta) -> None:
        """Time passing with nothing read: the expiry phase's wait for every hold's expiry (simulator.expiries)."""
        with self.lock:
            self.moment += delta


_clock = SimulatedClock()


def now() -> datetime:
    """The simulated now (the world's and the pipeline's writes read it too)."""
    return _clock.now()


def advance(delta: timedelta) -> None:
    _clock.advance(delta)


class _SimulatedDatetime(datetime):
    """`datetime` as the product's modules see it during a run: `now()` reads the simulated clock."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]  # the same signature, another source
        moment = _clock.now()
        return moment.astimezone(tz) if tz is not None else moment.replace(tzinfo=None)


@contextmanager
def simulated_time(start: datetime = START) -> Iterator[SimulatedClock]:
    """One run's clock, from `start`, read by the product's modules and the world until the run ends."""
    global _clock
    modules = [importlib.import_module(name) for name in READERS]
    originals = [module.datetime for module in modules]
    _clock = SimulatedClock(start)
    for module in modules:
        module.datetime = _SimulatedDatetime  # type: ignore[attr-defined]  # the module's own name for the class
    try:
        yield _clock
    finally:
        for module, original in zip(modules, originals, strict=True):
            module.datetime = original  # type: ignore[attr-defined]
