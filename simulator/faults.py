"""Fault plans: what the simulator injects at the botocore boundary, in AWS's own shapes (emulator.fidelity),
into the money path's calls and the balance-events function's.

The plans only say what to inject; the run decides when (its seeded generators), and counts what it injected.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

MAX_MONEY_PATH_FAULTS = 10  # per run
MAX_RACES, RACE_RATE = 4, 0.2  # concurrent balance changes injected before guarded writes, per run and per write
MAX_STREAM_FAULTS = 12  # per run, into the balance-events function's calls

# Faults of a TransactWriteItems that the code retries itself (service/retrying.py: a cancellation for a conflict or
# throttling is Contention, a lost or 5xx answer an AmbiguousWrite, both read again): none may end a Lambda attempt.
# Not Lambda's own timeouts, which end the invocation whatever the code does.
RETRIED_BY_THE_CODE = frozenset(
    {
        "throttle-single",
        "5xx-before",
        "5xx-after",
        "read-timeout-after",
        "connect-timeout",
        "cancel-throttling",
        "cancel-provisioned",
        "cancel-conflict",
    }
)
RETRIED_OPERATIONS = frozenset({"TransactWriteItems"})

THROTTLE_CODES = ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"]


class SimulatedTimeout(BaseException):
    """Lambda stops the invocation (its timeout): nothing after this point of the handler runs.

    A BaseException, so no `except Exception` in the code under test can swallow it, as none can in Lambda."""


# --- the money path: the handler's, reserve()'s and the Adjuster's calls ---------------------------------------


def money_path_fault(service: str, operation: str, params: dict, rng: random.Random) -> tuple[str, Callable[[], Any]] | None:
    """A fault for one call, drawn by its service's generator: (its label, how to make it); None for a service
    the plan leaves alone."""
    from emulator import fidelity

    items = len(params.get("TransactItems", [])) or 1
    if service == "dynamodb":
        choices = _dynamodb_faults(operation, items, rng)
    elif service == "sqs":
        choices = [
            ("sqs-5xx", lambda: fidelity.Fault(fidelity.client_error(operation, "InternalError", "We encountered an internal error.", 500))),
            ("lambda-timeout-after-sqs", lambda: fidelity.Fault(SimulatedTimeout("after-sqs"), after_call=True)),
        ]
    elif service == "sns":
        choices = [
            ("sns-throttled", lambda: fidelity.Fault(fidelity.client_error(operation, "Throttling", "Rate exceeded"))),
            ("sns-5xx", lambda: fidelity.Fault(fidelity.client_error(operation, "InternalError", "Internal error", 500))),
        ]
    else:
        return None
    return rng.choice(choices)


def _dynamodb_faults(operation: str, items: int, rng: random.Random) -> list[tuple[str, Callable[[], Any]]]:
    from emulator import fidelity

    choices: list[tuple[str, Callable[[], Any]]] = [
        ("throttle-single", lambda: fidelity.Fault(fidelity.single_request_throttle(operation, rng.choice(THROTTLE_CODES)))),
        ("5xx-before", lambda: fidelity.Fault(fidelity.internal_server_error(operation))),
        ("5xx-after", lambda: fidelity.Fault(fidelity.internal_server_error(operation), after_call=True)),
        ("read-timeout-after", lambda: fidelity.Fault(fidelity.read_timeout(), after_call=True)),
        ("connect-timeout", lambda: fidelity.Fault(fidelity.connect_timeout())),
        ("lambda-timeout-before", lambda: fidelity.Fault(SimulatedTimeout("before"))),
        ("lambda-timeout-after", lambda: fidelity.Fault(SimulatedTimeout("after"), after_call=True)),
    ]
    if operation.startswith("Transact"):
        for label, (code, message) in (
            ("cancel-throttling", fidelity.THROTTLING_REASON),
            ("cancel-provisioned", fidelity.PROVISIONED_REASON),
            ("cancel-conflict", fidelity.CONFLICT_REASON),
        ):
            index = rng.randrange(items)
            choices.append(
                (
                    label,
                    lambda code=code, message=message, index=index: fidelity.Fault(  # type: ignore[misc]  # default args
                        fidelity.transaction_cancelled(operation, items, code, message, index)
                    ),
                )
            )
    return choices


# --- the balance-events function: its EventBridge and DynamoDB calls --------------------------------------------

# The calls a fault may hit, and the faults (label, in the documented duplicate window?).
PUT_EVENTS_FAULTS: tuple[tuple[str, bool], ...] = (
    ("failed-entry-throttling", False),
    ("failed-entry-internal", False),
    ("put-events-500", False),
    ("put-events-read-timeout-after", True),
    ("lambda-timeout-after-put-events", True),
)
MARKER_READ_FAULTS: tuple[tuple[str, bool], ...] = (("marker-get-throttled", False), ("lambda-timeout-before-marker-get", False))
MARKER_WRITE_FAULTS: tuple[tuple[str, bool], ...] = (
    ("marker-put-throttled", True),
    ("lambda-timeout-before-marker-put", True),
    ("marker-put-500-after", False),
)
LEDGER_QUERY_FAULTS: tuple[tuple[str, bool], ...] = (("ledger-query-throttled", False),)


def stream_fault(label: str, operation: str, rng: random.Random) -> Any:
    """The fault a label of the tables above names, in AWS's shape."""
    from emulator import fidelity

    if label.startswith("failed-entry-"):
        code = "ThrottlingException" if label == "failed-entry-throttling" else "InternalFailure"
        return fidelity.Fault(response=fidelity.put_events_failed_entry(code))
    if label == "put-events-500":
        return fidelity.Fault(fidelity.client_error(operation, "InternalException", "Internal service error.", 500))
    if label == "put-events-read-timeout-after":
        return fidelity.Fault(fidelity.read_timeout("https://events.us-east-1.amazonaws.com/"), after_call=True)
    if label == "lambda-timeout-after-put-events":
        return fidelity.Fault(SimulatedTimeout(label), after_call=True)
    if label.startswith("lambda-timeout-before"):
        return fidelity.Fault(SimulatedTimeout(label))
    if label == "marker-put-500-after":
        return fidelity.Fault(fidelity.internal_server_error(operation), after_call=True)
    return fidelity.Fault(fidelity.single_request_throttle(operation, rng.choice(THROTTLE_CODES)))
