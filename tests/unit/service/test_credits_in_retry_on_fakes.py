"""Credits in's use case on an in-memory store: Lambda's retry of an invocation whose revocation committed answers as
that invocation did (overdraft and all), while another delivery is a duplicate (service/credits_application.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.domain.credits_in import CreditsApplication, RecordedApplication
from reconciler.domain.errors import LedgerEntryTaken
from reconciler.service.credits_application import APPLIED, DUPLICATE, CreditsInService
from reconciler.service.ports import BalanceChanged
from reconciler.service.retrying import Backoff


@dataclass
class InMemoryCreditsIn:
    """One balance per user and the entries by ledger id; a revocation's guard as DynamoDB's (covers / short-of)."""

    balances: dict[str, int] = field(default_factory=dict)
    applications: dict[str, RecordedApplication] = field(default_factory=dict)

    def commit_credits_in(self, application: CreditsApplication) -> None:
        entry, balance = application.entry, self.balances.get(application.entry.user_id)
        if entry.ledger_id in self.applications:
            raise LedgerEntryTaken([entry.ledger_id])
        if application.event.is_revocation and ((balance or 0) >= entry.amount) == application.overdraft:
            raise BalanceChanged(balance)
        self.balances[entry.user_id] = (balance or 0) + entry.signed_amount
        self.applications[entry.ledger_id] = RecordedApplication(entry, application.request_id, application.overdraft, application.balance_before)

    def get_application(self, ledger_id: str) -> RecordedApplication | None:
        return self.applications.get(ledger_id)


class NoDeadLetters:
    def send(self, original: Any, **_: Any) -> str:
        raise AssertionError("nothing here is invalid")


def chargeback(event_id: str = "evt-cb") -> dict[str, Any]:
    detail = {"userId": "ann", "credits": 500, "reference": "dp_1", "category": "chargeback"}
    return {"id": event_id, "source": "credits.billing", "detail-type": "credits.revoked", "detail": detail}


def service(store: InMemoryCreditsIn) -> CreditsInService:
    return CreditsInService(store, NoDeadLetters(), clock=lambda: "2026-12-08T01:00:00.000Z", backoff=lambda _: Backoff(sleep=lambda _: None))


def test_lambdas_retry_of_an_overdrawing_revocation_answers_as_the_first_attempt_did():
    store = InMemoryCreditsIn(balances={"ann": 30})
    first = service(store).process(chargeback(), request_id="request-1")  # committed; then the invocation failed
    retried = service(store).process(chargeback(), request_id="request-1")
    assert (first.kind, first.overdraft, first.application.balance_after) == (APPLIED, True, -470)
    assert (retried.kind, retried.overdraft, retried.recovered, retried.application.balance_after) == (APPLIED, True, True, -470)
    assert store.balances["ann"] == -470  # applied once


def test_another_delivery_of_the_revocation_stays_a_duplicate_without_an_overdraft():
    store = InMemoryCreditsIn(balances={"ann": 30})
    service(store).process(chargeback(), request_id="request-1")
    for event_id, request_id in (("evt-cb", "request-2"), ("evt-cb-again", "request-1"), ("evt-cb", None)):
        again = service(store).process(chargeback(event_id), request_id=request_id)
        assert (again.kind, again.overdraft, again.recovered) == (DUPLICATE, False, False)
    assert store.balances["ann"] == -470
