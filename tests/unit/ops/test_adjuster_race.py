"""Two operators applying the same adjustment reference at the same moment: applied once, and the one whose
write lost the race is told it was already applied (not shown a taken ledger id)."""

from __future__ import annotations

import pytest

from reconciler.domain import ledger as ledger_module
from reconciler.domain.ledger import adjustment_entry, adjustment_ledger_id, balance_delta, legacy_adjustment_ledger_id
from reconciler.ops.adjustments import ALREADY_APPLIED, APPLIED, Adjuster
from reconciler.ops.operator_error import OpsError
from reconciler.service.retrying import Backoff
from tests.fakes import InMemorySettlementStore

MOMENT = "2026-11-29T10:00:00.000Z"


class RacedStore:
    """The store as the second operator sees it: the first operator's write lands between its read and its write."""

    def __init__(self, store: InMemorySettlementStore, racing_amount: int) -> None:
        self.store = store
        self.racing_amount = racing_amount
        self.raced = False

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    def commit_adjustment(self, entry):
        if not self.raced:
            self.raced = True
            self.store.commit_adjustment(adjustment_entry(entry.user_id, self.racing_amount, "the other run", entry.reference, "ops-2", MOMENT))
        self.store.commit_adjustment(entry)


def adjuster(store) -> Adjuster:
    return Adjuster(store, clock=lambda: MOMENT, backoff=lambda: Backoff(sleep=lambda _: None))


def test_the_run_that_loses_the_race_is_told_the_adjustment_is_already_applied():
    # Given a balance of 10, and another operator applying the same reference while this run is between read and write
    store = InMemorySettlementStore()
    store.commit_adjustment(adjustment_entry("u", 10, "opening", "opening-u", "test", MOMENT))
    # When this run applies it
    result = adjuster(RacedStore(store, racing_amount=5)).adjust("u", 5, "goodwill", "ticket-7", "ops-1")
    # Then it reports the adjustment already applied, and the books hold it once
    assert result.status == ALREADY_APPLIED and result.entry.actor == "ops-2"
    assert store.balance_of("u") == 15 == balance_delta(store.ledger_of("u"))


def test_a_racing_run_with_another_amount_under_the_same_reference_is_refused():
    store = InMemorySettlementStore()
    with pytest.raises(OpsError, match="already used"):
        adjuster(RacedStore(store, racing_amount=6)).adjust("u", 5, "goodwill", "ticket-7", "ops-1")
    assert store.balance_of("u") == 6 == balance_delta(store.ledger_of("u"))


def test_without_a_race_the_adjustment_is_applied():
    store = InMemorySettlementStore()
    assert adjuster(store).adjust("u", 5, "goodwill", "ticket-7", "ops-1").status == APPLIED


class CountingStore:
    """The store, counting what an adjustment reads (by item) and writes."""

    def __init__(self, store: InMemorySettlementStore) -> None:
        self.store = store
        self.reads: list[tuple[str, str]] = []
        self.writes = 0

    def get_balance(self, user_id: str):
        self.reads.append(("balance", user_id))
        return self.store.get_balance(user_id)

    def get_ledger_entry(self, ledger_id: str):
        self.reads.append(("ledger", ledger_id))
        return self.store.get_ledger_entry(ledger_id)

    def commit_adjustment(self, entry) -> None:
        self.writes += 1
        self.store.commit_adjustment(entry)


def test_an_adjustment_validates_once_and_reads_each_item_it_needs_once(monkeypatch):
    # Given a user with a balance, and the domain's id check counted
    store = InMemorySettlementStore()
    store.commit_adjustment(adjustment_entry("u", 10, "opening", "opening-u", "test", MOMENT))
    checked: list[str] = []
    real_identifier = ledger_module.identifier

    def counted_identifier(name: str, value: str) -> str:
        checked.append(name)
        return real_identifier(name, value)

    monkeypatch.setattr(ledger_module, "identifier", counted_identifier)
    counting = CountingStore(store)
    # When an operator previews and applies an adjustment, as the CLI does
    subject = adjuster(counting)
    preview = subject.preview("u", 5, "goodwill", "ticket-7", "ops-1")
    reads_of_preview = list(counting.reads)
    result = subject.apply(preview)
    # Then its ids were validated once, each item it needs (its ledger id, the legacy id, the balance) read once,
    # nothing read again to apply it, and one write made
    assert sorted(checked) == ["reference", "userId"]
    assert reads_of_preview == [("ledger", adjustment_ledger_id("ticket-7")), ("ledger", legacy_adjustment_ledger_id("ticket-7")), ("balance", "u")]
    assert counting.reads == reads_of_preview and counting.writes == 1
    assert result.status == APPLIED and result.balance_before == 10 and store.balance_of("u") == 15
