"""Two operators repairing the same discrepancy at once: one repair applies, the other audits again and finds the
books clean; and a repair never decides on a Ledger index that has not caught up (AWS's by-user index lags)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reconciler.domain.ledger import balance_delta, iso_timestamp
from reconciler.ops.audit import FIXED, INDEX_BEHIND, TRUST_BALANCE, TRUST_LEDGER, Auditor
from reconciler.repository.dynamodb import to_item
from reconciler.service.retrying import Backoff


def later(milliseconds: int) -> str:
    """A moment after every write of the test (the runs' clocks; the balance's updatedAt is the real time)."""
    return iso_timestamp(datetime.now(UTC) + timedelta(hours=1, milliseconds=milliseconds))


def auditor(store: Any, moment: str) -> Auditor:
    return Auditor(store, store, clock=lambda: moment, backoff=lambda: Backoff(sleep=lambda _: None))


def fix(store: Any, moment: str, trust: str):
    return auditor(store, moment).fix("ann", "INC-7", "ops", dry_run=False, min_age=timedelta(0), trust=trust)


class OvertakenStore:
    """The second operator's store: the first operator's whole fix lands between this run's audit and its write."""

    def __init__(self, store: Any, other_run: Any) -> None:
        self.store, self.other_run, self.overtaken = store, other_run, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def _let_the_other_run_finish(self) -> None:
        if not self.overtaken:
            self.overtaken = True
            assert self.other_run().status == FIXED

    def commit_correction(self, *args: Any) -> None:
        self._let_the_other_run_finish()
        self.store.commit_correction(*args)

    def restore(self, *args: Any) -> None:
        self._let_the_other_run_finish()
        self.store.restore(*args)


def write_behind_the_books(aws, credits: int) -> None:
    """A balance moved with no ledger entry (a direct write by another system)."""
    added = to_item({":c": credits})
    aws.client("dynamodb").update_item(
        TableName=aws.config.credits_table, Key=to_item({"userId": "ann"}), UpdateExpression="ADD remaining :c", ExpressionAttributeValues=added
    )


def books(aws) -> tuple[int | None, int]:
    return aws.balance("ann"), balance_delta(aws.ledger("ann"))


@pytest.mark.parametrize(
    ("first", "second"),
    [(TRUST_BALANCE, TRUST_BALANCE), (TRUST_LEDGER, TRUST_LEDGER), (TRUST_LEDGER, TRUST_BALANCE), (TRUST_BALANCE, TRUST_LEDGER)],
)
def test_of_two_concurrent_repairs_of_one_discrepancy_one_applies_and_the_books_end_clean(aws, first, second):
    # Given 10 credits in the books and 3 more written behind them
    aws.seed_balance("ann", 10)
    write_behind_the_books(aws, 3)
    # When the second run's write comes after the first run's whole fix, both having read the same books
    store = aws.store()
    other = lambda: fix(store, later(0), first)  # noqa: E731
    result = fix(OvertakenStore(store, other), later(250), second)
    # Then the second run found the books clean on its fresh audit, and they balance as the first run left them
    assert result is None
    remaining, ledger = books(aws)
    assert remaining == ledger == (13 if first == TRUST_BALANCE else 10)
    assert Auditor(store).audit_user("ann") is None


class LaggingIndex:
    """Ledger's by-user index as AWS may answer it just after a write: without the newest Ledger entry."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def ledger_for_user(self, user_id: str, since: str | None = None, until: str | None = None):
        newest = self.store.get_balance(user_id).last_ledger_entry
        return [entry for entry in self.store.ledger_for_user(user_id, since, until) if entry.ledger_id != newest]


def test_a_repair_right_after_another_never_decides_on_an_index_that_lacks_its_correction(aws):
    aws.seed_balance("ann", 10)
    write_behind_the_books(aws, 3)
    store = aws.store()
    assert fix(store, later(0), TRUST_BALANCE).status == FIXED
    # The next run's read of the index misses the correction just booked: the books look off by 3 again
    second = fix(LaggingIndex(store), later(400), TRUST_BALANCE)
    assert second.status == INDEX_BEHIND and "re-run" in second.explain(0)
    assert books(aws) == (13, 13)
