"""Ids are bounded in bytes, not only in characters: every key and every derived id built from a valid id fits
DynamoDB's key limits (partition key 2,048 bytes, sort key 1,024 bytes of UTF-8) and the id rules themselves."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.contract import user_ledger_key
from reconciler.domain.errors import InvalidEvent
from reconciler.domain.ledger import JOB_POSTINGS, adjustment_ledger_id, correction_ledger_id, job_ledger_id
from reconciler.domain.settlement import TIMER_SCAN_EVENT_PREFIX
from reconciler.domain.validation import (
    MAX_ID_BYTES,
    MAX_ID_LENGTH,
    PARTITION_KEY_MAX_BYTES,
    SORT_KEY_MAX_BYTES,
    derived_identifier,
    identifier,
    is_identifier,
)

# One character each of UTF-8's four widths: ASCII, Latin-1 supplement, CJK, an emoji outside the BMP.
WIDTHS = {1: "a", 2: "ü", 3: "漢", 4: "🎬"}
TIMESTAMP = "2026-12-07T10:15:55.123Z"


def widest_valid_id(width: int) -> str:
    """The longest id of one character width: 256 characters, or fewer where the byte bound comes first."""
    return WIDTHS[width] * min(MAX_ID_LENGTH, MAX_ID_BYTES // width)


def size(text: str) -> int:
    return len(text.encode("utf-8"))


def keys_built_from(an_id: str) -> list[tuple[str, int]]:
    """Every DynamoDB key the reconciler builds from an id, with the limit that key is under."""
    keys = [(an_id, PARTITION_KEY_MAX_BYTES)]  # jobId, userId as partition keys (Jobs, Credits, UserLedger, ...)
    for posting in JOB_POSTINGS:  # Ledger's partition key, and inside UserLedger's sort key
        ledger_id = job_ledger_id(an_id, posting)
        keys += [(ledger_id, PARTITION_KEY_MAX_BYTES), (user_ledger_key(TIMESTAMP, ledger_id), SORT_KEY_MAX_BYTES)]
    for ledger_id in (adjustment_ledger_id(an_id), correction_ledger_id(an_id, 10**15)):
        keys += [(ledger_id, PARTITION_KEY_MAX_BYTES), (user_ledger_key(TIMESTAMP, ledger_id), SORT_KEY_MAX_BYTES)]
    return keys


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_every_key_built_from_the_widest_valid_id_fits_dynamodb(width):
    an_id = identifier("jobId", widest_valid_id(width))
    for key, limit in keys_built_from(an_id):
        assert size(key) <= limit, (width, key[:40], size(key), limit)


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_an_id_one_character_past_either_bound_is_refused_by_name(width):
    too_long = widest_valid_id(width) + WIDTHS[width]
    with pytest.raises(InvalidEvent) as refused:
        identifier("jobId", too_long)
    assert refused.value.field == "jobId"
    assert ("bytes" in refused.value.reason) == (size(too_long) > MAX_ID_BYTES and len(too_long) <= MAX_ID_LENGTH)


@pytest.mark.parametrize("width", sorted(WIDTHS))
@pytest.mark.parametrize("prefix", ["corrected:", TIMER_SCAN_EVENT_PREFIX])
def test_derived_ids_of_the_widest_ids_are_valid_ids_and_the_same_each_time(width, prefix):
    base = widest_valid_id(width)
    derived = derived_identifier(prefix, base)
    assert is_identifier(derived) and derived.startswith(prefix)
    assert derived == derived_identifier(prefix, base)
    assert derived != derived_identifier(prefix, base[:-1])


def test_a_derived_id_keeps_the_readable_form_where_it_fits():
    assert derived_identifier("corrected:", "evt-1") == "corrected:evt-1"


valid_ids = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=MAX_ID_LENGTH).filter(is_identifier)


@given(valid_ids)
def test_any_valid_id_builds_keys_that_fit(an_id):
    for key, limit in keys_built_from(an_id):
        assert size(key) <= limit
    assert is_identifier(derived_identifier("corrected:", an_id))
