"""A deterministic simulator of the money path, in the spirit of TigerBeetle's VOPR: one seed, one run.

A run drives the real code (the Lambda handler as deployed, the timer scan through the same handler,
`reserve()`, the CLI's `Adjuster`) with several workers against in-process moto, made faithful by
`emulator.fidelity`. Workers are threads, but only one runs at a time: they hand over at every DynamoDB
call, to a worker the seed's random generator picks, so every interleaving is reproducible. Faults are
injected at the botocore boundary in AWS's shapes (fidelity.py), Lambda's retries of a failed or timed-out
invocation are modelled (same request id, up to 2 retries, then the on-failure destination), and after the
run the invariants below are checked. An independent oracle of the books (`Books`: holds and their settlement
records, postings, reservations made before records) follows every commit in commit order and is compared with the
tables after each one. The seeded world includes data the code before settlement records wrote (v2's reservations
posted to the Ledger, settled jobs, holds on Jobs items), created before the stage's cut-off; an operator's
adjustment may commit to a balance just before a guarded write, across its threshold or not; an eventually
consistent read of a settlement record may answer an earlier version of it, or none where it was created since
(fidelity.py, 7.), and global indexes may lag their table (8.). The pipeline writes its Jobs table as it likes
(pipeline.py), operators repair books and replay dead letters meanwhile (operators.py), inputs come at every
edge (edges.py), and prices and thresholds are deployed mid-run (config_changes.py). Then the Credits table's
DynamoDB stream is drained through the real balance-events handler, as Lambda's event source mapping would
deliver it (batches, partial batch responses, retries from the first failed record, give-ups after the retry
limit), with faults injected into that function's EventBridge and DynamoDB calls, and the events it put on the bus
are checked against an independent oracle of docs/events.md. A failing run is shrunk to the shortest task list that still fails.

The parts: scenario (the workload), harness (the cluster: moto and the stage's resources), scheduler, faults,
races (concurrent balance changes), world (the seeded tables), oracle (the books and the balance events'
ground truth), commits (the oracle fed in commit order), run and direct_calls (reserve(), release(), the
Adjuster), records (what a run records of each attempt), tables, invariants, event_invariants and liveness (one
function per invariant), pipeline, operators, edges and config_changes (a class of input each: its generator and
its invariants), balance_events, discrepancies (damages to the books the audit must find), shrink, and this
command line.

    python -m simulator.sim --seeds 10000        # make sim
    python -m simulator.sim --seed 1234 -v       # replay one run, printing its tasks
    python -m simulator.sim --seeds 300 --digest # one line per seed, to compare two versions of the simulator
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import sys
import time
from collections import Counter
from collections.abc import Callable

from simulator.balance_events import BALANCE_EVENT_SUMMARY, balance_event_invariants
from simulator.credits_in import REQUIRED_CREDITS_IN_COUNTERS, credits_in_summary
from simulator.discrepancies import the_audit_reports_exactly_the_injected_discrepancies
from simulator.expiries import EXPIRY_SUMMARY
from simulator.harness import Harness
from simulator.invariants import AT_EVERY_COMMIT, CHECKS, emitted_metrics, statement
from simulator.run import RunResult, run_scenario
from simulator.scenario import Scenario, describe, generate
from simulator.shrink import shrink

__all__ = ["digest", "emitted_metrics", "main", "simulate"]  # emitted_metrics: the runtime tests count metrics with it

HOLDS_SUMMARY = (
    ("holds made", "holds:made"),
    ("held renders", "holds:settled-hold-rendered"),
    ("holds of the code before records rendered", "holds:settled-legacy-hold-rendered"),
    ("holds of the code before records failed", "holds:settled-legacy-hold-failed"),
    ("held failures (released, nothing posted)", "holds:settled-hold-failed"),
    ("refused by the hold condition", "holds:refused-by-the-hold-condition"),
    ("holds open at the end (credits)", "holds:open-at-the-end"),
    ("v2 reservations seeded", "legacy:open-reservations-seeded"),
    ("v2 reservations rendered", "holds:settled-legacy-rendered"),
    ("v2 reservations failed (refunded)", "holds:settled-legacy-failed"),
    ("v2 settled jobs seeded", "legacy:settled-jobs-seeded"),
    ("balance re-decisions", "holds:balance-re-decisions"),
    ("of them on the balance returned (ALL_OLD)", "holds:re-decisions-on-the-returned-balance"),
    ("of them for a user with no Credits item", "holds:re-decisions-without-a-balance-item"),
    ("overdrafts", "holds:overdrafts"),
    ("settled past a concurrent change of the balance", "holds:settled-past-a-concurrent-balance-change"),
    ("races across a threshold", "race:crossing"),
    ("races on one side of it", "race:same-side"),
    ("UserLedger postings", "user-ledger-entries"),
    ("jobs still holding credits closed at the end", "closing:events"),
    ("damages to the books the audit had to find", "audit:discrepancies-injected"),
)


# Issues #20 and #21's classes: what the runs generated of each (counters whose names start with these).
CLASS_SUMMARY = (
    ("jobs created by the pipeline", ("task:create-job",)),
    ("whole-item saves after settlement", ("pipeline:whole-saves-after-settlement",)),
    ("of them repairable by the scan", ("pipeline:whole-saves-the-scan-can-repair",)),
    ("mirrors written back by the scan", ("pipeline:mirrors-repaired-by-the-scan",)),
    ("hand-written holds after the cut-off", ("pipeline:hand-written-holds:",)),
    ("unfunded holds before the cut-off", ("pipeline:unfunded-holds-before-the-cut-off",)),
    ("holds of the code before records", ("legacy:holds-on-jobs-items-seeded",)),
    ("edge ids settled / refused", ("edges:ids:settled", "edges:ids:refused")),
    ("edge numbers settled / refused", ("edges:numbers:settled", "edges:numbers:refused")),
    ("full-size invalid events dead-lettered whole", ("edges:full-size-dead-letters-whole",)),
    ("damaged balances", ("edges:damaged-balances:",)),
    ("events of damaged balances refused / settled", ("edges:balances:refused", "edges:balances:settled")),
    ("corrected replays of the longest ids", ("operators:corrected-replays:",)),
    ("price deploys", ("config:price-deploys",)),
    ("held renders charged at a price deployed over", ("config:held-price-charged-after-a-deploy",)),
    ("settlements across a price deploy", ("config:prices-deployed-during-a-settlement",)),
    ("threshold deploys between a record's attempts", ("config:threshold-deploys-between-attempts",)),
    ("books damaged before the run", ("operators:books-damaged:",)),
    ("fixes (any trust) applied", ("operators:fixes-applied:",)),
    ("fixes refused: index behind", ("operators:fixes:balance:index-behind", "operators:fixes:ledger:index-behind")),
    ("holds released", ("holds:released",)),
    ("DLQ messages replayed", ("operators:replayed:",)),
    ("runs with lagging indexes", ("index-lag:",)),
)


def _prefixed(covered: Counter, prefix: str) -> int:
    return sum(count for name, count in covered.items() if name.startswith(prefix))


def class_counts(covered: Counter) -> list[tuple[str, list[int]]]:
    return [
        (label, [sum(count for name, count in covered.items() if name.startswith(prefix)) for prefix in prefixes])
        for label, prefixes in CLASS_SUMMARY
    ]


def invariants() -> list[str]:
    """Every invariant a run checks, as text: at every commit, after the tasks, then the balance events'."""
    return [*AT_EVERY_COMMIT, *map(statement, CHECKS), *balance_event_invariants(), statement(the_audit_reports_exactly_the_injected_discrepancies)]


def digest(scenario: Scenario, result: RunResult) -> str:
    """One line of what a seed's run did: its set-up and tasks, its workers' hand-overs, its counters and its
    verdict (each part hashed, with its size), so two versions of the simulator can be compared seed by seed."""

    def sha(parts: list[str]) -> str:
        return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:16]

    header = describe(dataclasses.replace(scenario, setup=[], tasks=[], discrepancies=[], expiries=[], credits_in=[]))
    phases = scenario.setup + scenario.tasks + scenario.discrepancies + scenario.expiries + scenario.credits_in
    tasks = [header] + [task.describe() for task in phases]
    counters = [f"{name}={count}" for name, count in sorted(result.covered.items())]
    verdict = f"failed {len(result.failures)} {sha(result.failures)}" if result.failures else "ok"
    return (
        f"seed {scenario.seed}: {verdict}; tasks {len(tasks) - 1} {sha(tasks)}; hand-overs {len(result.handovers)} "
        f"{sha([str(turn) for turn in result.handovers])}; counters {len(counters)} {sha(counters)}"
    )


# What every sample of COVERAGE_SAMPLE consecutive seeds or more must have generated, or the run proves less than it
# claims: faults in AWS's shapes, every outcome, Lambda's retries, the balance events, the holds design, concurrent
# balance changes, the closing phase, injected damage and stale reads. `make test` asserts it on its seeds and
# `make sim` on its whole run (a run of fewer seeds, or one seed replayed, is not held to it).
COVERAGE_SAMPLE = 20
REQUIRED_COUNTERS = (
    "outcome:settled", "outcome:rejected", "task:scan",
    "balance:crossings", "balance:events-on-the-bus", "balance:retries",
    "balance:failed-entries-injected", "balance:window-faults", "balance:causes-checked",
    "holds:made", "holds:settled-hold-rendered", "holds:settled-hold-failed",
    "holds:settled-legacy-rendered", "holds:settled-legacy-failed", "legacy:settled-jobs-seeded",
    "holds:re-decisions-on-the-returned-balance", "holds:refused-by-the-hold-condition",
    "race:same-side", "race:crossing", "holds:settled-past-a-concurrent-balance-change",
    "closing:events", "audit:discrepancies-injected", "stale:reads-served",
    *REQUIRED_CREDITS_IN_COUNTERS,
)  # fmt: skip


def uncovered(covered: Counter, runs: int) -> list[str]:
    """What a sample of `runs` seeds failed to generate (empty when it covered everything it must)."""
    missing = [name for name in REQUIRED_COUNTERS if not covered[name]]
    if not any(count for name, count in covered.items() if name.startswith("fault:")):
        missing.append("fault:*")
    if not any(count for name, count in covered.items() if name.startswith("stale:outcome:settled")):
        missing.append("stale:outcome:settled*")
    if covered["audits-clean"] != 2 * runs:  # with the holds open, and after the closing phase
        missing.append(f"audits-clean={covered['audits-clean']} (expected {2 * runs})")
    return missing


def simulate(
    seeds: list[int],
    *,
    verbose: bool = False,
    shrink_failures: bool = True,
    templates: dict | None = None,
    progress: bool = False,
    report: Callable[[Scenario, RunResult], None] | None = None,
) -> tuple[list[RunResult], Counter]:
    harness = Harness(templates)
    covered: Counter = Counter()
    failed: list[RunResult] = []
    try:
        for number, seed in enumerate(seeds, 1):
            scenario = generate(seed)
            if progress and number % 250 == 0:
                print(f"{number}/{len(seeds)} runs, {len(failed)} failed", file=sys.stderr, flush=True)
            result = run_scenario(harness, scenario)
            if report is not None:
                report(scenario, result)
            covered.update(result.covered)
            covered[f"workers:{scenario.workers}"] += 1
            if verbose:
                print(describe(scenario), file=sys.stderr)
            if result.failures:
                failed.append(result)
                smallest = shrink(harness, scenario) if shrink_failures else scenario
                print(f"FAILED {describe(smallest)}\n  " + "\n  ".join(result.failures[:10]), file=sys.stderr)
    finally:
        harness.close()
    return failed, covered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator.sim", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=int(os.environ.get("SEEDS", "10000")), help="runs, seeds 0..N-1 (env SEEDS)")
    parser.add_argument("--seed", type=int, default=int(os.environ["SEED"]) if os.environ.get("SEED") else None, help="replay one seed (env SEED)")
    parser.add_argument("--first", type=int, default=0, help="first seed of the range")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--digest", action="store_true", help="print each run's digest on stdout (no shrinking): compare two versions")
    args = parser.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else list(range(args.first, args.first + args.seeds))
    started = time.monotonic()
    report = (lambda scenario, result: print(digest(scenario, result), flush=True)) if args.digest else None
    failed, covered = simulate(seeds, verbose=args.verbose, progress=True, shrink_failures=not args.digest, report=report)
    elapsed = time.monotonic() - started
    print(f"{len(seeds)} run(s) in {elapsed:.0f} s ({len(seeds) / elapsed:.1f} runs/s), {len(failed)} failed", file=sys.stderr)
    print("covered: " + ", ".join(f"{name}={count}" for name, count in sorted(covered.items())), file=sys.stderr)
    print("balance events: " + ", ".join(f"{name}={covered[key]}" for name, key in BALANCE_EVENT_SUMMARY), file=sys.stderr)
    print("holds and v2 data: " + ", ".join(f"{name}={covered[key]}" for name, key in HOLDS_SUMMARY), file=sys.stderr)
    print("hold expiry: " + ", ".join(f"{name}={_prefixed(covered, key)}" for name, key in EXPIRY_SUMMARY), file=sys.stderr)
    print("credits in: " + credits_in_summary(covered), file=sys.stderr)
    print("issues #20 and #21: " + ", ".join(f"{label}={' / '.join(map(str, counts))}" for label, counts in class_counts(covered)), file=sys.stderr)
    print("invariants checked after every run:\n  - " + "\n  - ".join(invariants()), file=sys.stderr)
    missing = uncovered(covered, len(seeds)) if len(seeds) >= COVERAGE_SAMPLE else []
    if missing:
        print("FAILED coverage: these runs never generated " + ", ".join(missing), file=sys.stderr)
    return 1 if failed or missing else 0


if __name__ == "__main__":
    sys.exit(main())
