"""Credits in (domain/credits_in.py) on DynamoDB: the balance and the Ledger entry in one transaction.

The entry goes to `Ledger-{stage}`, whose key is the ledger id: `attribute_not_exists(ledgerId)` makes the outside
reference the idempotency key, as for operators' adjustments, so a purchase delivered three times books once. The
balance update names the entry (`lastLedgerEntry`: the audit's index lag) and its change (`lastChange`, as every balance write)
and, for a revocation, carries the guard its overdraft decision rests on (`covers` or `short-of`: the same threshold
guards as settlement's). The same update adds the entry to the item's running total of its category (`paidCredits`,
`promotionalCredits`, `goodwillCredits`: domain/liability.py), which the liability snapshot sums. The settlement
path does not pass through here.
"""

from __future__ import annotations

from reconciler.domain.credits_in import CreditsApplication
from reconciler.domain.ledger import LedgerEntry
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
                "Item": to_item(credits_in_ledger_item(entry)),
                "ConditionExpression": "attribute_not_exists(ledgerId)",
            }
        }
        self._transact([(BALANCE, balance), (LEDGER, put)])

    def get_ledger_entry(self, ledger_id: str) -> LedgerEntry | None:
        item = self._call("get_item", TableName=self.ledger_table, Key=to_item({"ledgerId": ledger_id}), ConsistentRead=True).get("Item")
        return ledger_from_item(from_item(item)) if item else None
