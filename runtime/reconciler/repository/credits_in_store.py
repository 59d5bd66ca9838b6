"""Credits in (domain/credits_in.py) on DynamoDB: the balance and the Ledger entry in one transaction.

The entry goes to `Ledger-{stage}`, whose key is the ledger id: `attribute_not_exists(ledgerId)` makes the outside
reference the idempotency key, as for operators' adjustments, so a purchase delivered three times books once. The
balance update names the entry (`lastLedgerEntry`: the audit's index lag) and its change (`lastChange`, as every balance write)
and, for a revocation, carries the guard its overdraft decision rests on (`covers` or `short-of`: the same threshold
guards as settlement's). The same update adds the entry to the item's running total of its category (`paidCredits`,
`promotionalCredits`, `goodwillCredits`: domain/liability.py), which the liability snapshot sums. The settlement
path does not pass through here. The entry also records how it was applied (`appliedByRequest`, `overdraft`,
`appliedBalanceBefore`): a retry of the same Lambda invocation reads them back and answers as that invocation did.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from reconciler.contract import APPLIED_BY_REQUEST_ATTRIBUTE, BALANCE_BEFORE_ATTRIBUTE, OVERDRAFT_ATTRIBUTE
from reconciler.domain.credits_in import CreditsApplication, RecordedApplication
from reconciler.domain.liability import came_in
from reconciler.repository.dynamodb import BALANCE, LEDGER, DynamoDBStore, credits_in_ledger_item, from_item, ledger_from_item, to_item


class CreditsInStore(DynamoDBStore):
    """The function's store for credits in: one TransactWriteItems per application, one strong GetItem of Ledger
    (1 RRU) when a delivery finds its ledger id taken."""

    def commit_credits_in(self, application: CreditsApplication) -> None:
        entry = application.entry
        guard: tuple[str, int | None] = ("none", None)
        if application.event.is_revocation:
            guard = ("short-of", entry.amount) if application.overdraft else ("covers", entry.amount)
        balance = self._balance_update(
            entry.user_id,
            entry.signed_amount,
            entry.timestamp,
            guard,
            made_by=entry.ledger_id,
            ledger_entry=entry.ledger_id,
            came_in=came_in(entry.category or "", entry.signed_amount),
        )
        put = {
            "Put": {
                "TableName": self.ledger_table,
                "Item": to_item({**credits_in_ledger_item(entry), **how_applied(application)}),
                "ConditionExpression": "attribute_not_exists(ledgerId)",
            }
        }
        self._transact([(BALANCE, balance), (LEDGER, put)])

    def get_application(self, ledger_id: str) -> RecordedApplication | None:
        item = self._call("get_item", TableName=self.ledger_table, Key=to_item({"ledgerId": ledger_id}), ConsistentRead=True).get("Item")
        return recorded_application(from_item(item)) if item else None


def how_applied(application: CreditsApplication) -> dict[str, Any]:
    """The entry's record of its application: the request always; the overdraft and the balance before when there are."""
    recorded: dict[str, Any] = {APPLIED_BY_REQUEST_ATTRIBUTE: application.request_id}
    if application.overdraft:
        recorded[OVERDRAFT_ATTRIBUTE] = True
    if application.balance_before is not None:
        recorded[BALANCE_BEFORE_ATTRIBUTE] = application.balance_before
    return {name: value for name, value in recorded.items() if value is not None}


def recorded_application(values: dict[str, Any]) -> RecordedApplication:
    """An entry written before the application was recorded (or whose record another writer spoiled) reads as no
    request: a retry then finds a duplicate, as it did before."""
    request_id, before = values.get(APPLIED_BY_REQUEST_ATTRIBUTE), values.get(BALANCE_BEFORE_ATTRIBUTE)
    return RecordedApplication(
        ledger_from_item(values),
        request_id=request_id if isinstance(request_id, str) else None,
        overdraft=values.get(OVERDRAFT_ATTRIBUTE) is True,
        balance_before=int(before) if isinstance(before, Decimal) and before == before.to_integral_value() else None,
    )
