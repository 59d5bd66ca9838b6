"""moto answers DynamoDB with the same bytes whether an AttributeValue takes the short path or moto's own walker
(emulator/moto_speed.py): for every kind of value, nested, and for the values the short path leaves to moto."""

from __future__ import annotations

import base64
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.serialize import JSONSerializer, XFormedAttributePicker
from moto.core.utils import get_service_model

from emulator import moto_speed

SCALARS: list[dict[str, Any]] = [
    {"S": "ann"},
    {"S": ""},
    {"S": 'ünïcödé 😀 \u2028 "quoted" \\ back'},
    {"N": "0"},
    {"N": "-12.50"},
    {"N": "1E+125"},
    {"BOOL": True},
    {"BOOL": False},
    {"NULL": True},
    {"SS": ["a", "b", "😀"]},
    {"NS": ["1", "2.5"]},
]
NESTED: list[dict[str, Any]] = [
    {"M": {}},
    {"L": []},
    {"M": {"inner": {"M": {"deep": {"L": [{"N": "1"}, {"S": "x"}, {"NULL": True}]}}}, "flag": {"BOOL": False}}},
    {"L": [{"M": {"k": {"SS": ["z"]}}}, {"L": [{"L": []}]}]},
]
LEFT_TO_MOTO: list[dict[str, Any]] = [
    {"B": base64.b64encode(b"\x00\x01").decode()},
    {"BS": [base64.b64encode(b"\x02").decode()]},
    {"M": {"blob": {"B": base64.b64encode(b"\x03").decode()}}},
    {"N": 5},  # not moto's wire form (a number, not its text): moto's walker decides
]
ALL_VALUES = SCALARS + NESTED + LEFT_TO_MOTO


def _body(operation: str, result: dict[str, Any]) -> str:
    model = get_service_model("dynamodb").operation_model(operation)
    serializer = JSONSerializer(operation_model=model, pretty_print=False, value_picker=XFormedAttributePicker())
    return str(serializer.serialize(result)["body"])


def _both_paths(monkeypatch: pytest.MonkeyPatch, operation: str, result: dict[str, Any]) -> tuple[str, str]:
    moto_speed.answer_attribute_values_as_stored()
    short = _body(operation, result)
    monkeypatch.setattr(JSONSerializer, "_serialize_type_structure", moto_speed.moto_walk())
    walked = _body(operation, result)
    monkeypatch.undo()
    return short, walked


@pytest.mark.parametrize("value", ALL_VALUES, ids=lambda value: str(value)[:40])
def test_every_kind_of_value_is_answered_with_the_bytes_moto_would_write(monkeypatch: pytest.MonkeyPatch, value: dict[str, Any]) -> None:
    short, walked = _both_paths(monkeypatch, "GetItem", {"Item": {"userId": {"S": "ann"}, "value": value}})
    assert short == walked


def test_a_page_of_items_and_a_transactions_reasons_are_answered_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    items = [{"userId": {"S": f"u{index}"}, "value": value} for index, value in enumerate(ALL_VALUES)]
    page = {"Items": items, "Count": len(items), "ScannedCount": len(items), "LastEvaluatedKey": {"userId": {"S": "u9"}}}
    assert _both_paths(monkeypatch, "Scan", page)[0] == _both_paths(monkeypatch, "Scan", page)[1]
    reasons = {"CancellationReasons": [{"Code": "ConditionalCheckFailed", "Item": items[0]}, {"Code": "None"}]}
    short, walked = _both_paths(monkeypatch, "TransactWriteItems", reasons)
    assert short == walked


def test_the_short_path_is_taken_for_moto_s_wire_form_and_only_for_it() -> None:
    for value in SCALARS + NESTED:
        assert moto_speed.wire_form(value) == value
        assert moto_speed.wire_form(value) is not value
    for value in LEFT_TO_MOTO:
        assert moto_speed.wire_form(value) is None


def test_moto_answers_a_client_the_item_it_stored() -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="Values",
            KeySchema=[{"AttributeName": "userId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "userId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        item = {"userId": {"S": "ann"}, **{f"a{index}": value for index, value in enumerate(SCALARS + NESTED)}}
        item["blob"] = {"B": b"\x00\xff"}
        client.put_item(TableName="Values", Item=item)
        stored = client.get_item(TableName="Values", Key={"userId": {"S": "ann"}}, ConsistentRead=True)["Item"]
    assert stored == item
