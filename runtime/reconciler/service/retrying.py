"""One retry loop for every optimistic write (settlement, reservation, adjustment), and its backoff."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from reconciler.service.ports import AmbiguousWrite, Contention, RetriesExhausted, StaleState

T = TypeVar("T")


@dataclass
class Backoff:
    """Full-jitter backoff (AWS Architecture Blog), bounded by attempts and by a deadline."""

    base_seconds: float = 0.02
    cap_seconds: float = 0.5
    # The deadline (the Lambda's remaining time) is the real bound; this one only stops a runaway loop.
    max_attempts: int = 50
    deadline: float | None = None  # time.monotonic() value after which no attempt starts
    sleep: Callable[[float], None] = time.sleep
    random_fraction: Callable[[], float] = random.random
    attempts: int = field(default=0, init=False)

    def wait(self) -> bool:
        """Sleeps before the next attempt; False when the budget is spent and the caller must give up."""
        self.attempts += 1
        if self.attempts >= self.max_attempts:
            return False
        delay = self.random_fraction() * min(self.cap_seconds, self.base_seconds * 2**self.attempts)
        if self.deadline is not None and time.monotonic() + delay >= self.deadline:
            return False
        self.sleep(delay)
        return True


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


def until_failure(items: Iterator[T], interrupted: Callable[[str], None]) -> Iterator[T]:
    """`items` until they end or reading them fails (throttling past botocore's retries): the failure is handed to
    `interrupted`, so a scan still reports what it did before it."""
    while True:
        try:
            item = next(items)
        except StopIteration:
            return
        except Exception as error:  # noqa: BLE001 - never lose the report of what the caller already did
            interrupted(error_summary(error))
            return
        yield item


def new_request_id() -> str:
    """The request id of a call made outside Lambda (CLI replay, tests): each call is its own request."""
    return f"local-{uuid.uuid4()}"


def error_summary(error: BaseException) -> str:
    """An error as a report line carries it: its type and message, at most 500 characters."""
    return f"{type(error).__name__}: {error}"[:500]


def deadline_passed(deadline: float | None) -> bool:
    """Whether a deadline (a time.monotonic() value; None: none) has passed."""
    return deadline is not None and time.monotonic() >= deadline
