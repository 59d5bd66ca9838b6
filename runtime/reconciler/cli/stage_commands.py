"""pause, resume, backup, events replay: stage-level controls for an incident."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from reconciler.cli.app import CONTEXT_SETTINGS, DryRun, Yes, app, state_of
from reconciler.cli.output import confirm_write
from reconciler.cli.times import parse_moment
from reconciler.ops.control import describe_pause

events_app = typer.Typer(no_args_is_help=True, context_settings=CONTEXT_SETTINGS, help="EventBridge archive cc-reconciler-archive-{stage}.")
app.add_typer(events_app, name="events")


# What a replay of the archive does to events the function already handled, said before it starts (the function
# decides each replayed event as it decided the original: settlement is exactly once, a refusal is a refusal again).
REPLAY_EXPECTATIONS = (
    "every archived render event in the window reaches the function again: jobs already settled come back as duplicates "
    "(nothing moves twice); events refused before as invalid are refused again, each dead-lettered again (another DLQ "
    "message) with its alert; events still in the DLQ are better replayed with `dlq replay`"
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
    dry_run: DryRun = False,
    yes: Yes = False,
) -> None:
    """Replay archived render events onto the bus, to the reconciler's rule only (settlement is exactly once)."""
    state = state_of(ctx)
    controls = state.target.controls()
    plan = controls.plan_replay(parse_moment(start, "--from"), parse_moment(end, "--to"), datetime.now(UTC))
    state.out.note(f"note: {REPLAY_EXPECTATIONS}")
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
            "expect": REPLAY_EXPECTATIONS,
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
