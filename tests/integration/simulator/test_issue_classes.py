"""Issues #20 and #21's classes in the simulator: the default seeds generate every one, and each fix of issue #20 and
#21's record design (and #24's change check), undone (tests/integration/simulator/mutations.py), is caught by the
simulator at a seed of its first runs.

`make sim` runs seeds 0, 1, 2, ... in order: CAUGHT says the first seed whose run fails with each bug (found by
running them in that order), and each test runs that seed with the bug, so a change that stops the simulator from
catching it fails here. make test runs each such seed unchanged too (test_simulator.SAMPLES).
"""

from __future__ import annotations

import json
from collections import Counter
from fractions import Fraction

import pytest

from simulator.edges import NUMBER_EDGES
from simulator.scenario import generate
from tests.integration.simulator import mutations
from tests.integration.simulator.test_simulator import SAMPLES, failures_at


@pytest.fixture(scope="module")
def templates(dev_templates):
    return dev_templates


def test_the_first_hundred_seeds_generate_every_class():
    kinds: Counter = Counter()
    for seed in range(100):
        scenario = generate(seed)
        steps = [step for task in scenario.setup + scenario.tasks for step in (task.args if task.kind == "sequence" else (task,))]
        kinds.update(step.kind for step in steps)
        kinds.update(f"edge:{_edge_class(str(step.args[0]['id']))}" for step in steps if step.kind == "event" and len(step.args) > 1)
        kinds.update(f"trust:{step.args[1]}" for step in steps if step.kind == "audit-fix")
        kinds["threshold-deploys"] += scenario.threshold_deploys
    # the pipeline's writes; operators' commands on damaged books; deploys; every edge
    for kind in ("create-job", "save-whole", "hand-hold", "unfunded-hold", "legacy-hold", "release", "damage-books", "replay"):
        assert kinds[kind], kind
    assert kinds["trust:balance"] and kinds["trust:ledger"] and kinds["deploy-prices"] and kinds["threshold-deploys"]
    assert kinds["replay-corrected"] and kinds["damaged-balance"] and kinds["edge:num"] and kinds["edge:big"] and kinds["edge:id"]
    assert len(NUMBER_EDGES) == 11  # 1E-130, 38 digits (twice), 39 digits, the subnormals, 9.99...E+125, 1E+126, a negative


def _edge_class(event_id: str) -> str:
    return "num" if event_id.startswith("e-num-") else "big" if event_id == "e-big-0" else "dmg" if "dmg-" in event_id else "id"


# (bug, the first seed that catches it, what the failing invariant says)
CAUGHT = [
    (mutations.markers_keyed_by_position, 46, "is not on the bus"),
    (mutations.ids_bounded_in_characters_only, 1, "reserve() accepted what settlement refuses"),
    (mutations.numbers_in_boto3s_context, 8, "Number underflow"),
    (mutations.dead_letters_escape_every_non_ascii_character, 1, "a dead letter escapes characters SQS accepts"),
    (mutations.balances_without_a_type_guard, 9, "(no fault injected)"),
    (mutations.releases_without_the_held_guard, 1, "records released 0, refunded 1000; expected 0, 0"),
    (mutations.repairs_not_conditioned_on_the_version, 67, "trusting the ledger committed and left its books off"),
    (mutations.fixes_without_the_index_behind_check, 17, "trusting the balance committed and left its books off"),
    (mutations.settlement_proven_on_the_jobs_item_only, 3, "settled with a record holding None"),
    (mutations.reservations_on_jobs_items_counted_after_the_cut_off, 3, "job 'hand-1' (unreserved, rendered) records released 2"),
    (mutations.the_hold_price_ignored_at_settlement, 1, "the price of ('hd-v2', Fraction(5, 2)) is 7"),
    # Issue #24: every balance change explained, both ways
    (mutations.writes_that_record_no_change, 0, "was flagged as unexplained: remaining moved +200, and the change record says +0"),
    (mutations.the_change_check_trusts_an_unchanged_version, 0, "was not flagged"),
]


def test_every_seed_a_bug_is_caught_at_passes_unchanged_in_make_test():
    # A seed that catches a bug proves it only if it passes without the bug: make test's samples run each one.
    assert {seed for _, seed, _ in CAUGHT} <= {seed for sample in SAMPLES for seed in sample}


@pytest.mark.parametrize(("bug", "seed", "caught_by"), CAUGHT, ids=[bug.__name__ for bug, _, _ in CAUGHT])
def test_a_fix_of_issue_20_or_21_undone_is_caught_at_its_seed(templates, monkeypatch, bug, seed, caught_by):
    # Given the fix undone (tests/integration/simulator/mutations.py says what each is)
    bug(monkeypatch)
    # When the simulator runs the first seed that catches it
    failures = failures_at(templates, seed)
    # Then the invariant of its class says so
    assert failures, "the simulator did not notice the bug"
    assert any(caught_by in failure for failure in failures), failures[:3]


def test_the_oracle_restates_each_price_deploy_and_the_cut_off():
    # The prices each deploy sets (its PRICE_OVERRIDES as the product reads them) and the stage's cut-off: the oracle's own
    # tables must say the same
    from reconciler.config import RuntimeConfig
    from reconciler.contract import STAGE_LIMITS
    from reconciler.domain.pricing import PriceBook
    from simulator import config_changes, oracle

    for overrides, restated in zip(config_changes.PRICE_DEPLOYS, oracle.PRICE_DEPLOYS, strict=True):
        config = RuntimeConfig.from_env({**_environment(), "PRICE_OVERRIDES": json.dumps(overrides)})
        assert {model: Fraction(price) for model, price in PriceBook.with_overrides(config.price_overrides).prices.items()} == restated
    assert STAGE_LIMITS["dev"].legacy_reservations_before == oracle.CUT_OFF


def _environment() -> dict[str, str]:
    from reconciler import contract

    names = ("STAGE", "JOBS_TABLE", "CREDITS_TABLE", "LEDGER_TABLE", "USER_LEDGER_TABLE", "SETTLEMENTS_TABLE", "DLQ_URL")
    return {getattr(contract, f"ENV_{name}"): "x" for name in names}


def test_no_valid_edge_event_names_another_users_job():
    """An edge event the checker expects to settle must name a job no other user's valid event names: else the second
    user's render is rightly refused as another user's job and the checker blames the product (seed 498 did)."""
    for seed in range(1000):
        scenario = generate(seed)
        steps = [step for task in scenario.tasks for step in (task.args if task.kind == "sequence" else (task,))]
        owners: dict[str, set] = {}
        edge_jobs = set()
        for step in steps:
            if step.kind != "event" or step.expect != "valid":
                continue
            detail = step.args[0]["detail"]
            detail = json.loads(detail) if isinstance(detail, str) else detail
            owners.setdefault(detail["jobId"], set()).add(detail["userId"])
            if len(step.args) > 1 or str(step.args[0]["id"]).startswith("e-edge-"):
                edge_jobs.add(detail["jobId"])
        shared = [job[:20] for job in edge_jobs if len(owners[job]) > 1]
        assert not shared, (seed, shared)
