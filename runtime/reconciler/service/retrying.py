"""One retry loop for every optimistic write: settlement, reservation, adjustment."""

from __future__ import annotations

from typing import Callable, TypeVar

from reconciler.repository.errors import AmbiguousWrite, Contention, RetriesExhausted, StaleState
from reconciler.repository.retry import Backoff

T = TypeVar("T")


def with_retries(attempt: Callable[[], T], backoff: Backoff) -> tuple[T, int]:
    """Runs `attempt` (read, decide, write) until it commits; returns its result and the attempts made.

    Stale reads, contention and lost answers all mean the same thing: read again and decide again,
    so an already-committed write is recognised by the stored state instead of being repeated.
    """
    attempts = 0
    while True:
        attempts += 1
        try:
            return attempt(), attempts
        except (StaleState, Contention, AmbiguousWrite) as error:
            if not backoff.wait():
                raise RetriesExhausted(f"gave up after {attempts} attempts: {error}") from error
