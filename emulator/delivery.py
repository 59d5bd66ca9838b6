"""What Lambda does with the stack's functions while `python -m emulator up` runs: the settlement function's
asynchronous invocation (every event the rule routes, within a second, sent to the DLQ unrun while the function is paused) and
the balance-events function's event source mapping on the Credits stream. Each handler's output goes where Lambda
sends it: its log group, and its EMF metrics into CloudWatch."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from typing import Any

from emulator.alarms import AlarmEvaluator
from emulator.stack import LocalStack
from emulator.stream_poller import StreamPoller, balance_function_environment, mapping_filters, mapping_settings
from emulator.telemetry_sink import CloudWatchSink, lambda_metrics
from reconciler.contract import SERVICE_NAME, ResourceNames

DELIVERY_POLL_SECONDS = 0.25
# Lambda polls a stream shard about four times a second; once a second is enough here and spares the server.
STREAM_POLL_SECONDS = 1.0
# CloudWatch evaluates a metric alarm about once a minute; locally every few seconds (emulator/alarms.py).
ALARM_EVALUATION_SECONDS = 5.0


@contextmanager
def handler_output_to(stream: Any) -> Iterator[None]:
    """The handlers' logs and metrics go to `stream` (in Lambda they go to stdout, to CloudWatch)."""
    handlers = [h for h in logging.getLogger(SERVICE_NAME).handlers if isinstance(h, logging.StreamHandler)]
    previous = [h.stream for h in handlers]
    for handler in handlers:
        handler.stream = stream  # was bound to stdout as it was when Powertools was imported
    try:
        with redirect_stdout(stream):
            yield
    finally:
        for handler, stream in zip(handlers, previous, strict=True):
            handler.stream = stream


def function_paused(lambda_client: Any, function_name: str) -> bool:
    """Reserved concurrency 0 (`reconciler pause`): Lambda sends every asynchronous event to the on-failure destination
    without running it (emulator/invoker.py)."""
    from botocore.exceptions import ClientError

    try:
        concurrency = lambda_client.get_function_concurrency(FunctionName=function_name).get("ReservedConcurrentExecutions")
    except ClientError:
        return False
    return concurrency == 0


def balance_events_mapping(stack: LocalStack, templates: Mapping[str, dict]) -> StreamPoller:
    """The balance-events function's event source mapping as the template configures it (batch size, batching window,
    retries, filters, failure queue), with the function's environment set in this process."""
    import os

    from reconciler.handlers import balance_stream

    os.environ.update(balance_function_environment(templates, stack.resources.tables, stack.resources.ops_topic_arn))
    names = ResourceNames(stack.stage)
    credits = stack.client("dynamodb").describe_table(TableName=stack.resources.tables["Credits"])["Table"]
    settings = mapping_settings(templates)
    return StreamPoller(
        stack.client("dynamodbstreams"),
        credits["LatestStreamArn"],
        balance_stream.handler,
        sqs=stack.client("sqs"),
        failure_queue_url=stack.resources.queues.get(names.balance_events_failure_queue),
        function_name=names.balance_events_function,
        batch_size=settings["batch_size"],
        max_retry_attempts=settings["max_retry_attempts"],
        batching_window_s=settings["batching_window_s"],  # on real time: a record waits up to the window
        filters=mapping_filters(templates),
    )


def deliver_forever(
    stack: LocalStack,
    templates: Mapping[str, dict],
    stop: threading.Event,
    say: Callable[[str], None],
    alarm_evaluation_seconds: float = ALARM_EVALUATION_SECONDS,
) -> None:
    """Lambda, locally, until `stop`: events the rule routes reach the settlement handler, whoever put them on the
    bus (reconciler, the aws CLI, the pipeline's SDK); Credits stream records reach the balance-events handler; the
    alarms are evaluated every `alarm_evaluation_seconds` (a test that waits for one sets it shorter)."""
    invoker = stack.invoker()
    cloudwatch = stack.client("cloudwatch")  # once: every client of a new Session re-reads botocore's data
    function_sink = CloudWatchSink(stack.client("logs"), cloudwatch, stack.resources.log_group)
    stream = balance_events_mapping(stack, templates)
    stream_sink = CloudWatchSink(stack.client("logs"), cloudwatch, _log_group_of(stack, ResourceNames(stack.stage).balance_events_function))
    running = _concurrency_watch(stack, say)
    alarms = AlarmEvaluator(cloudwatch, stack.client("sns"))
    next_stream_poll = next_evaluation = 0.0
    while not stop.is_set():
        _deliver_events(stack, invoker, running, stop, function_sink, cloudwatch, say)  # each event asks running()
        if time.monotonic() >= next_stream_poll:
            running()  # says when a pause begins or ends, events or not (once a second: idle polls cost CPU)
            captured = io.StringIO()
            with handler_output_to(captured):
                stream.poll()
            stream_sink.ship(captured.getvalue())
            next_stream_poll = time.monotonic() + STREAM_POLL_SECONDS
        if time.monotonic() >= next_evaluation:
            for name in alarms.evaluate():
                say(f"alarm {name}: state changed")
            next_evaluation = time.monotonic() + alarm_evaluation_seconds
        stop.wait(DELIVERY_POLL_SECONDS)


def _concurrency_watch(stack: LocalStack, say: Callable[[str], None]) -> Callable[[], bool]:
    """Whether the settlement function may run now; says when that changes."""
    lambda_client = stack.client("lambda")
    paused = False

    def running() -> bool:
        nonlocal paused
        now_paused = function_paused(lambda_client, stack.resources.function_name)
        if now_paused != paused:
            paused = now_paused
            say(
                "function paused (reserved concurrency 0): its events go to the DLQ unrun"
                if paused
                else "function resumed: events are delivered; replay what the pause dead-lettered (reconciler dlq replay)"
            )
        return not paused

    return running


def _deliver_events(
    stack: LocalStack, invoker: Any, running: Callable[[], bool], stop: threading.Event, sink: CloudWatchSink, cloudwatch: Any, say
) -> None:
    """Every event queued for the settlement function, with its logs and metrics shipped and one line said per event."""
    captured = io.StringIO()
    with handler_output_to(captured):
        unrun = 0
        while not stop.is_set():
            delivered, sent_unrun = invoker.deliver_batch(running)
            unrun += sent_unrun
            if not delivered + sent_unrun:
                break
    sink.ship(captured.getvalue())
    if unrun:
        # Lambda counts each as dropped from its async queue (AWS/Lambda AsyncEventsDropped, the async-events-dropped alarm).
        function = [{"Name": "FunctionName", "Value": stack.resources.function_name}]
        cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=[{"MetricName": "AsyncEventsDropped", "Dimensions": function, "Value": unrun}])
        say(f"{unrun} event(s) sent to the DLQ unrun: the function is paused")
    batch, invoker.results = invoker.results, []
    if batch:
        errors = sum(1 for record in batch if "error" in record)
        cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=lambda_metrics(stack.resources.function_name, len(batch), errors))
    for record in batch:
        say(describe(record))


def _log_group_of(stack: LocalStack, function_name: str) -> str:
    """The function's log group where the stack created it (`up` does), else none: its output is dropped."""
    group = f"/aws/lambda/{function_name}"
    found = stack.client("logs").describe_log_groups(logGroupNamePrefix=group).get("logGroups", [])
    return group if any(g["logGroupName"] == group for g in found) else ""


def describe(record: dict) -> str:
    """One delivered event in a line: `event ID: DETAIL-TYPE JOB -> OUTCOME DETAIL` (the demo reads these); credits in
    name their reference where renders name their job."""
    event = record.get("event") or {}
    detail = event.get("detail")
    detail = detail if isinstance(detail, dict) else {}
    result = record.get("result") or {}
    outcome = result.get("outcome") or f"error ({record.get('error')})"
    extra = result.get("reason") or (f"balance {result['balanceDelta']:+d}" if "balanceDelta" in result else "")
    subject = detail.get("jobId", detail.get("reference"))
    return f"event {event.get('id')}: {event.get('detail-type')} {subject} -> {outcome} {extra}".rstrip()
