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
   - DynamoDB, every limit the code can reach (DynamoDB developer guide, "Service, account, and table quotas",
     "Item sizes and formats", "Supported data types and naming rules"; botocore dynamodb model), with AWS's
     ValidationException (a cancelled transaction's ValidationError reason where AWS cancels):
     keys in bytes of UTF-8, the partition key 1 to 2,048 and the sort key 1 to 1,024, on every request that
     names one (Key of every read and write, items written, a Query's key condition) and for every key of the
     table's global and local indexes an item carries, of the declared type; an item at most 400 KB as DynamoDB
     measures it, an update's by the item it leaves; transactions of at most 100 actions, one per item, of at
     most 4 MB of items; batches of at most 25 writes and 100 reads; numbers of at most 38 significant digits
     between 1E-130 and 9.99...E+125 in magnitude, wherever they are (items, expression values, the results of
     ADD and SET arithmetic); expressions of at most 4 KB, 300 operators in an update, 100 IN operands,
     placeholders of at most 255 bytes, 2 MB of names and values; 32 levels of nesting; no consistent read of
     a global index. What the request decides is checked before any fault; what the stored items decide (an
     update's result, a transaction's size) under the lock just before the call, in-process only, with the
     update evaluated by moto's own evaluator on a copy where a cheap bound cannot show it within the limits.
     In-process moto's own limits where they differ (an approximate 405,000-byte item limit, 25 items per
     TransactGetItems) are handed to this layer, and its arithmetic made exact (it rounded to 28 digits).
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
   class (`keep_streams_whole_across_cancelled_transactions`, below), installed here for in-process moto and by
   the local stack's moto server (emulator/server.py) for itself.
7. answers an eventually consistent GetItem as AWS may: with an earlier committed version of the item, or none
   where the item was created since (DynamoDB developer guide, "Read consistency": an eventually consistent read
   "might not reflect the results of a recently completed write"; GetItem.ConsistentRead, botocore dynamodb model:
   "If set to true, then the operation uses strongly consistent reads; otherwise, the operation uses eventually
   consistent reads"). moto reads every item strongly consistently. Only where a stale-read plan is set
   (`set_stale_reads`, the simulator's and the tests that ask for it): the layer then keeps each written item's
   last versions and the plan says how far back a read goes. Nothing else changes: a strongly consistent read and
   every write see the current item.
8. answers a Query or Scan of a global secondary index as AWS may: from the table as it stood some writes ago
   (DynamoDB developer guide, "Using Global Secondary Indexes in DynamoDB": a table's changes reach its global
   indexes asynchronously; botocore dynamodb model, Query: "Global secondary indexes support eventually
   consistent reads only", QueryInput.ConsistentRead). moto updates its indexes with the table. Only where an
   index-lag plan is set (`set_index_lag`): the plan gets the stamps of the writes the index has not applied yet
   and says how many of the newest it still misses; applied writes stay applied (an index is never ahead of its
   table and never goes back), and a plan that misses only young writes (`index_lag_missing_writes_younger_than`)
   catches up by itself; `catch_up_indexes` applies all. The stamps come from the caller's clock (the simulator's
   logical steps) or count DynamoDB calls, so a seeded plan lags the same way each run. Local indexes, the table
   and every write are unaffected. In-process only.
9. serialises the requests of the local stack's moto server (`SerializedApp`, below), as 2. does in-process: moto's
   server answers on parallel threads without a lock, so two concurrent transactions could both pass their
   conditions and both apply (and a cancelled one could undo another's commit). Clients still race between their
   reads and writes exactly as against AWS; moto is GIL-bound, so nothing is lost in throughput.
10. reads a DynamoDB stream as AWS writes it (`drop_key_only_inserts`, below): moto records an UpdateItem or a
   transaction that creates an item as two INSERT records, the first holding only the key; DynamoDB Streams records
   one (DynamoDB developer guide, "Change data capture for DynamoDB Streams"; observed with moto 5.2.5). Every
   reader of moto's stream (the local stack's poller, the simulator's drain) goes through it. And in-process
   moto answers DynamoDB Streams only at `IN_PROCESS_STREAMS` (botocore would pick an account-based host, which
   in-process moto answers 404 "Not yet implemented").
11. evaluates CloudWatch Logs term filter patterns (`?ERROR ?Traceback`, `-term`, quoted terms) in FilterLogEvents as
   AWS does (CloudWatch Logs user guide, "Filter pattern syntax for metric filters, subscription filters, and filter
   log events", "Matching terms in unstructured log events"): moto 5.2.5 lets every event through a pattern that
   starts with `?` or `-` (`evaluate_log_filter_patterns_as_aws_does`, in-process and in the local stack's server).

Each difference is listed with its source in docs/emulator-fidelity.md.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from functools import lru_cache
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

from emulator.moto_speed import answer_attribute_values_as_stored

# SQS's default and largest MaximumMessageSize (botocore sqs model, CreateQueue.Attributes): what a queue holds to
# when its attribute cannot be read without a request of its own (the moto server).
MAX_SQS_MESSAGE_BYTES = 1024 * 1024
MAX_SQS_ATTRIBUTES = 10
MAX_SNS_MESSAGE_BYTES = 256 * 1024
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

# Global secondary indexes that lag their table (module docstring, 8.): the plan gets (table, index, the stamps of
# the writes its view has not applied yet, oldest first) and says how many of the newest it still misses (0: it
# catches up). Views are kept while a plan is set.
IndexLagPlan = Callable[[str, str, Sequence[int]], int]
_index_lag: IndexLagPlan | None = None
_lag_tables: frozenset[str] | None = None
_lag_clock: Callable[[], int] | None = None
_lag_ticks = [0]  # the default clock: in-process DynamoDB calls made while a plan is set
index_reads_lagged = [0]  # index reads answered from a view that missed writes


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
    evaluate_log_filter_patterns_as_aws_does()
    answer_attribute_values_as_stored()
    _hand_moto_limits_to_this_layer()
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
                response = _call_in_process_dynamodb(client, operation_name, api_params)
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


def _call_in_process_dynamodb(client: BaseClient, operation: str, params: dict) -> Any:
    """In-process moto's answer, one request at a time (module docstring, 2.), as AWS would give it: refused where
    the items as stored make AWS refuse it (1.), an earlier version or index view where a plan says (7., 8.), a
    cancelled transaction's reasons in AWS's shape (5.)."""
    with _lock:
        stale = _stale_answer(client, operation, params)
        if stale is not None:
            return stale
        _check_stored_items(client, operation, params)
        before = _versions_before(client, operation, params)
        try:
            with _indexes_lag(client, operation, params):
                response = _original(client, operation, params)
        except ClientError as error:
            if operation == "TransactWriteItems":
                _hold_cancellation_items_to_aws(client, params, error)
            raise
        _keep_versions(before)
        return response


def _hand_moto_limits_to_this_layer() -> None:
    """In-process moto's own limits where they are not AWS's, off: this layer holds requests to AWS's (1.). moto
    refuses an item over 405,000 bytes as it measures them (numbers by their text, no list or map overheads; AWS:
    409,600 as DynamoDB measures, "Item sizes and formats"), checking the whole item again at each attribute it
    sets; and a TransactGetItems of more than 25 items (AWS: 100, botocore TransactGetItemList). And moto's sums
    and differences made exact, as DynamoDB's are to 38 digits: moto rounds fractions to 28 digits and fails
    (ValueError) on a number written with an exponent, such as 1E+88."""
    from moto.dynamodb import responses
    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict

    LimitedSizeDict.__setitem__ = dict.__setitem__
    responses.TRANSACTION_MAX_ITEMS = MAX_TRANSACTION_ITEMS
    for name, operation in (("__add__", lambda a, b: a + b), ("__sub__", lambda a, b: a - b)):
        setattr(DynamoType, name, _exact_arithmetic(getattr(DynamoType, name), operation))


def _exact_arithmetic(original: Callable[[Any, Any], Any], operation: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    def arithmetic(self: Any, other: Any) -> Any:
        if self.type != "N" or other.type != "N":
            return original(self, other)
        with localcontext() as context:
            context.prec = 1000  # exact for any two numbers DynamoDB holds
            result = operation(_moto_number(self.value), _moto_number(other.value))
        return DynamoType({"N": str(result)})

    return arithmetic


def _moto_number(text: str) -> int | Decimal:
    """A stored number as moto computes with it: an int for plain digits (moto answers sums of those as digits)."""
    return int(text) if text.lstrip("+-").isdigit() else Decimal(text)


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
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    if item is None:
        return _condition_holds_on(operation, None)
    return _condition_holds_on(operation, Item(DynamoType(next(iter(item.values()))), None, item))


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
    return _cancellation(operation, reasons)


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


# --- DynamoDB's limits (module docstring, 1.) ----------------------------------------------------------------
# Sources: DynamoDB developer guide, "Service, account, and table quotas" (keys, items, transactions, expression
# parameters), "Item sizes and formats" (how an item is measured), "Supported data types and naming rules"
# (numbers, nesting); botocore dynamodb model (list maximums; TransactionCanceledException's ValidationError
# messages). Each rule is listed with its source in docs/emulator-fidelity.md.

MAX_DYNAMODB_ITEM_BYTES = 400 * 1024  # quotas, "Item size": 400 KB, attribute names and values together
MAX_DYNAMODB_PARTITION_KEY_BYTES = 2048  # quotas, "Partition key value": 1 to 2,048 bytes
MAX_DYNAMODB_SORT_KEY_BYTES = 1024  # quotas, "Sort key value": 1 to 1,024 bytes
MAX_TRANSACTION_ITEMS = 100  # botocore TransactWriteItemList, TransactGetItemList: max 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024  # TransactWriteItems, TransactGetItems: "aggregate size ... cannot exceed 4 MB"
MAX_BATCH_WRITE_REQUESTS = 25  # botocore WriteRequests and BatchWriteItem: up to 25 put or delete requests
MAX_BATCH_GET_KEYS = 100  # botocore KeyList and BatchGetItem: as many as 100 items
MAX_EXPRESSION_BYTES = 4096  # quotas, "Expression parameters": any expression string at most 4 KB
MAX_PLACEHOLDER_BYTES = 255  # quotas: any single expression attribute name or value (#name, :val) at most 255 bytes
MAX_SUBSTITUTION_BYTES = 2 * 1024 * 1024  # quotas: all ExpressionAttributeNames and Values of a request, 2 MB
MAX_UPDATE_OPERATORS = 300  # quotas: operators or functions in an UpdateExpression
MAX_IN_OPERANDS = 100  # quotas: operands of the IN comparator
MAX_NESTING_LEVELS = 32  # data types: "DynamoDB supports nested attributes up to 32 levels deep"
MAX_NUMBER_DIGITS = 38  # data types: "Numbers can have up to 38 digits of precision"
LOWEST_NUMBER_EXPONENT, HIGHEST_NUMBER_EXPONENT = -130, 125  # 1E-130 to 9.9999999999999999999999999999999999999E+125

_HASH_KEY_TOO_LONG = (
    f"One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of {MAX_DYNAMODB_PARTITION_KEY_BYTES} bytes"
)
_RANGE_KEY_TOO_LONG = (
    f"One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of {MAX_DYNAMODB_SORT_KEY_BYTES} bytes"
)
_KEY_EMPTY = "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: {}"
_ITEM_KEY_EMPTY = "One or more parameter values were invalid: An AttributeValue may not contain an empty string. Key: {}"
_INDEX_KEY_EMPTY = (
    "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a "
    "key attribute cannot contain an empty string value. IndexName: {}, IndexKey: {}"
)
_NOT_UTF8 = "One or more parameter values were invalid: a string is not valid UTF-8"
_ITEM_TOO_LARGE = "Item size has exceeded the maximum allowed size"
# A cancelled transaction's ValidationError messages (botocore model, TransactionCanceledException); UpdateItem's too.
_UPDATED_ITEM_TOO_LARGE = "Item size to update has exceeded the maximum allowed size"
_INDEX_KEY_TOO_LONG_BY_UPDATE = "The update expression attempted to update the secondary index key beyond allowed size limits"
_INDEX_KEY_TYPE_BY_UPDATE = "The update expression attempted to update the secondary index key to unsupported type"
_NUMBER_OVERFLOW = "Number overflow. Attempting to store a number with magnitude larger than supported range"
_NUMBER_UNDERFLOW = "Number underflow. Attempting to store a number with magnitude smaller than supported range"
_NUMBER_PRECISION = "Attempting to store more than 38 significant digits in a Number"
_NESTING = "Nesting Levels have exceeded supported limits"
_DUPLICATE_TRANSACTION_ITEM = "Transaction request cannot include multiple operations on one item"
_GSI_CONSISTENT_READ = "Consistent reads are not supported on global secondary indexes"
_TRANSACTION_TOO_LARGE = f"Transaction size has exceeded the maximum allowed size of {MAX_TRANSACTION_BYTES} bytes"  # our words
# A request of the wrong shape: botocore's parameter validation, which runs after this layer, refuses it.
_MALFORMED = (TypeError, AttributeError, KeyError, ValueError, IndexError)


class _Refused(Exception):
    """A request AWS refuses, with AWS's code and message: raised by the checks, answered as AWS's error."""

    def __init__(self, message: str, code: str = "ValidationException") -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _check_dynamodb(client: BaseClient, operation: str, params: dict) -> None:
    """What the request alone makes DynamoDB refuse; what the items as stored decide is `_check_stored_items`."""
    try:
        if operation in ("PutItem", "UpdateItem", "DeleteItem", "GetItem", "Query", "Scan"):
            _check_operation(client, operation, params)
        elif operation == "TransactWriteItems":
            _check_transact_write(client, params)
        elif operation == "TransactGetItems":
            _check_transact_get(client, params)
        elif operation == "BatchWriteItem":
            _check_batch_write(client, params)
        elif operation == "BatchGetItem":
            _check_batch_get(client, params)
        return
    except _Refused as refusal:
        refused = refusal
    except _MALFORMED:
        return
    _refuse(operation, refused.code, refused.message)


def _check_operation(client: BaseClient, operation: str, op: dict) -> _Schema | None:
    """One operation, alone or a transaction's action: its expressions, Key, Item and key condition."""
    schema = _schema(client, op.get("TableName", ""))
    _check_expressions(op)
    if "Key" in op:
        _check_key(schema, op["Key"])
    if "Item" in op:
        _check_item(schema, op["Item"])
    if operation == "Query":
        _check_key_condition(schema, op)
    index = op.get("IndexName")
    if index and op.get("ConsistentRead") and schema is not None and schema.indexes.get(index, ("", None, False))[2]:
        raise _Refused(_GSI_CONSISTENT_READ)
    return schema


def _transaction_entries(params: dict) -> list[dict]:
    """A transaction's actions, at most 100 (botocore TransactWriteItemList, TransactGetItemList)."""
    entries: list[dict] = params.get("TransactItems") or []
    if len(entries) > MAX_TRANSACTION_ITEMS:
        raise _Refused(
            "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_TRANSACTION_ITEMS}"
        )
    return entries


def _check_transact_write(client: BaseClient, params: dict) -> None:
    entries = _transaction_entries(params)
    targets = set()
    for entry in entries:
        for kind, op in entry.items():
            schema = _check_operation(client, kind, op)
            key = op.get("Key") or (schema.key_of(op["Item"]) if schema is not None else None)
            if key is None:
                continue  # a Put against the moto server: its key is not known here
            target = (op.get("TableName"), tuple(sorted((name, repr(value)) for name, value in key.items())))
            if target in targets:
                raise _Refused(_DUPLICATE_TRANSACTION_ITEM)
            targets.add(target)


def _check_transact_get(client: BaseClient, params: dict) -> None:
    for entry in _transaction_entries(params):
        _check_operation(client, "Get", entry["Get"])


def _check_batch_write(client: BaseClient, params: dict) -> None:
    total = 0
    for table, writes in (params.get("RequestItems") or {}).items():
        if len(writes) > MAX_BATCH_WRITE_REQUESTS:
            raise _Refused(
                "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: "
                f"[Member must have length less than or equal to {MAX_BATCH_WRITE_REQUESTS}, Member must have length greater than or equal to 1]"
            )
        total += len(writes)
        schema = _schema(client, table)
        for write in writes:
            if "PutRequest" in write:
                _check_item(schema, write["PutRequest"]["Item"])
            if "DeleteRequest" in write:
                _check_key(schema, write["DeleteRequest"]["Key"])
    if total > MAX_BATCH_WRITE_REQUESTS:
        raise _Refused("Too many items requested for the BatchWriteItem call")


def _check_batch_get(client: BaseClient, params: dict) -> None:
    total = 0
    for table, request in (params.get("RequestItems") or {}).items():
        schema = _schema(client, table)
        _check_expressions(request)
        total += len(request.get("Keys") or [])
        for key in request.get("Keys") or []:
            _check_key(schema, key)
    if total > MAX_BATCH_GET_KEYS:
        raise _Refused("Too many items requested for the BatchGetItem call")


# --- the tables' keys, as in-process moto holds them ----------------------------------------------------------


@dataclass(frozen=True)
class _Schema:
    hash: str
    range: str | None
    keys: dict[str, tuple[str, str, int]]  # key attribute of the table or an index -> (declared type, first index naming it, bytes allowed)
    indexes: dict[str, tuple[str, str | None, bool]]  # index -> (partition key, sort key, global)

    def key_of(self, item: dict) -> dict:
        return {name: item[name] for name in (self.hash, self.range) if name and name in item}


_schemas: dict[tuple[str, str], tuple[Any, _Schema]] = {}


def _schema(client: BaseClient, table_name: str) -> _Schema | None:
    """The keys of the table and its indexes, from in-process moto's own table; None against the moto server (a
    look-up there would be a request of its own, which the request-count tests would see) or for no such table."""
    table = _moto_table(client, table_name)
    if table is None:
        return None
    cached = _schemas.get((client.meta.endpoint_url, table_name))
    if cached is not None and cached[0] is table:
        return cached[1]
    declared = {definition["AttributeName"]: definition["AttributeType"] for definition in table.attr}
    keys: dict[str, tuple[str, str, int]] = {}
    indexes: dict[str, tuple[str, str | None, bool]] = {}
    for index, key_schema in [("(table)", table.schema)] + [(index.name, index.schema) for index in table.all_indexes()]:
        roles = {element["KeyType"]: element["AttributeName"] for element in key_schema}
        if index != "(table)":
            indexes[index] = (roles["HASH"], roles.get("RANGE"), any(gsi.name == index for gsi in table.global_indexes))
        for role, attribute in roles.items():
            allowed = MAX_DYNAMODB_PARTITION_KEY_BYTES if role == "HASH" else MAX_DYNAMODB_SORT_KEY_BYTES
            kind, named_by, before = keys.get(attribute, (declared.get(attribute, "S"), index, allowed))
            keys[attribute] = (kind, named_by, min(before, allowed))  # a key of several indexes: the strictest limit
    schema = _Schema(table.hash_key_attr, table.range_key_attr, keys, indexes)
    _schemas[(client.meta.endpoint_url, table_name)] = (table, schema)  # moto swaps in a copy after a cancelled transaction
    return schema


def _moto_table(client: BaseClient, table_name: str) -> Any:
    """In-process moto's table of that name (None: not in-process, or no such table)."""
    return _moto_tables(client).get(table_name) if _in_process(client) else None


def _moto_tables(client: BaseClient) -> dict[str, Any]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID][client.meta.region_name].tables


def _key_values(schema: _Schema, key: dict) -> tuple[Any, Any]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    return DynamoType(key[schema.hash]), DynamoType(key[schema.range]) if schema.range else None


def _stored(client: BaseClient, op: dict) -> Any:
    """The item an operation's Key names, as in-process moto stores it (moto's Item), or None."""
    table, schema = _moto_table(client, op["TableName"]), _schema(client, op["TableName"])
    return None if table is None or schema is None else table.get_item(*_key_values(schema, op["Key"]))


def _key_of(client: BaseClient, table: str, item: dict) -> dict:
    schema = _schema(client, table)
    return schema.key_of(item) if schema is not None else {}


# --- sizes and numbers as DynamoDB counts them ("Item sizes and formats"; "Supported data types") -------------


def _utf8(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@lru_cache(maxsize=65536)
def _number_bytes(text: str) -> int:
    """A number's size (1 byte per two significant digits, plus 1), or _Refused for one DynamoDB refuses: more than
    38 significant digits, or a magnitude outside 1E-130 to 9.9999999999999999999999999999999999999E+125 (boto3's
    decimal context lets subnormals down to about 1E-165 through; moto compares in floats)."""
    if not _NUMBER.fullmatch(text):
        raise _Refused(f"The parameter cannot be converted to a numeric value: {text}")
    number = Decimal(text)
    significant = "".join(map(str, number.as_tuple().digits)).strip("0")
    if not significant:
        return 1  # zero
    if len(significant) > MAX_NUMBER_DIGITS:
        raise _Refused(_NUMBER_PRECISION)
    if number.adjusted() > HIGHEST_NUMBER_EXPONENT:
        raise _Refused(_NUMBER_OVERFLOW)
    if number.adjusted() < LOWEST_NUMBER_EXPONENT:
        raise _Refused(_NUMBER_UNDERFLOW)
    return (len(significant) + 1) // 2 + 1


def _binary_bytes(data: Any, stored: bool) -> int:
    if isinstance(data, str):  # moto holds a binary as its base64 text; a request's text is sent as its UTF-8
        return len(base64.b64decode(data)) if stored else _utf8(data)
    return len(data)


def _value_bytes(value: Any, depth: int = 1) -> int:
    """An attribute value's size: strings and binaries by their bytes, numbers by their digits, 1 for a boolean or
    null, a set the sum of its members, a list or map 3 bytes plus 1 per element (and a map element's name).
    `value`: a request's AttributeValue, or moto's stored DynamoType. Refuses a number DynamoDB refuses, and
    nesting deeper than 32 levels (a top-level list or map is level 1)."""
    stored = not isinstance(value, dict)
    if stored:
        kind, data = value.type, value.value
    else:
        ((kind, data),) = value.items()
    if kind == "S":
        return _utf8(data)
    if kind == "N":
        return _number_bytes(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "B":
        return _binary_bytes(data, stored)
    if kind in ("L", "M"):
        if depth > MAX_NESTING_LEVELS:
            raise _Refused(_NESTING)
        if kind == "L":
            return 3 + sum(1 + _value_bytes(member, depth + 1) for member in data)
        return 3 + sum(1 + _utf8(name) + _value_bytes(member, depth + 1) for name, member in data.items())
    if kind == "SS":
        return sum(_utf8(member) for member in data)
    if kind == "NS":
        return sum(_number_bytes(member) for member in data)
    if kind == "BS":
        return sum(_binary_bytes(member, stored) for member in data)
    return 0


def _item_bytes(attributes: Mapping[str, Any]) -> int:
    """An item's size: its attribute names' UTF-8 bytes plus their values' sizes."""
    return sum(_utf8(name) + _value_bytes(value) for name, value in attributes.items())


def _numbers(value: Any) -> Iterator[str]:
    """Every number in an attribute value (a request's or moto's), nested ones too."""
    kind, data = (value.type, value.value) if not isinstance(value, dict) else next(iter(value.items()))
    if kind == "N":
        yield data
    elif kind == "NS":
        yield from data
    elif kind == "L":
        for member in data:
            yield from _numbers(member)
    elif kind == "M":
        for member in data.values():
            yield from _numbers(member)


@lru_cache(maxsize=65536)
def _number_span(text: str) -> tuple[int, int] | None:
    """(exponent of the first significant digit, of the last), None for zero."""
    number = Decimal(text)
    _, digits, exponent = number.as_tuple()
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return None if trailing == len(digits) else (number.adjusted(), int(exponent) + trailing)


# --- keys ------------------------------------------------------------------------------------------------------


def _check_key_bytes(value: dict, allowed: int, empty: str | None) -> None:
    """A key attribute's value: a string of 1 to `allowed` bytes of UTF-8, or a binary of 1 to `allowed` bytes (a
    number's size is always within both limits). `empty`: AWS's message for an empty one (None: not checked)."""
    ((kind, data),) = value.items()
    if kind == "S":
        try:
            size = len(data.encode("utf-8"))
        except UnicodeEncodeError:  # a lone surrogate: not UTF-8 at all
            raise _Refused(_NOT_UTF8) from None
    elif kind == "B":
        size = _binary_bytes(data, stored=False)
    else:
        return
    if size == 0 and empty is not None:
        raise _Refused(empty)
    if size > allowed:
        raise _Refused(_HASH_KEY_TOO_LONG if allowed == MAX_DYNAMODB_PARTITION_KEY_BYTES else _RANGE_KEY_TOO_LONG)


def _check_key(schema: _Schema | None, key: dict) -> None:
    """A request's Key: the partition key 1 to 2,048 bytes, the sort key 1 to 1,024. Against the moto server, where
    the schema is not known here, each attribute within the partition key's limit."""
    for attribute, value in key.items():
        allowed = MAX_DYNAMODB_SORT_KEY_BYTES if schema is not None and attribute == schema.range else MAX_DYNAMODB_PARTITION_KEY_BYTES
        _check_key_bytes(value, allowed, _KEY_EMPTY.format(attribute))


def _check_item(schema: _Schema | None, item: dict) -> int:
    """A written item: at most 400 KB, its numbers valid, and every key attribute of the table and its indexes of
    the declared type and within its limit (AWS refuses an index key of another type; moto stores it, and a later
    index query fails inside moto comparing a number with a string). Returns its size."""
    size = _item_bytes(item)
    if size > MAX_DYNAMODB_ITEM_BYTES:
        raise _Refused(_ITEM_TOO_LARGE)
    for attribute, (declared, index, allowed) in schema.keys.items() if schema is not None else ():
        value = item.get(attribute)
        if value is None:
            continue
        actual = next(iter(value), "?")
        if actual != declared and index == "(table)":
            raise _Refused(f"One or more parameter values were invalid: Type mismatch for key {attribute} expected: {declared} actual: {actual}")
        if actual != declared:
            raise _Refused(
                f"One or more parameter values were invalid: Type mismatch for Index Key {attribute} Expected: {declared} Actual: {actual} "
                f"IndexName: {index}"
            )
        _check_key_bytes(value, allowed, _ITEM_KEY_EMPTY.format(attribute) if index == "(table)" else _INDEX_KEY_EMPTY.format(index, attribute))
    return size


_EQUALS = re.compile(r"(#\w+|[A-Za-z_]\w*)\s*=\s*(:\w+)|(:\w+)\s*=\s*(#\w+|[A-Za-z_]\w*)")
_PLACEHOLDER = re.compile(r":\w+")


def _check_key_condition(schema: _Schema | None, params: dict) -> None:
    """A Query's key values: the partition key's 1 to 2,048 bytes, a sort key condition's values at most 1,024
    (against the moto server, where the schema is not known here, every value at most 2,048)."""
    expression = params.get("KeyConditionExpression")
    if not expression:
        return
    names = params.get("ExpressionAttributeNames") or {}
    values = params.get("ExpressionAttributeValues") or {}
    partition = None
    if schema is not None:
        partition = schema.indexes[params["IndexName"]][0] if params.get("IndexName") in schema.indexes else schema.hash
    on_partition = {
        name_value or value_name
        for name, name_value, value_name, name_after in _EQUALS.findall(expression)
        if partition is not None and names.get(name or name_after, name or name_after) == partition
    }
    for placeholder in set(_PLACEHOLDER.findall(expression)):
        value = values.get(placeholder)
        if value is None:
            continue
        if placeholder in on_partition:
            _check_key_bytes(value, MAX_DYNAMODB_PARTITION_KEY_BYTES, _KEY_EMPTY.format(partition))
        else:
            _check_key_bytes(value, MAX_DYNAMODB_PARTITION_KEY_BYTES if partition is None else MAX_DYNAMODB_SORT_KEY_BYTES, None)


# --- expressions ("Service, account, and table quotas", "Expression parameters") -------------------------------

_EXPRESSIONS = ("KeyConditionExpression", "ConditionExpression", "FilterExpression", "UpdateExpression", "ProjectionExpression")
_UPDATE_OPERATORS = re.compile(r"[+-]|\b(?:if_not_exists|list_append)\s*\(")  # placeholders and plain names hold neither + nor -
_IN_OPERANDS = re.compile(r"\bIN\s*\(([^)]*)\)", re.IGNORECASE)


def _check_expressions(op: dict) -> None:
    """Each expression at most 4 KB, at most 300 operators or functions in an update, 100 operands of an IN; each
    placeholder (#name, :value) at most 255 bytes; all names and values of the request at most 2 MB, and every
    number among the values valid."""
    for parameter in _EXPRESSIONS:
        text = op.get(parameter)
        if not text:
            continue
        size = _utf8(text)
        if size > MAX_EXPRESSION_BYTES:
            raise _Refused(f"Invalid {parameter}: Expression size has exceeded the maximum allowed size; expression size: {size}")
        if parameter == "UpdateExpression" and len(_UPDATE_OPERATORS.findall(text)) > MAX_UPDATE_OPERATORS:
            raise _Refused(
                f"Invalid UpdateExpression: The expression contains too many operators; operator count: {len(_UPDATE_OPERATORS.findall(text))}"
            )
        for operands in _IN_OPERANDS.findall(text) if parameter in ("ConditionExpression", "FilterExpression") else ():
            if operands.count(",") + 1 > MAX_IN_OPERANDS:
                raise _Refused(
                    f"Invalid {parameter}: The IN operator is provided with too many operands; number of operands: {operands.count(',') + 1}"
                )
    total = 0
    for parameter in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
        for placeholder, value in (op.get(parameter) or {}).items():
            if _utf8(placeholder) > MAX_PLACEHOLDER_BYTES:
                raise _Refused(f"{parameter} contains invalid key: the key is longer than {MAX_PLACEHOLDER_BYTES} bytes; key: {placeholder[:32]}...")
            total += _utf8(placeholder) + (_utf8(value) if parameter == "ExpressionAttributeNames" else _value_bytes(value))
    if total > MAX_SUBSTITUTION_BYTES:
        raise _Refused(f"ExpressionAttributeNames and ExpressionAttributeValues together exceed {MAX_SUBSTITUTION_BYTES} bytes: {total}")


# --- what the items as stored decide (in-process, under the lock, just before the call) --------------------------


def _check_stored_items(client: BaseClient, operation: str, params: dict) -> None:
    """An update's result (its size, its numbers, the index keys it sets) and a transaction's aggregate size: AWS
    refuses them without writing anything. In-process moto only; against the server these checks are not made."""
    try:
        if operation == "UpdateItem":
            problem = _update_result(client, params)[1]
            if problem is not None:
                _refuse(operation, "ValidationException", problem)
        elif operation == "TransactWriteItems":
            _check_transaction_result(client, params)
        elif operation == "TransactGetItems":
            entries = params.get("TransactItems") or []
            if sum(_stored_bytes(client, entry["Get"]) for entry in entries) > MAX_TRANSACTION_BYTES:
                _refuse(operation, "ValidationException", _TRANSACTION_TOO_LARGE)
    except (_Refused, *_MALFORMED):  # a number or nesting refused: the request's own check has answered it
        return


def _stored_bytes(client: BaseClient, op: dict) -> int:
    item = _stored(client, op)
    return 0 if item is None else _item_bytes(item.attrs)


def _check_transaction_result(client: BaseClient, params: dict) -> None:
    """Each update's result (AWS cancels the transaction, a ValidationError reason at that action: botocore model,
    TransactionCanceledException), then the aggregate size of the items, at most 4 MB."""
    entries = [next(iter(entry.items())) for entry in params.get("TransactItems") or []]
    results = [_update_result(client, op) if kind == "Update" else (0, None) for kind, op in entries]
    if any(problem is not None for _, problem in results):
        reasons = []
        for (_, op), (_, problem) in zip(entries, results, strict=True):
            stored = _stored(client, {"TableName": op["TableName"], "Key": op.get("Key") or _key_of(client, op["TableName"], op["Item"])})
            if problem is not None:
                reasons.append({"Code": "ValidationError", "Message": problem})
            elif not _condition_holds_on(op, stored):
                reason = {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and stored is not None:
                    reason["Item"] = stored.to_json()["Attributes"]
                reasons.append(reason)
            else:
                reasons.append({"Code": "None"})
        violations.append(f"TransactWriteItems: TransactionCanceledException: {[reason.get('Message') for reason in reasons]}")
        raise _cancellation("TransactWriteItems", reasons)
    total = 0
    for (kind, op), (size, _) in zip(entries, results, strict=True):
        if kind == "Put":
            total += _item_bytes(op["Item"])
        elif kind == "Update":
            total += size
        else:
            total += _stored_bytes(client, op)
    if total > MAX_TRANSACTION_BYTES:  # the updates' sizes may be upper bounds: measure them exactly
        total -= sum(size for size, _ in results) - sum(_update_result(client, op, exact=True)[0] for kind, op in entries if kind == "Update")
    if total > MAX_TRANSACTION_BYTES:
        _refuse("TransactWriteItems", "ValidationException", _TRANSACTION_TOO_LARGE)


def _condition_holds_on(op: dict, item: Any) -> bool:
    """Whether an operation's ConditionExpression holds on moto's Item (None: no item), by moto's evaluator."""
    from moto.dynamodb.comparisons import get_filter_expression

    if not op.get("ConditionExpression"):
        return True
    condition = get_filter_expression(op["ConditionExpression"], op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues"))
    return bool(condition.expr(item))


def _update_result(client: BaseClient, op: dict, exact: bool = False) -> tuple[int, str | None]:
    """(size, what DynamoDB refuses in it or None) of the item an update leaves. The size is an upper bound where
    the update provably stays within every limit (the common case: evaluating an update costs as much as moto's
    own call); otherwise moto's evaluator computes the result on a copy. (0, None): not evaluated here."""
    schema, expression = _schema(client, op["TableName"]), op.get("UpdateExpression")
    if schema is None or not expression:
        return 0, None
    current = _stored(client, op)
    attributes = current.attrs if current is not None else {}
    bound = _bounded_update_size(expression, op, attributes)
    index_keys = _index_keys_set(schema, expression, op, attributes)
    if isinstance(index_keys, str):  # set from a value AWS refuses for that key
        return bound, index_keys if _condition_holds_on(op, current) else None
    fast = not exact and bound <= MAX_DYNAMODB_ITEM_BYTES and _arithmetic_stays_valid(expression, op, attributes)
    if fast and index_keys:
        return bound, None
    updated = _updated_item(client, schema, op, current)
    if updated is None:
        return bound, None  # moto refuses the update itself: the real call answers
    try:
        size = _item_bytes(updated.attrs)
    except _Refused as refusal:  # a sum or difference out of DynamoDB's range or precision
        return bound, refusal.message if _condition_holds_on(op, current) else None
    problem = _UPDATED_ITEM_TOO_LARGE if size > MAX_DYNAMODB_ITEM_BYTES else _index_key_problem(schema, updated.attrs)
    return size, problem if _condition_holds_on(op, current) else None  # a failed condition: moto answers it


def _index_key_problem(schema: _Schema, attributes: Mapping[str, Any]) -> str | None:
    for attribute, (declared, index, allowed) in schema.keys.items():
        value = attributes.get(attribute)
        if index == "(table)" or value is None:
            continue
        if value.type != declared:
            return _INDEX_KEY_TYPE_BY_UPDATE
        size = _value_bytes(value) if declared != "N" else 0
        if size > allowed:
            return _INDEX_KEY_TOO_LONG_BY_UPDATE
    return None


def _updated_item(client: BaseClient, schema: _Schema, op: dict, current: Any) -> Any:
    """The item as the update would leave it, by moto's own evaluator on a copy, in exact arithmetic (moto computes
    in the decimal context's 28 digits); None where moto refuses the update (the real call answers that)."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.parsing.executors import UpdateExpressionExecutor
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.parsing.validators import UpdateExpressionValidator

    key, names = op["Key"], op.get("ExpressionAttributeNames") or {}
    if current is None:
        item = Item(DynamoType(key[schema.hash]), DynamoType(key[schema.range]) if schema.range else None, dict(key))
    else:
        item = copy.deepcopy(current)
    try:
        with localcontext() as context:
            context.prec = 1000
            tree = UpdateExpressionParser.make(op["UpdateExpression"])
            validated = UpdateExpressionValidator(
                tree,
                expression_attribute_names=names,
                expression_attribute_values=op.get("ExpressionAttributeValues") or {},
                item=item,
                table=_moto_table(client, op["TableName"]),
            ).validate()
            validated.normalize()
            UpdateExpressionExecutor(validated, item, names).execute()
    except Exception:  # noqa: BLE001  # moto refuses it, whatever the reason: its own call says so in AWS's shape
        return None
    return item


_NAME_TOKENS = re.compile(r"#\w+|(?<![:#\w])[A-Za-z_]\w*")
_ARITHMETIC = re.compile(r"[+-]|\bADD\b", re.IGNORECASE)
_SET_FROM_VALUE = re.compile(r"if_not_exists\s*\(\s*(#\w+|[A-Za-z_]\w*)\s*,\s*(:\w+)\s*\)|(:\w+)")
_CLAUSES = re.compile(r"\b(SET|REMOVE|ADD|DELETE)\b", re.IGNORECASE)


def _bounded_update_size(expression: str, op: dict, attributes: Mapping[str, Any]) -> int:
    """An upper bound of the item's size after the update: each name in the expression may copy the whole item,
    each value may be added once per mention, each action may add a new name and a number."""
    current = _item_bytes(attributes)
    values = op.get("ExpressionAttributeValues") or {}
    added = sum(_value_bytes(value) * expression.count(placeholder) for placeholder, value in values.items())
    names = sum(_utf8(name) for name in (op.get("ExpressionAttributeNames") or {}).values())
    return current * (1 + len(_NAME_TOKENS.findall(expression))) + added + names + _utf8(expression) + 24 * (expression.count(",") + 1)


def _arithmetic_stays_valid(expression: str, op: dict, attributes: Mapping[str, Any]) -> bool:
    """Whether no sum or difference the update may compute can leave DynamoDB's range or precision: its numbers (the
    values' and the item's) span few enough digits that even 300 operations stay within both."""
    if not _ARITHMETIC.search(expression):
        return True
    texts = [text for value in (op.get("ExpressionAttributeValues") or {}).values() for text in _numbers(value)]
    texts += [text for value in attributes.values() for text in _numbers(value)]
    spans = [span for span in map(_number_span, texts) if span is not None]
    if not spans:
        return True
    top = max(first for first, _ in spans) + 3  # 300 operands add at most 3 digits at the top
    bottom = min(last for _, last in spans)
    return top <= HIGHEST_NUMBER_EXPONENT and bottom >= LOWEST_NUMBER_EXPONENT and top - bottom + 1 <= MAX_NUMBER_DIGITS


def _update_actions(expression: str) -> Iterator[tuple[str, str]]:
    """(clause, action) of an UpdateExpression, split at its top-level commas."""
    parts = _CLAUSES.split(expression)
    for clause, body in zip(parts[1::2], parts[2::2], strict=True):
        depth, start = 0, 0
        for position, char in enumerate(body + ","):
            depth += 1 if char in "([" else -1 if char in ")]" else 0
            if char == "," and depth == 0:
                yield clause.upper(), body[start:position].strip()
                start = position + 1


def _index_keys_set(schema: _Schema, expression: str, op: dict, attributes: Mapping[str, Any]) -> bool | str:
    """True where every index key the update touches is valid without evaluating it: untouched, removed, or set from
    one value of the declared type and size (`k = :v`, or `k = if_not_exists(k, :v)` where k is not there yet);
    AWS's refusal where one is set so from a value of another type or too long; False where it takes evaluating."""
    names, values = op.get("ExpressionAttributeNames") or {}, op.get("ExpressionAttributeValues") or {}
    index_keys = {attribute: key for attribute, key in schema.keys.items() if key[1] != "(table)"}
    if not {names.get(token, token) for token in _NAME_TOKENS.findall(expression)} & index_keys.keys():
        return True
    for clause, action in _update_actions(expression):
        target, _, source = action.partition("=") if clause == "SET" else (action.split()[0] if action else "", "", "")
        path = target.strip()
        attribute = names.get(path, path)
        if attribute not in index_keys:
            if any(names.get(token, token) in index_keys for token in _NAME_TOKENS.findall(path)):
                return False  # a nested path into an index key
            continue
        if clause == "REMOVE":
            continue
        match = _SET_FROM_VALUE.fullmatch(source.strip()) if clause == "SET" else None
        if match is None or (match.group(1) and names.get(match.group(1), match.group(1)) != attribute):
            return False
        if match.group(1) and attribute in attributes:
            continue  # if_not_exists of a key already there: unchanged
        value = values.get(match.group(2) or match.group(3))
        declared, _, allowed = index_keys[attribute]
        if value is None:
            return False
        if next(iter(value)) != declared:
            return _INDEX_KEY_TYPE_BY_UPDATE
        size = _value_bytes(value) if declared != "N" else 1
        if size == 0:
            return False  # empty: moto refuses it in AWS's words
        if size > allowed:
            return _INDEX_KEY_TOO_LONG_BY_UPDATE
    return True


def _cancellation(operation: str, reasons: list[dict]) -> ClientError:
    text = ", ".join(reason["Code"] for reason in reasons)
    return client_error(
        operation,
        "TransactionCanceledException",
        f"Transaction cancelled, please refer cancellation reasons for specific reasons [{text}]",
        CancellationReasons=reasons,
    )


# --- global secondary indexes that lag their table (module docstring, 8.) ----------------------------------------


@dataclass
class _IndexView:
    """What a table's global secondary indexes show: a copy of moto's table holding the items as they stood some
    writes ago, and the writes it has yet to apply, oldest first: (stamp, partition key, sort key, item after the
    write or None where it deleted the item)."""

    table: Any
    pending: list[tuple[int, Any, Any, Any]] = field(default_factory=list)


_index_views: dict[tuple[str, str], _IndexView] = {}


def set_index_lag(plan: IndexLagPlan | None, tables: frozenset[str] | None = None, clock: Callable[[], int] | None = None) -> None:
    """Queries and Scans of a global secondary index of `tables` (None: all) answer as `plan` says; None: current
    again, and the views kept so far are dropped. `clock`: what a write's stamp is (the simulator's logical step,
    say); by default the count of DynamoDB calls made while a plan is set. Each write on a lagging table then costs a
    read of the item it left, in-process (the moto server is not served)."""
    global _index_lag, _lag_tables, _lag_clock
    with _lock:
        _index_lag, _lag_tables, _lag_clock = plan, tables, clock
        _index_views.clear()


def catch_up_indexes() -> None:
    """Every index shows every write made so far (as AWS's indexes do once writes stop for long enough)."""
    with _lock:
        for view in _index_views.values():
            _apply(view, len(view.pending))


def index_lag_missing_last_writes(count: int) -> IndexLagPlan:
    """A plan: each index read misses the table's last `count` writes (until `catch_up_indexes`)."""
    return lambda table, index, stamps: count


def index_lag_missing_writes_younger_than(age: int) -> IndexLagPlan:
    """A plan: each index read misses the writes stamped less than `age` ticks of the clock ago, so that a read `age`
    ticks after the last write sees everything."""

    def plan(table: str, index: str, stamps: Sequence[int]) -> int:
        now = _lag_now()
        return sum(1 for stamp in stamps if now - stamp < age)

    return plan


def _lag_now() -> int:
    return _lag_clock() if _lag_clock is not None else _lag_ticks[0]


def _lagging(client: BaseClient, table: str) -> bool:
    if _lag_tables is not None and table not in _lag_tables:
        return False
    schema = _schema(client, table)
    return schema is not None and any(is_global for _, _, is_global in schema.indexes.values())


@contextmanager
def _indexes_lag(client: BaseClient, operation: str, params: dict) -> Iterator[None]:
    """Around one in-process call: a write's items are queued for the index views (whose copy of the table is taken
    before the first write); a Query or Scan of a global index answers from its view where the plan has it miss
    writes (moto's table swapped for the view during the call: one call, under the lock, as AWS answers)."""
    if _index_lag is None:
        yield
        return
    _lag_ticks[0] += 1
    if operation in _WRITES:
        written = [(table, key) for table, key in _written_keys(client, operation, params) if _lagging(client, table)]
        views = [_index_view(client, table) for table, _ in written]
        yield  # a write that fails changes nothing: nothing is queued
        for written_to, (table, key) in zip(views, written, strict=True):
            item = _stored(client, {"TableName": table, "Key": key})
            written_to.pending.append((_lag_now(), *_key_values(_schema(client, table), key), copy.deepcopy(item)))  # type: ignore[arg-type]  # lagging: known
        return
    lagging = _lagging_view(client, operation, params)
    if lagging is None:
        yield
        return
    index_reads_lagged[0] += 1
    tables, table = _moto_tables(client), params["TableName"]
    current, tables[table] = tables[table], lagging.table
    try:
        yield
    finally:
        tables[table] = current


def _lagging_view(client: BaseClient, operation: str, params: dict) -> _IndexView | None:
    """The view a Query or Scan of a global index answers from, once the writes the plan lets through are applied;
    None where it misses none (the table answers, as the view would)."""
    plan, table, index = _index_lag, params.get("TableName", ""), params.get("IndexName")
    if plan is None or operation not in ("Query", "Scan") or not isinstance(index, str) or not _lagging(client, table):
        return None
    schema, view = _schema(client, table), _index_views.get((client.meta.endpoint_url, table))
    if schema is None or view is None or not view.pending or not schema.indexes.get(index, ("", None, False))[2]:
        return None
    missed = max(0, min(len(view.pending), plan(table, index, [stamp for stamp, *_ in view.pending])))
    _apply(view, len(view.pending) - missed)
    return view if missed else None


def _index_view(client: BaseClient, table: str) -> _IndexView:
    view = _index_views.get((client.meta.endpoint_url, table))
    if view is None:
        current = _moto_table(client, table)
        copied = copy.copy(current)  # moto's table: its schema, indexes and stream shard shared, its items of its own
        copied.items = copy.deepcopy(current.items)
        view = _index_views[(client.meta.endpoint_url, table)] = _IndexView(copied)
    return view


def _apply(view: _IndexView, count: int) -> None:
    """The view's oldest `count` pending writes applied: never more than were made, never undone."""
    items = view.table.items
    for _, hash_value, range_value, item in view.pending[:count]:
        if range_value is None and item is None:
            items.pop(hash_value, None)
        elif range_value is None:
            items[hash_value] = item
        elif item is None:
            items.get(hash_value, {}).pop(range_value, None)
        else:
            items[hash_value][range_value] = item
    del view.pending[:count]


# --- fixes in moto's own classes and around its server (module docstring, 6., 9., 10.) -------------------------

stream_reattachments = [0]  # cancelled transactions after which a table's stream shard was put back
# Where in-process moto answers DynamoDB Streams (module docstring, 10.).
IN_PROCESS_STREAMS = "https://streams.dynamodb.us-east-1.amazonaws.com"


def keep_streams_whole_across_cancelled_transactions() -> None:
    """A table's stream goes on after a cancelled transaction, as in DynamoDB, which writes no stream record for a
    cancelled transaction (DynamoDB developer guide, "Change data capture for DynamoDB Streams"). moto rolls a
    cancelled transaction back by putting a deep copy of each table in its place, stream shard included, while
    every shard iterator (and each NextShardIterator it hands out) holds the old shard: from then on a stream reader
    receives nothing, silently (the local stack's balance-events poller went silent after the first refused hold).
    The old shard is put back, holding the copy's records (those of the cancelled transaction's items that moto had
    applied are dropped). Observed with moto 5.2.5. Once per process: in-process moto and the local stack's server."""
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend.transact_write_items, "keeps_streams_whole", False):
        return
    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict]) -> None:
        names = {op.get("TableName") for item in transact_items for op in item.values()}
        shards = {name: self.tables[name].stream_shard for name in names if name in self.tables and self.tables[name].stream_shard is not None}
        try:
            original(self, transact_items)
        except Exception:
            for name, shard in shards.items():
                table = self.tables.get(name)
                if table is not None and table.stream_shard is not shard:
                    shard.items = table.stream_shard.items  # the records as before the transaction
                    shard.table = table
                    table.stream_shard = shard
                    stream_reattachments[0] += 1
            raise

    transact_write_items.keeps_streams_whole = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items


class SerializedApp:
    """moto's server app, one request at a time (module docstring, 9.)."""

    def __init__(self, app: Callable[[dict, Callable], Any]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable) -> list[bytes]:
        from moto.core.model_instances import reset_model_data

        with self._lock:
            # Materialise the body inside the lock: the response is computed lazily by some backends.
            body = list(self._app(environ, start_response))
            # moto keeps every model object it makes for its dashboard (unused here), and each TransactWriteItems
            # deep-copies its tables: a local stack left up would grow by a copy of its tables per transaction.
            reset_model_data()
            return body


def drop_key_only_inserts(response: dict) -> dict:
    """A GetRecords answer as DynamoDB Streams gives it (module docstring, 10.): the key-only INSERT is dropped when
    the next record of the same key in the answer is an INSERT as well (AWS never has two INSERTs of one key
    without a REMOVE between them)."""
    records = response.get("Records") or []
    kept = []
    for index, record in enumerate(records):
        data = record.get("dynamodb", {})
        following = next((r for r in records[index + 1 :] if r.get("dynamodb", {}).get("Keys") == data.get("Keys")), None)
        if (
            record.get("eventName") == "INSERT"
            and data.get("NewImage") == data.get("Keys")
            and following is not None
            and following.get("eventName") == "INSERT"
        ):
            continue
        kept.append(record)
    return {**response, "Records": kept}


class TermFilterPattern:
    """A CloudWatch Logs filter pattern over unstructured log events, as FilterLogEvents evaluates it (module
    docstring, 11.): terms are case-sensitive and all must occur (`ERROR Exception`); `?term` terms match when any
    of them occurs (`?ERROR ?"Task timed out"`); `-term` excludes; a quoted term may hold spaces and punctuation.
    moto 5.2.5 treats a pattern that starts with `?`, `-` or a digit as unsupported and lets every event through."""

    _TERM = re.compile(r'([?-]?)(?:"((?:[^"\\]|\\.)*)"|(\S+))')

    def __init__(self, pattern: str) -> None:
        self.required: list[str] = []
        self.optional: list[str] = []
        self.excluded: list[str] = []
        for prefix, quoted, bare in self._TERM.findall(pattern or ""):
            term = quoted.replace('\\"', '"') if quoted else bare
            {"?": self.optional, "-": self.excluded}.get(prefix, self.required).append(term)

    @staticmethod
    def handles(pattern: str | None) -> bool:
        """Term patterns only: JSON (`{ ... }`), space-delimited (`[ ... ]`) and regex (`%...%`) patterns stay moto's."""
        return not (pattern or "").strip().startswith(("{", "[", "%"))

    def matches(self, message: str) -> bool:
        if any(term in message for term in self.excluded):
            return False
        if self.optional and not any(term in message for term in self.optional):
            return False
        return all(term in message for term in self.required)


def evaluate_log_filter_patterns_as_aws_does() -> None:
    """moto's FilterLogEvents with term patterns evaluated as CloudWatch Logs does (11.), in-process and in the local
    stack's moto server (emulator/server.py)."""
    from moto.logs import models

    original = models.EventMessageFilter
    if getattr(original, "faithful", False):
        return

    class FaithfulFilter:
        faithful = True

        def __init__(self, pattern: str) -> None:
            self._filter = TermFilterPattern(pattern) if TermFilterPattern.handles(pattern) else original(pattern)

        def matches(self, message: str) -> bool:
            return self._filter.matches(message)

    models.EventMessageFilter = FaithfulFilter
