"""The reconciler's own record of a job's money: its hold and its settlement (Settlements-{stage}).

The Jobs table belongs to the pipeline, which may write anything to a job's item: save it whole from a mapper
that knows only its own fields, mark it held without moving a balance, drop the unsettled marker. So the facts
that money depends on live where only the reconciler writes, keyed by job id:

* a **hold**: the credits moved from `remaining` to `held`, when, for which model and at which unit price (the
  price in force when the job was held, which its render is charged at), and whether it is still open;
* a **settlement**: how the job settled (rendered or failed), by which event and Lambda request, what was charged,
  released and refunded, and whether it overdrew;
* the **conflicts**: terminal events that contradicted the settlement.

A record is written in the same transaction as the balance and the postings it explains. Its settlement is never
removed, so a job settles once whatever anyone writes to its Jobs item; the Jobs item carries a mirror of the
settlement for the pipeline and the timer scan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from reconciler.domain.errors import DamagedJob
from reconciler.domain.validation import MAX_CREDITS, whole_number_problem

RENDERED, FAILED = "rendered", "failed"
# A settlement's reservation made before records existed and posted to the ledger (v2's): its release or refund was a
# posting. Recorded, so that a settlement rebuilt from its record (our own lost answer) reports its postings.
LEGACY_POSTED = "legacy-posted"


@dataclass(frozen=True)
class SettledFacts:
    """What a duplicate or a conflict is decided on, whichever record holds it (a settlement record, or the Jobs
    item of a job settled before records existed)."""

    settled_as: str | None
    settled_by_event: str | None
    settled_by_request: str | None = None
    conflict_event_ids: frozenset[str] = frozenset()
    conflict_request_ids: frozenset[str] = frozenset()
    settled_at: str | None = None
    charged_credits: int = 0
    released_credits: int = 0
    refunded_credits: int = 0
    settled_into_overdraft: bool = False
    reserved_credits: int | None = None
    status: str | None = None
    model: str | None = None
    seconds: object | None = None
    held: bool = True  # its reservation was a hold (released, nothing posted), not a posted v2 reservation
    # Where the facts come from: a settlement record, or a Jobs item settled before records existed.
    source: str = "record"

    @classmethod
    def of(cls, holder: Any, **particular: Any) -> SettledFacts:
        """The facts a settlement left on `holder` (a record or a Jobs item: both name them alike), with what is
        particular to its kind (`particular`)."""
        return cls(**{name: getattr(holder, name) for name in _SETTLED_ON_BOTH}, **particular)


# The settlement facts a settlement record and a Jobs item hold under the same names.
_SETTLED_ON_BOTH = (
    "settled_as",
    "settled_by_event",
    "settled_by_request",
    "conflict_event_ids",
    "conflict_request_ids",
    "settled_at",
    "charged_credits",
    "released_credits",
    "refunded_credits",
    "settled_into_overdraft",
)


@dataclass(frozen=True)
class SettlementRecord:
    job_id: str
    user_id: str
    held_credits: int = 0
    hold_open: bool = False
    held_at: str | None = None
    hold_model: str | None = None
    unit_price: Decimal | None = None
    hold_released_at: str | None = None
    hold_expires_at: str | None = None
    hold_released_by: str | None = None  # "expiry" when the timer scan released it at its expiry
    settled_as: str | None = None
    settled_at: str | None = None
    settled_by_event: str | None = None
    settled_by_request: str | None = None
    charged_credits: int = 0
    released_credits: int = 0
    refunded_credits: int = 0
    settled_into_overdraft: bool = False
    conflict_event_ids: frozenset[str] = field(default_factory=frozenset)
    conflict_request_ids: frozenset[str] = field(default_factory=frozenset)
    reservation: str | None = None  # how the settled reservation was made (domain/settlement.py), when it had one

    def __post_init__(self) -> None:
        """A record only the reconciler writes can still be damaged (a hand edit, a restore): refused by name."""
        problem = _record_problem(self)
        if problem:
            raise DamagedJob(self.job_id if isinstance(self.job_id, str) else repr(self.job_id), f"settlement record: {problem}")
        for name in ("held_credits", "charged_credits", "released_credits", "refunded_credits"):
            value = getattr(self, name)
            if isinstance(value, Decimal):
                object.__setattr__(self, name, int(value))

    @property
    def is_settled(self) -> bool:
        return self.settled_as is not None

    @property
    def open_hold(self) -> int:
        """The credits this job holds on its user's balance now."""
        return self.held_credits if self.hold_open and not self.is_settled else 0

    def facts(self) -> SettledFacts:
        return SettledFacts.of(
            self,
            reserved_credits=self.held_credits or None,
            model=self.hold_model,
            held=self.reservation != LEGACY_POSTED,
        )


def _record_problem(record: SettlementRecord) -> str | None:
    if not isinstance(record.job_id, str) or not record.job_id:
        return "jobId is not a non-empty string"
    if not isinstance(record.user_id, str) or not record.user_id:
        return "userId is missing or not a string"
    if record.settled_as not in (None, RENDERED, FAILED):
        return f"settledAs must be {RENDERED!r} or {FAILED!r}"
    for name in ("held_credits", "charged_credits", "released_credits", "refunded_credits"):
        value = getattr(record, name)
        if value is None or whole_number_problem(value) or not 0 <= value <= MAX_CREDITS:
            return f"{name} must be a whole number from 0 to {MAX_CREDITS}"
    if record.unit_price is not None and (not isinstance(record.unit_price, Decimal) or not record.unit_price.is_finite() or record.unit_price <= 0):
        return "unitPrice must be a positive number"
    for name in (
        "held_at",
        "hold_model",
        "hold_released_at",
        "hold_expires_at",
        "hold_released_by",
        "settled_at",
        "settled_by_event",
        "settled_by_request",
        "reservation",
    ):
        value = getattr(record, name)
        if value is not None and not isinstance(value, str):
            return f"{name} must be a string"
    if not isinstance(record.hold_open, bool) or not isinstance(record.settled_into_overdraft, bool):
        return "holdOpen and settledIntoOverdraft must be booleans"
    return None
