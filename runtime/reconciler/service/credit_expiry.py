"""Credit expiry: the timer scan books what the consumption rule leaves of a purchase or a grant at its `expiresAt`,
and announces credits about to expire (docs/ledger.md, "Credits that expire").

Per credit whose expiry has passed: the user's books read (the balance version first, then the whole ledger), the
remainder decided by the pure rule (domain/consumption.py), and one transaction (repository/credit_expiry_store.py)
conditioned on that version; `credits.expired` once it commits. A render or any other write in between moves the
version, and the expiry decides again; a second scan or a retry finds the expiry booked. Per credit within the
stage's lead time: its notice marked once on the credit's entry, then `credits.expiring`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from reconciler.contract import CREDITS_EXPIRED_DETAIL_TYPE, CREDITS_EXPIRING_DETAIL_TYPE
from reconciler.domain.consumption import CreditExpiry, consume, expiry_ledger_id, plan_credit_expiry
from reconciler.domain.errors import LedgerEntryTaken
from reconciler.domain.holds import parse_moment
from reconciler.domain.ledger import LedgerEntry, iso_timestamp
from reconciler.service.ports import Publisher, StaleState
from reconciler.service.retrying import Backoff, deadline_passed, error_summary, until_failure, with_retries


class ExpiringCredits(Protocol):
    """What credit expiry needs of the store (repository/credit_expiry_store.py)."""

    def expiring_credits(self, before: str) -> Iterator[Any]: ...
    def books(self, user_id: str) -> Any: ...
    def get_ledger_entry(self, ledger_id: str) -> LedgerEntry | None: ...
    def mark_noticed(self, credit: LedgerEntry, timestamp: str) -> None: ...
    def commit_credit_expiry(self, expiry: CreditExpiry) -> None: ...


@dataclass
class CreditExpiryReport:
    expired: list[CreditExpiry] = field(default_factory=list)
    noticed: list[str] = field(default_factory=list)
    gone: int = 0  # booked by another scan, or nothing to book
    deferred: list[tuple[str, str]] = field(default_factory=list)
    unpublished: list[tuple[str, str]] = field(default_factory=list)
    interrupted: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "creditsExpired": [{"ledgerId": expiry.credit.ledger_id, "expired": expiry.expired} for expiry in self.expired],
            "creditsExpiringNoticed": self.noticed,
            "creditExpiriesGone": self.gone,
            "creditExpiryDeferred": [{"ledgerId": ledger_id, "reason": reason} for ledger_id, reason in self.deferred],
            "creditExpiryUnpublished": [{"ledgerId": ledger_id, "reason": reason} for ledger_id, reason in self.unpublished],
            "creditExpiryInterrupted": self.interrupted,
        }


@dataclass
class CreditExpiryService:
    store: ExpiringCredits
    publisher: Publisher | None = None
    notice_lead: timedelta = timedelta(hours=72)
    clock: Callable[[], str] = iso_timestamp
    # Bounded by the tick's deadline, so no commit starts when there is no time left to publish its event.
    backoff: Callable[[float | None], Backoff] = field(default=lambda deadline: Backoff(deadline=deadline))

    def run(self, now: str | None = None, deadline: float | None = None) -> CreditExpiryReport:
        """Expires the credits expired at `now` (the tick's start) and notices those expiring within the lead time."""
        now = now or self.clock()
        report = CreditExpiryReport()
        horizon = iso_timestamp(parse_moment(now) + self.notice_lead)
        for seen in until_failure(self.store.expiring_credits(horizon), lambda error: setattr(report, "interrupted", error)):
            if deadline_passed(deadline):
                break  # the rest waits for the next tick
            credit = seen.entry
            try:
                if credit.expires_at is not None and credit.expires_at <= now:
                    self._expire_one(credit, report, deadline)
                elif seen.noticed_at is None:
                    self._notice(credit, report)
            except Exception as error:  # noqa: BLE001 - one credit's failure never stops the credits behind it
                report.deferred.append((credit.ledger_id, error_summary(error)))
        return report

    def expire(self, credit: LedgerEntry, deadline: float | None = None) -> CreditExpiry | None:
        """Books one credit's expiry; None when another scan booked it, or nothing was left (the credit then only
        leaves the index)."""
        tried: list[str] = []

        def attempt() -> CreditExpiry | None:
            booked = self.store.get_ledger_entry(expiry_ledger_id(credit.ledger_id))
            if booked is not None:  # ours, whose answer was lost, or another scan's
                return CreditExpiry(credit, booked.amount, 0, booked.timestamp) if booked.timestamp in tried else None
            books = self.store.books(credit.user_id)
            if not books.caught_up:
                raise StaleState("Ledger's by-user index has not caught up with the balance's last entry")
            now = self.clock()
            tried.append(now)
            plan = plan_credit_expiry(credit, books.entries, books.version, now)
            if plan is None:
                return None
            try:
                self.store.commit_credit_expiry(plan)
            except LedgerEntryTaken:
                return None  # another scan's expiry committed first
            except StaleState:
                if plan.entry is None:
                    return None  # nothing to book, and the credit has left the index already
                raise  # the balance moved since the books were read (or a race): decide again
            return plan if plan.entry is not None else None

        expired, _ = with_retries(attempt, self.backoff(deadline))
        return expired

    def _expire_one(self, credit: LedgerEntry, report: CreditExpiryReport, deadline: float | None) -> None:
        expired = self.expire(credit, deadline)
        if expired is None:
            report.gone += 1
            return
        report.expired.append(expired)
        self._publish(CREDITS_EXPIRED_DETAIL_TYPE, expired_detail(expired), credit, report)

    def _notice(self, credit: LedgerEntry, report: CreditExpiryReport) -> None:
        try:
            self.store.mark_noticed(credit, self.clock())
        except StaleState:
            return  # another tick noticed it first
        unconsumed = consume(self.store.books(credit.user_id).entries).unconsumed(credit.ledger_id)
        report.noticed.append(credit.ledger_id)
        self._publish(CREDITS_EXPIRING_DETAIL_TYPE, expiring_detail(credit, unconsumed), credit, report)

    def _publish(self, detail_type: str, detail: dict[str, Any], credit: LedgerEntry, report: CreditExpiryReport) -> None:
        if self.publisher is None:
            return
        try:
            self.publisher.publish(detail_type, detail)
        except Exception as error:  # noqa: BLE001 - the expiry stands whatever happens to its announcement
            report.unpublished.append((credit.ledger_id, error_summary(error)))


def expired_detail(expiry: CreditExpiry) -> dict[str, Any]:
    """`credits.expired` (docs/schemas/credits.expired.json): a credit expires once, so ledgerId identifies it."""
    credit = expiry.credit
    return {
        "userId": credit.user_id,
        "ledgerId": expiry.ledger_id,
        "creditLedgerId": credit.ledger_id,
        "reference": credit.reference,
        "category": credit.category,
        "credits": expiry.expired,
        "grantedCredits": credit.amount,
        "expiresAt": credit.expires_at,
        "expiredAt": expiry.timestamp,
    }


def expiring_detail(credit: LedgerEntry, unconsumed: int) -> dict[str, Any]:
    """`credits.expiring` (docs/schemas/credits.expiring.json): once per credit, ahead of its expiry."""
    return {
        "userId": credit.user_id,
        "creditLedgerId": credit.ledger_id,
        "reference": credit.reference,
        "category": credit.category,
        "grantedCredits": credit.amount,
        "unconsumed": unconsumed,
        "expiresAt": credit.expires_at,
    }
