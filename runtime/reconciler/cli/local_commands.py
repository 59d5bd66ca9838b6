"""local up | send | seed: the local stack (moto server on 127.0.0.1), the only CLI module that imports reconciler.local."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Annotated, Any

import typer

from reconciler.cli.app import CONTEXT_SETTINGS, State, app, state_of
from reconciler.domain.ledger import iso_timestamp
from reconciler.ops.adjustments import Adjuster
from reconciler.ops.operator_error import OpsError
from reconciler.ops.target import LocalEndpoint, local_state_path

local_app = typer.Typer(no_args_is_help=True, context_settings=CONTEXT_SETTINGS, help="The local stack (moto server on 127.0.0.1).")
app.add_typer(local_app, name="local")

DELIVERY_POLL_SECONDS = 0.25


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def handler_output_to(stream: Any) -> Iterator[None]:
    """The handler's logs and metrics go to `stream` (in Lambda they go to stdout, to CloudWatch)."""
    from reconciler.contract import SERVICE_NAME as SERVICE

    handlers = [h for h in logging.getLogger(SERVICE).handlers if isinstance(h, logging.StreamHandler)]
    previous = [h.stream for h in handlers]
    for handler in handlers:
        handler.stream = stream  # was bound to stdout as it was when Powertools was imported
    try:
        with redirect_stdout(stream):
            yield
    finally:
        for handler, stream in zip(handlers, previous, strict=True):
            handler.stream = stream


def _function_paused(lambda_client: Any, function_name: str) -> bool:
    """As Lambda does with reserved concurrency 0: hold the events (they wait in the queue)."""
    from botocore.exceptions import ClientError

    try:
        concurrency = lambda_client.get_function_concurrency(FunctionName=function_name).get("ReservedConcurrentExecutions")
    except ClientError:
        return False
    return concurrency == 0


def handler_output_to_stderr():
    return handler_output_to(sys.stderr)


def deliver_forever(stack: Any, stop: threading.Event, say) -> None:
    """Lambda's async invocation, locally: every event the rule routes is handed to the handler within a second,
    whoever put it on the bus (reconciler, the aws CLI, the pipeline's SDK); held while the function is paused.
    The handler's output goes where Lambda sends it: the log group, and its EMF metrics into CloudWatch."""
    import io

    from reconciler.local.telemetry_sink import CloudWatchSink, lambda_metrics

    invoker = stack.invoker()
    lambda_client = stack.client("lambda")
    cloudwatch = stack.client("cloudwatch")  # once: every client of a new Session re-reads botocore's data
    sink = CloudWatchSink(stack.client("logs"), cloudwatch, stack.resources.log_group)
    paused = False

    def running() -> bool:
        nonlocal paused
        now_paused = _function_paused(lambda_client, stack.resources.function_name)
        if now_paused != paused:
            paused = now_paused
            say("function paused (reserved concurrency 0): events are held" if paused else "function resumed: delivering held events")
        return not paused

    while not stop.is_set():
        if running():
            captured = io.StringIO()
            with handler_output_to(captured):
                while not stop.is_set():
                    delivered, held = invoker.deliver_batch(running)
                    if held or not delivered:
                        break
            sink.ship(captured.getvalue())
            batch, invoker.results = invoker.results, []
            if batch:
                errors = sum(1 for record in batch if "error" in record)
                cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=lambda_metrics(stack.resources.function_name, len(batch), errors))
            for record in batch:
                say(_describe(record))
        stop.wait(DELIVERY_POLL_SECONDS)


def _describe(record: dict) -> str:
    event = record.get("event") or {}
    detail = event.get("detail")
    detail = detail if isinstance(detail, dict) else {}
    result = record.get("result") or {}
    outcome = result.get("outcome") or f"error ({record.get('error')})"
    extra = result.get("reason") or (f"balance {result['balanceDelta']:+d}" if "balanceDelta" in result else "")
    return f"event {event.get('id')}: {event.get('detail-type')} {detail.get('jobId')} -> {outcome} {extra}".rstrip()


def load_templates(directory: Path, stage: str) -> dict[str, dict]:
    """The stage's templates from a `cdk synth` output directory (`{stack}.template.json`)."""
    found = {path.name[: -len(".template.json")]: json.loads(path.read_text()) for path in sorted(directory.glob(f"*-{stage}.template.json"))}
    if not found:
        raise OpsError(f"no *-{stage}.template.json in {directory}: run `npx cdk synth --context stage={stage} --output {directory}`")
    return found


@local_app.command("up")
def local_up(
    ctx: typer.Context,
    templates: Annotated[
        Path | None,
        typer.Option(
            "--templates", file_okay=False, exists=True, help="Use these synthesized templates (a cdk.out directory) instead of synthesizing."
        ),
    ] = None,
) -> None:
    """Start a local stack for --stage, save its state for --local, deliver events as Lambda would, until Ctrl-C.

    Creates from the synthesized templates the tables, queues, topic and rule, and what the operator's commands
    act on: the function (configuration; the handler runs in this process), its log group, the alarms, the archive."""
    from reconciler.local.server import moto_server
    from reconciler.local.stack import provision_stack, templates_for

    state = state_of(ctx)
    state_file = local_state_path(state.stage)
    if state_file.exists():
        try:
            previous = LocalEndpoint.load(state.stage)
        except (OpsError, ValueError, KeyError):
            previous = None
        if previous is not None and _alive(previous.pid):
            raise OpsError(
                f"a local {state.stage} stack is already running at {previous.endpoint} (pid {previous.pid}); stop it first, or use another --stage"
            )
    say = state.out.note
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    started = time.monotonic()
    if templates is not None:
        loaded = load_templates(templates, state.stage)
        say(f"[1/3] using the templates in {templates}")
    else:
        say(f"[1/3] synthesizing the {state.stage} templates (CDK, in-process) ...")
        loaded = templates_for(state.stage)
    say(f"[2/3] starting moto on 127.0.0.1 ({time.monotonic() - started:.1f} s) ...")
    with moto_server() as endpoint:
        say(f"[3/3] creating the resources from the templates ({time.monotonic() - started:.1f} s) ...")
        stack = provision_stack(endpoint, state.stage, operable=True, templates=loaded)
        stack.save(state_file, pid=os.getpid())
        try:
            state.out.data({"endpoint": endpoint, "stage": state.stage, "stateFile": str(state_file)})
            state.out.line(
                f"local stack ({state.stage}) at {endpoint}; state in {state_file}. "
                f"Use `reconciler --stage {state.stage} --local ...`; Ctrl-C stops it."
            )
            sys.stdout.flush()
            say(f"ready in {time.monotonic() - started:.1f} s; delivering events that reach {', '.join(stack.resources.rules)}")
            stack.activate()
            deliver_forever(stack, stop, say)
        except KeyboardInterrupt:
            pass
        finally:
            try:
                mine = json.loads(state_file.read_text()).get("pid") == os.getpid()
            except (OSError, ValueError):
                mine = False
            if mine:  # never remove the state of another stack
                state_file.unlink(missing_ok=True)


@local_app.command("down")
def local_down(ctx: typer.Context, wait: Annotated[float, typer.Option(help="Seconds to wait for it to stop.", min=0)] = 15) -> None:
    """Stop the local stack of --stage that `local up` runs in another terminal or in the background."""
    state = state_of(ctx)
    running = LocalEndpoint.load(state.stage)
    if running.pid is None or not _alive(running.pid):
        local_state_path(state.stage).unlink(missing_ok=True)
        state.out.line(f"the local {state.stage} stack was not running any more; its state file is removed")
        return
    os.kill(running.pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while local_state_path(state.stage).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    if local_state_path(state.stage).exists():
        raise OpsError(f"the local {state.stage} stack (pid {running.pid}) did not stop within {wait:g} s")
    state.out.data({"stage": state.stage, "endpoint": running.endpoint, "stopped": True})
    state.out.line(f"stopped the local {state.stage} stack at {running.endpoint}")


def _local_stack(state: State):
    from reconciler.local.stack import LocalStack

    if not state.use_local and state.endpoint_url is None:
        state.use_local = True  # a `local` command means the local stack: --local is implied
    try:
        stack = LocalStack.load(local_state_path(state.stage))
    except FileNotFoundError:
        LocalEndpoint.load(state.stage)  # raises the operator's message
        raise
    if state.endpoint_url:
        stack.endpoint = state.endpoint_url
    return stack


@local_app.command("send")
def local_send(ctx: typer.Context, events_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]) -> None:
    """Publish each line of a JSONL file to the local bus, deliver them, print each outcome (exit 1 if any was refused)."""
    state = state_of(ctx)
    stack = _local_stack(state)
    events = []
    for number, line in enumerate(events_file.read_text().splitlines(), 1):
        if line.strip():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise OpsError(f"{events_file}:{number}: not JSON ({error.msg})") from None
    stack.activate()
    published = stack.publish_entries(events)
    invoker = stack.invoker()
    with state.out.progress("delivering"), handler_output_to_stderr():
        invoker.drain()
    by_id = {(r.get("event") or {}).get("id"): r for r in invoker.results}
    outcomes = []
    for line_number, (event, entry) in enumerate(zip(events, published, strict=False), 1):
        if entry.get("ErrorCode"):
            outcomes.append(
                {
                    "line": line_number,
                    "eventId": None,
                    "jobId": _job_of(event),
                    "outcome": "refused-by-eventbridge",
                    "reason": f"{entry['ErrorCode']}: {entry.get('ErrorMessage', '')}",
                }
            )
            continue
        record = by_id.get(entry.get("EventId"))
        if record is None:
            outcome = {"outcome": "delivered-elsewhere", "reason": "handled by the running `local up` (see its output)"}
        else:
            outcome = record.get("result") or {"outcome": "error", "reason": record.get("error")}
        outcomes.append({"line": line_number, "eventId": entry.get("EventId"), **outcome, "jobId": outcome.get("jobId") or _job_of(event)})
    state.out.data(outcomes)
    state.out.table(
        "Outcomes",
        ["line", "jobId", "outcome", "balance delta", "detail"],
        [[o["line"], o.get("jobId"), o.get("outcome"), o.get("balanceDelta"), o.get("reason") or o.get("settledAs")] for o in outcomes],
    )
    refused = [o for o in outcomes if o["outcome"] == "refused-by-eventbridge"]
    if refused:
        state.out.note(
            f"error: EventBridge refused {len(refused)} of {len(events)} events (lines "
            f"{', '.join(str(o['line']) for o in refused)}); they were not delivered"
        )
        raise typer.Exit(1)


def _job_of(event: dict) -> Any:
    detail = event.get("detail", event.get("Detail"))
    if isinstance(detail, str):
        try:
            detail = json.loads(detail)
        except json.JSONDecodeError:
            return None
    return detail.get("jobId") if isinstance(detail, dict) else None


@local_app.command("seed")
def local_seed(ctx: typer.Context, user: str, credits: Annotated[int, typer.Argument(min=0)]) -> None:
    """Set a user's balance on the local stack, as an adjustment so the ledger explains it."""
    state = state_of(ctx)
    if not state.use_local and state.endpoint_url is None:
        state.use_local = True
    target = state.target
    current = (target.store.get_balance(user) or {}).get("remaining") or 0
    if current == credits:
        state.out.data({"userId": user, "remaining": credits, "changed": False})
        state.out.line(f"{user} already has {credits} credits")
        return
    now = iso_timestamp()
    result = Adjuster(target.store).adjust(user, credits - current, "local seed", f"seed:{user}:{now}", target.actor)
    state.out.data({"userId": user, "remaining": result.balance_after, "changed": True})
    state.out.line(f"{user}: {current} -> {result.balance_after} credits ({result.entry.ledger_id})")
