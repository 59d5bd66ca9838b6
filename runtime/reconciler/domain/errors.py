"""Domain errors: each names what was wrong so that logs and the DLQ can say it."""

from __future__ import annotations


class InvalidEvent(ValueError):
    """An event that can never be settled as it is: it goes to the DLQ with this reason, nothing is written."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InsufficientCredits(Exception):
    """A reservation the balance does not cover; nothing was moved."""

    def __init__(self, user_id: str, requested: int, available: int | None) -> None:
        super().__init__(f"user {user_id} has {available if available is not None else 'no'} credits, {requested} requested")
        self.user_id = user_id
        self.requested = requested
        self.available = available


class ReservationRefused(Exception):
    """A reservation that conflicts with the job as it stands (settled, reserved already, other user)."""


class DamagedJob(InvalidEvent):
    """A Jobs item the reconciler cannot use (a fractional reservation, a numeric timestamp, no owner).

    Events for it go to the DLQ with this reason and the timer scan reports it as unsettleable; nothing is
    written until a person repairs the item, after which a replay or the next scan settles it.
    """

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__("job", f"stored job {job_id!r} is unusable: {reason}")
        self.job_id = job_id


class DamagedBalance(InvalidEvent):
    """A Credits item the reconciler cannot use: `remaining` or `held` stored as text, a boolean or a fraction.

    An event that needs it goes to the DLQ with this reason, naming the attribute; nothing is written until a person
    repairs the item (`reconciler audit`), after which a replay settles the event.
    """

    def __init__(self, user_id: str, attribute: str, problem: str) -> None:
        super().__init__("balance", f"stored balance of user {user_id!r} is unusable: {attribute} {problem}")
        self.user_id = user_id
        self.attribute = attribute


class LedgerEntryTaken(InvalidEvent):
    """The ledger already holds an entry under the id this posting needs, though the job is unsettled.

    Ids are unambiguous across writers, so this is damaged or hand-written data (a v1 manual entry, a restored
    backup): retrying cannot help, a person must look.
    """

    def __init__(self, ledger_ids: list[str]) -> None:
        super().__init__("ledgerId", f"ledger entry {', '.join(repr(i) for i in ledger_ids)} already exists for an unsettled job")
        self.ledger_ids = ledger_ids
