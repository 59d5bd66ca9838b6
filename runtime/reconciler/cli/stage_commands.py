"""pause, resume, backup, events replay: stage-level controls for an incident."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer

from reconciler.cli.app import CONTEXT_SETTINGS, DryRun, Yes, app, state_of
from reconciler.cli.output import confirm_write
from reconciler.cli.times import parse_moment
from reconciler.ops.control import describe_pause

events_app = typer.Typer(no_args_is_help=True, context_settings=CONTEXT_SETTINGS, help="EventBridge archive cc-reconciler-archive-{stage}.")
app.add_typer(events_app, name="events")


class Refusals(StrEnum):
    skip = "skip"
    dead_letter = "dead-letter"


# What a replay of the archive does to events the function already handled, said before it starts: settlement is
# exactly once, and an event refused as invalid was dead-lettered, with its alert, when it first arrived.
REPLAY_EXPECTATIONS = (
    "every archived render event in the window reaches the function again; it skips, and logs as "
    "`replayed event skipped` (metric ReplayedEventsSkipped), what it already handled: jobs already settled (nothing "
    "moves twice) and events it refused as invalid when they first arrived (not dead-lettered or alerted again: their "
    "first copy went to the DLQ); jobs it never settled are settled now. Events still in the DLQ are better replayed "
    "with `dlq replay`"
)
REPLAY_DEAD_LETTERING_REFUSED = (
    "every archived render event in the window reaches the function again; jobs already settled are skipped (nothing "
    "moves twice), jobs never settled are settled now, and every event refused as invalid is dead-lettered with its "
    "alert, as if it arrived now (for events the function never received: events-dropped)"
)


@app.command()
def pause(ctx: typer.Context, dry_run: DryRun = False, yes: Yes = False) -> None:
    """Emergency stop that loses no event: reserved concurrency 0; Lambda sends the events to the DLQ, unrun, to replay."""
    state = state_of(ctx)
    controls, function = state.target.controls(), state.target.names.function
    current = controls.function_state()
    hold = describe_pause(state.hint("dlq replay"))
    confirm_write(state.stage, f"pause {function}", yes, dry_run)
    if not dry_run:
        controls.set_concurrency(0)
    state.out.data(
        {
            "function": function,
            "reservedConcurrency": 0,
            "previous": current.reserved_concurrency,
            "maxEventAgeSeconds": current.max_event_age_seconds,
            "dryRun": dry_run,
        }
    )
    state.out.line(
        f"{'dry run: would pause' if dry_run else 'paused'} {function} (reserved concurrency "
        f"{current.reserved_concurrency} -> 0). Resume with `{state.hint('resume')}`."
    )
    state.out.line(hold)


@app.command()
def resume(
    ctx: typer.Context,
    concurrency: Annotated[int | None, typer.Option(min=1, help="Override the stage's configured concurrency.")] = None,
    dry_run: DryRun = False,
    yes: Yes = False,
) -> None:
    """Restore the configured reserved concurrency; then replay what the pause dead-lettered (dlq replay)."""
    state = state_of(ctx)
    controls, function = state.target.controls(), state.target.names.function
    current = controls.function_state()
    wanted = concurrency or controls.configured_concurrency()
    confirm_write(state.stage, f"resume {function} with concurrency {wanted}", yes, dry_run)
    if not dry_run:
        controls.set_concurrency(wanted)
    state.out.data({"function": function, "reservedConcurrency": wanted, "previous": current.reserved_concurrency, "dryRun": dry_run})
    state.out.line(f"{'dry run: would resume' if dry_run else 'resumed'} {function}: reserved concurrency {current.reserved_concurrency} -> {wanted}")
    if current.reserved_concurrency == 0:
        state.out.line(f"events sent while it was paused are in the DLQ: `{state.hint('dlq list')}`, then `{state.hint('dlq replay')}`")


@events_app.command("replay")
def events_replay(
    ctx: typer.Context,
    start: Annotated[str, typer.Option("--from", help="ISO 8601 (UTC if no zone), or 2h, yesterday ...")],
    end: Annotated[str, typer.Option("--to", help="Same forms as --from.")],
    refused: Annotated[
        Refusals,
        typer.Option(
            help="Events refused as invalid: skip (they were dead-lettered when they first arrived) or dead-letter them again "
            "(the function never received them: events-dropped)."
        ),
    ] = Refusals.skip,
    dry_run: DryRun = False,
    yes: Yes = False,
) -> None:
    """Replay archived render events onto the bus, to the reconciler's rule only; what was already handled is skipped."""
    state = state_of(ctx)
    controls = state.target.controls()
    dead_letter = refused == Refusals.dead_letter
    plan = controls.plan_replay(parse_moment(start, "--from"), parse_moment(end, "--to"), datetime.now(UTC), dead_letter)
    expect = REPLAY_DEAD_LETTERING_REFUSED if dead_letter else REPLAY_EXPECTATIONS
    state.out.note(f"note: {expect}")
    confirm_write(state.stage, f"replay archived events {plan.start.isoformat()} to {plan.end.isoformat()}", yes, dry_run)
    if not dry_run:
        controls.start_replay(plan)
    state.out.data(
        {
            "replayName": plan.name,
            "archiveArn": plan.archive_arn,
            "ruleArn": plan.rule_arn,
            "from": plan.start.isoformat(),
            "to": plan.end.isoformat(),
            "expect": expect,
            "dryRun": dry_run,
        }
    )
    state.out.line(
        f"{'dry run: would start' if dry_run else 'started'} replay {plan.name} of {state.target.names.event_archive} "
        f"to {state.target.names.events_rule}"
    )
    state.out.line(f"watch it: {state.aws_hint(f'events describe-replay --replay-name {plan.name}')}")


@app.command()
def backup(ctx: typer.Context, dry_run: DryRun = False, yes: Yes = False) -> None:
    """On-demand backups of every table of the stage: Jobs, Credits, Ledger, UserLedger, Settlements and BalanceEvents."""
    state = state_of(ctx)
    confirm_write(state.stage, f"back up {', '.join(state.target.names.tables)}", yes, dry_run)
    created = state.target.controls().backup(datetime.now(UTC), dry_run)
    state.out.data(created)
    state.out.table(
        "Backups" + (" (dry run)" if dry_run else ""), ["table", "backup", "arn"], [[b["table"], b["backupName"], b["backupArn"]] for b in created]
    )
