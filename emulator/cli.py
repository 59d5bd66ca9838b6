"""`python -m emulator up | down | env | send | deliver | seed`: the local stack's command line, from a checkout.

Its global options are the `reconciler` CLI's (before or after the command): `--stage`, `--endpoint-url`,
`--output`, `--json`, `--query`, `--no-progress`; its errors are one line, as the CLI's are. `send` and `seed` act
on the stack `up` saved for --stage, as `reconciler --local` does (the state file, reconciler/ops/target.py).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from emulator.delivery import ALARM_EVALUATION_SECONDS, deliver_forever, function_paused, handler_output_to
from emulator.server import moto_server
from emulator.stack import LocalStack, provision_stack, templates_for
from reconciler.cli.app import State, main_options, root_app, state_of
from reconciler.cli.output import FORMATS
from reconciler.contract import STAGES
from reconciler.domain.ledger import iso_timestamp
from reconciler.ops.operator_error import OpsError
from reconciler.ops.target import LocalEndpoint, local_state_path

app = root_app("The local stack: AWS on 127.0.0.1 (moto) with the reconciler's resources from its templates.", completion=False)


@app.callback()
def options(
    ctx: typer.Context,
    stage: Annotated[str, typer.Option(help=f"Stage: {' | '.join(STAGES)}.", envvar="RECONCILER_STAGE")] = "dev",
    endpoint_url: Annotated[str | None, typer.Option("--endpoint-url", help="The stack's endpoint, if not the one `up` saved.")] = None,
    output: Annotated[str, typer.Option("--output", help=f"{' | '.join(FORMATS)}, as in the reconciler CLI.")] = "table",
    json_output: Annotated[bool, typer.Option("--json", help="Same as --output json.")] = False,
    query: Annotated[str | None, typer.Option("--query", help="JMESPath over the JSON result, as in the aws CLI.")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress display (stderr).")] = False,
) -> None:
    # The reconciler CLI's own option handling: the same checks, output and one-line errors.
    main_options(
        ctx,
        stage=stage,
        endpoint_url=endpoint_url,
        local=False,
        profile=None,
        region=None,
        output=output,
        json_output=json_output,
        query=query,
        no_progress=no_progress,
        version=False,
    )


def main() -> None:
    app(prog_name="python -m emulator")


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


def load_templates(directory: Path, stage: str) -> dict[str, dict]:
    """The stage's templates from a `cdk synth` output directory (`{stack}.template.json`)."""
    found = {path.name[: -len(".template.json")]: json.loads(path.read_text()) for path in sorted(directory.glob(f"*-{stage}.template.json"))}
    if not found:
        raise OpsError(f"no *-{stage}.template.json in {directory}: run `npx cdk synth --context stage={stage} --output {directory}`")
    return found


@app.command("up")
def up(
    ctx: typer.Context,
    templates: Annotated[
        Path | None,
        typer.Option(
            "--templates", file_okay=False, exists=True, help="Use these synthesized templates (a cdk.out directory) instead of synthesizing."
        ),
    ] = None,
    alarm_evaluation_seconds: Annotated[
        float,
        typer.Option("--alarm-evaluation-seconds", min=0.1, help="How often the alarms are evaluated (CloudWatch: about once a minute)."),
    ] = ALARM_EVALUATION_SECONDS,
) -> None:
    """Start a local stack for --stage, save its state for `reconciler --local`, run its functions as Lambda would
    (the events the rule routes, the Credits stream's records), until Ctrl-C or `down`.

    Creates from the synthesized templates the tables, queues, topic and rule, and what the operator's commands
    act on: the functions (configuration; the handlers run in-process), their log groups, the alarms, the archive."""
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
        say(f"[1/3] synthesizing the {state.stage} templates (CDK, in-process; read from the cache a test session names, if it has them) ...")
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
            deliver_forever(stack, loaded, stop, say, alarm_evaluation_seconds=alarm_evaluation_seconds)
        except KeyboardInterrupt:
            pass
        finally:
            try:
                mine = json.loads(state_file.read_text()).get("pid") == os.getpid()
            except (OSError, ValueError):
                mine = False
            if mine:  # never remove the state of another stack
                state_file.unlink(missing_ok=True)


@app.command("down")
def down(ctx: typer.Context, wait: Annotated[float, typer.Option(help="Seconds to wait for it to stop.", min=0)] = 15) -> None:
    """Stop the local stack of --stage that `up` runs in another terminal or in the background."""
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


def _local_stack(state: State) -> LocalStack:
    if not state.use_local and state.endpoint_url is None:
        state.use_local = True  # the emulator's commands mean the local stack: --local is implied
    try:
        stack = LocalStack.load(local_state_path(state.stage))
    except FileNotFoundError:
        LocalEndpoint.load(state.stage)  # raises the operator's message
        raise
    if state.endpoint_url:
        stack.endpoint = state.endpoint_url
    return stack


@app.command("env")
def env(ctx: typer.Context) -> None:
    """What a script needs to reach the running stack of --stage: `eval "$(python -m emulator --stage prod env)"` sets EP
    (the endpoint, for `aws --endpoint-url $EP`), RECONCILER_STAGE and the stack's credentials and region, and unsets
    AWS_PROFILE and AWS_SESSION_TOKEN so no real credentials mix in."""
    state = state_of(ctx)
    running = LocalEndpoint.load(state.stage)
    values = {
        "EP": running.endpoint,
        "RECONCILER_STAGE": running.stage,
        "AWS_ACCESS_KEY_ID": running.credentials["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": running.credentials["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": running.region,
        "AWS_REGION": running.region,
    }
    state.out.data(values)
    if state.out.format == "table" and state.out.query is None:
        typer.echo("unset AWS_PROFILE AWS_SESSION_TOKEN")
        for name, value in values.items():
            typer.echo(f"export {name}={shlex.quote(value)}")


@app.command("send")
def send(ctx: typer.Context, events_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]) -> None:
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
    invoker, running = stack.invoker(), _function_running(stack)
    with state.out.progress("delivering"), handler_output_to(sys.stderr):
        invoker.drain(running)
    paused = not running()
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
        if record is None and paused:
            outcome = {"outcome": "dead-lettered", "reason": unrun_reason(state)}
        elif record is None:
            outcome = {"outcome": "delivered-elsewhere", "reason": "handled by the running `up` (see its output)"}
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


@app.command("deliver")
def deliver(ctx: typer.Context) -> None:
    """Deliver the events waiting for the function, once, and print each outcome (what `up` does continuously)."""
    state = state_of(ctx)
    stack = _local_stack(state)
    stack.activate()
    invoker, running = stack.invoker(), _function_running(stack)
    with state.out.progress("delivering"), handler_output_to(sys.stderr):
        delivered = invoker.drain(running)
    outcomes = [record.get("result") or {"outcome": "error", "reason": record.get("error")} for record in invoker.results]
    state.out.data(outcomes)
    state.out.line(f"delivered {delivered} events")
    if not running():
        state.out.note(f"note: {unrun_reason(state)}")


# Lambda's asynchronous invocation of a function with reserved concurrency 0: no retry, the event goes to the
# on-failure destination unrun (AWS Compute Blog, "Introducing new asynchronous invocation metrics for AWS Lambda":
# "Zero reserved concurrency: No retry"; emulator/invoker.py models it).
def unrun_reason(state: State) -> str:
    paused = "the function is paused (reserved concurrency 0): Lambda sent the event to the DLQ unrun"
    return f"{paused}; `{state.hint('resume')}`, then `{state.hint('dlq replay')}`"


def _function_running(stack: LocalStack) -> Any:
    lambda_client = stack.client("lambda")
    return lambda: not function_paused(lambda_client, stack.resources.function_name)


def _job_of(event: dict) -> Any:
    detail = event.get("detail", event.get("Detail"))
    if isinstance(detail, str):
        try:
            detail = json.loads(detail)
        except json.JSONDecodeError:
            return None
    return detail.get("jobId") if isinstance(detail, dict) else None


@app.command("snapshot")
def snapshot(ctx: typer.Context) -> None:
    """Run the liability snapshot once, as its schedule does (the function with {"job": "liability-snapshot"})."""
    from reconciler.contract import LIABILITY_SNAPSHOT_JOB

    state = state_of(ctx)
    stack = _local_stack(state)
    stack.activate()
    with state.out.progress("taking the liability snapshot"), handler_output_to(sys.stderr):
        result = stack.invoker().invoke({"job": LIABILITY_SNAPSHOT_JOB})
    if result is None:
        raise OpsError("the liability snapshot failed (see the function's output above)")
    state.out.data(result)
    state.out.line(f"liability snapshot of {result['takenAt']}: total {result['total']} over {result['users']} users")


@app.command("seed")
def seed(ctx: typer.Context, user: str, credits: Annotated[int, typer.Argument(min=0)]) -> None:
    """Set a user's balance on the local stack, as an adjustment so the ledger explains it."""
    state = state_of(ctx)
    if not state.use_local and state.endpoint_url is None:
        state.use_local = True
    target = state.target
    balance = target.books().balance(user)
    current = (balance.remaining if balance else None) or 0
    if current == credits:
        state.out.data({"userId": user, "remaining": credits, "changed": False})
        state.out.line(f"{user} already has {credits} credits")
        return
    now = iso_timestamp()
    result = target.adjuster().adjust(user, credits - current, "local seed", f"seed:{user}:{now}", target.actor)
    state.out.data({"userId": user, "remaining": result.balance_after, "changed": True})
    state.out.line(f"{user}: {current} -> {result.balance_after} credits ({result.entry.ledger_id})")
