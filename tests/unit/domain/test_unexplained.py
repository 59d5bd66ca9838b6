"""The rule that tells a Credits change the reconciler did not make, from the record's two images (domain/unexplained.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from reconciler.domain.unexplained import MAX_REFERENCE_BYTES, change_record, change_reference, unexplained

AT = "2026-11-28T12:00:00.000Z"


def image(remaining, held=0, version=1, change=None, **more) -> dict:
    item = {"userId": "u", "remaining": Decimal(remaining), "held": Decimal(held), "version": Decimal(version), "updatedAt": AT, **more}
    if change is not None:
        item["lastChange"] = {name: Decimal(amount) for name, amount in change.items()} | {"by": "job-1"}
    return item


def test_a_reconciler_write_carries_its_explanation():
    assert unexplained(image(10), image(5, version=2, change={"remaining": -5})) is None
    assert unexplained(image(10), image(5, held=5, version=2, change={"remaining": -5, "held": 5})) is None  # a hold
    grant = image(60, version=2, change={"remaining": 50, "promotionalCredits": 50}, promotionalCredits=Decimal(50))
    assert unexplained(image(10), grant) is None
    assert unexplained(None, image(500, version=1, change={"remaining": 500})) is None  # the first write creates the item
    assert unexplained(image(10), image(10, version=2, change={})) is None  # a correction moves nothing


def test_a_direct_update_is_unexplained_with_the_change():
    found = unexplained(image(10, version=3, change={"remaining": -5}), image(1010, version=3, change={"remaining": -5}))
    assert found is not None and found.change == 1000 and found.user_id == "u" and "version" in found.reason


def test_a_direct_update_that_adds_one_to_the_version_but_not_its_change_is_unexplained():
    found = unexplained(image(10, version=3, change={"remaining": -5}), image(1010, version=4, change={"remaining": -5}))
    assert found is not None and "remaining moved +1000" in found.reason and "says -5" in found.reason


def test_a_stale_whole_item_save_is_unexplained_even_when_it_carries_a_valid_looking_change():
    stale = image(40, version=2, change={"remaining": 30})
    found = unexplained(image(25, version=5, change={"remaining": -5}), stale)
    assert found is not None and found.change == 15 and "from 5 to 2" in found.reason


def test_an_insert_and_a_delete_not_made_by_the_reconciler_are_unexplained():
    assert unexplained(None, {"userId": "u", "remaining": Decimal(50)}) is not None
    deleted = unexplained(image(10), None)
    assert deleted is not None and deleted.change == -10 and "deleted" in deleted.reason


def test_a_threshold_override_moves_no_money_and_is_no_balance_change():
    assert unexplained(image(10), image(10, lowBalanceThreshold=Decimal(3))) is None


def test_a_figure_that_is_not_a_whole_number_is_unexplained_unless_our_write_left_it_as_it_was():
    found = unexplained(image(10), {**image(10, version=2, change={}), "remaining": "10"})
    assert found is not None and "not a whole number" in found.reason
    # A held damaged by another writer (4.5): our render moves remaining only, and is explained; a change record that
    # claims a move of a figure that did not move is not.
    damaged = {**image(10), "held": Decimal("4.5")}
    assert unexplained(damaged, {**image(5, version=2, change={"remaining": -5}), "held": Decimal("4.5")}) is None
    claimed = unexplained(image(10), image(5, version=2, change={"remaining": -5, "held": 3}))
    assert claimed is not None and "held did not move" in claimed.reason


def test_a_change_record_names_only_money_and_keeps_long_ids_short():
    assert change_record({"remaining": -5, "held": 0}, "job-1") == {"remaining": -5, "by": "job-1"}
    long_id = "j" * 768
    assert len(change_reference(long_id)) < MAX_REFERENCE_BYTES and change_reference(long_id) == change_reference(long_id)
    with pytest.raises(ValueError, match="money"):
        change_record({"lowBalanceThreshold": 1}, "x")
