"""dlq list | show | delete | purge | replay: the dead-letter queue cc-reconciler-dlq-{stage}."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.app import CONTEXT_SETTINGS, DryRun, MessageId, State, Yes, an_id, app, state_of
from reconciler.cli.output import confirm_typed, confirm_write
from reconciler.ops.dead_letter_replay import Found
from reconciler.ops.operator_error import FAILED, OpsError

dlq_app = typer.Typer(no_args_is_help=True, context_settings=CONTEXT_SETTINGS, help="The dead-letter queue cc-reconciler-dlq-{stage}.")
app.add_typer(dlq_app, name="dlq")

Max = Annotated[int, typer.Option("--max", min=1, help="Look at most at this many messages.")]


def _find(state: State, message_id: str, max_messages: int) -> Found:
    with state.out.progress("searching the DLQ"):
        return state.target.replayer().find(message_id, max_messages)


@dlq_app.command("list")
def dlq_list(ctx: typer.Context, max_messages: Max = 100) -> None:
    """The messages in the DLQ, with why each is there (they stay in the queue), and the queue's depth."""
    state = state_of(ctx)
    replayer = state.target.replayer()
    with state.out.progress("reading the DLQ"):
        letters = replayer.peek(max_messages)
    depth = replayer.depth()
    state.out.data(
        {
            "queue": state.target.names.dead_letter_queue,
            "approximateNumberOfMessages": depth["ApproximateNumberOfMessages"],
            "approximateNumberOfMessagesNotVisible": depth["ApproximateNumberOfMessagesNotVisible"],
            "messages": [letter.as_dict() for letter in letters],
        }
    )
    state.out.table(
        f"{state.target.names.dead_letter_queue}",
        ["messageId", "kind", "jobId", "eventId", "reason"],
        [[m.message_id, m.kind, m.job_id, m.event_id, m.reason] for m in letters],
    )
    state.out.line(
        f"{len(letters)} shown; about {depth['ApproximateNumberOfMessages']} in the queue, {depth['ApproximateNumberOfMessagesNotVisible']} in flight"
    )


@dlq_app.command("show")
def dlq_show(ctx: typer.Context, message_id: MessageId, max_messages: Max = 1000) -> None:
    """One message in full: its kind, reason and the event it carries (it stays in the queue)."""
    state = state_of(ctx)
    found = _find(state, message_id, max_messages)
    found.release()
    details = found.letter.as_dict(with_body=True)
    state.out.data(details)
    if state.out.format == "table" and state.out.query is None:
        for key in ("messageId", "kind", "jobId", "eventId", "reason", "receiveCount"):
            state.out.line(f"{key}: {details[key]}")
        state.out.console.print_json(json.dumps(details["event"]) if details["event"] is not None else json.dumps(details["body"]))


@dlq_app.command("delete")
def dlq_delete(
    ctx: typer.Context,
    message_id: MessageId,
    max_messages: Max = 1000,
    dry_run: DryRun = False,
    yes: Yes = False,
) -> None:
    """Delete one message (after you settled or dismissed its event by other means)."""
    state = state_of(ctx)
    found = _find(state, message_id, max_messages)
    letter = found.letter
    try:
        confirm_write(state.stage, f"delete DLQ message {letter.message_id} (job {letter.job_id})", yes, dry_run)
    except BaseException:
        found.release()
        raise
    if dry_run:
        found.release()
    else:
        found.delete()
    state.out.data({**letter.as_dict(), "deleted": not dry_run})
    state.out.line(f"{'dry run: would delete' if dry_run else 'deleted'} {letter.message_id} ({letter.kind}, job {letter.job_id}, {letter.reason})")


@dlq_app.command("purge")
def dlq_purge(ctx: typer.Context, dry_run: DryRun = False, yes: Yes = False) -> None:
    """Delete every message in the DLQ (SQS allows one purge a minute). Prod asks you to type the stage name."""
    state = state_of(ctx)
    replayer = state.target.replayer()
    count = replayer.depth()["ApproximateNumberOfMessages"]
    name = state.target.names.dead_letter_queue
    if not dry_run:
        if state.stage == "prod":
            confirm_typed(
                f"prod: purge {name} (about {count} messages, unrecoverable)?",
                state.stage,
                "refusing to purge the prod DLQ without a terminal to type the stage name on",
            )
        else:
            confirm_write(state.stage, f"purge {name}", yes, dry_run)
        replayer.purge()
    state.out.data({"queue": name, "approximateNumberOfMessages": count, "purged": not dry_run})
    state.out.line(f"{'dry run: would purge' if dry_run else 'purged'} {name} (about {count} messages)")


@dlq_app.command("replay")
def dlq_replay(
    ctx: typer.Context,
    message_id: Annotated[str | None, typer.Argument(callback=an_id, help="Only this message (id or unique prefix); all when omitted.")] = None,
    payload: Annotated[
        Path | None,
        typer.Option("--payload", exists=True, dir_okay=False, readable=True, help="With MESSAGE_ID: replay this corrected event (JSON) instead."),
    ] = None,
    max_messages: Annotated[int, typer.Option("--max", min=1, help="At most this many messages.")] = 100,
    dry_run: DryRun = False,
    yes: Yes = False,
) -> None:
    """Send messages through the reconciler again; delete each only if that succeeded."""
    state = state_of(ctx)
    if payload is not None and message_id is None:
        raise typer.BadParameter("--payload replaces one message's event: give its MESSAGE_ID", param_hint="--payload")
    corrected = None
    if payload is not None:
        try:
            corrected = json.loads(payload.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise typer.BadParameter(f"{payload} is not JSON ({error})", param_hint="--payload") from None
    what = (
        f"replay DLQ message {message_id}" + (" with a corrected payload" if corrected is not None else "")
        if message_id
        else f"replay up to {max_messages} DLQ messages"
    )
    confirm_write(state.stage, what, yes, dry_run)
    replayer = state.target.replayer()
    replayer.refuse_while_paused(state.hint("resume"))  # a dry run applies every check the real run applies
    if message_id is not None:
        found = _find(state, message_id, 1000)
        item, event = replayer.replay_one(found, corrected, dry_run, corrected_from=str(payload))
        items = [item]
        if event is not None:
            state.out.note(f"replaying a corrected event {event['id']} in place of message {found.letter.message_id}")
    else:
        with state.out.progress("replaying") as advance:
            items = replayer.replay(max_messages, dry_run=dry_run, on_item=lambda item: advance()).items
    summary = {status: sum(1 for i in items if i.status == status) for status in ("replayed", "failed", "skipped", "would-replay")}
    state.out.data({"summary": summary, "items": [{**item.as_dict(), **({"corrected": True} if corrected is not None else {})} for item in items]})
    state.out.table(
        "DLQ replay" + (" (dry run)" if dry_run else ""),
        ["messageId", "jobId", "status", "detail"],
        [[i.letter.message_id, i.letter.job_id, i.status, i.detail] for i in items],
    )
    state.out.line(", ".join(f"{name} {count}" for name, count in summary.items()))
    if summary["failed"]:
        raise typer.Exit(FAILED)
    if not items:
        _nothing_replayed(state, replayer.depth())


def _nothing_replayed(state: State, depth: dict[str, int]) -> None:
    """An empty queue is nothing to do; a queue whose every message is in flight is a replay that did not happen."""
    in_flight = depth["ApproximateNumberOfMessagesNotVisible"]
    if in_flight:
        raise OpsError(
            f"nothing replayed: all {in_flight} messages of the DLQ are in flight (another replay or reader holds them); "
            f"retry when they are visible again, `{state.hint('dlq list')}` shows them"
        )
