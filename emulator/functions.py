"""Lambda's Invoke for the reconciler's own functions, on the local stack's moto server.

moto runs an invoked function in a Docker container, and there is no Docker engine here: `aws lambda invoke`
against the local stack failed with an emulator error. This middleware answers Invoke (the Lambda API's
`POST /2015-03-31/functions/{name}/invocations`) for every function whose handler is one of the reconciler's, by
calling that handler in this process with the function's configured environment, pointed back at this server.
Everything else goes to moto. What it keeps of Lambda's behaviour (Lambda API reference, Invoke):
- RequestResponse answers 200 with the handler's result; a handler that raises answers 200 with the header
  `X-Amz-Function-Error: Unhandled` and `{"errorMessage", "errorType", "stackTrace"}`, as Lambda's runtime does;
- Event (asynchronous) answers 202 and runs the handler after the answer; DryRun answers 204;
- a function whose reserved concurrency is 0 (`reconciler pause`) is throttled: 429 TooManyRequestsException
  (Reason ReservedFunctionConcurrentInvocationLimitExceeded) for a synchronous call; an asynchronous one is
  accepted and sent, unrun, to the function's SQS on-failure destination (Lambda has not retried such events since
  2021-08-30: emulator/invoker.py).
One invocation runs at a time: the handler's environment is this process's, and each switch between functions
starts a new "container" (bootstrap.reset_container).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from emulator.invoker import LocalContext
from reconciler.contract import BALANCE_EVENTS_HANDLER, HANDLER, HOLDS_HANDLER

OWN_HANDLERS = (HANDLER, HOLDS_HANDLER, BALANCE_EVENTS_HANDLER)
INVOKE_PATH = re.compile(r"/2015-03-31/functions/(?P<name>[^/]+)/invocations/?")
ACCOUNT, REGION = "123456789012", "us-east-1"


class InProcessFunctions:
    """WSGI middleware in front of moto's app: answers Invoke for the reconciler's functions."""

    def __init__(self, app: Callable, endpoint: str) -> None:
        self._app = app
        self._endpoint = endpoint
        self._one_at_a_time = threading.Lock()
        self._container: str | None = None

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        match = INVOKE_PATH.fullmatch(environ.get("PATH_INFO", ""))
        function = _function(unquote(match.group("name"))) if match and environ.get("REQUEST_METHOD") == "POST" else None
        if function is None or function.handler not in OWN_HANDLERS:
            return self._app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        payload = environ["wsgi.input"].read(length) if length else b""
        kind = environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse")
        if kind == "DryRun":
            return _answer(start_response, "204 No Content", b"")
        if kind == "Event":
            if _paused(function):
                _send_unrun(function, payload)
            else:
                threading.Thread(target=self._invoke, args=(function, payload), daemon=True).start()
            return _answer(start_response, "202 Accepted", b"")
        if _paused(function):
            body = {"Type": "User", "message": "Rate Exceeded.", "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"}
            return _answer(start_response, "429 Too Many Requests", json.dumps(body).encode(), {"x-amzn-ErrorType": "TooManyRequestsException"})
        status, headers, answer = self._invoke(function, payload)
        return _answer(start_response, status, answer, headers)

    def _invoke(self, function: Any, payload: bytes) -> tuple[str, dict[str, str], bytes]:
        with self._one_at_a_time:
            self._enter(function)
            event = json.loads(payload) if payload else {}
            context = LocalContext(function.function_name, int(function.timeout or 30) * 1000)
            try:
                result = _handler(function.handler)(event, context)
            except Exception as error:  # noqa: BLE001 - Lambda reports any error of the handler this way
                failure = {"errorMessage": str(error), "errorType": type(error).__name__, "stackTrace": traceback.format_tb(error.__traceback__)}
                return "200 OK", {"X-Amz-Function-Error": "Unhandled"}, json.dumps(failure).encode()
            return "200 OK", {}, json.dumps(result, default=str).encode()

    def _enter(self, function: Any) -> None:
        """The function's environment, pointed at this server; a new container when the function changes."""
        os.environ.update({**function.environment_vars, "AWS_ENDPOINT_URL": self._endpoint, "POWERTOOLS_TRACE_DISABLED": "true"})
        if self._container != function.function_name:
            from reconciler.bootstrap import reset_container

            reset_container()
            self._container = function.function_name


def _function(name_or_arn: str) -> Any:
    from moto.awslambda.models import lambda_backends

    name = name_or_arn.rsplit(":function:", 1)[-1].split(":", 1)[0]
    try:
        return lambda_backends[ACCOUNT][REGION].get_function(name)
    except Exception:  # noqa: BLE001 - not ours to answer: moto says what is wrong
        return None


def _send_unrun(function: Any, payload: bytes) -> None:
    """Lambda with reserved concurrency 0 accepts an asynchronous event and sends it to the on-failure destination
    without running it (emulator/invoker.py); with no SQS destination configured the event is dropped, as there."""
    from moto.sqs.models import sqs_backends

    from emulator.invoker import unrun_record

    configs = getattr(function, "event_invoke_config", None) or []
    destination = configs[0].config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination", "") if configs else ""
    if destination.startswith("arn:aws:sqs:"):
        record = unrun_record(json.loads(payload) if payload else {}, function.function_name)
        sqs_backends[ACCOUNT][REGION].send_message(destination.rsplit(":", 1)[-1], json.dumps(record, default=str))


def _paused(function: Any) -> bool:
    return str(function.reserved_concurrency) == "0"


def _handler(path: str) -> Callable[[Any, Any], Any]:
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def _answer(start_response: Callable, status: str, body: bytes, headers: dict[str, str] | None = None) -> list[bytes]:
    start_response(status, [("Content-Type", "application/json"), ("X-Amz-Executed-Version", "$LATEST"), *(headers or {}).items()])
    return [body]
