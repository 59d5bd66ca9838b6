"""Balance audit: each balance against its books (docs/ledger.md, docs/operations.md).

A balance is two figures on the Credits item: `remaining` (what the user can spend) and `held` (credits held for
reservations still open). Two things must hold, and the audit reports each kind of discrepancy by name:
  * ledger: the posted balance (remaining + held) equals the sum of the user's ledger, both tables (UserLedger's
    job postings and Ledger's operator entries and history), from an opening balance of 0;
  * holds: held equals the sum of the user's open hold reservations (unsettled jobs reserved as a hold; the Jobs
    unsettled index holds every unsettled reserved job).

A fix never guesses which side is right: the operator says which one to trust.
  * trust "balance": the posted balance is right and the ledger lacks an entry (a v1 opening balance, a write
    made behind the books): a Ledger entry explaining the difference is booked, in one transaction conditioned
    on remaining and held still being what the audit read. History is never rewritten. A holds discrepancy
    cannot be fixed this way: no ledger entry explains a hold.
  * trust "ledger": the books are right and the balance was corrupted (a stray put-item): held is set to the
    open holds and remaining to the ledger sum less them (so the posted balance is the ledger sum), conditioned
    on both still being what the audit read; no entry is booked (the ledger already explains the right value),
    and the Credits item records who restored it, why, and the figures it replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import cast

from reconciler.domain.errors import LedgerEntryTaken
from reconciler.domain.ledger import CREDIT, DEBIT, LedgerEntry, correction_ledger_id, iso_timestamp
from reconciler.domain.records import SettlementRecord
from reconciler.domain.settlement import LEGACY_HOLD, JobRecord, UnreadableJob
from reconciler.ops.operator_error import InvalidInput, OpsError
from reconciler.ops.operator_ports import AdjustmentCount, AuditStore, BalanceRestorer, NoAdjustmentCount
from reconciler.service.ports import StaleState
from reconciler.service.retrying import Backoff, with_retries

# The kinds of discrepancy: the ledger does not explain the posted balance; held is not the open holds; a ledger
# id was posted twice (its job charged twice: balance and ledger both moved, so the ledger kind alone is silent).
LEDGER_KIND, HOLDS_KIND, POSTINGS_KIND = "ledger", "holds", "postings"
# A Jobs item of a job created after the cut-off claims a reservation (written by another writer, not the hold
# function): it moved no money, but the pipeline that wrote it holds nothing it thinks it holds.
RESERVATIONS_KIND = "reservations"


@dataclass(frozen=True)
class OpenHolds:
    """A user's open holds: recorded ones (settlement records in the open-holds index), and holds made on Jobs items
    before settlement records existed (unsettled jobs created before the cut-off)."""

    total: int = 0
    jobs: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()  # records or unsettled jobs of the user that cannot be read: their holds are unknown
    # Unsettled jobs created after the cut-off whose Jobs item claims a reservation: another writer's, holding
    # nothing; named so that a person can see where a hand-written hold went.
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True)
class Discrepancy:
    user_id: str
    remaining: int | None  # None: the user has no Credits item
    ledger_sum: int
    entry_count: int
    recent: tuple[LedgerEntry, ...] = ()  # the latest few entries, newest last
    updated_at: str | None = None  # when the balance last changed
    held: int = 0
    holds: OpenHolds = field(default_factory=OpenHolds)
    version: int = 0  # the balance's version as read: a repair is conditioned on it
    duplicated: tuple[str, ...] = ()  # ledger ids the user's ledger holds more than once
    # The balance names a Ledger entry that the (eventually consistent) by-user index did not return yet: the
    # ledger as read may lack entries, so no repair may be decided on it.
    index_behind: str | None = None

    @property
    def posted(self) -> int:
        """The posted balance: what the ledger must sum to."""
        return (self.remaining or 0) + self.held

    @property
    def difference(self) -> int:
        """What the ledger lacks to explain the posted balance."""
        return self.posted - self.ledger_sum

    @property
    def held_difference(self) -> int:
        """What `held` holds beyond the open hold reservations (negative: less than they hold)."""
        return self.held - self.holds.total

    @property
    def kinds(self) -> tuple[str, ...]:
        off = (
            (LEDGER_KIND, self.difference),
            (HOLDS_KIND, self.held_difference),
            (POSTINGS_KIND, self.duplicated),
            (RESERVATIONS_KIND, self.holds.ignored),
        )
        return tuple(kind for kind, amiss in off if amiss)

    @property
    def restored_remaining(self) -> int:
        """remaining as the books say: the ledger sum less the open holds."""
        return self.ledger_sum - self.holds.total

    def summary(self) -> str:
        """One line per kind, in words."""
        lines = []
        if LEDGER_KIND in self.kinds:
            lines.append(
                f"ledger: posted {self.posted} (remaining {self.remaining if self.remaining is not None else '(none)'} + held {self.held}) "
                f"!= ledger sum {self.ledger_sum}, difference {self.difference:+d}"
            )
        if HOLDS_KIND in self.kinds:
            jobs = ", ".join(self.holds.jobs) or "none"
            lines.append(f"holds: held {self.held} != open holds {self.holds.total} (jobs: {jobs}), difference {self.held_difference:+d}")
        if self.holds.unreadable:
            lines.append(f"unreadable unsettled jobs (their holds are unknown): {', '.join(self.holds.unreadable)}")
        if self.duplicated:
            lines.append(f"postings: ledger ids posted more than once: {', '.join(self.duplicated)}")
        if self.holds.ignored:
            lines.append(
                f"reservations: Jobs items claim reservations written by another writer, not the hold function, that hold nothing: "
                f"{', '.join(self.holds.ignored)} (docs/pipeline.md: holds go through cc-reconciler-reserve-STAGE)"
            )
        return "; ".join(lines)

    def as_dict(self) -> dict:
        return {
            "userId": self.user_id,
            "kinds": list(self.kinds),
            "remaining": self.remaining,
            "held": self.held,
            "posted": self.posted,
            "ledgerSum": self.ledger_sum,
            "difference": self.difference,
            "openHolds": self.holds.total,
            "holdJobs": list(self.holds.jobs),
            "heldDifference": self.held_difference,
            "unreadableJobs": list(self.holds.unreadable),
            "duplicatedLedgerIds": list(self.duplicated),
            "ignoredReservations": list(self.holds.ignored),
        }

    def unfixable(self, trust: str) -> str | None:
        """Why this discrepancy cannot be fixed trusting `trust`, or None."""
        if self.duplicated:
            return (
                f"ledger ids {', '.join(self.duplicated)} were posted more than once (balance and ledger both moved): "
                "look at each with `reconciler job show`, and give back what was taken twice with `reconciler adjust`"
            )
        if HOLDS_KIND not in self.kinds and LEDGER_KIND not in self.kinds:
            return "nothing in the books to correct: remove the reservation attributes from the Jobs items named and fix the pipeline"
        if HOLDS_KIND not in self.kinds:
            return None
        if trust == TRUST_BALANCE:
            return f"held {self.held} is not the open holds {self.holds.total}, and no ledger entry explains a hold: use --trust ledger"
        if self.holds.unreadable:
            return f"unsettled jobs {', '.join(self.holds.unreadable)} cannot be read, so their holds are unknown: repair them first (`job show JOB`)"
        return None

    def corrections(self) -> dict[str, str]:
        """The two possible fixes, in words."""
        words = {}
        for trust in TRUSTS:
            refused = self.unfixable(trust)
            if refused:
                words[trust] = f"not possible: {refused}"
            elif trust == TRUST_LEDGER:
                held = f", held {self.held} -> {self.holds.total}" if self.held_difference else ""
                shown = self.remaining if self.remaining is not None else "(none)"
                words[trust] = f"set remaining {shown} -> {self.restored_remaining}{held} (posted = ledger sum {self.ledger_sum}); no entry booked"
            else:
                wording = "an opening-balance entry" if self.entry_count == 0 else "a correction entry"
                words[trust] = f"keep the posted balance {self.posted}; book {wording} of {self.difference:+d} (ledger becomes {self.posted})"
        return words


TRUST_BALANCE, TRUST_LEDGER = "balance", "ledger"
TRUSTS = (TRUST_LEDGER, TRUST_BALANCE)
RECENT_ENTRIES = 3


def ledger_sums(entries: Iterable[LedgerEntry]) -> dict[str, tuple[int, int]]:
    """user -> (sum of signed amounts, number of entries)."""
    sums: dict[str, tuple[int, int]] = {}
    for entry in entries:
        total, count = sums.get(entry.user_id, (0, 0))
        sums[entry.user_id] = (total + entry.signed_amount, count + 1)
    return sums


def recent_entries(entries: Iterable[LedgerEntry], limit: int = RECENT_ENTRIES) -> dict[str, tuple[LedgerEntry, ...]]:
    latest: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        latest.setdefault(entry.user_id, []).append(entry)
    return {user: tuple(sorted(items, key=lambda e: (e.timestamp, e.ledger_id))[-limit:]) for user, items in latest.items()}


def open_holds(
    records: Iterable[SettlementRecord | UnreadableJob], jobs: Iterable[JobRecord | UnreadableJob] = (), legacy_before: str = ""
) -> dict[str, OpenHolds]:
    """user -> their open holds: the open holds of settlement records, and holds made on the Jobs items of unsettled
    jobs created before the cut-off (a posted v2 reservation holds nothing; a later job's reservation attributes
    were written by another writer and hold nothing either: they are named as ignored)."""
    found: dict[str, dict[str, list]] = {}

    def of(user: str) -> dict[str, list]:
        return found.setdefault(user, {"holding": [], "unreadable": [], "ignored": []})

    for record in records:
        if isinstance(record, UnreadableJob):
            of(record.user_id)["unreadable"].append((record.job_id, 0))
        elif record.open_hold:
            of(record.user_id)["holding"].append((record.job_id, record.open_hold))
    for job in jobs:
        if isinstance(job, UnreadableJob):
            of(job.user_id)["unreadable"].append((job.job_id, 0))
        elif job.reserved_credits and not job.is_settled:
            legacy = job.legacy_reservation(legacy_before)
            if legacy is None:
                of(job.user_id)["ignored"].append((job.job_id, 0))
            elif legacy[0] == LEGACY_HOLD:
                of(job.user_id)["holding"].append((job.job_id, legacy[1]))

    def jobs_of(pairs: list) -> tuple[str, ...]:
        return tuple(sorted(job for job, _ in pairs))

    return {
        user: OpenHolds(
            sum(credits for _, credits in kinds["holding"]), jobs_of(kinds["holding"]), jobs_of(kinds["unreadable"]), jobs_of(kinds["ignored"])
        )
        for user, kinds in found.items()
    }


def duplicated_ledger_ids(entries: Iterable[LedgerEntry]) -> dict[str, tuple[str, ...]]:
    """user -> the ledger ids their ledger holds more than once (both tables; UserLedger's key holds the time, so
    only its conditions, never its key, keep a job's posting single)."""
    seen: dict[tuple[str, str], int] = {}
    for entry in entries:
        seen[(entry.user_id, entry.ledger_id)] = seen.get((entry.user_id, entry.ledger_id), 0) + 1
    duplicated: dict[str, list[str]] = {}
    for (user, ledger_id), count in seen.items():
        if count > 1:
            duplicated.setdefault(user, []).append(ledger_id)
    return {user: tuple(sorted(ids)) for user, ids in duplicated.items()}


def find_discrepancies(
    balances: Mapping[str, int | None],
    sums: Mapping[str, tuple[int, int]],
    recent: Mapping[str, tuple[LedgerEntry, ...]] | None = None,
    updated: Mapping[str, str | None] | None = None,
    held: Mapping[str, int] | None = None,
    holds: Mapping[str, OpenHolds] | None = None,
    duplicated: Mapping[str, tuple[str, ...]] | None = None,
) -> list[Discrepancy]:
    """Users whose posted balance (remaining + held; a missing balance counts as 0) differs from their ledger
    sum, whose held differs from their open holds, or whose ledger holds an id twice, by user id."""
    found = []
    held, holds, duplicated = held or {}, holds or {}, duplicated or {}
    for user_id in sorted(set(balances) | set(sums) | set(held) | set(holds) | set(duplicated)):
        total, count = sums.get(user_id, (0, 0))
        candidate = Discrepancy(
            user_id,
            balances.get(user_id),
            total,
            count,
            (recent or {}).get(user_id, ()),
            (updated or {}).get(user_id),
            held.get(user_id, 0),
            holds.get(user_id, OpenHolds()),
            duplicated=duplicated.get(user_id, ()),
        )
        if candidate.kinds:
            found.append(candidate)
    return found


def correction_entry(discrepancy: Discrepancy, reason: str, actor: str, timestamp: str) -> LedgerEntry:
    if not reason.strip():
        raise InvalidInput("a correction needs a reason (--reason)")
    difference = discrepancy.difference
    wording = "Opening balance" if discrepancy.entry_count == 0 else "Audit correction"
    return LedgerEntry(
        # One per discrepancy (the balance version it was found at): two runs that read the same books book it once.
        ledger_id=correction_ledger_id(discrepancy.user_id, discrepancy.version),
        user_id=discrepancy.user_id,
        type=CREDIT if difference > 0 else DEBIT,
        amount=abs(difference),
        description=f"{wording}: {reason}",
        reference=f"audit:{timestamp}",
        timestamp=timestamp,
        actor=actor,
    )


FIXED, WOULD_FIX, RECENTLY_CHANGED, NOT_FIXABLE, INDEX_BEHIND = "fixed", "would-fix", "recently-changed", "not-fixable", "index-behind"


@dataclass(frozen=True)
class FixResult:
    discrepancy: Discrepancy
    status: str  # FIXED, WOULD_FIX, RECENTLY_CHANGED or NOT_FIXABLE (left alone, see fix)
    trust: str = TRUST_BALANCE
    entry: LedgerEntry | None = None

    @property
    def resolved(self) -> bool:
        return self.status == FIXED

    def explain(self, min_age_seconds: int) -> str:
        d = self.discrepancy
        if self.status == RECENTLY_CHANGED:
            return (
                f"skipped: the balance changed at {d.updated_at}, less than {min_age_seconds} s ago, and the Ledger index and "
                "the unsettled-jobs index may not show the newest change yet; wait a minute and re-run, or pass --min-age 0 to include it"
            )
        if self.status == NOT_FIXABLE:
            return f"not fixed: {d.unfixable(self.trust)}"
        if self.status == INDEX_BEHIND:
            return (
                f"skipped: the balance names ledger entry {d.index_behind}, which the Ledger's by-user index does not show yet, so the "
                "ledger as read may be incomplete; re-run in a few seconds"
            )
        verb = "fixed" if self.status == FIXED else "would fix"
        if self.trust == TRUST_LEDGER:
            held = f", held {d.held} -> {d.holds.total}" if d.held_difference else ""
            return f"{verb}: remaining {d.remaining} -> {d.restored_remaining}{held} (trusting the ledger)"
        entry = cast(LedgerEntry, self.entry)  # trusting the balance books a correction entry
        return f"{verb}: booked {entry.ledger_id} {entry.signed_amount:+d} ({entry.description}) (trusting the balance)"


@dataclass
class Auditor:
    """Audits the books through the store's reads, and books a correction (trusting the balance) or restores the
    balance (trusting the ledger)."""

    store: AuditStore
    restorer: BalanceRestorer | None = None  # needed to trust the ledger
    clock: Callable[[], str] = iso_timestamp
    backoff: Callable[[], Backoff] = Backoff
    # Holds made on Jobs items before settlement records count only for jobs created before this moment.
    legacy_before: str = ""
    counted: AdjustmentCount = field(default_factory=NoAdjustmentCount)  # the stage's Adjustments metric

    def audit_user(self, user_id: str) -> Discrepancy | None:
        balance = self.store.get_balance(user_id)
        entries = list(self.store.ledger_for_user(user_id))
        found = find_discrepancies(
            {user_id: balance.remaining if balance else None},
            ledger_sums(entries),
            recent_entries(entries),
            {user_id: balance.updated_at if balance else None},
            {user_id: balance.held if balance else 0},
            open_holds(self.store.open_holds(user_id), self.store.open_reservations(user_id), self.legacy_before),
            duplicated_ledger_ids(entries),
        )
        if not found:
            return None
        last_entry = balance.last_ledger_entry if balance else None
        behind = last_entry if last_entry and last_entry not in {entry.ledger_id for entry in entries} else None
        return replace(found[0], version=balance.version if balance else 0, index_behind=behind)

    def audit_all(self, progress: Callable[[int], None] = lambda n: None) -> list[Discrepancy]:
        balances: dict[str, int | None] = {}
        updated: dict[str, str | None] = {}
        held: dict[str, int] = {}
        for balance in self.store.scan_balances():
            balances[balance.user_id] = balance.remaining
            updated[balance.user_id] = balance.updated_at
            held[balance.user_id] = balance.held
            progress(1)
        entries = []
        for entry in self.store.scan_ledger():
            entries.append(entry)
            progress(1)
        jobs: list[JobRecord | UnreadableJob] = []
        for job in self.store.open_reservations():
            jobs.append(job)
            progress(1)
        records = []
        for record in self.store.open_holds():
            records.append(record)
            progress(1)
        holds = open_holds(records, jobs, self.legacy_before)
        return find_discrepancies(balances, ledger_sums(entries), recent_entries(entries), updated, held, holds, duplicated_ledger_ids(entries))

    def fix(self, user_id: str, reason: str, actor: str, dry_run: bool, min_age: timedelta, trust: str = TRUST_BALANCE) -> FixResult | None:
        """Corrects one user from a fresh, per-user read; optimistic on the balance that read saw."""
        if trust not in TRUSTS:
            raise InvalidInput(f"trust must be one of {', '.join(TRUSTS)}, got {trust!r}")
        if trust == TRUST_LEDGER and self.restorer is None:
            raise OpsError("trusting the ledger needs a balance restorer")
        if not reason.strip():
            raise InvalidInput("a correction needs a reason (--reason)")

        def attempt() -> FixResult | None:
            discrepancy, now = self.audit_user(user_id), self.clock()
            if discrepancy is None:
                return None
            # The Ledger index and the unsettled-jobs index are eventually consistent: an entry or a reservation
            # committed a moment ago may not be in the query yet, and "fixing" that would double it. Leave fresh
            # balances alone (every posting and every hold changes the balance's updatedAt in its transaction).
            if discrepancy.updated_at and _parse(discrepancy.updated_at) > _parse(now) - min_age:
                return FixResult(discrepancy, RECENTLY_CHANGED, trust)
            if discrepancy.index_behind:
                return FixResult(discrepancy, INDEX_BEHIND, trust)
            if discrepancy.unfixable(trust):
                return FixResult(discrepancy, NOT_FIXABLE, trust)
            return self._repair(discrepancy, trust, reason, actor, now, dry_run)

        result, _ = with_retries(attempt, self.backoff())
        if result is not None and result.status == FIXED:
            self.counted.count(1)  # a correction entry booked, or a balance restored: either changes the books
        return result

    def _repair(self, discrepancy: Discrepancy, trust: str, reason: str, actor: str, now: str, dry_run: bool) -> FixResult:
        """The one write of a fix, conditioned on the balance as read, version included: of two runs that read the
        same books, one writes and the other's write is refused (StaleState), so it audits again and finds them
        clean. A correction's id is its discrepancy's too (correction_entry)."""
        d = discrepancy
        if trust == TRUST_LEDGER:
            if not dry_run:
                restorer = cast(BalanceRestorer, self.restorer)  # trusting the ledger needs one: checked by fix()
                restorer.restore(d.user_id, d.remaining, d.held, d.restored_remaining, d.holds.total, now, actor, reason, d.version)
            return FixResult(d, WOULD_FIX if dry_run else FIXED, trust)
        entry = correction_entry(d, reason, actor, now)
        if not dry_run:
            try:
                self.store.commit_correction(entry, d.remaining, d.held, d.version)
            except LedgerEntryTaken:  # another run booked this very discrepancy: audit again
                raise StaleState(f"correction {entry.ledger_id} was booked by another run") from None
        return FixResult(d, WOULD_FIX if dry_run else FIXED, trust, entry)


def _parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
