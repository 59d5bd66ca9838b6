"""The tiers of the Makefile (make unit, integration, infra-tests) together select every test, each exactly once."""

from __future__ import annotations

import re
from pathlib import Path

from tests.tiers import INFRA, INTEGRATION, TIERS, UNIT, tier_of

MAKEFILE = Path(__file__).resolve().parents[1] / "Makefile"
TIER_TARGETS = ("unit", "integration", "infra-tests")


def makefile_selections() -> dict[str, str]:
    """Each tier target's `-m MARKER`, read from its recipe in the Makefile."""
    text = MAKEFILE.read_text()
    selections = {}
    for target in TIER_TARGETS:
        recipe = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", text, re.MULTILINE)
        assert recipe, f"the Makefile has no `{target}` target"
        marker = re.search(r"\s-m\s+(\w+)", recipe.group(1))
        assert marker, f"`make {target}` selects its tests with -m MARKER"
        selections[target] = marker.group(1)
    return selections


def test_the_makefile_tiers_select_the_three_markers():
    assert makefile_selections() == {"unit": UNIT, "integration": INTEGRATION, "infra-tests": INFRA}


def test_every_collected_test_is_selected_by_exactly_one_tier(request):
    # In `make test` (and any run without -k/-m) these are all the suite's tests; in a tier run, that tier's.
    items = request.session.items
    assert items
    selected = {target: {item.nodeid for item in items if item.get_closest_marker(marker)} for target, marker in makefile_selections().items()}
    everything = {item.nodeid for item in items}
    in_none = sorted(everything - set().union(*selected.values()))
    assert not in_none, f"{len(in_none)} tests in no tier (add their path to tests/tiers.py), e.g. {in_none[:5]}"
    in_two = [(a, b, sorted(selected[a] & selected[b])[:3]) for a in selected for b in selected if a < b and selected[a] & selected[b]]
    assert not in_two, f"tests in two tiers: {in_two}"
    assert sum(len(ids) for ids in selected.values()) == len(everything)


def test_a_new_test_folder_is_in_no_tier_until_it_is_placed():
    assert tier_of("tests/newfolder/test_x.py", {}) is None
    assert tier_of("tests/runtime/domain/test_settlement.py", {}) == UNIT
    assert tier_of("tests/infra/test_infra_data_stack.py", {}) == INFRA
    assert tier_of("tests/runtime/repository/test_dynamodb_store.py", {}) == INTEGRATION


def test_the_contract_tests_split_into_the_fake_half_and_the_moto_half():
    assert tier_of("tests/contract/test_settlement_store_contract.py", {"tables": "fake", "reserved": True}) == UNIT
    assert tier_of("tests/contract/test_settlement_store_contract.py", {"tables": "aws", "reserved": True}) == INTEGRATION
    assert set(TIERS) == {UNIT, INTEGRATION, INFRA}
