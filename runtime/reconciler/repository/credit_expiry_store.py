"""Credit expiry (service/credit_expiry.py) on DynamoDB: the expiring credits from Ledger's sparse index, a user's books,
and the expiry's one transaction.

The transaction: the Credits update (the expired credits off `remaining` and off the lot's category total, its change
record, conditioned on the balance version the ledger was read at), the expiry entry put in Ledger under its derived
id (`attribute_not_exists(ledgerId)`), and the credit's entry leaving the index (`REMOVE expiryPending`, on condition
that it is still pending). A concurrent render or settlement moves the version (the expiry decides again); a second
scan or a retry finds the id taken or the credit no longer pending (nothing booked twice).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from reconciler.contract import (
    CREDIT_EXPIRES_AT_ATTRIBUTE,
    EXPIRING_CREDITS_INDEX,
    EXPIRING_NOTICE_ATTRIBUTE,
    EXPIRY_PENDING_ATTRIBUTE,
    EXPIRY_PENDING_VALUE,
)
from reconciler.domain.consumption import CreditExpiry
from reconciler.domain.ledger import LedgerEntry
from reconciler.domain.liability import came_in
from reconciler.repository.dynamodb import BALANCE, LEDGER, credits_in_ledger_item, from_item, ledger_from_item, to_item
from reconciler.repository.dynamodb_operations import OperationsStore


@dataclass(frozen=True)
class ExpiringCredit:
    """A credit in the expiring-credits index, and when its `credits.expiring` notice went out (None: not yet)."""

    entry: LedgerEntry
    noticed_at: str | None


@dataclass(frozen=True)
class UserBooks:
    """A user's whole ledger, read after the balance version it is decided on."""

    version: int
    entries: list[LedgerEntry]
    last_ledger_entry: str | None

    @property
    def caught_up(self) -> bool:
        """Whether Ledger's by-user index (eventually consistent) holds the last Ledger entry the balance names."""
        return self.last_ledger_entry is None or any(entry.ledger_id == self.last_ledger_entry for entry in self.entries)


class CreditExpiryStore(OperationsStore):
    def expiring_credits(self, before: str) -> Iterator[ExpiringCredit]:
        """Pending credits expiring at `before` or earlier: one Query of the sparse index (eventually consistent: the
        expiry's write is conditioned on the credit still pending)."""
        query = dict(
            TableName=self.ledger_table,
            IndexName=EXPIRING_CREDITS_INDEX,
            KeyConditionExpression="#pending = :pending AND #expires <= :before",
            ExpressionAttributeNames={"#pending": EXPIRY_PENDING_ATTRIBUTE, "#expires": CREDIT_EXPIRES_AT_ATTRIBUTE},
            ExpressionAttributeValues=to_item({":pending": EXPIRY_PENDING_VALUE, ":before": before}),
        )
        for item in self._paginate("query", query):
            values = from_item(item)
            noticed = values.get(EXPIRING_NOTICE_ATTRIBUTE)
            yield ExpiringCredit(ledger_from_item(values), noticed if isinstance(noticed, str) else None)

    def books(self, user_id: str) -> UserBooks:
        """The balance's version (strong GetItem, 1 RRU), then the user's ledger (a consistent Query of UserLedger,
        one of Ledger's by-user index)."""
        balance = self.get_balance(user_id)
        version = balance.version if balance is not None else 0
        last_entry = balance.last_ledger_entry if balance is not None else None
        return UserBooks(version, list(self.ledger_for_user(user_id)), last_entry)

    def mark_noticed(self, credit: LedgerEntry, timestamp: str) -> None:
        """The credit's notice, once: StaleState when it went out already (or the credit expired meanwhile)."""
        self._write(
            "update_item",
            TableName=self.ledger_table,
            Key=to_item({"ledgerId": credit.ledger_id}),
            UpdateExpression="SET #noticed = :now",
            ConditionExpression="attribute_not_exists(#noticed) AND #pending = :pending",
            ExpressionAttributeNames={"#noticed": EXPIRING_NOTICE_ATTRIBUTE, "#pending": EXPIRY_PENDING_ATTRIBUTE},
            ExpressionAttributeValues=to_item({":now": timestamp, ":pending": EXPIRY_PENDING_VALUE}),
        )

    def commit_credit_expiry(self, expiry: CreditExpiry) -> None:
        """Books the expiry (above); with nothing left to expire, only takes the credit out of the index."""
        done = self._credit_done(expiry)
        entry = expiry.entry
        if entry is None:
            self._write("update_item", **done["Update"])
            return
        balance = self._balance_update(
            entry.user_id,
            entry.signed_amount,
            entry.timestamp,
            ("version", expiry.version),
            made_by=entry.ledger_id,
            ledger_entry=entry.ledger_id,
            came_in=came_in(expiry.credit.category or "", entry.signed_amount),
        )
        put = {
            "Put": {
                "TableName": self.ledger_table,
                "Item": to_item(credits_in_ledger_item(entry)),
                "ConditionExpression": "attribute_not_exists(ledgerId)",
            }
        }
        self._transact([(BALANCE, balance), (LEDGER, put), (LEDGER, done)])

    def _credit_done(self, expiry: CreditExpiry) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.ledger_table,
                "Key": to_item({"ledgerId": expiry.credit.ledger_id}),
                "UpdateExpression": "SET expiredBy = :by REMOVE #pending",
                "ConditionExpression": "#pending = :pending",
                "ExpressionAttributeNames": {"#pending": EXPIRY_PENDING_ATTRIBUTE},
                "ExpressionAttributeValues": to_item({":pending": EXPIRY_PENDING_VALUE, ":by": expiry.ledger_id}),
            }
        }
