"""Where moto is not AWS, made faithful in one place: every test and the simulator go through here.

Installed once per process (`install()`), it wraps botocore's `BaseClient._make_api_call`, the point every
boto3 call of the runtime, the CLI and the tests passes, above botocore's own retries. It:

1. refuses what AWS refuses and moto accepts, in AWS's error shape (`ClientError` with AWS's code):
   - SQS SendMessage: body characters (#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF,
     botocore sqs model, SendMessage.MessageBody), body + attributes at most the queue's MaximumMessageSize in
     bytes (read from the queue: 1 KiB to 1 MiB, default 1 MiB), at most 10 attributes, names of [A-Za-z0-9_.-]
     up to 256 without an AWS./Amazon. prefix, non-empty String values of the same characters (AWS SQS developer guide,
     "Amazon SQS message attributes"): InvalidMessageContents / InvalidParameterValue.
   - SNS Publish: message at most 256 KB; a subject of ASCII without line breaks or control characters,
     under 100 characters (botocore sns model, Publish.Subject): InvalidParameter.
   - DynamoDB: a partition key at most 2,048 bytes, an item at most 400 KB (AWS DynamoDB developer guide,
     "Service, account, and table quotas"): ValidationException.
2. serialises DynamoDB requests against in-process moto, whose cancelled transaction restores whole-table
   copies and can undo another thread's commit (toolchain notes); AWS's transactions are serialisable.
3. lets a fault plan (the simulator's) answer a call instead of AWS, before or after the real call
   (`set_fault_plan`), with the exact shapes below: the throttling and conflict cancellation reasons that
   botocore does not retry, single-request throttling, 5xx, timeouts, and answers that are not errors
   (EventBridge's HTTP 200 PutEvents with a failed entry).
4. tells observers (`observe_results`) what AWS answered to every call that reached it, including the
   calls whose answer a fault then loses (the simulator records the events that are on the bus this way),
   and (`observe_errors`) the errors AWS itself answered (not the injected ones).
5. holds a cancelled TransactWriteItems to AWS's shape of `CancellationReasons[].Item` (botocore dynamodb
   model, CancellationReason.Item; TransactWriteItems' Update/Put/Delete/ConditionCheck
   .ReturnValuesOnConditionCheckFailure: "get the item attributes if the condition fails"): a reason carries
   `Item` only when its condition failed, ALL_OLD was asked and the item exists, and then it is the item as
   it stood. moto 5.2.5 does so; every cancellation is checked against a consistent read under the same lock,
   and a difference is corrected and recorded in `item_corrections` (none seen so far).
6. keeps a table's DynamoDB stream whole across a cancelled transaction, as DynamoDB does: moto's rollback swaps
   in a table copy with a stream shard of its own, so a stream reader went silent. The fix is in moto's backend
   class, shared with the local stack's moto server (reconciler.local.moto_fixes), installed from here.
7. answers an eventually consistent GetItem as AWS may: with an earlier committed version of the item, or none
   where the item was created since (DynamoDB developer guide, "Read consistency": an eventually consistent read
   "might not reflect the results of a recently completed write"; GetItem.ConsistentRead, botocore dynamodb model:
   "If set to true, then the operation uses strongly consistent reads; otherwise, the operation uses eventually
   consistent reads"). moto reads every item strongly consistently. Only where a stale-read plan is set
   (`set_stale_reads`, the simulator's and the tests that ask for it): the layer then keeps each written item's
   last versions and the plan says how far back a read goes. Nothing else changes: a strongly consistent read and
   every write see the current item.

Each difference is listed with its source in docs/emulator-fidelity.md.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

from reconciler.local.moto_fixes import keep_streams_whole_across_cancelled_transactions

# SQS's default and largest MaximumMessageSize (botocore sqs model, CreateQueue.Attributes): what a queue holds to
# when its attribute cannot be read without a request of its own (the moto server).
MAX_SQS_MESSAGE_BYTES = 1024 * 1024
MAX_SQS_ATTRIBUTES = 10
MAX_SNS_MESSAGE_BYTES = 256 * 1024
MAX_DYNAMODB_ITEM_BYTES = 400 * 1024
MAX_DYNAMODB_PARTITION_KEY_BYTES = 2048
_SQS_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,256}$")

# What a fault plan may return: None (call AWS), or a Fault.
FaultPlan = Callable[[str, str, dict], "Fault | None"]

_lock = threading.RLock()
_fault_plan: FaultPlan | None = None
_call_observers: list[Callable[[str, str, dict], None]] = []
_result_observers: list[Callable[[str, str, dict, Any], None]] = []
_error_observers: list[Callable[[str, str, dict, ClientError], None]] = []
violations: list[str] = []  # every refusal this layer made, for the simulator's checks
item_corrections: list[str] = []  # every CancellationReasons Item this layer had to put right
cancellation_items_checked = [0]  # reasons whose Item (or its absence) was checked against AWS's rule
_original: Any = None

# Eventually consistent reads (module docstring, 7.): the plan gets (table, versions it may go back) and says
# how many versions back the read answers (0: the current item). Versions are kept while a plan is set.
StaleReadPlan = Callable[[str, int], int]
_stale_reads: StaleReadPlan | None = None
_stale_tables: frozenset[str] | None = None
_item_versions: dict[tuple[str, str, str], list[dict | None]] = {}  # (endpoint, table, key) -> older versions, oldest first
KEPT_VERSIONS = 3
_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
stale_reads_served = [0]  # eventually consistent reads answered with an earlier version of the item


class Fault:
    """An answer in AWS's shape. `after_call`: the request reached AWS (and committed) and the answer is lost.
    `response`: a successful answer given instead of AWS's (the request never reached it), for failures
    that AWS reports in a 200 answer, such as PutEvents' failed entries."""

    def __init__(self, error: BaseException | None = None, after_call: bool = False, label: str = "", response: dict | None = None) -> None:
        if (error is None) == (response is None):
            raise ValueError("a fault is either an error or a response")
        self.error = error
        self.response = response
        self.after_call = after_call
        self.label = label or (type(error).__name__ if error is not None else "response")


def install() -> None:
    global _original
    if _original is not None:
        return
    keep_streams_whole_across_cancelled_transactions()
    _original = BaseClient._make_api_call  # type: ignore[attr-defined]  # private: not in botocore's stubs

    def _make_api_call(client: BaseClient, operation_name: str, api_params: dict) -> Any:
        service = client.meta.service_model.service_name
        for observer in list(_call_observers):
            observer(service, operation_name, api_params)
        _refuse_what_aws_refuses(client, service, operation_name, api_params)
        fault = _fault_plan(service, operation_name, api_params) if _fault_plan else None
        if fault is not None and not fault.after_call:
            if fault.response is not None:
                return fault.response
            raise fault.error  # type: ignore[misc]
        try:
            if service == "dynamodb" and _in_process(client):
                with _lock:
                    stale = _stale_answer(client, operation_name, api_params)
                    if stale is not None:
                        response = stale
                    else:
                        before = _versions_before(client, operation_name, api_params)
                        try:
                            response = _original(client, operation_name, api_params)
                        except ClientError as error:
                            if operation_name == "TransactWriteItems":
                                _hold_cancellation_items_to_aws(client, api_params, error)
                            raise
                        _keep_versions(before)
            else:
                response = _original(client, operation_name, api_params)
        except ClientError as error:
            for error_observer in list(_error_observers):
                error_observer(service, operation_name, api_params, error)
            raise
        for result_observer in list(_result_observers):
            result_observer(service, operation_name, api_params, response)
        if fault is not None:
            if fault.response is not None:
                return fault.response
            raise fault.error  # type: ignore[misc]
        return response

    BaseClient._make_api_call = _make_api_call  # type: ignore[attr-defined]


def set_fault_plan(plan: FaultPlan | None) -> None:
    global _fault_plan
    _fault_plan = plan


def set_stale_reads(plan: StaleReadPlan | None, tables: frozenset[str] | None = None) -> None:
    """Eventually consistent GetItems answer as `plan` says (module docstring, 7.), for `tables` (None: all); None:
    always current, and the versions kept so far are forgotten. Keeping versions costs a read per written item."""
    global _stale_reads, _stale_tables
    with _lock:
        _stale_reads = plan
        _stale_tables = tables
        _item_versions.clear()


def _version_key(client: BaseClient, table: str, key: dict) -> tuple[str, str, str]:
    return (client.meta.endpoint_url, table, json.dumps(key, sort_keys=True))


def _written_keys(client: BaseClient, operation: str, params: dict) -> list[tuple[str, dict]]:
    """(table, key) of every item a write request may change."""
    if operation in ("UpdateItem", "DeleteItem"):
        return [(params["TableName"], params["Key"])]
    if operation == "PutItem":
        return [(params["TableName"], _key_of(client, params["TableName"], params["Item"]))]
    written = []
    if operation == "TransactWriteItems":
        for entry in params.get("TransactItems", []):
            for kind, op in entry.items():
                if kind != "ConditionCheck":
                    written.append((op["TableName"], op.get("Key") or _key_of(client, op["TableName"], op.get("Item", {}))))
    elif operation == "BatchWriteItem":
        for table, requests in params.get("RequestItems", {}).items():
            for request in requests:
                if "PutRequest" in request:
                    written.append((table, _key_of(client, table, request["PutRequest"]["Item"])))
                elif "DeleteRequest" in request:
                    written.append((table, request["DeleteRequest"]["Key"]))
    return written


def _versions_before(client: BaseClient, operation: str, params: dict) -> list[tuple[tuple[str, str, str], dict | None]]:
    """The current version of each item a write may change, read under the lock just before it runs."""
    if _stale_reads is None or operation not in _WRITES:
        return []
    return [
        (_version_key(client, table, key), _botocore(client, "GetItem", {"TableName": table, "Key": key, "ConsistentRead": True}).get("Item"))
        for table, key in _written_keys(client, operation, params)
        if _stale_tables is None or table in _stale_tables
    ]


def _keep_versions(before: list[tuple[tuple[str, str, str], dict | None]]) -> None:
    """After a write went through: each version it replaced becomes one an eventually consistent read may see."""
    # A write that changed nothing (an unprocessed batch item) keeps a version equal to the current item: harmless.
    for version_key, item in before:
        versions = _item_versions.setdefault(version_key, [])
        versions.append(item)
        del versions[:-KEPT_VERSIONS]


def _stale_answer(client: BaseClient, operation: str, params: dict) -> dict | None:
    """An eventually consistent GetItem's answer from an earlier version, when the plan goes back; else None."""
    if _stale_reads is None or operation != "GetItem" or params.get("ConsistentRead"):
        return None
    versions = _item_versions.get(_version_key(client, params["TableName"], params["Key"]), [])
    back = _stale_reads(params["TableName"], len(versions)) if versions else 0
    if not 0 < back <= len(versions):
        return None
    stale_reads_served[0] += 1
    item = versions[-back]
    answer: dict[str, Any] = {"ResponseMetadata": {"HTTPStatusCode": 200, "RetryAttempts": 0}}
    if item is not None:
        wanted = params.get("ProjectionExpression")
        if wanted:  # not used by the code this layer serves; refuse rather than answer unlike AWS
            raise NotImplementedError("stale reads with a ProjectionExpression are not emulated")
        answer["Item"] = item
    return answer


def observe_calls(observer: Callable[[str, str, dict], None]) -> Callable[[], None]:
    """Calls `observer(service, operation, params)` before every call; returns the function that stops it."""
    _call_observers.append(observer)
    return lambda: _call_observers.remove(observer)


def observe_results(observer: Callable[[str, str, dict, Any], None]) -> Callable[[], None]:
    """Calls `observer(service, operation, params, response)` after every call AWS answered (also when a fault
    then loses the answer: the request took effect); returns the function that stops it."""
    _result_observers.append(observer)
    return lambda: _result_observers.remove(observer)


def observe_errors(observer: Callable[[str, str, dict, ClientError], None]) -> Callable[[], None]:
    """Calls `observer(service, operation, params, error)` for every error AWS (moto) answered, not for injected
    faults; returns the function that stops it."""
    _error_observers.append(observer)
    return lambda: _error_observers.remove(observer)


def read_item(client: BaseClient, table: str, key: dict) -> dict | None:
    """A consistent GetItem straight to botocore: no fault plan, no observers, no switch of the simulator's
    workers (for the simulator's own look-ups between two of the code's calls)."""
    with _lock:
        return _botocore(client, "GetItem", {"TableName": table, "Key": key, "ConsistentRead": True}).get("Item")


def _botocore(client: BaseClient, operation: str, params: dict) -> Any:
    """botocore's own call, beneath every wrapper (the suite's AWS-call recorder, installed before this layer, sets
    __wrapped__): this layer's look-ups are no one's calls, so no principal is charged with them."""
    call = _original
    while hasattr(call, "__wrapped__"):
        call = call.__wrapped__
    return call(client, operation, params)


def condition_holds(operation: dict, item: dict | None) -> bool:
    """Whether a transaction item's ConditionExpression holds on `item` (AttributeValues, None: no item), as
    DynamoDB evaluates it (moto's evaluator, the one that decides the real call)."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    expression = operation.get("ConditionExpression")
    if not expression:
        return True
    condition = get_filter_expression(expression, operation.get("ExpressionAttributeNames"), operation.get("ExpressionAttributeValues"))
    if item is None:
        return bool(condition.expr(None))
    first = next(iter(item.values()))
    return bool(condition.expr(Item(DynamoType(first), None, item)))


def _hold_cancellation_items_to_aws(client: BaseClient, params: dict, error: ClientError) -> None:
    """AWS's rule for CancellationReasons[i].Item (module docstring, 5.), checked and restored in place.

    Called under the lock right after the cancelled call, so the read sees what the transaction saw: a
    cancelled transaction changed nothing, and no other request ran in between."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return
    reasons = error.response.get("CancellationReasons") or []
    for reason, entry in zip(reasons, params.get("TransactItems", []), strict=False):
        operation = next(iter(entry.values()))
        asked = operation.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
        current = None
        if reason.get("Code") == "ConditionalCheckFailed" and asked:
            key = operation.get("Key") or _key_of(client, operation.get("TableName", ""), operation.get("Item", {}))
            current = _botocore(client, "GetItem", {"TableName": operation["TableName"], "Key": key, "ConsistentRead": True}).get("Item")
        cancellation_items_checked[0] += 1
        if reason.get("Item") != current:
            item_corrections.append(
                f"{operation.get('TableName')}: reason {reason.get('Code')} with ALL_OLD {'asked' if asked else 'not asked'}: "
                f"moto gave Item {reason.get('Item')!r}, AWS gives {current!r}"
            )
            if current is None:
                reason.pop("Item", None)
            else:
                reason["Item"] = current


def _key_of(client: BaseClient, table: str, item: dict) -> dict:
    names = [name for name, (_, index) in _key_types(client, table).items() if index == "(table)"]
    return {name: item[name] for name in names if name in item}


def _in_process(client: BaseClient) -> bool:
    return "127.0.0.1" not in client.meta.endpoint_url and "localhost" not in client.meta.endpoint_url


# --- AWS's error shapes (botocore models; AWS DynamoDB "Error handling" and TransactWriteItems pages) --------


def client_error(operation: str, code: str, message: str, status: int = 400, **extra: Any) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}, **extra}
    return ClientError(response, operation)


def transaction_cancelled(operation: str, item_count: int, reason_code: str, message: str, index: int = 0) -> ClientError:
    """TransactionCanceledException with one reason per item, "None" for the items that did not fail."""
    reasons = [{"Code": "None"} for _ in range(item_count)]
    reasons[min(index, item_count - 1)] = {"Code": reason_code, "Message": message}
    text = ", ".join(reason["Code"] for reason in reasons)
    return client_error(
        operation,
        "TransactionCanceledException",
        f"Transaction cancelled, please refer cancellation reasons for specific reasons [{text}]",
        CancellationReasons=reasons,
    )


THROTTLING_REASON = (
    "ThrottlingError",
    "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your "
    "table or index so please try again shortly.",
)
PROVISIONED_REASON = ("ProvisionedThroughputExceeded", "The level of configured provisioned throughput for the table was exceeded.")
CONFLICT_REASON = ("TransactionConflict", "Transaction is ongoing for the item")


def single_request_throttle(operation: str, code: str) -> ClientError:
    messages = {
        "ProvisionedThroughputExceededException": "The level of configured provisioned throughput for the table was exceeded. Consider increasing "
        "your provisioning level with the UpdateTable API.",
        "ThrottlingException": "Rate of requests exceeds the allowed throughput.",
        "RequestLimitExceeded": "Throughput exceeds the current throughput limit for your account.",
    }
    return client_error(operation, code, messages[code])


def internal_server_error(operation: str) -> ClientError:
    return client_error(operation, "InternalServerError", "Internal server error", status=500)


def put_events_failed_entry(code: str) -> dict:
    """EventBridge's HTTP 200 PutEvents answer whose one entry was refused (PutEventsResultEntry: ErrorCode,
    ErrorMessage, no EventId; FailedEntryCount 1)."""
    messages = {"ThrottlingException": "Rate exceeded.", "InternalFailure": "Internal service error."}
    return {
        "FailedEntryCount": 1,
        "Entries": [{"ErrorCode": code, "ErrorMessage": messages.get(code, code)}],
        "ResponseMetadata": {"HTTPStatusCode": 200},
    }


def read_timeout(endpoint: str = "https://dynamodb.us-east-1.amazonaws.com/") -> ReadTimeoutError:
    return ReadTimeoutError(endpoint_url=endpoint)


def connect_timeout(endpoint: str = "https://dynamodb.us-east-1.amazonaws.com/") -> ConnectTimeoutError:
    return ConnectTimeoutError(endpoint_url=endpoint)


# --- refusals ----------------------------------------------------------------------------------------------


def sqs_allowed(char: str) -> bool:
    code = ord(char)
    return code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF


def _refuse(operation: str, code: str, message: str) -> None:
    violations.append(f"{operation}: {code}: {message}")
    raise client_error(operation, code, message)


def _refuse_what_aws_refuses(client: BaseClient, service: str, operation: str, params: dict) -> None:
    if service == "sqs" and operation == "SendMessage":
        limit = _queue_maximum(client, params.get("QueueUrl", ""))
        _check_sqs_message(operation, params.get("MessageBody", ""), params.get("MessageAttributes") or {}, limit)
    elif service == "sqs" and operation == "SendMessageBatch":
        limit = _queue_maximum(client, params.get("QueueUrl", ""))
        for entry in params.get("Entries", []):
            _check_sqs_message(operation, entry.get("MessageBody", ""), entry.get("MessageAttributes") or {}, limit)
    elif service == "sns" and operation == "Publish":
        _check_sns_publish(operation, params)
    elif service == "dynamodb":
        _check_dynamodb(client, operation, params)


def _queue_maximum(client: BaseClient, queue_url: str) -> int:
    """The queue's MaximumMessageSize, from in-process moto's own record of the queue (a GetQueueAttributes request
    would be counted by the request-count tests); against the moto server, SQS's default."""
    if not _in_process(client):
        return MAX_SQS_MESSAGE_BYTES
    from moto.sqs.models import sqs_backends

    *_, account, name = queue_url.rstrip("/").split("/")
    try:
        return int(sqs_backends[account][client.meta.region_name].get_queue(name).maximum_message_size)
    except Exception:  # noqa: BLE001 - an unknown queue is refused by SendMessage itself, in moto's words
        return MAX_SQS_MESSAGE_BYTES


def _check_sqs_message(operation: str, body: str, attributes: dict, limit: int = MAX_SQS_MESSAGE_BYTES) -> None:
    if not body:
        _refuse(operation, "InvalidParameterValue", "The request must contain the parameter MessageBody.")
    bad = next((char for char in body if not sqs_allowed(char)), None)
    if bad is not None:
        _refuse(operation, "InvalidMessageContents", f"Invalid characters found. Unicode #x{ord(bad):X} is not allowed in the message body.")
    if len(attributes) > MAX_SQS_ATTRIBUTES:
        _refuse(operation, "InvalidParameterValue", f"Number of message attributes [{len(attributes)}] exceeds the allowed maximum [10].")
    size = len(body.encode("utf-8", "surrogatepass"))
    for name, value in attributes.items():
        if (
            not _SQS_ATTRIBUTE_NAME.match(name)
            or name.lower().startswith(("aws.", "amazon."))
            or ".." in name
            or name.startswith(".")
            or name.endswith(".")
        ):
            _refuse(operation, "InvalidParameterValue", f"Message attribute name '{name}' is invalid.")
        data_type = value.get("DataType", "")
        if data_type.startswith("String") or data_type.startswith("Number"):
            text = value.get("StringValue")
            if not text:
                _refuse(operation, "InvalidParameterValue", f"Message (user) attribute '{name}' must contain a non-empty value of type 'String'.")
            bad = next((char for char in text if not sqs_allowed(char)), None)
            if bad is not None:
                _refuse(operation, "InvalidParameterValue", f"Message (user) attribute '{name}' value contains invalid characters (#x{ord(bad):X}).")
            size += len(text.encode("utf-8", "surrogatepass"))
        size += len(name.encode()) + len(data_type.encode())
    if size > limit:
        _refuse(operation, "InvalidParameterValue", f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes.")


def _check_sns_publish(operation: str, params: dict) -> None:
    message = params.get("Message", "")
    if len(message.encode("utf-8", "surrogatepass")) > MAX_SNS_MESSAGE_BYTES:
        _refuse(operation, "InvalidParameter", "Invalid parameter: Message too long")
    subject = params.get("Subject")
    if subject is not None and (not subject or len(subject) >= 100 or not subject.isascii() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in subject)):
        _refuse(operation, "InvalidParameter", "Invalid parameter: Subject")
    for char in message:
        if 0xD800 <= ord(char) <= 0xDFFF:
            _refuse(operation, "InvalidParameter", "Invalid parameter: Message must be valid UTF-8")


def _check_dynamodb(client: BaseClient, operation: str, params: dict) -> None:
    puts: list[tuple[str, dict]] = []
    if operation == "PutItem":
        puts.append((params.get("TableName", ""), params.get("Item", {})))
    elif operation == "TransactWriteItems":
        for entry in params.get("TransactItems", []):
            if "Put" in entry:
                puts.append((entry["Put"].get("TableName", ""), entry["Put"].get("Item", {})))
    for table, item in puts:
        if _attribute_bytes(item) > MAX_DYNAMODB_ITEM_BYTES:
            _refuse(operation, "ValidationException", "Item size has exceeded the maximum allowed size")
        # AWS refuses an item whose table or index key attribute has another type than declared; moto
        # stores it, and a later index query then fails inside moto comparing a number with a string.
        for attribute, (declared, index) in _key_types(client, table).items():
            value = item.get(attribute)
            if value is not None and declared not in value:
                actual = next(iter(value), "?")
                _refuse(
                    operation,
                    "ValidationException",
                    f"One or more parameter values were invalid: Type mismatch for Index Key {attribute} Expected: {declared} Actual: {actual} "
                    f"IndexName: {index}",
                )
    for key in _keys(operation, params):
        for value in key.values():
            text = value.get("S")
            if text is not None and len(text.encode("utf-8", "surrogatepass")) > MAX_DYNAMODB_PARTITION_KEY_BYTES:
                _refuse(
                    operation,
                    "ValidationException",
                    "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of 2048 bytes",
                )
            if text is not None and any(0xD800 <= ord(c) <= 0xDFFF for c in text):
                _refuse(operation, "ValidationException", "One or more parameter values were invalid: a string is not valid UTF-8")


_key_type_cache: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}


def _key_types(client: BaseClient, table: str) -> dict[str, tuple[str, str]]:
    """Key attribute -> (declared type, index name) of a table and its indexes, read once per table.

    In-process moto only: against the moto server the look-up would be a request of its own, which the
    request-count tests would see. The server is used by a handful of tests; the simulator runs in-process."""
    if not _in_process(client):
        return {}
    cache_key = (client.meta.endpoint_url, table)
    if cache_key not in _key_type_cache:
        try:  # straight to botocore: no fault plan, no observers, no refusal checks for our own look-up
            description = _original(client, "DescribeTable", {"TableName": table})["Table"]
        except ClientError:
            return {}
        declared = {d["AttributeName"]: d["AttributeType"] for d in description.get("AttributeDefinitions", [])}
        keys = {k["AttributeName"]: (declared.get(k["AttributeName"], "S"), "(table)") for k in description.get("KeySchema", [])}
        for index in description.get("GlobalSecondaryIndexes", []) + description.get("LocalSecondaryIndexes", []):
            for key in index["KeySchema"]:
                keys.setdefault(key["AttributeName"], (declared.get(key["AttributeName"], "S"), index["IndexName"]))
        _key_type_cache[cache_key] = keys
    return _key_type_cache[cache_key]


def _keys(operation: str, params: dict) -> list[dict]:
    keys = [params["Key"]] if "Key" in params else []
    for entry in params.get("TransactItems", []):
        for op in entry.values():
            if "Key" in op:
                keys.append(op["Key"])
    return keys


def _attribute_bytes(item: dict) -> int:
    return len(json.dumps(item, ensure_ascii=False).encode("utf-8", "surrogatepass"))
