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
