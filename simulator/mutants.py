"""`make mutants`: realistic one-line bugs of the product, each applied to a copy of the source tree and run against
the simulator's seeds, with a table of which are caught and after how many seeds (docs/mutants.md).

A mutation is an exact text replacement in one file of the source that must match exactly once: one that no longer
applies (the code moved) fails the tool loudly, so the list stays true as the code changes
(tests/integration/simulator/test_mutants.py checks every one against the current source).

Each mutant runs in a temporary copy of the checkout (the files git knows, as they are in the working tree), never
in the checkout: `python -m simulator.sim --first F --seeds N --digest`, started in the copy with the copy's
`runtime/` and root first on PYTHONPATH (ahead of the editable install's path to the checkout), and checked to
import `reconciler` and `simulator` from the copy before it runs. The tool reads the digest's line per seed and
stops the run at its first failing seed. That seed is then run once on an unmutated copy (the control, once per
seed): the mutant counts as caught there only if the unmutated code passes the seed, or fails it otherwise; a seed
the unmutated code fails the same way is skipped and the mutant's run goes on after it. A mutant the simulator does
not catch within the budget is run against the tests of its module (pytest -x on the copy), and the first test that
fails is recorded.

    python -m simulator.mutants                  # every mutation, the simulator's default 10,000 seeds each, then docs/mutants.md
    python -m simulator.mutants --seeds 2000     # a smaller budget (stated in the table's header)
    python -m simulator.mutants --only NAME ...  # some mutations (the table is written only for the whole list)
    python -m simulator.mutants --check          # only check that every mutation applies exactly once
    python -m simulator.mutants --list
"""

from __future__ import annotations

import argparse
import datetime
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SEEDS = 10_000  # the simulator's default (simulator/sim.py, make sim)
MAX_JOBS = 2  # the machine has two cores and is shared: two mutants at a time at most

DOMAIN, SERVICE, ADAPTERS, OPERATORS, BALANCE_EVENTS = "domain", "service", "adapters", "operator commands", "balance events"


@dataclass(frozen=True)
class Mutation:
    name: str
    area: str
    path: str  # relative to the repository root
    old: str  # must occur exactly once in the file
    new: str
    breaks: str  # what the bug does, in a line
    tests: tuple[str, ...]  # the tests of its module: what `make test` runs that should catch it


class MutationDoesNotApply(Exception):
    """The mutation's text is not in its file exactly once: the code moved; update the mutation."""


RT = "runtime/reconciler/"
T_DOMAIN, T_SERVICE, T_REPOSITORY, T_OPS = "tests/unit/domain", "tests/integration/service", "tests/integration/repository", "tests/unit/ops"
T_SERVICE_ON_FAKES, T_CONTRACT = "tests/unit/service", "tests/integration/contract"
T_HANDLERS, T_CLI = "tests/integration/handlers", "tests/integration/cli"

MUTATIONS: tuple[Mutation, ...] = (
    # --- domain --------------------------------------------------------------------------------------------------
    Mutation(
        "cost-truncated",
        DOMAIN,
        RT + "domain/pricing.py",
        "return int(product.to_integral_value(rounding=ROUND_CEILING))",
        "return int(product)",
        "a render's cost is cut to whole credits instead of rounded up (2.5 s at 1 credit/s costs 2)",
        (T_DOMAIN + "/test_pricing.py", T_DOMAIN, T_SERVICE),
    ),
    Mutation(
        "duration-rounded-to-whole-seconds",
        DOMAIN,
        RT + "domain/events.py",
        "return storable_decimal(field, seconds)",
        "return storable_decimal(field, seconds.to_integral_value())",
        "an event's duration is rounded to whole seconds when parsed (2.5 s read as 2 s)",
        (T_DOMAIN + "/test_events.py", T_DOMAIN, T_SERVICE),
    ),
    Mutation(
        "zero-seconds-accepted",
        DOMAIN,
        RT + "domain/events.py",
        "if seconds <= 0:",
        "if seconds < 0:",
        "a render of 0 seconds is accepted (and charged nothing) instead of refused",
        (T_DOMAIN + "/test_events.py", T_DOMAIN, T_SERVICE),
    ),
    Mutation(
        "ids-bounded-by-the-sort-key-alone",
        DOMAIN,
        RT + "domain/validation.py",
        "if size > MAX_ID_BYTES:",
        "if size > SORT_KEY_MAX_BYTES:",
        "an id is bounded by the sort key's 1,024 bytes, leaving no room for what wraps it in UserLedger's sort key",
        (T_DOMAIN + "/test_identifiers.py", T_DOMAIN, T_SERVICE + "/test_edges_of_ids.py", T_SERVICE),
    ),
    Mutation(
        "numbers-without-dynamodbs-range",
        DOMAIN,
        RT + "domain/validation.py",
        "if not stored.is_finite() or (stored and not DYNAMODB_SMALLEST_MAGNITUDE <= stored.copy_abs() <= DYNAMODB_LARGEST_MAGNITUDE):",
        "if not stored.is_finite():",
        "durations validated by the decimal context alone: 1E-131 and 1E+126, which DynamoDB refuses, get through",
        (T_DOMAIN + "/test_numbers.py", T_DOMAIN, T_SERVICE),
    ),
    Mutation(
        "a-duplicate-of-another-event-is-a-conflict",
        DOMAIN,
        RT + "domain/settlement.py",
        "if facts.settled_as == event.kind or event.event_id in facts.conflict_event_ids:",
        "if facts.settled_by_event == event.event_id or event.event_id in facts.conflict_event_ids:",
        "a job settled by another event of the same kind (the timer scan's, a redelivery under a new id) records a conflict",
        (T_DOMAIN + "/test_settlement.py", T_DOMAIN, T_SERVICE),
    ),
    Mutation(
        "the-hold-price-ignored",
        DOMAIN,
        RT + "domain/settlement.py",
        "        return record.unit_price\n",
        "        return prices.price_of(event.model)\n",
        "a held render is charged at the price book's price when it settles, not at the price of its hold",
        (T_DOMAIN + "/test_settlement.py", T_DOMAIN, T_SERVICE),
    ),
    Mutation(
        "a-released-hold-also-refunded",
        DOMAIN,
        RT + "domain/settlement.py",
        "if not refunded or held:  # a released hold posts nothing: no money moved",
        "if not refunded:  # a released hold posts nothing: no money moved",
        "a failed held job releases its hold and also posts a refund of it: the credits come back twice",
        (T_DOMAIN + "/test_settlement.py", T_DOMAIN, T_SERVICE),
    ),
    Mutation(
        "a-held-render-posts-a-release",
        DOMAIN,
        RT + "domain/settlement.py",
        "if reserved and not held:  # a posted (v2) reservation is undone by a posting",
        "if reserved:  # a posted (v2) reservation is undone by a posting",
        "a held render posts a release credit as a v2 reservation does, besides releasing its hold",
        (T_DOMAIN + "/test_settlement.py", T_DOMAIN, T_SERVICE),
    ),
    Mutation(
        "legacy-holds-settled-as-posted",
        DOMAIN,
        RT + "domain/settlement.py",
        "held = reservation in (RECORDED_HOLD, LEGACY_HOLD)",
        "held = reservation == RECORDED_HOLD",
        "a hold made on a Jobs item before records is settled as a posted v2 reservation (a release posting, held untouched)",
        (T_DOMAIN + "/test_settlement.py", T_DOMAIN, T_SERVICE),
    ),
    Mutation(
        "reservations-counted-after-the-cut-off",
        DOMAIN,
        RT + "domain/settlement.py",
        "if not self.reserved_credits or self.created_at is None or not self.created_at < legacy_before:",
        "if not self.reserved_credits or self.created_at is None:",
        "reservation attributes on a Jobs item count whatever the job's age: another writer's hand-written hold moves money",
        (T_DOMAIN + "/test_settlement.py", T_DOMAIN, T_SERVICE),
    ),
    Mutation(
        "a-released-hold-is-still-open",
        DOMAIN,
        RT + "domain/records.py",
        "return self.held_credits if self.hold_open and not self.is_settled else 0",
        "return self.held_credits if not self.is_settled else 0",
        "a hold the pipeline released still counts as open: its job's settlement releases it a second time",
        (T_DOMAIN, T_SERVICE),
    ),
    Mutation(
        "overdraft-at-zero",
        DOMAIN,
        RT + "domain/settlement.py",
        "return after is not None and self.balance_delta < 0 and after < 0",
        "return after is not None and self.balance_delta < 0 and after <= 0",
        "a debit that leaves the balance at exactly 0 is decided an overdraft",
        (T_DOMAIN + "/test_settlement.py", T_DOMAIN, T_SERVICE),
    ),
    Mutation(
        "zero-credit-amounts-accepted",
        DOMAIN,
        RT + "domain/validation.py",
        "if number == 0 or abs(number) > MAX_CREDITS or (number < 0 and not allow_negative):",
        "if abs(number) > MAX_CREDITS or (number < 0 and not allow_negative):",
        "a hold or an adjustment of 0 credits is accepted",
        (T_DOMAIN, T_SERVICE, T_OPS),
    ),
    # --- balance events ------------------------------------------------------------------------------------------
    Mutation(
        "exhausted-only-below-zero",
        BALANCE_EVENTS,
        RT + "domain/crossings.py",
        "EXHAUSTED: balance <= 0,",
        "EXHAUSTED: balance < 0,",
        "a balance that reaches exactly 0 is not exhausted: credits.exhausted is never published for it",
        (T_DOMAIN + "/test_crossings.py", T_SERVICE_ON_FAKES + "/test_balance_events_on_fakes.py", T_HANDLERS + "/test_balance_stream.py"),
    ),
    Mutation(
        "low-at-the-threshold",
        BALANCE_EVENTS,
        RT + "domain/crossings.py",
        "LOW: balance < thresholds.low,",
        "LOW: balance <= thresholds.low,",
        "a balance exactly at the low threshold counts as low",
        (T_DOMAIN + "/test_crossings.py", T_SERVICE_ON_FAKES + "/test_balance_events_on_fakes.py", T_HANDLERS + "/test_balance_stream.py"),
    ),
    Mutation(
        "markers-keyed-by-position",
        BALANCE_EVENTS,
        RT + "service/balance_event_publishing.py",
        "key = balance_event_key(sequence, crossing.detail_type)",
        "key = balance_event_key(sequence, str(found.index(crossing)))",
        "a crossing's marker is keyed by its place in the list: a retry after a threshold deploy skips a crossing as published",
        (T_SERVICE_ON_FAKES + "/test_balance_events_on_fakes.py", T_HANDLERS + "/test_balance_stream.py"),
    ),
    Mutation(
        "ledger-explains-remaining-not-posted",
        BALANCE_EVENTS,
        RT + "service/balance_event_publishing.py",
        "posted_delta = after + _held(new) - (before or 0) - _held(old)",
        "posted_delta = after - (before or 0)",
        "an event's ledgerEntriesExact compares the entries with the change of remaining, not of the posted balance",
        (T_SERVICE_ON_FAKES + "/test_balance_events_on_fakes.py", T_HANDLERS + "/test_balance_stream.py"),
    ),
    Mutation(
        "stream-records-after-a-failure-not-held-back",
        BALANCE_EVENTS,
        RT + "handlers/balance_stream.py",
        "            self.failed = True\n",
        "",
        "the stream function goes on with a batch's records after one failed: later crossings publish before the retried one",
        (T_HANDLERS + "/test_balance_stream.py", T_SERVICE_ON_FAKES + "/test_balance_events_on_fakes.py"),
    ),
    # --- service -------------------------------------------------------------------------------------------------
    Mutation(
        "the-returned-balance-is-ignored",
        SERVICE,
        RT + "service/event_settlement.py",
        "        except BalanceChanged as changed:\n            known[0] = changed.balance\n        try:",
        "        except BalanceChanged as changed:\n            pass\n        try:",
        "the decision made again after a failed balance guard ignores the balance the failure returned",
        (T_SERVICE_ON_FAKES + "/test_service_on_fakes.py", T_SERVICE),
    ),
    Mutation(
        "retries-read-the-record-eventually-consistently",
        SERVICE,
        RT + "service/event_settlement.py",
        "        record = self.store.load_record(job_id)\n        if record is not None and record.is_settled:\n            return record, UNREAD",
        "        record = self.store.load_record(job_id, consistent=False)\n"
        "        if record is not None and record.is_settled:\n            return record, UNREAD",
        "a settlement's retry reads the record eventually consistently as its first attempt did: an earlier version again",
        (T_SERVICE_ON_FAKES + "/test_service_on_fakes.py", T_SERVICE),
    ),
    Mutation(
        "the-scan-ignores-its-grace-period",
        SERVICE,
        RT + "service/timer_scan.py",
        "settle_before = iso_timestamp(now - self.grace)",
        "settle_before = iso_timestamp(now)",
        "the timer scan settles a job whose status changed within the grace period, while its event may be in flight",
        (T_SERVICE + "/test_timer_scan.py", T_SERVICE),
    ),
    Mutation(
        "ambiguous-writes-not-retried",
        SERVICE,
        RT + "service/retrying.py",
        "except (StaleState, Contention, AmbiguousWrite) as error:",
        "except (StaleState, Contention) as error:",
        "a write whose answer was lost (a timeout) raises out of the handler instead of reading again",
        (T_SERVICE + "/test_faults.py", T_SERVICE),
    ),
    Mutation(
        "a-hold-retry-for-fewer-credits-is-in-place",
        SERVICE,
        RT + "domain/holds.py",
        "if record.held_credits == request.credits:",
        "if record.held_credits >= request.credits:",
        "a hold asked for fewer credits than the job holds answers already-held instead of refusing",
        (T_SERVICE, T_HANDLERS + "/test_hold_api.py"),
    ),
    # --- adapters ------------------------------------------------------------------------------------------------
    Mutation(
        "the-hold-guard-is-off-by-one",
        ADAPTERS,
        RT + "repository/dynamodb.py",
        '"covers": "remaining >= :amount",',
        '"covers": "remaining > :amount",',
        "a hold (or a covered debit) needs one credit more than it takes: a balance that covers it exactly is refused",
        (T_REPOSITORY, T_CONTRACT),
    ),
    Mutation(
        "releases-without-the-held-guard",
        ADAPTERS,
        RT + "repository/dynamodb.py",
        "        if held_delta < 0:\n",
        "        if held_delta > 0:\n",
        "a hold's release is not conditioned on held >= released: a job claiming a hold nobody paid gives credits away",
        (T_REPOSITORY, T_CONTRACT, T_SERVICE),
    ),
    Mutation(
        "the-type-guard-without-parentheses",
        ADAPTERS,
        RT + "repository/dynamodb.py",
        'return f"(attribute_not_exists({attribute}) OR attribute_type({attribute}, :number))"',
        'return f"attribute_not_exists({attribute}) OR attribute_type({attribute}, :number)"',
        "the balance's type guard loses its parentheses: a missing `remaining` satisfies the whole condition, guards included",
        (T_REPOSITORY, T_CONTRACT, T_SERVICE),
    ),
    Mutation(
        "settlement-record-put-without-its-condition",
        ADAPTERS,
        RT + "repository/dynamodb.py",
        '"Item": to_item(item), "ConditionExpression": "attribute_not_exists(jobId)"}}\n        values',
        '"Item": to_item(item)}}\n        values',
        "a new settlement record is put without attribute_not_exists(jobId): a settlement overwrites a record written since",
        (T_REPOSITORY, T_CONTRACT, T_SERVICE),
    ),
    Mutation(
        "a-first-attempt-ignores-a-legacy-settlement",
        ADAPTERS,
        RT + "repository/dynamodb.py",
        'unclaimed = "userId = :user AND attribute_not_exists(settledAs)"',
        'unclaimed = "userId = :user"',
        "an unread Jobs item is not required to be unsettled: a job settled before records can be settled again",
        (T_REPOSITORY, T_CONTRACT, T_SERVICE),
    ),
    Mutation(
        "any-balance-failure-taken-for-a-balance-change",
        ADAPTERS,
        RT + "repository/dynamodb.py",
        'if failed == {BALANCE} and reasons.count("ConditionalCheckFailed") == 1:',
        "if BALANCE in failed:",
        "a transaction whose job condition failed along with the balance's is taken for a balance change alone",
        (T_REPOSITORY, T_CONTRACT, T_SERVICE),
    ),
    Mutation(
        "transaction-conflicts-not-contention",
        ADAPTERS,
        RT + "repository/dynamodb.py",
        '_CONTENTION_REASONS = {"TransactionConflict", "ThrottlingError",',
        '_CONTENTION_REASONS = {"ThrottlingError",',
        "a transaction cancelled for a conflict with another one raises instead of being retried",
        (T_REPOSITORY, T_CONTRACT, T_SERVICE),
    ),
    Mutation(
        "conflicts-recorded-twice",
        ADAPTERS,
        RT + "repository/dynamodb.py",
        'ConditionExpression="settledAs = :settled AND NOT contains(conflictEventIds, :id)",',
        'ConditionExpression="settledAs = :settled",',
        "recording a conflict is not idempotent per event: a redelivered conflicting event counts twice",
        (T_REPOSITORY, T_CONTRACT, T_SERVICE),
    ),
    Mutation(
        "dead-letters-escape-every-non-ascii-character",
        ADAPTERS,
        RT + "repository/sqs_dead_letters.py",
        'separators=(",", ":"), ensure_ascii=False)), {}',
        'separators=(",", ":"), ensure_ascii=True)), {}',
        "a dead letter's body escapes every non-ASCII character: CJK text triples and a large event is cut",
        (T_SERVICE + "/test_dead_letter_sizes.py", T_CONTRACT, T_SERVICE),
    ),
    # --- operator commands: adjust, audit and its fix, DLQ replay --------------------------------------------------
    Mutation(
        "the-audit-difference-has-the-wrong-sign",
        OPERATORS,
        RT + "ops/audit.py",
        "return self.posted - self.ledger_sum",
        "return self.ledger_sum - self.posted",
        "the audit reports what the ledger has beyond the balance, instead of what it lacks",
        (T_OPS + "/test_audit.py", T_OPS, T_CLI + "/test_scan_audit.py"),
    ),
    Mutation(
        "a-correction-booked-with-the-wrong-sign",
        OPERATORS,
        RT + "ops/audit.py",
        "type=CREDIT if difference > 0 else DEBIT,",
        "type=DEBIT if difference > 0 else CREDIT,",
        "audit --fix trusting the balance books its correction the wrong way: the difference doubles",
        (T_OPS + "/test_audit.py", T_OPS, T_CLI + "/test_scan_audit.py"),
    ),
    Mutation(
        "posted-v2-reservations-counted-as-holds",
        OPERATORS,
        RT + "ops/audit.py",
        "            elif legacy[0] == LEGACY_HOLD:\n",
        "            else:\n",
        "the audit counts a v2 reservation (posted, holding nothing) as an open hold",
        (T_OPS + "/test_audit.py", T_OPS, T_CLI + "/test_scan_audit.py"),
    ),
    Mutation(
        "a-balance-fix-on-a-lagging-index",
        OPERATORS,
        RT + "ops/audit.py",
        "if discrepancy.index_behind:",
        "if discrepancy.index_behind and trust == TRUST_LEDGER:",
        "audit --fix trusting the balance decides on a Ledger index that does not show the balance's last entry yet",
        (T_OPS + "/test_audit.py", T_OPS, T_SERVICE + "/test_concurrent_repairs.py"),
    ),
    Mutation(
        "repairs-not-conditioned-on-the-version",
        OPERATORS,
        RT + "repository/dynamodb_operations.py",
        'return f"remaining = :seen AND {held_as_seen} AND {version_as_seen}", values',
        'return f"remaining = :seen AND {held_as_seen}", {k: v for k, v in values.items() if k != ":version_seen"}',
        "an audit repair is conditioned on remaining and held only: a correction moves neither, so two repairs both apply",
        (T_OPS, T_SERVICE + "/test_concurrent_repairs.py", T_CONTRACT),
    ),
    Mutation(
        "a-restore-keeps-the-held-figure",
        OPERATORS,
        RT + "repository/dynamodb_operations.py",
        '":held": held,',
        '":held": held_seen,',
        "audit --fix trusting the ledger sets remaining but writes back the held figure it read, not the open holds",
        (T_OPS, T_SERVICE + "/test_concurrent_repairs.py", T_CONTRACT),
    ),
    Mutation(
        "adjustments-ignore-the-amount-on-a-reused-reference",
        OPERATORS,
        RT + "ops/adjustments.py",
        "if existing.user_id != planned.user_id or existing.signed_amount != planned.signed_amount:",
        "if existing.user_id != planned.user_id:",
        "an adjustment whose reference was used for another amount answers already-applied instead of refusing",
        (T_OPS, T_CLI + "/test_runbook_commands.py", T_CLI),
    ),
    Mutation(
        "corrected-replay-ids-not-bounded",
        OPERATORS,
        RT + "ops/dead_letter_replay.py",
        'event["id"] = derived_identifier("corrected:", original_id)',
        'event["id"] = f"corrected:{original_id}"',
        "a corrected replay's id is the prefix and the original id, too long for an id when the original has the maximum length",
        (T_OPS + "/test_dead_letters.py", T_OPS, T_CLI + "/test_dlq.py"),
    ),
    Mutation(
        "a-re-dead-lettered-replay-left-in-the-dlq",
        OPERATORS,
        RT + "ops/dead_letter_replay.py",
        "        # The function dead-lettered it again: that new copy is in place, so this one can go, and\n"
        "        # the copy is not tried again in this run.\n        queue.delete(letter.receipt_handle)",
        "        # The function dead-lettered it again: that new copy is in place, so this one can go, and\n"
        "        # the copy is not tried again in this run.\n        to_release.append(letter.receipt_handle)",
        "a replay the function dead-letters again leaves the old message in the DLQ beside its new copy",
        (T_OPS + "/test_dead_letters.py", T_OPS, T_CLI + "/test_dlq.py"),
    ),
)


# --- applying a mutation to a copy ---------------------------------------------------------------------------------


def apply(mutation: Mutation, root: Path) -> None:
    """Writes the mutation into `root` (a copy); MutationDoesNotApply unless its text occurs exactly once."""
    path = root / mutation.path
    if not path.is_file():
        raise MutationDoesNotApply(f"{mutation.name}: {mutation.path} does not exist")
    text = path.read_text(encoding="utf-8")
    count = text.count(mutation.old)
    if count != 1:
        raise MutationDoesNotApply(f"{mutation.name}: its text occurs {count} times in {mutation.path}, not once: {mutation.old!r}")
    path.write_text(text.replace(mutation.old, mutation.new), encoding="utf-8")


def check_all(root: Path = REPO_ROOT, mutations: Iterable[Mutation] = MUTATIONS) -> list[str]:
    """Every mutation that does not apply exactly once to the source under `root` (read only), as messages."""
    problems = []
    for mutation in mutations:
        path = root / mutation.path
        count = path.read_text(encoding="utf-8").count(mutation.old) if path.is_file() else 0
        if count != 1:
            problems.append(f"{mutation.name}: its text occurs {count} times in {mutation.path}, not once")
        if mutation.old == mutation.new:
            problems.append(f"{mutation.name}: changes nothing")
        problems += [f"{mutation.name}: its test path {test} does not exist" for test in mutation.tests if not (root / test.split("::")[0]).exists()]
    return problems


def source_files(root: Path) -> list[str]:
    """The checkout's files as git knows them (tracked, and untracked ones it does not ignore), as they are now."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],  # noqa: S607 - git from PATH, as make's
        cwd=root,
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return [name for name in listed.split("\0") if name and (root / name).is_file()]


def copy_tree(root: Path, destination: Path) -> Path:
    for name in source_files(root):
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)
    return destination


def environment(copy: Path) -> dict[str, str]:
    """The copy's runtime and root ahead of everything else: the editable install's .pth, which points at the
    checkout, is read later, from site-packages."""
    env = {key: value for key, value in os.environ.items() if key not in ("SEED", "SEEDS", "COVERAGE_PROCESS_START")}
    env["PYTHONPATH"] = os.pathsep.join([str(copy / "runtime"), str(copy), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def imported_from(copy: Path) -> dict[str, str]:
    """Where a process started as the tool starts the simulator imports `reconciler` and `simulator` from."""
    probe = "import reconciler, simulator; print(reconciler.__file__); print(simulator.__file__)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=copy, env=environment(copy), capture_output=True, text=True, check=True).stdout
    reconciler_file, simulator_file = out.split()
    return {"reconciler": reconciler_file, "simulator": simulator_file}


def assert_runs_the_copy(copy: Path) -> None:
    found = imported_from(copy)
    for package, location in found.items():
        if not Path(location).resolve().is_relative_to(copy.resolve()):
            raise RuntimeError(f"the copy at {copy} would import {package} from {location}, not from the copy")


# --- running the simulator on a copy ---------------------------------------------------------------------------------

_DIGEST = re.compile(r"^seed (\d+): (ok|failed \d+ [0-9a-f]+);")


@dataclass
class SeedRun:
    seeds_run: int  # seeds whose verdict was read
    failed_seed: int | None = None
    verdict: str = ""  # the digest's verdict of the failed seed: "failed N HASH"
    failure: str = ""  # the first failure message of that seed
    timed_out: bool = False
    error: str = ""  # the simulator ended before its seeds without a failing seed (a crash)


def run_seeds(copy: Path, first: int, count: int, deadline: float, log: Path) -> SeedRun:
    """`python -m simulator.sim --first FIRST --seeds COUNT --digest` in the copy, stopped at its first failing seed."""
    command = [sys.executable, "-m", "simulator.sim", "--first", str(first), "--seeds", str(count), "--digest"]
    with log.open("w", encoding="utf-8") as stderr:
        process = subprocess.Popen(command, cwd=copy, env=environment(copy), stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True)
        lines: queue.Queue[str | None] = queue.Queue()

        stdout = process.stdout

        def read() -> None:
            for line in stdout or ():
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        result = SeedRun(0)
        try:
            while True:
                try:
                    line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
                except queue.Empty:
                    result.timed_out = time.monotonic() >= deadline
                    if result.timed_out:
                        break
                    continue
                if line is None:
                    break
                match = _DIGEST.match(line)
                if not match:
                    continue
                result.seeds_run += 1
                if match.group(2) != "ok":
                    result.failed_seed, result.verdict = int(match.group(1)), match.group(2)
                    _await_failure_message(log, process)
                    break
        finally:
            _stop(process)
    if result.failed_seed is not None:
        result.failure = first_failure(log.read_text(encoding="utf-8", errors="replace"))
    elif not result.timed_out and result.seeds_run < count:
        result.error = f"the simulator stopped after {result.seeds_run} of {count} seeds (exit {process.returncode}): " + _tail(log)
    return result


def _await_failure_message(log: Path, process: subprocess.Popen, seconds: float = 30) -> None:
    """The simulator prints a seed's digest, then its failures (on stderr): give it the moment it needs."""
    until = time.monotonic() + seconds
    while time.monotonic() < until and process.poll() is None:
        if "FAILED " in log.read_text(encoding="utf-8", errors="replace"):
            time.sleep(1)  # the rest of the message (one print, written line by line)
            return
        time.sleep(0.2)


def _stop(process: subprocess.Popen) -> None:
    """Ends the simulator this tool started (its own process group: the CDK synthesis' node child too)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass
    else:
        process.wait()


def first_failure(stderr: str) -> str:
    """The first failure message the simulator printed for its failing seed (after the seed's tasks)."""
    if "FAILED " not in stderr:
        return ""
    lines = stderr.split("FAILED ", 1)[1].splitlines()[1:]
    for line in lines:
        if line.startswith("  ") and not re.match(r"  (setup|task|damage|expiry|credits|  )", line):
            return line.strip()
    return ""


def _tail(log: Path, characters: int = 300) -> str:
    return " ".join(log.read_text(encoding="utf-8", errors="replace")[-characters:].split())


# --- one mutant ------------------------------------------------------------------------------------------------------


@dataclass
class Result:
    mutation: Mutation
    caught: bool = False
    caught_at: int | None = None  # the seed
    seeds_run: int = 0  # seeds run up to and including the one that caught it
    failure: str = ""
    skipped_seeds: list[int] = field(default_factory=list)  # seeds the unmutated code fails the same way
    test: str | None = None  # the first failing test, for a mutant the simulator did not catch
    tests_ran: bool = False
    note: str = ""
    seconds: float = 0.0


class Controls:
    """Each seed's verdict on the unmutated source, run once per seed, in its own copy."""

    def __init__(self, root: Path, workdir: Path) -> None:
        self.root, self.workdir = root, workdir
        self.copy: Path | None = None
        self.verdicts: dict[int, str] = {}
        self.lock = threading.Lock()

    def verdict(self, seed: int) -> str:
        with self.lock:  # a second worker asking for the same seed waits for it: never more than two processes
            if seed not in self.verdicts:
                if self.copy is None:
                    self.copy = copy_tree(self.root, Path(tempfile.mkdtemp(prefix="control-", dir=self.workdir)))
                    assert_runs_the_copy(self.copy)
                run = run_seeds(self.copy, seed, 1, time.monotonic() + 1800, self.copy / f"control-{seed}.log")
                if run.seeds_run != 1:
                    raise RuntimeError(f"the unmutated source did not run seed {seed}: {run.error or 'timed out'}")
                self.verdicts[seed] = run.verdict or "ok"
            return self.verdicts[seed]


def run_mutant(
    mutation: Mutation,
    *,
    seeds: int,
    controls: Controls,
    root: Path = REPO_ROOT,
    workdir: Path | None = None,
    timeout: float = 4 * 3600,
    run_tests: bool = True,
    keep: bool = False,
) -> Result:
    """Applies one mutation to a fresh copy and runs the simulator's seeds 0..seeds-1 until one catches it; if none
    does, its module's tests."""
    started = time.monotonic()
    result = Result(mutation)
    copy = copy_tree(root, Path(tempfile.mkdtemp(prefix=f"mutant-{mutation.name}-", dir=workdir)))
    try:
        apply(mutation, copy)
        assert_runs_the_copy(copy)
        first, deadline = 0, started + timeout
        while first < seeds:
            run = run_seeds(copy, first, seeds - first, deadline, copy / f"sim-{first}.log")
            if run.error:
                result.note = run.error
                break
            if run.failed_seed is None:
                result.seeds_run = first + run.seeds_run
                if run.timed_out:
                    result.note = f"timed out after {result.seeds_run} seeds"
                break
            seed = run.failed_seed
            if controls.verdict(seed) == run.verdict:  # the unmutated code fails this seed the same way
                result.skipped_seeds.append(seed)
                first = seed + 1
                continue
            result.caught, result.caught_at, result.seeds_run, result.failure = True, seed, seed + 1, run.failure
            break
        else:
            result.seeds_run = seeds
        if not result.caught and run_tests:
            result.tests_ran = True
            result.test = first_failing_test(copy, mutation.tests)
    finally:
        if not keep:
            shutil.rmtree(copy, ignore_errors=True)
    result.seconds = time.monotonic() - started
    return result


def first_failing_test(copy: Path, tests: tuple[str, ...], timeout: float = 1800) -> str | None:
    """pytest -x on the copy's tests of the mutated module: the first test that fails, or None if all pass."""
    paths = list(dict.fromkeys(test for test in tests if (copy / test.split("::")[0]).exists()))
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-o", "addopts=-ra --strict-markers", *paths]
    try:
        done = subprocess.run(command, cwd=copy, env=environment(copy), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"(pytest timed out after {timeout:.0f} s)"
    if done.returncode == 0:
        return None
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", done.stdout, re.MULTILINE)
    return failed[0] if failed else f"(pytest exit {done.returncode}: {' '.join(done.stdout.split()[-12:])})"


# --- the table -------------------------------------------------------------------------------------------------------


def table(results: list[Result], *, seeds: int, command: str, started: datetime.datetime, elapsed: float, jobs: int) -> str:
    caught = [r for r in results if r.caught]
    by_tests = [r for r in results if not r.caught and r.test]
    neither = [r for r in results if not r.caught and not r.test]
    skipped = sorted({seed for r in results for seed in r.skipped_seeds})
    lines = [
        "# Mutants: realistic bugs, and whether the simulator catches them",
        "",
        f"Generated by `{command}` on {started:%Y-%m-%d} ({started:%H:%M} UTC), in {elapsed / 60:.0f} minutes with {jobs} "
        f"mutants at a time; `simulator/mutants.py` holds the mutations and says how they run (`make mutants`).",
        "",
        f"**Seeds budget: {seeds:,} seeds per mutant** (seeds 0 to {seeds - 1:,}; `make sim`'s default is {DEFAULT_SEEDS:,}), each run "
        "stopped at its first failing seed. A mutant is caught at a seed when its run fails there and the unmutated source, "
        "run on that seed alone, passes it (or fails it otherwise)."
        + (f" Seeds the unmutated source fails the same way were skipped: {', '.join(map(str, skipped))}." if skipped else ""),
        "A mutant the simulator did not catch within the budget was run against the tests of its module (`pytest -x` on the copy).",
        "",
        f"**{len(results)} mutations: {len(caught)} caught by the simulator within {seeds:,} seeds "
        f"({100 * len(caught) / max(len(results), 1):.0f} %), {len(by_tests)} more caught by the tests only, {len(neither)} caught by neither.**",
        "",
        "| # | mutation | file | what it breaks | caught by the simulator | seed that caught it (seeds run) | test that caught it "
        "| the simulator's first failure |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for number, r in enumerate(results, 1):
        m = r.mutation
        where = f"{r.caught_at} ({r.seeds_run})" if r.caught else f"not within {r.seeds_run:,}" + (f" ({r.note})" if r.note else "")
        test = "" if r.caught else (f"`{r.test}`" if r.test else "none" if r.tests_ran else "not run")
        lines.append(
            f"| {number} | `{m.name}` | `{m.path.removeprefix('runtime/')}` | {_cell(m.breaks)} | {'yes' if r.caught else '**no**'} | "
            f"{where} | {test} | {_cell(r.failure[:160])} |"
        )
    lines.append("")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# --- command line ------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator.mutants", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help=f"seeds budget per mutant (default {DEFAULT_SEEDS:,})")
    parser.add_argument("--jobs", type=int, default=MAX_JOBS, help=f"mutants at a time (at most {MAX_JOBS})")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run these mutations only (the table is not written)")
    parser.add_argument("--output", default=str(REPO_ROOT / "docs" / "mutants.md"), help="the table (written after a run of every mutation)")
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds per mutant's simulator runs")
    parser.add_argument("--no-tests", action="store_true", help="do not run the tests of a mutant the simulator missed")
    parser.add_argument("--check", action="store_true", help="only check that every mutation applies exactly once")
    parser.add_argument("--list", action="store_true", help="list the mutations")
    args = parser.parse_args(argv)
    problems = check_all()
    if problems:
        print("mutations that no longer apply:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    if args.list or args.check:
        if args.list:
            for m in MUTATIONS:
                print(f"{m.name:50} {m.area:18} {m.path}")
        print(f"{len(MUTATIONS)} mutations, each applies exactly once", file=sys.stderr)
        return 0
    chosen = list(MUTATIONS)
    if args.only:
        unknown = set(args.only) - {m.name for m in MUTATIONS}
        if unknown:
            parser.error(f"unknown mutations: {', '.join(sorted(unknown))}")
        chosen = [m for m in MUTATIONS if m.name in args.only]
    jobs = max(1, min(args.jobs, MAX_JOBS))
    started, clock = datetime.datetime.now(datetime.UTC), time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="mutants-"))
    controls = Controls(REPO_ROOT, workdir)
    try:
        results = run_all(
            chosen,
            jobs,
            lambda m: run_mutant(m, seeds=args.seeds, controls=controls, workdir=workdir, timeout=args.timeout, run_tests=not args.no_tests),
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - clock
    command = "python -m simulator.mutants" + (f" --seeds {args.seeds}" if args.seeds != DEFAULT_SEEDS else "")
    command += f" --timeout {args.timeout:.0f}" if args.timeout != parser.get_default("timeout") else ""
    text = table(results, seeds=args.seeds, command=command, started=started, elapsed=elapsed, jobs=jobs)
    print(text)
    if not args.only:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"written to {args.output}", file=sys.stderr)
    return 0 if all(r.caught or r.test for r in results) else 1


def run_all(mutations: list[Mutation], jobs: int, run: Callable[[Mutation], Result]) -> list[Result]:
    def one(mutation: Mutation) -> Result:
        result = run(mutation)
        verdict = f"caught at seed {result.caught_at}" if result.caught else f"not caught in {result.seeds_run} seeds; test: {result.test}"
        print(f"{mutation.name}: {verdict} ({result.seconds:.0f} s) {result.note}", file=sys.stderr, flush=True)
        return result

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, mutations))


if __name__ == "__main__":
    sys.exit(main())
