"""AWS failures mapped to what the service can act on."""

from __future__ import annotations


class StaleState(Exception):
    """A condition failed: the job, balance or ledger changed since we read them. Reload and decide again."""


class Contention(Exception):
    """DynamoDB refused for now (transaction conflict, throttling): retry the same decision after a backoff."""


class AmbiguousWrite(Exception):
    """The write may or may not have committed (the answer was lost). Reload: the stored state tells."""


class RetriesExhausted(Exception):
    """Contention outlasted the retry budget; raised so that Lambda retries the event later."""
