"""`reconciler`: the operations CLI (see docs/operations.md). Commands parse, call reconciler.ops, print."""

from __future__ import annotations

import json
import signal
from contextlib import contextmanager, redirect_stdout
import sys
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer
from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError, PartialCredentialsError
from typer.core import TyperGroup

from reconciler.cli.output import Output, confirm_write
from reconciler.config import STAGES, ConfigError
from reconciler.domain.ledger import iso_timestamp
from reconciler.ops import control
from reconciler.ops.adjustments import ALREADY_APPLIED, APPLIED, Adjuster
from reconciler.ops.audit import Auditor
from reconciler.ops.aws import INVOKE_CONFIG, SqsQueue, Target, local_state_path
from reconciler.ops.dead_letters import peek, replay
from reconciler.ops.errors import OpsError
from reconciler.ops.invokers import InProcessInvoker, LambdaInvoker
from reconciler.ops.scanning import DryRunStore
from reconciler.service.container import build_timer_scan
from reconciler.repository.errors import RetriesExhausted

_MISSING_RESOURCE_CODES = {
    "ResourceNotFoundException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "ResourceNotFound",
}


def _one_line(error: BaseException) -> str | None:
    """The message for an error an operator can act on; None for a bug (which keeps its traceback)."""
    if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        return "no AWS credentials found (set AWS_PROFILE or credentials, or use --local / --endpoint-url)"
    if isinstance(error, NoRegionError):
        return "no AWS region configured (set AWS_REGION or AWS_DEFAULT_REGION)"
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        if code in _MISSING_RESOURCE_CODES:
            return f"missing resource: {message or code} (is the stage deployed, and is --stage right?)"
        return f"AWS refused: {code}: {message}"
    if isinstance(error, (OpsError, ConfigError, RetriesExhausted)):
        return str(error)
    return None


class _Group(TyperGroup):
    """One line on stderr and a non-zero exit for every error a person can fix; never a traceback for those."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # noqa: ANN001
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        except typer.TyperException as error:  # usage errors: bad option, missing argument, unknown stage
            typer.echo(f"error: {error.format_message()}", err=True)
            sys.exit(getattr(error, "exit_code", 2))
        except Exception as error:
            message = _one_line(error)
            if message is None:
                raise
            typer.echo(f"error: {message}", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(cls=_Group, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
                  help="Operate the credit reconciler: balances, adjustments, DLQ, audits, emergency stop.")
dlq_app = typer.Typer(no_args_is_help=True, help="The dead-letter queue cc-reconciler-dlq-{stage}.")
alarms_app = typer.Typer(no_args_is_help=True, help="The reconciler's alarms (cc-reconciler-*-{stage}).")
events_app = typer.Typer(no_args_is_help=True, help="EventBridge archive cc-reconciler-archive-{stage}.")
local_app = typer.Typer(no_args_is_help=True, help="The local stack (moto server on 127.0.0.1).")
for sub, name in ((dlq_app, "dlq"), (alarms_app, "alarms"), (events_app, "events"), (local_app, "local")):
    app.add_typer(sub, name=name)


@dataclass
class State:
    stage: str
    endpoint_url: Optional[str]
    use_local: bool
    out: Output
    _target: Optional[Target] = None

    @property
    def target(self) -> Target:
        if self._target is None:
            self._target = Target.resolve(self.stage, self.endpoint_url, self.use_local)
        return self._target


def _state(ctx: typer.Context) -> State:
    return ctx.find_root().obj


DryRun = Annotated[bool, typer.Option("--dry-run", help="Write nothing; say what would be done.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (prod).")]


@app.callback()
def main_options(
    ctx: typer.Context,
    stage: Annotated[str, typer.Option(help=f"Stage: {' | '.join(STAGES)}.", envvar="RECONCILER_STAGE")] = "dev",
    endpoint_url: Annotated[Optional[str], typer.Option("--endpoint-url", help="AWS endpoint (a local stack).")] = None,
    local: Annotated[bool, typer.Option("--local", help="Use the stack started by `reconciler local up`.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bars.")] = False,
) -> None:
    if stage not in STAGES:
        raise typer.BadParameter(f"unknown stage {stage!r}; valid stages: {', '.join(STAGES)}", param_hint="--stage")
    ctx.obj = State(stage, endpoint_url, local, Output(json_output, not no_progress))


# --- balances and the ledger -------------------------------------------------------------------


@app.command()
def balance(ctx: typer.Context, user: str) -> None:
    """A user's balance (Credits table)."""
    state = _state(ctx)
    item = state.target.store.get_balance(user)
    result = {"userId": user, "remaining": item["remaining"] if item else None, "updatedAt": (item or {}).get("updatedAt")}
    state.out.data(result)
    if item is None:
        state.out.line(f"{user} has no balance")
    else:
        state.out.table(f"Balance ({state.stage})", ["user", "remaining", "updated"], [[user, result["remaining"], result["updatedAt"]]])


@app.command()
def ledger(
    ctx: typer.Context,
    user: str,
    since: Annotated[Optional[datetime], typer.Option(help="From this moment (ISO 8601, UTC if no zone).")] = None,
    until: Annotated[Optional[datetime], typer.Option(help="Up to this moment.")] = None,
) -> None:
    """A user's ledger entries, oldest first (the userId/timestamp index; never a scan)."""
    state = _state(ctx)
    entries = list(state.target.store.ledger_for_user(user, _iso(since), _iso(until)))
    state.out.data([_entry_dict(entry) for entry in entries])
    state.out.table(
        f"Ledger of {user} ({state.stage})",
        ["timestamp", "ledgerId", "type", "amount", "description", "actor"],
        [[e.timestamp, e.ledger_id, e.type, e.signed_amount, e.description, e.actor] for e in entries],
    )
    state.out.line(f"{len(entries)} entries, net {sum(e.signed_amount for e in entries):+d}")


@app.command(context_settings={"ignore_unknown_options": True})
def adjust(
    ctx: typer.Context,
    user: str,
    amount: Annotated[int, typer.Argument(help="Whole credits, signed: 10 adds, -10 takes.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the ledger).")],
    reference: Annotated[str, typer.Option(help="Ticket or incident id; the adjustment's idempotency key.")],
    dry_run: DryRun = False,
    yes: Yes = False,
) -> None:
    """Move a user's balance with a ledger entry, in one transaction; re-running with the same reference does nothing."""
    state = _state(ctx)
    target = state.target
    confirm_write(state.stage, f"adjust {user} by {amount:+d} credits", yes, dry_run)
    result = Adjuster(target.store).adjust(user, amount, reason, reference, target.actor, dry_run=dry_run)
    state.out.data(result.as_dict())
    if result.status == ALREADY_APPLIED:
        state.out.line(f"already applied: {result.entry.ledger_id} ({result.entry.signed_amount:+d}) exists; nothing changed")
    elif result.status == APPLIED:
        state.out.line(f"adjusted {user} by {amount:+d}: {result.balance_before or 0} -> {result.balance_after} ({result.entry.ledger_id}, by {result.entry.actor})")
    else:
        state.out.line(f"dry run: would adjust {user} by {amount:+d}: {result.balance_before or 0} -> {result.balance_after} ({result.entry.ledger_id})")


# --- dead-letter queue ---------------------------------------------------------------------------


def _queue(target: Target) -> SqsQueue:
    return SqsQueue(target.client("sqs"), target.dlq_url)


@dlq_app.command("list")
def dlq_list(ctx: typer.Context, max_messages: Annotated[int, typer.Option("--max", min=1)] = 100) -> None:
    """The messages in the DLQ, with why each is there (they stay in the queue)."""
    state = _state(ctx)
    queue = _queue(state.target)
    with state.out.progress("reading the DLQ"):
        letters = peek(queue, max_messages)
    state.out.data([letter.as_dict() for letter in letters])
    state.out.table(f"{state.target.names.dead_letter_queue}", ["messageId", "kind", "jobId", "eventId", "reason"],
                    [[l.message_id, l.kind, l.job_id, l.event_id, l.reason] for l in letters])
    state.out.line(f"{len(letters)} shown, about {queue.approximate_count()} in the queue")


@dlq_app.command("show")
def dlq_show(ctx: typer.Context, message_id: str, max_messages: Annotated[int, typer.Option("--max", min=1)] = 1000) -> None:
    """One message in full: its kind, reason and the event it carries."""
    state = _state(ctx)
    with state.out.progress("searching the DLQ"):
        found = [letter for letter in peek(_queue(state.target), max_messages) if letter.message_id == message_id]
    if not found:
        raise OpsError(f"message {message_id} is not in the DLQ (or not visible right now)")
    details = found[0].as_dict(with_body=True)
    state.out.data(details)
    if not state.out.json_mode:
        for key in ("messageId", "kind", "jobId", "eventId", "reason", "receiveCount"):
            state.out.line(f"{key}: {details[key]}")
        state.out.console.print_json(json.dumps(details["event"]) if details["event"] is not None else json.dumps(details["body"]))


@dlq_app.command("replay")
def dlq_replay(
    ctx: typer.Context,
    max_messages: Annotated[int, typer.Option("--max", min=1, help="At most this many messages.")] = 100,
    dry_run: DryRun = False,
    yes: Yes = False,
) -> None:
    """Send each message through the reconciler again; delete it only if that succeeded."""
    state = _state(ctx)
    target = state.target
    confirm_write(state.stage, f"replay up to {max_messages} DLQ messages", yes, dry_run)
    if target.is_local:
        invoke = InProcessInvoker.build(target.client("dynamodb"), target.runtime_config())
    else:
        invoke = LambdaInvoker(target.client("lambda", INVOKE_CONFIG), target.names.function)
    with state.out.progress("replaying") as advance:
        report = replay(_queue(target), invoke, max_messages, dry_run=dry_run, on_item=lambda item: advance())
    summary = report.summary()
    state.out.data({"summary": summary, "items": [item.as_dict() for item in report.items]})
    state.out.table("DLQ replay" + (" (dry run)" if dry_run else ""), ["messageId", "jobId", "status", "detail"],
                    [[i.letter.message_id, i.letter.job_id, i.status, i.detail] for i in report.items])
    state.out.line(", ".join(f"{name} {count}" for name, count in summary.items()))
    if summary["failed"]:
        raise typer.Exit(1)


# --- timer scan and audit ------------------------------------------------------------------------


@app.command()
def scan(ctx: typer.Context, dry_run: DryRun = False, yes: Yes = False) -> None:
    """Run the timer scan now (the code the function runs on its schedule)."""
    state = _state(ctx)
    target = state.target
    confirm_write(state.stage, "run the timer scan", yes, dry_run)
    store = DryRunStore(target.store) if dry_run else target.store
    with state.out.progress("scanning unsettled jobs"):
        report = build_timer_scan(store, target.runtime_config()).run()
    summary = report.summary()
    state.out.data({**summary, "dryRun": dry_run})
    verb = "would settle" if dry_run else "settled"
    rows = [[o.event.job_id, verb, f"{o.settlement.balance_delta:+d}" if o.settlement else ""] for o in report.settled]
    rows += [[job.job_id, "stuck", f"created {job.created_at}, status {job.status}"] for job in report.stuck]
    rows += [[job.job_id, "unsettleable", reason] for job, reason in report.unsettleable]
    state.out.table("Timer scan" + (" (dry run)" if dry_run else ""), ["jobId", "result", "detail"], rows)
    state.out.line(f"examined {report.examined}: {verb} {len(report.settled)}, stuck {len(report.stuck)}, "
                   f"unsettleable {len(report.unsettleable)}, waiting {len(report.waiting)}")


@app.command()
def audit(
    ctx: typer.Context,
    user: Annotated[Optional[str], typer.Argument(help="One user; all users (a table scan) when omitted.")] = None,
    fix: Annotated[bool, typer.Option("--fix", help="Write a corrective ledger entry per discrepancy.")] = False,
    reason: Annotated[Optional[str], typer.Option(help="Why (required with --fix).")] = None,
    min_age: Annotated[int, typer.Option("--min-age", min=0, help="Leave balances changed in the last N seconds alone.")] = 60,
    dry_run: DryRun = False,
    yes: Yes = False,
) -> None:
    """Recompute balances from the ledger and report (or --fix) every difference."""
    state = _state(ctx)
    if fix and not (reason or "").strip():
        raise typer.BadParameter("--fix needs --reason", param_hint="--reason")
    target = state.target
    auditor = Auditor(target.store)
    with state.out.progress("reading balances and ledger") as advance:
        found = [d for d in [auditor.audit_user(user)] if d] if user else auditor.audit_all(advance)
    fixes = []
    if fix and found:
        confirm_write(state.stage, f"write {len(found)} corrective ledger entries", yes, dry_run)
        fixes = [result for d in found if (result := auditor.fix(d.user_id, reason, target.actor, dry_run, timedelta(seconds=min_age)))]
    state.out.data({"discrepancies": [d.as_dict() for d in found],
                    "fixes": [{"userId": f.discrepancy.user_id, "status": f.status, "ledgerId": f.entry and f.entry.ledger_id} for f in fixes]})
    if not found:
        state.out.line("no discrepancies: every balance equals its ledger")
        return
    state.out.table("Discrepancies", ["user", "stored", "ledger sum", "difference"],
                    [[d.user_id, d.stored, d.ledger_sum, f"{d.difference:+d}"] for d in found])
    for result in fixes:
        entry = f" ({result.entry.ledger_id}: {result.entry.description})" if result.entry else ""
        state.out.line(f"{result.discrepancy.user_id}: {result.status}{entry}")
    if not fix:
        raise typer.Exit(1)  # a discrepancy is a finding: scripts and CI see it


# --- alarms, pause / resume ----------------------------------------------------------------------


@alarms_app.command("status")
def alarms_status(ctx: typer.Context) -> None:
    """State and whether actions are enabled, per alarm."""
    state = _state(ctx)
    alarms = control.stage_alarms(state.target.client("cloudwatch"), state.target.names)
    rows = [{"name": a["AlarmName"], "state": a.get("StateValue"), "actionsEnabled": a.get("ActionsEnabled")} for a in alarms]
    state.out.data(rows)
    state.out.table(f"Alarms ({state.stage})", ["alarm", "state", "actions"], [[r["name"], r["state"], "enabled" if r["actionsEnabled"] else "DISABLED"] for r in rows])


def _set_alarms(ctx: typer.Context, enabled: bool, dry_run: bool, yes: bool) -> None:
    state = _state(ctx)
    cloudwatch = state.target.client("cloudwatch")
    names = [a["AlarmName"] for a in control.stage_alarms(cloudwatch, state.target.names)]
    if not names:
        raise OpsError(f"no cc-reconciler-*-{state.stage} alarms found")
    verb = "enable" if enabled else "disable"
    confirm_write(state.stage, f"{verb} actions of {len(names)} alarms", yes, dry_run)
    if not dry_run:
        control.set_alarm_actions(cloudwatch, names, enabled)
    state.out.data({"alarms": names, "actionsEnabled": enabled, "dryRun": dry_run})
    state.out.line(("dry run: would " + verb if dry_run else verb + "d") + " actions of: " + ", ".join(names))


@alarms_app.command("disable")
def alarms_disable(ctx: typer.Context, dry_run: DryRun = False, yes: Yes = False) -> None:
    """Silence the alarms' actions (maintenance); states still change."""
    _set_alarms(ctx, False, dry_run, yes)


@alarms_app.command("enable")
def alarms_enable(ctx: typer.Context, dry_run: DryRun = False, yes: Yes = False) -> None:
    """Turn the alarms' actions back on."""
    _set_alarms(ctx, True, dry_run, yes)


@app.command()
def pause(ctx: typer.Context, dry_run: DryRun = False, yes: Yes = False) -> None:
    """Emergency stop that loses no event: reserved concurrency 0, Lambda's async queue holds the events."""
    state = _state(ctx)
    client, function = state.target.client("lambda"), state.target.names.function
    current = control.function_state(client, function)
    hold = control.describe_hold(current.max_event_age_seconds)
    confirm_write(state.stage, f"pause {function}", yes, dry_run)
    if not dry_run:
        control.set_concurrency(client, function, 0)
    state.out.data({"function": function, "reservedConcurrency": 0, "previous": current.reserved_concurrency,
                    "maxEventAgeSeconds": current.max_event_age_seconds, "dryRun": dry_run})
    state.out.line(f"{'dry run: would pause' if dry_run else 'paused'} {function} (reserved concurrency "
                   f"{current.reserved_concurrency} -> 0): {hold}. Resume with `reconciler --stage {state.stage} resume`.")


@app.command()
def resume(
    ctx: typer.Context,
    concurrency: Annotated[Optional[int], typer.Option(min=1, help="Override the stage's configured concurrency.")] = None,
    dry_run: DryRun = False,
    yes: Yes = False,
) -> None:
    """Restore the configured reserved concurrency; held events are then delivered."""
    state = _state(ctx)
    client, function = state.target.client("lambda"), state.target.names.function
    current = control.function_state(client, function)
    wanted = concurrency or control.configured_concurrency(state.stage)
    confirm_write(state.stage, f"resume {function} with concurrency {wanted}", yes, dry_run)
    if not dry_run:
        control.set_concurrency(client, function, wanted)
    state.out.data({"function": function, "reservedConcurrency": wanted, "previous": current.reserved_concurrency, "dryRun": dry_run})
    state.out.line(f"{'dry run: would resume' if dry_run else 'resumed'} {function}: reserved concurrency {current.reserved_concurrency} -> {wanted}")


# --- archive replay, backups ---------------------------------------------------------------------


@events_app.command("replay")
def events_replay(
    ctx: typer.Context,
    start: Annotated[datetime, typer.Option("--from", help="ISO 8601 (UTC if no zone).")],
    end: Annotated[datetime, typer.Option("--to", help="ISO 8601 (UTC if no zone).")],
    dry_run: DryRun = False,
    yes: Yes = False,
) -> None:
    """Replay archived render events onto the bus, to the reconciler's rule only (settlement is exactly once)."""
    state = _state(ctx)
    events = state.target.client("events")
    plan = control.plan_replay(events, state.target.names, _utc(start), _utc(end), datetime.now(timezone.utc))
    confirm_write(state.stage, f"replay archived events {plan.start.isoformat()} to {plan.end.isoformat()}", yes, dry_run)
    if not dry_run:
        events.start_replay(**plan.request())
    state.out.data({"replayName": plan.name, "archiveArn": plan.archive_arn, "ruleArn": plan.rule_arn,
                    "from": plan.start.isoformat(), "to": plan.end.isoformat(), "dryRun": dry_run})
    state.out.line(f"{'dry run: would start' if dry_run else 'started'} replay {plan.name} of {state.target.names.event_archive} "
                   f"to {state.target.names.events_rule}")
    state.out.line(f"watch it: aws events describe-replay --replay-name {plan.name}")


@app.command()
def backup(ctx: typer.Context, dry_run: DryRun = False, yes: Yes = False) -> None:
    """On-demand backups of the Jobs, Credits and Ledger tables."""
    state = _state(ctx)
    now = datetime.now(timezone.utc)
    tables = state.target.names.tables
    confirm_write(state.stage, f"back up {', '.join(tables)}", yes, dry_run)
    if dry_run:
        created = [{"table": t, "backupName": control.backup_name(t, now), "backupArn": None} for t in tables]
    else:
        created = control.create_backups(state.target.client("dynamodb"), tables, now)
    state.out.data(created)
    state.out.table("Backups" + (" (dry run)" if dry_run else ""), ["table", "backup", "arn"],
                    [[b["table"], b["backupName"], b["backupArn"]] for b in created])


# --- local stack ---------------------------------------------------------------------------------


@local_app.command("up")
def local_up(ctx: typer.Context) -> None:
    """Start a local stack for --stage, save its state for --local, and run until Ctrl-C."""
    from reconciler.local.server import moto_server
    from reconciler.local.stack import provision_stack

    state = _state(ctx)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with moto_server() as endpoint:
        stack = provision_stack(endpoint, state.stage)
        state_file = local_state_path()
        stack.save(state_file)
        try:
            state.out.data({"endpoint": endpoint, "stage": state.stage, "stateFile": str(state_file)})
            state.out.line(f"local stack ({state.stage}) at {endpoint}; state in {state_file}. Use `reconciler --local ...`; Ctrl-C stops it.")
            sys.stdout.flush()
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            state_file.unlink(missing_ok=True)


def _local_stack(state: State):
    if not state.use_local and state.endpoint_url is None:
        # A `local` command means the local stack: --local is implied.
        state.use_local, state._target = True, None
    if state.target.local is None:
        raise OpsError("this command needs the stack started by `reconciler local up` (--local)")
    return state.target.local


@local_app.command("send")
def local_send(ctx: typer.Context, events_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]) -> None:
    """Publish each line of a JSONL file to the local bus, run the handler on it, print each outcome."""
    state = _state(ctx)
    stack = _local_stack(state)
    events = []
    for number, line in enumerate(events_file.read_text().splitlines(), 1):
        if line.strip():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise OpsError(f"{events_file}:{number}: not JSON ({error.msg})") from None
    stack.activate()
    stack.publish(events)
    invoker = stack.invoker()
    with state.out.progress("delivering"), _stdout_to_stderr():
        invoker.drain()
    outcomes = [r.get("result") or {"outcome": "error", "reason": r.get("error")} for r in invoker.results]
    state.out.data(outcomes)
    state.out.table("Outcomes", ["jobId", "outcome", "balance delta", "detail"],
                    [[o.get("jobId"), o.get("outcome"), o.get("balanceDelta"), o.get("reason") or o.get("settledAs")] for o in outcomes])


@local_app.command("seed")
def local_seed(ctx: typer.Context, user: str, credits: Annotated[int, typer.Argument(min=0)]) -> None:
    """Set a user's balance on the local stack, as an adjustment so the ledger explains it."""
    state = _state(ctx)
    target = state.target
    if not target.is_local:
        raise OpsError("local seed only runs against a local stack (--local or --endpoint-url)")
    current = (target.store.get_balance(user) or {}).get("remaining") or 0
    if current == credits:
        state.out.data({"userId": user, "remaining": credits, "changed": False})
        state.out.line(f"{user} already has {credits} credits")
        return
    now = iso_timestamp()
    result = Adjuster(target.store).adjust(user, credits - current, "local seed", f"seed:{user}:{now}", target.actor)
    state.out.data({"userId": user, "remaining": result.balance_after, "changed": True})
    state.out.line(f"{user}: {current} -> {result.balance_after} credits ({result.entry.ledger_id})")


# --- helpers -------------------------------------------------------------------------------------


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """The handler's logs and metrics go to stderr (in Lambda they go to stdout, to CloudWatch)."""
    import logging

    from reconciler.observability import SERVICE

    for handler in logging.getLogger(SERVICE).handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.stream = sys.stderr  # was bound to stdout as it was when Powertools was imported
    with redirect_stdout(sys.stderr):
        yield


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _iso(moment: Optional[datetime]) -> Optional[str]:
    return iso_timestamp(_utc(moment)) if moment else None


def _entry_dict(entry: Any) -> dict:
    return {"ledgerId": entry.ledger_id, "userId": entry.user_id, "timestamp": entry.timestamp, "type": entry.type,
            "amount": entry.signed_amount, "description": entry.description, "reference": entry.reference,
            "eventId": entry.event_id, "actor": entry.actor}


def main() -> None:
    app()
