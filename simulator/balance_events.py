"""Balance events: after a run's money-path tasks, the Credits table's stream goes through the real
balance-events handler as Lambda's DynamoDB Streams event source mapping delivers it (batches drawn by the seed,
partial batch responses retried from the first reported record, a timed-out invocation retried halved, give-ups
after the retry limit), with faults injected into that function's EventBridge and DynamoDB calls. Then the
invariants of docs/events.md, one function each, against the oracle's ground truth (simulator.oracle).
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from reconciler.contract import SMOKE_TEST_USER_ID
from simulator.config_changes import deploy_thresholds
from simulator.credits_in import CREDITS_IN_PREFIXES, expected_liability
from simulator.expiries import HOLD_EXPIRED_DETAIL_TYPE
from simulator.faults import (
    LEDGER_QUERY_FAULTS,
    MARKER_READ_FAULTS,
    MARKER_WRITE_FAULTS,
    MAX_STREAM_FAULTS,
    PUT_EVENTS_FAULTS,
    SimulatedTimeout,
    stream_fault,
)
from simulator.harness import BALANCE_FUNCTION
from simulator.invariants import statement
from simulator.oracle import BALANCE_SOURCE, ground_truth, whole_number

if TYPE_CHECKING:
    from simulator.run import Run

BALANCE_EVENT_SUMMARY = (
    ("crossings", "balance:crossings"),
    ("events published", "balance:events-on-the-bus"),
    ("failed entries injected", "balance:failed-entries-injected"),
    ("faults injected", "balance:faults-injected"),
    ("retries", "balance:retries"),
    ("give-ups", "balance:given-up-batches"),
    ("crossings given up", "balance:crossings-given-up"),
    ("duplicates in the documented window", "balance:duplicates-in-window"),
    ("window faults", "balance:window-faults"),
    ("records", "balance:records"),
    ("invocations", "balance:invocations"),
)
MAX_STREAM_INVOCATIONS = 5000


class BalanceEventRun:
    """Lambda's event source mapping for the Credits stream, with the real handler, then the invariants."""

    def __init__(self, run: Run) -> None:
        self.run, self.h, self.plan_of = run, run.h, run.s.stream
        self.covered = run.result.covered
        self.fail = run.result.failures.append
        self.rng = random.Random(f"{run.s.seed}-stream-batches")
        self.fault_rng = random.Random(f"{run.s.seed}-stream-faults")
        self.faults_left = MAX_STREAM_FAULTS
        self.invocation_faults: list[str] = []
        self.window_faults: Counter = Counter()  # crossingId -> injected faults in the documented window
        self.records: list[dict] = []
        self.given_up: set[str] = set()  # sequence numbers of given-up records
        self.max_retries = self.h.mapping["max_retry_attempts"] if self.plan_of.max_retry_attempts is None else self.plan_of.max_retry_attempts
        # Thresholds deployed between a record's attempts (simulator.config_changes): those each record ran with.
        self.deploy_rng = random.Random(f"{run.s.seed}-threshold-deploys") if run.s.threshold_deploys else None
        self.thresholds = deploy_thresholds(None, self.h.thresholds())  # the stage's, whatever an earlier run deployed
        self.tried: dict[str, list[tuple[int, int]]] = {}  # sequence number -> the thresholds of each attempt
        self.alternatives: dict[str, list[dict]] = {}  # crossingId -> what it is under the thresholds of any attempt
        self.truths: dict[tuple[int, int], dict[str, dict]] = {}  # thresholds -> the crossings they imply
        # The change check's verdict on each record it judged: sequence -> (user, unexplained, why).
        self.verdicts: dict[str, tuple[str, bool, str]] = {}
        self.world_writes: list[str] = []  # what inject_world_writes did (for a failure's message)

    def deliver_and_check(self) -> None:
        self.records = self.h.read_stream()
        self.inject_world_writes()
        self.covered["balance:records"] += len(self.records)
        for failure in the_credits_stream_holds_every_change(self):
            self.fail(failure)
        with self.recording_verdicts():
            self.deliver()
        self.check()

    def inject_world_writes(self) -> None:
        """In half of the runs, writes another system could make to Credits, each undone at once so the books stay as
        they were: a whole-item save of a stale image (one at least two versions old, from the stream) and the save of
        the current image back, and a direct UpdateItem of `remaining` and its reverse. All four must be flagged."""
        rng = random.Random(f"{self.run.s.seed}-world-writes")
        if rng.random() < 0.5:
            return
        table = self.h.resources.tables["Credits"]
        seen: dict[str, list[dict]] = {}
        for record in self.records:
            image = record["dynamodb"].get("NewImage")
            if image is not None and image["userId"]["S"] != SMOKE_TEST_USER_ID:
                seen.setdefault(image["userId"]["S"], []).append(image)
        stale = [(user, image) for user, images in sorted(seen.items()) for image in images if _version(images[-1]) - _version(image) >= 2]
        if stale:
            user, image = rng.choice(stale)
            self.h.dynamodb.put_item(TableName=table, Item=image)
            self.h.dynamodb.put_item(TableName=table, Item=seen[user][-1])
            self.world_writes.append(f"{user}: a stale image (version {_version(image)}) saved whole, then the current one back")
            self.covered["balance:world-stale-saves"] += 1
        numeric = sorted(set(seen) - self.run.books.damaged_balances)  # ADD on a text figure is refused
        if numeric:
            user, amount = rng.choice(numeric), rng.choice([1, 7, -3])
            for change in (amount, -amount):
                key, values = {"userId": {"S": user}}, {":d": {"N": str(change)}}
                self.h.dynamodb.update_item(TableName=table, Key=key, UpdateExpression="ADD remaining :d", ExpressionAttributeValues=values)
            self.world_writes.append(f"{user}: remaining moved {amount:+d} and back by direct UpdateItems")
            self.covered["balance:world-direct-writes"] += 1
        self.records += self.h.read_stream()

    @contextlib.contextmanager
    def recording_verdicts(self) -> Iterator[None]:
        """What the real handler's change check decides on each record, as it runs (its last attempt's verdict)."""
        from reconciler import bootstrap

        service = bootstrap.balance_change_service()
        handle = service.handle

        def recording(change: Any) -> Any:
            outcome = handle(change)
            found = outcome.unexplained
            self.verdicts[str(change.sequence_number)] = (outcome.user_id or "", found is not None, found.reason if found else "")
            return outcome

        service.handle = recording  # type: ignore[method-assign]
        try:
            yield
        finally:
            del service.handle

    # --- Lambda's event source mapping ------------------------------------------------------------------
    def deliver(self) -> None:
        """Batches in stream order (sizes drawn by the seed); a batch whose response reports failures is retried
        from the first reported record (Lambda checkpoints there); an invocation that fails as a whole (a
        timeout) is retried halved (bisectBatchOnFunctionError); after the retry limit the failing records are
        given up (their description goes to the on-failure destination) and the stream goes on."""
        from emulator.invoker import LocalContext
        from reconciler.handlers.balance_stream import handler
        from reconciler.observability import metrics

        pending, attempts, bisect, invocations = list(self.records), 0, 0, 0
        stdout, sys.stdout = sys.stdout, io.StringIO()  # Powertools prints its EMF metrics here
        try:
            while pending:
                invocations += 1
                if invocations > MAX_STREAM_INVOCATIONS:
                    self.fail(f"the stream did not drain after {MAX_STREAM_INVOCATIONS} invocations")
                    return
                size = self.rng.choice(self.plan_of.batch_sizes)
                batch = pending[: min(size, bisect) if bisect else size]
                self._maybe_deploy(retry=bool(attempts or bisect))
                self.invocation_faults = []
                failed_at, whole = None, False
                self.h.fidelity.set_fault_plan(self.fault_plan)
                try:
                    response = handler({"Records": batch}, LocalContext(BALANCE_FUNCTION, 60_000)) or {}
                    reported = {item.get("itemIdentifier") for item in response.get("batchItemFailures", [])}
                    indexes = [i for i, record in enumerate(batch) if record["dynamodb"]["SequenceNumber"] in reported]
                    if reported and len(indexes) != len(reported):
                        self.fail(f"the stream function reported failures of records not in its batch: {sorted(map(str, reported))[:5]}")
                    if indexes and indexes != list(range(min(indexes), len(batch))):
                        self.fail(f"the stream function reported {len(indexes)} failed record(s) but not every record after the first failure")
                    failed_at = min(indexes) if indexes else None
                except SimulatedTimeout:
                    metrics.clear_metrics()  # the killed invocation never flushed
                    whole = True
                except Exception as error:  # noqa: BLE001 - docs/events.md: every failed record is reported, the handler never raises
                    metrics.clear_metrics()
                    where = traceback.extract_tb(error.__traceback__)[-1]
                    self.fail(f"the stream handler raised {type(error).__name__}: {str(error)[:200]} (at {where.filename}:{where.lineno})")
                    whole = True
                finally:
                    self.h.fidelity.set_fault_plan(None)
                self.covered["balance:invocations"] += 1
                self._tried(batch[: len(batch) if failed_at is None or whole else failed_at + 1])
                if failed_at is None and not whole:
                    del pending[: len(batch)]
                    attempts, bisect = 0, 0
                    continue
                if not self.invocation_faults:
                    first = batch[failed_at or 0]["dynamodb"]["SequenceNumber"]
                    self.fail(f"the stream function failed record {first} ({'the whole invocation' if whole else 'reported'}) with no injected fault")
                if whole:
                    failed_at, bisect = 0, max(1, len(batch) // 2)
                    self.covered["balance:function-errors"] += 1
                else:
                    self.covered["balance:partial-batch-failures"] += 1
                del pending[:failed_at]  # Lambda checkpoints at the first failed record
                attempts = attempts + 1 if failed_at == 0 else 1
                if attempts > self.max_retries:
                    given_up = batch[failed_at:]
                    del pending[: len(given_up)]
                    self.given_up.update(record["dynamodb"]["SequenceNumber"] for record in given_up)
                    self.covered["balance:given-up-batches"] += 1
                    attempts, bisect = 0, 0
                else:
                    self.covered["balance:retries"] += 1
        finally:
            sys.stdout = stdout

    def _maybe_deploy(self, retry: bool) -> None:
        """In the runs that deploy thresholds, before some retries of a batch: another setting of the stage's defaults."""
        if self.deploy_rng is not None and retry and self.deploy_rng.random() < 0.5:
            self.thresholds = deploy_thresholds(self.deploy_rng, self.thresholds)
            self.covered["config:threshold-deploys-between-attempts"] += 1

    def _tried(self, records: list[dict]) -> None:
        """The records an invocation handled (up to the first it failed) ran with the thresholds deployed then."""
        for record in records:
            self.tried.setdefault(record["dynamodb"]["SequenceNumber"], []).append(self.thresholds)

    def fault_plan(self, service: str, operation: str, params: dict) -> Any:
        """Faults in AWS's shapes on the stream function's calls; the ones in the documented duplicate window
        (PutEvents went through, its marker is not written) are counted per crossingId."""
        table = params.get("TableName")
        if service == "events" and operation == "PutEvents":
            choices, crossing = PUT_EVENTS_FAULTS, json.loads(params["Entries"][0]["Detail"]).get("crossingId")
        elif service == "dynamodb" and table == self.h.resources.tables["BalanceEvents"] and operation == "GetItem":
            choices, crossing = MARKER_READ_FAULTS, None
        elif service == "dynamodb" and table == self.h.resources.tables["BalanceEvents"] and operation == "PutItem":
            choices, crossing = MARKER_WRITE_FAULTS, params.get("Item", {}).get("crossingId", {}).get("S")
        elif service == "dynamodb" and table in (self.h.resources.tables["Ledger"], self.h.resources.tables["UserLedger"]) and operation == "Query":
            choices, crossing = LEDGER_QUERY_FAULTS, None
        else:
            return None
        if self.fault_rng.random() >= self.plan_of.fault_rate or self.faults_left <= 0:
            return None
        self.faults_left -= 1
        label, in_window = self.fault_rng.choice(choices)
        self.invocation_faults.append(label)
        self.covered["balance:faults-injected"] += 1
        self.covered[f"fault:stream:{label}"] += 1
        if in_window:
            self.window_faults[crossing] += 1
            self.covered["balance:window-faults"] += 1
        if label.startswith("failed-entry-"):
            self.covered["balance:failed-entries-injected"] += 1
        return stream_fault(label, operation, self.fault_rng)

    def ground_truth(self) -> dict[str, dict]:
        """Each record's crossings under the thresholds of its last attempt; what each crossing is under the thresholds of
        any of its attempts (an earlier attempt may have published it before a deploy) in `alternatives`."""
        stage = self.h.thresholds()
        truths = {thresholds: ground_truth(self.records, thresholds) for thresholds in {stage, *(t for ts in self.tried.values() for t in ts)}}
        self.truths = truths
        final: dict[str, dict] = {}
        for thresholds, crossings in truths.items():
            for cid, crossing in crossings.items():
                tried = self.tried.get(crossing["sequence"], [stage])
                if thresholds in tried:
                    self.alternatives.setdefault(cid, []).append(crossing)
                if tried[-1] == thresholds:
                    final[cid] = crossing
        return final

    def bus(self) -> list[dict]:
        """The balance events EventBridge accepted, in the order it accepted them."""
        return [event for event in self.h.bus if event["source"] == BALANCE_SOURCE and event.get("detail-type") != HOLD_EXPIRED_DETAIL_TYPE]

    def check(self) -> None:
        truth = self.ground_truth()
        self.covered["balance:crossings"] += len(truth)
        self.covered["balance:events-on-the-bus"] += len(self.bus())
        for invariant in STREAM_CHECKS:
            for failure in invariant(self, truth):
                self.fail(failure)


# --- the invariants ---------------------------------------------------------------------------------------


def the_credits_stream_holds_every_change(delivery: BalanceEventRun) -> Iterator[str]:
    """the Credits stream holds every change of the run: per user, each record's OldImage is the previous record's NewImage,
    and the last NewImage is the item as it is (else the ground truth would judge a part)"""
    last: dict[str, dict | None] = {}
    for record in delivery.records:
        data = record["dynamodb"]
        user = data["Keys"]["userId"]["S"]
        if data.get("OldImage") != last.get(user):
            yield f"the Credits stream skips a change of {user!r}: a record's OldImage {data.get('OldImage')} follows {last.get(user)}"
        last[user] = data.get("NewImage")
    for item in delivery.h.dynamodb.scan(TableName=delivery.h.resources.tables["Credits"])["Items"]:
        if last.get(item["userId"]["S"]) != item:
            yield f"the Credits stream ends at {last.get(item['userId']['S'])} for {item['userId']['S']!r}, but the item is {item}"


def every_crossing_is_on_the_bus(delivery: BalanceEventRun, truth: dict[str, dict]) -> Iterator[str]:
    """every crossing of the ground truth (an oracle of docs/events.md over the Credits stream) is on the bus, unless its record
    was given up"""
    published = Counter(event["detail"].get("crossingId") for event in delivery.bus())
    for cid, crossing in truth.items():
        if published[cid]:
            continue
        if crossing["sequence"] in delivery.given_up:
            delivery.covered["balance:crossings-given-up"] += 1
        else:
            yield (
                f"crossing {crossing['detail-type']} of {crossing['userId']!r} ({crossing['balanceBefore']} -> {crossing['balanceAfter']}, "
                f"record {crossing['sequence']}) is not on the bus (crossingId {cid})"
            )


def every_event_on_the_bus_is_a_crossing_with_its_values(delivery: BalanceEventRun, truth: dict[str, dict]) -> Iterator[str]:
    """no event on the bus without a ground-truth crossing; each with its crossingId and values (under the thresholds of one of its
    record's attempts: a deploy may come between them), on the configured bus"""
    for event in delivery.bus():
        detail = event["detail"]
        candidates = delivery.alternatives.get(detail.get("crossingId"), [])
        if not candidates:
            yield f"event on the bus without a ground-truth expected: {event['detail-type']} {json.dumps(detail, default=str)[:300]}"
            continue
        wrongs = [
            {
                name: (detail.get(name), value)
                for name, value in expected.items()
                if name not in ("position",) and (event["detail-type"] if name == "detail-type" else detail.get(name)) != value
            }
            for expected in candidates
        ]
        if all(wrongs) or event["bus"] != delivery.h.event_bus():
            yield f"event {detail.get('crossingId')} differs from its ground truth (got, expected): {wrongs[0]} on bus {event['bus']!r}"


def each_users_events_are_in_balance_order(delivery: BalanceEventRun, truth: dict[str, dict]) -> Iterator[str]:
    """per user, the events on the bus are in balance order (stream sequence, then the crossing's place in the change; a
    crossing that only a threshold deployed between a record's attempts implies comes after those published before it,
    the record's own and, where a failed invocation retried the whole batch, later records')"""
    last: dict[str, tuple[int, int, str]] = {}
    for event in delivery.bus():
        expected = truth.get(event["detail"].get("crossingId"))
        if expected is None:
            continue
        place = (int(expected["sequence"]), expected["position"], expected["detail-type"])
        latest = last.get(expected["userId"], (0, 0, ""))
        tried = delivery.tried.get(expected["sequence"], [])
        redeployed = len(set(tried)) > 1
        new_to_a_retry = redeployed and event["detail"]["crossingId"] not in delivery.truths.get(tried[0], {})
        if place[:2] < latest[:2] and not (redeployed and place[0] == latest[0]) and not new_to_a_retry:
            yield (
                f"events of {expected['userId']!r} out of balance order: {place[2]} of record {place[0]} "
                f"published after {latest[2]} of record {latest[0]}"
            )
        last[expected["userId"]] = max(place, latest)


def no_crossing_is_published_twice_outside_the_window(delivery: BalanceEventRun, truth: dict[str, dict]) -> Iterator[str]:
    """no crossingId on the bus twice, except once per injected fault in the documented window (PutEvents succeeded, its marker
    not written)"""
    published = Counter(event["detail"].get("crossingId") for event in delivery.bus())
    for cid, count in published.items():
        if count > 1 and count - 1 > delivery.window_faults[cid]:
            yield f"crossingId {cid} is on the bus {count} times, with only {delivery.window_faults[cid]} injected fault(s) in the documented window"
        elif count > 1:
            delivery.covered["balance:duplicates-in-window"] += count - 1


def one_marker_per_published_crossing(delivery: BalanceEventRun, truth: dict[str, dict]) -> Iterator[str]:
    """the BalanceEvents table holds exactly one marker per published crossing (none where its record was given up, or where a
    deploy of thresholds took it out of the record's last attempt before its marker was written), and no marker without its event
    on the bus"""
    from reconciler.repository.dynamodb import from_item

    published = Counter(event["detail"].get("crossingId") for event in delivery.bus())
    items = delivery.h.dynamodb.scan(TableName=delivery.h.resources.tables["BalanceEvents"])["Items"]
    # Published markers only: the liability's items (service/balance_changes.py) share the table and carry no crossingId.
    markers = Counter(item["crossingId"] for item in map(from_item, items) if "crossingId" in item)
    for cid in published:
        found = truth.get(cid)
        given_up = found is not None and found["sequence"] in delivery.given_up
        # A crossing an attempt published before its marker failed, which the record's last attempt (after a deploy of
        # other thresholds) no longer computes, keeps no marker: nothing retries it.
        dropped = found is None and cid in delivery.alternatives
        if markers[cid] != 1 and not (markers[cid] == 0 and (given_up or dropped)):
            yield f"crossing {cid} is on the bus but has {markers[cid]} marker(s) in BalanceEvents"
    for marked, count in markers.items():
        if marked not in published:
            yield f"BalanceEvents holds {count} marker(s) of {marked}, which is not on the bus (a lost event)"


def each_events_ledger_entries_are_its_cause(delivery: BalanceEventRun, truth: dict[str, dict]) -> Iterator[str]:
    """each event's ledgerEntries are the user's entries at changedAt in both ledgers; ledgerEntriesExact iff their net is the
    change of the posted balance (remaining + held)"""
    # Job postings are in UserLedger; operator entries and v2's history in Ledger.
    held = {
        record["dynamodb"]["SequenceNumber"]: tuple(
            whole_number(record["dynamodb"].get(image, {}).get("held")) or 0 for image in ("OldImage", "NewImage")
        )
        for record in delivery.records
    }
    written: dict[tuple[str, str], list[tuple]] = {}
    for _, entry in delivery.run.books_found:
        written.setdefault((entry["userId"], entry["timestamp"]), []).append(
            (entry["ledgerId"], entry["type"], int(entry["amount"]), entry.get("reference", ""))
        )
    for event in delivery.bus():
        detail = event["detail"]
        if not detail.get("changedAt") or "ledgerEntries" not in detail:
            continue
        expected = sorted(written.get((detail.get("userId"), detail["changedAt"]), []))
        got = sorted((e.get("ledgerId"), e.get("type"), e.get("amount"), e.get("reference")) for e in detail["ledgerEntries"])
        # Exact: the entries explain this change of the posted balance, remaining + held (a held render's charge
        # is exact, a hold is not; nor are two changes of one user in the same millisecond).
        net = sum(amount if kind == "credit" else -amount for _, kind, amount, _ in expected)
        held_before, held_after = held.get(str(detail.get("sequence")), (0, 0))
        posted_change = detail.get("balanceAfter", 0) + held_after - (detail.get("balanceBefore") or 0) - held_before
        exact = bool(expected) and net == posted_change
        if got != expected or detail.get("ledgerEntriesExact") is not exact:
            yield (
                f"{event['detail-type']} of {detail.get('userId')!r} at {detail['changedAt']} names ledgerEntries {got} "
                f"(exact: {detail.get('ledgerEntriesExact')}); both ledgers hold {expected} at that time (exact: {exact})"
            )
        else:
            delivery.covered["balance:causes-checked"] += 1


def made_by_the_reconciler(delivery: BalanceEventRun, record: dict) -> bool:
    """Whether a record is of a write the reconciler's own code made (the harness saw it: the user and the moment
    it wrote) that moved the version by one (a world write never does; a stale save moves it back)."""
    data = record["dynamodb"]
    new, old = data.get("NewImage"), data.get("OldImage")
    if new is None:
        return False
    moment = (new.get("updatedAt") or {}).get("S")
    return (new["userId"]["S"], moment) in delivery.h.reconciler_balance_writes and _version(new) == _version(old) + 1


def every_change_is_judged_by_who_made_it(delivery: BalanceEventRun, truth: dict[str, dict]) -> Iterator[str]:
    """the stream's change check flags no Credits change the reconciler's own code made (a settlement, a hold, a
    release, an adjustment, a correction, credits in, an operator's restore), and flags every change of a balance
    another writer made (a direct UpdateItem, a stale whole-item save, an insert or a delete; a threshold override
    that moves no money is no balance change)"""
    delivery.covered["balance:reconciler-balance-writes"] += len(delivery.h.reconciler_balance_writes)
    for record in delivery.records:
        data = record["dynamodb"]
        verdict = delivery.verdicts.get(str(data["SequenceNumber"]))
        if verdict is None:
            continue  # given up, or the smoke test's user: never judged
        user, flagged, reason = verdict
        ours = made_by_the_reconciler(delivery, record)
        new, old = data.get("NewImage"), data.get("OldImage")
        money = ("remaining", "held", "paidCredits", "promotionalCredits", "goodwillCredits")
        moved = new is None or _version(new) != _version(old) or any((new or {}).get(name) != (old or {}).get(name) for name in money)
        delivery.covered[f"balance:changes-{'ours' if ours else 'world'}-{'flagged' if flagged else 'explained'}"] += 1
        by = (((new or {}).get("lastChange") or {}).get("M") or {}).get("by", {}).get("S", "")
        if ours and by.startswith(CREDITS_IN_PREFIXES):
            delivery.covered[f"credits-in:changes-judged:{'flagged' if flagged else 'explained'}"] += 1
        if ours and flagged:
            yield f"the reconciler's own write of {user!r} (record {data['SequenceNumber']}) was flagged as unexplained: {reason}"
        if not ours and moved and not flagged:
            yield f"another writer's change of {user!r} (record {data['SequenceNumber']}, {delivery.world_writes}) was not flagged: {data}"


def _version(image: dict | None) -> int:
    number = ((image or {}).get("version") or {}).get("N")
    return int(number) if number is not None else 0


def the_liability_snapshot_is_every_balances_allocation(delivery: BalanceEventRun, truth: dict[str, dict]) -> Iterator[str]:
    """at a quiet point, the liability snapshot (the function's scheduled job, run once) equals the sum of every
    balance's allocation by category, its categories sum to the sum of every posted balance, and `liability` reads it back; and it
    equals the oracle's own allocation of its books (credits in's paid, promotional and goodwill totals included)"""
    from reconciler.domain.ledger import iso_timestamp
    from reconciler.domain.liability import LIABILITY_CATEGORIES, allocation
    from reconciler.repository.dynamodb import from_item
    from reconciler.repository.liability_store import LiabilitySnapshotTable
    from reconciler.service.liability_snapshot import LiabilitySnapshotJob

    h = delivery.h
    store = LiabilitySnapshotTable(h.dynamodb, h.resources.tables["Credits"], h.resources.tables["BalanceEvents"])
    snapshot, stored = LiabilitySnapshotJob(store, iso_timestamp).run()
    summed, posted = dict.fromkeys(LIABILITY_CATEGORIES, 0), 0
    for item in h.dynamodb.scan(TableName=h.resources.tables["Credits"], ConsistentRead=True)["Items"]:
        image = from_item(item)
        if image.get("userId") == SMOKE_TEST_USER_ID or image["userId"] in delivery.run.books.damaged_balances:
            continue
        posted += int(image.get("remaining", 0)) + int(image.get("held", 0))
        for category, amount in allocation(image).items():
            summed[category] += amount
    delivery.covered["balance:liability-snapshots"] += 1
    damaged = bool(delivery.run.books.damaged_balances)
    if not stored or store.latest() != snapshot:
        yield f"the liability snapshot {snapshot} was not stored and read back as taken (stored: {stored}, read: {store.latest()})"
    if not damaged and (snapshot.book.by_category != summed or snapshot.book.total != posted):
        yield f"the liability snapshot {snapshot.book.by_category} is not the balances' allocation {summed} (posted balances: {posted})"
    oracles = expected_liability(delivery.run)
    if not damaged and snapshot.book.by_category != oracles:
        yield f"the liability snapshot {snapshot.book.by_category} is not the oracle's allocation of its books {oracles}"
    delivery.covered["credits-in:liability-categories-checked"] += sum(1 for name in ("paid", "promotional", "goodwill") if oracles[name])


StreamInvariant = Callable[[BalanceEventRun, dict[str, dict]], Iterator[str]]
STREAM_CHECKS: tuple[StreamInvariant, ...] = (
    every_crossing_is_on_the_bus,
    every_event_on_the_bus_is_a_crossing_with_its_values,
    each_users_events_are_in_balance_order,
    no_crossing_is_published_twice_outside_the_window,
    one_marker_per_published_crossing,
    each_events_ledger_entries_are_its_cause,
    every_change_is_judged_by_who_made_it,
    the_liability_snapshot_is_every_balances_allocation,
)
DELIVERY_INVARIANT = (
    "the stream function fails a record (or an invocation) only when a fault was injected into that invocation; so every give-up is explained"
)


def balance_event_invariants() -> list[str]:
    return [statement(the_credits_stream_holds_every_change)] + [statement(invariant) for invariant in STREAM_CHECKS] + [DELIVERY_INVARIANT]
