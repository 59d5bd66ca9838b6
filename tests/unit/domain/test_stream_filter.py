"""Lambda's event filtering of DynamoDB stream records (runtime/reconciler/domain/stream_filter.py), on the AWS Lambda
Developer Guide's own examples, and the balance-events filter: every record on which the real function publishes an
event passes it, and a healthy user's change does not."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.domain.crossings import Thresholds
from reconciler.domain.stream_filter import MAX_FILTERS, UnsupportedFilter, balance_event_filters, below, matches
from reconciler.repository.balance_event_store import decode_stream_record
from reconciler.service.balance_event_publishing import DAMAGED, NO_CROSSING, PUBLISHED, REMOVED, BalanceEventService

# The record of the guide's "DynamoDB event" section.
GUIDE_RECORD = {
    "eventID": "1",
    "eventVersion": "1.0",
    "dynamodb": {
        "Keys": {"CustomerName": {"S": "AnyCompany Industries"}, "Number": {"N": "1234"}},
        "NewImage": {
            "AccountManager": {"S": "Pat Candella"},
            "PaymentTerms": {"S": "60 days"},
            "Organizations": {"L": [{"S": "Sales"}, {"S": "Marketing"}]},
        },
        "OldImage": {"AccountManager": {"S": "Terry Whitlock"}},
        "SequenceNumber": "111",
        "SizeBytes": 26,
    },
}


def passes(pattern: dict, record: dict = GUIDE_RECORD) -> bool:
    return matches([pattern], record)


def test_the_guides_examples():
    assert passes({"dynamodb": {"Keys": {"CustomerName": {"S": ["AnyCompany Industries"]}}}})
    assert passes({"dynamodb": {"NewImage": {"AccountManager": {"S": ["Pat Candella", "Shirley Rodriguez"]}}}})
    assert not passes({"dynamodb": {"NewImage": {"AccountManager": {"S": ["Shirley Rodriguez"]}}}})
    both = {"dynamodb": {"NewImage": {"AccountManager": {"S": ["Pat Candella"]}}, "OldImage": {"AccountManager": {"S": ["Terry Whitlock"]}}}}
    assert passes(both)
    assert not passes({"dynamodb": {"NewImage": {"AccountManager": {"S": ["Pat Candella"]}}, "OldImage": {"AccountManager": {"S": ["x"]}}}})
    # Exists works on leaves only: the list node never matches, its elements' values do.
    assert not passes({"dynamodb": {"NewImage": {"Organizations": [{"exists": True}]}}})
    assert passes({"dynamodb": {"NewImage": {"Organizations": {"L": {"S": [{"exists": True}]}}}}})
    # The sort key example: an N value is matched as the string it is in the record.
    assert passes({"dynamodb": {"Keys": {"Number": {"N": ["1234"]}}}})
    assert not passes({"dynamodb": {"Keys": {"Number": {"N": ["4567"]}}}})


def test_dynamodb_numbers_are_strings_so_numeric_rules_never_match_them():
    assert not passes({"dynamodb": {"Keys": {"Number": {"N": [{"numeric": ["=", 1234]}]}}}})
    assert not passes({"dynamodb": {"Keys": {"Number": {"N": [{"numeric": [">", 0]}]}}}})
    assert not passes({"dynamodb": {"Keys": {"Number": {"N": [1234]}}}})  # a JSON number is not the string "1234"
    # A JSON number in the record (SizeBytes) is matched numerically, and by its text for equality.
    assert passes({"dynamodb": {"SizeBytes": [{"numeric": [">", 10, "<=", 26]}]}})
    assert passes({"dynamodb": {"SizeBytes": [26]}})
    assert not passes({"dynamodb": {"SizeBytes": [26.0]}})  # 26 and 26.0 are not the same text


def test_string_rules_exists_and_or():
    assert passes({"dynamodb": {"NewImage": {"PaymentTerms": {"S": [{"prefix": "60"}]}}}})
    assert passes({"dynamodb": {"NewImage": {"PaymentTerms": {"S": [{"suffix": "days"}]}}}})
    assert passes({"dynamodb": {"NewImage": {"PaymentTerms": {"S": [{"equals-ignore-case": "60 DAYS"}]}}}})
    assert passes({"dynamodb": {"NewImage": {"PaymentTerms": {"S": [{"anything-but": ["30 days"]}]}}}})
    assert not passes({"dynamodb": {"NewImage": {"PaymentTerms": {"S": [{"anything-but": ["60 days"]}]}}}})
    assert not passes({"dynamodb": {"NewImage": {"Missing": {"S": [{"anything-but": ["x"]}]}}}})  # absent: no match
    assert passes({"dynamodb": {"NewImage": {"Missing": {"S": [{"exists": False}]}}}})
    assert not passes({"dynamodb": {"NewImage": {"PaymentTerms": {"S": [{"exists": False}]}}}})
    assert passes({"dynamodb": {"NoSuchImage": {"Missing": {"S": [{"exists": False}]}}}})  # an absent parent too
    either = {"dynamodb": {"$or": [{"Keys": {"CustomerName": {"S": ["nobody"]}}}, {"SequenceNumber": ["111"]}]}}
    assert passes(either)


def test_filters_are_ored_and_none_means_everything():
    no, yes = {"dynamodb": {"SequenceNumber": ["0"]}}, {"dynamodb": {"SequenceNumber": ["111"]}}
    assert matches([no, yes], GUIDE_RECORD) and not matches([no], GUIDE_RECORD) and matches([], GUIDE_RECORD)


def test_what_lambda_refuses_is_refused():
    with pytest.raises(UnsupportedFilter, match="dynamodb"):
        matches([{"eventName": ["INSERT"]}], GUIDE_RECORD)
    with pytest.raises(UnsupportedFilter, match="4096"):
        matches([{"dynamodb": {"SequenceNumber": ["x" * 5000]}}], GUIDE_RECORD)
    with pytest.raises(UnsupportedFilter, match="wildcard"):
        matches([{"dynamodb": {"SequenceNumber": [{"wildcard": "1*"}]}}], GUIDE_RECORD)


# --- the balance-events filter ------------------------------------------------------------------------------

DEFAULTS = Thresholds(low=10, overdraft_alert_level=0)
FILTERS = balance_event_filters(DEFAULTS)


def record(new: dict | None, old: dict | None, name: str | None = None) -> dict:
    """A Credits stream record as Lambda delivers it (NEW_AND_OLD_IMAGES), images in DynamoDB JSON."""
    data: dict = {"Keys": {"userId": {"S": "u"}}, "SequenceNumber": "100"}
    for key, image in (("NewImage", new), ("OldImage", old)):
        if image is not None:
            data[key] = {"userId": {"S": "u"}, **image}
    return {"eventName": name or ("REMOVE" if new is None else "INSERT" if old is None else "MODIFY"), "dynamodb": data}


def n(value: int | str) -> dict:
    return {"N": str(value)}


def test_the_filter_fits_lambdas_limits_and_is_what_below_says():
    assert FILTERS is not None and len(FILTERS) <= MAX_FILTERS
    assert below(3) == [{"prefix": "-"}, "0", "1", "2", {"prefix": "0."}, {"prefix": "1."}, {"prefix": "2."}]
    # Past the pattern size limit (a low threshold past 157) there is no filter, and every record goes through.
    assert balance_event_filters(Thresholds(low=157)) is not None and balance_event_filters(Thresholds(low=158)) is None


def test_a_healthy_users_change_does_not_reach_the_function_and_a_low_ones_does():
    assert not matches(FILTERS, record({"remaining": n(975)}, {"remaining": n(1000)}))
    assert not matches(FILTERS, record({"remaining": n(10)}, {"remaining": n(40)}))  # stops at the threshold: not low
    assert not matches(FILTERS, record({"remaining": n(500)}, None))  # a first top-up
    assert matches(FILTERS, record({"remaining": n(9)}, {"remaining": n(40)}))  # goes low
    assert matches(FILTERS, record({"remaining": n(40)}, {"remaining": n(9)}))  # restored
    assert matches(FILTERS, record({"remaining": n(-3)}, {"remaining": n(-1)}))  # stays overdrawn: delivered, no event
    assert matches(FILTERS, record({"remaining": n(975), "lowBalanceThreshold": n(2000)}, {"remaining": n(1000)}))
    assert matches(FILTERS, record(None, {"remaining": n(1000)}))  # a REMOVE: logged by the function


# Values as DynamoDB writes them in a stream record, and the other shapes a Credits item can take.
BALANCES = st.one_of(
    st.integers(-60, 60).map(n),
    st.integers(-(10**20), 10**20).map(n),
    st.sampled_from([{"N": "9.5"}, {"N": "10.5"}, {"N": "-0.5"}, {"S": "5"}, {"S": "25"}, {"BOOL": True}]),
)
OVERRIDES = st.dictionaries(
    st.sampled_from(["lowBalanceThreshold", "overdraftAlertLevel"]),
    st.one_of(st.integers(-40, 80).map(n), st.sampled_from([{"S": "25"}, {"N": "2.5"}])),
    max_size=2,
)


def image(draw, allow_none: bool) -> dict | None:
    if allow_none and draw(st.booleans()):
        return None
    item = {} if draw(st.integers(0, 9)) == 0 else {"remaining": draw(BALANCES)}  # a missing balance is 0
    if draw(st.booleans()):
        item["held"] = n(draw(st.integers(0, 50)))
    return item


class _Publisher:
    def publish(self, detail_type: str, detail: dict) -> str:
        return "event-id"


class _Log:
    def is_published(self, user_id: str, key: str) -> bool:
        return False

    def record(self, item: dict) -> bool:
        return True


class _Ledger:
    def entries_at(self, user_id: str, timestamp: str) -> list:
        return []


@settings(max_examples=2000, deadline=None)
@given(data=st.data(), low=st.integers(1, 40), level=st.integers(-30, 0))
def test_every_record_the_function_publishes_on_passes_the_filter(data, low, level):
    defaults = Thresholds(low, level)
    filters = balance_event_filters(defaults)
    assert filters is not None
    old, new = image(data.draw, allow_none=True), image(data.draw, allow_none=True)
    if new is not None:
        new.update(data.draw(OVERRIDES))
    stream_record = record(new, old)
    outcome = BalanceEventService(defaults, _Publisher(), _Log(), _Ledger()).handle(decode_stream_record(stream_record))
    delivered = matches(filters, stream_record)
    if outcome.kind in (PUBLISHED, REMOVED):
        assert delivered, f"{outcome.kind} record dropped: {json.dumps(stream_record)}"
    if outcome.kind == DAMAGED and not delivered:
        # The one report a filter loses: a fraction, with both sides at least the low threshold (never an event).
        values = [img["remaining"]["N"] for img in (old, new) if img is not None]
        assert any("." in v for v in values) and all(Decimal(v) >= low for v in values), json.dumps(stream_record)
    if outcome.kind == NO_CROSSING and outcome.problems:
        assert delivered  # an unusable override of these types (N fraction, text) is still reported
