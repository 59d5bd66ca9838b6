"""alarms status | disable | enable | history: the reconciler's CloudWatch alarms (cc-reconciler-*-{stage})."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from reconciler.cli.app import CONTEXT_SETTINGS, DryRun, Yes, app, state_of
from reconciler.cli.output import confirm_write
from reconciler.cli.times import window

alarms_app = typer.Typer(no_args_is_help=True, context_settings=CONTEXT_SETTINGS, help="The reconciler's alarms (cc-reconciler-*-{stage}).")
app.add_typer(alarms_app, name="alarms")

Names = Annotated[
    list[str] | None, typer.Argument(help="Alarm names or concerns (errors, adjustments, dlq-depth ...); all when omitted.", show_default=False)
]


@alarms_app.command("status")
def alarms_status(ctx: typer.Context, names: Names = None) -> None:
    """State and whether actions are enabled, per alarm (the named ones, like v1's `describe-alarms --alarm-names`)."""
    state = state_of(ctx)
    controls = state.target.controls()
    wanted = set(controls.select_alarms(list(names))) if names else None
    alarms = [a for a in controls.stage_alarms() if wanted is None or a.name in wanted]
    rows = [{"name": a.name, "state": a.state, "actionsEnabled": a.actions_enabled, "reason": a.reason} for a in alarms]
    state.out.data(rows)
    state.out.table(
        f"Alarms ({state.stage})",
        ["alarm", "state", "actions", "reason"],
        [[r["name"], r["state"], "enabled" if r["actionsEnabled"] else "disabled", r["reason"]] for r in rows],
    )


@alarms_app.command("list")
def alarms_list(ctx: typer.Context) -> None:
    """The stage's alarm names, one a line, with the concern each is named by (`alarms status errors` ...)."""
    state = state_of(ctx)
    names = [a.name for a in state.target.controls().stage_alarms()]
    rows = [{"name": name, "concern": name.removeprefix("cc-reconciler-").removesuffix(f"-{state.stage}")} for name in names]
    state.out.data(rows)
    state.out.table(f"Alarms ({state.stage})", ["alarm", "concern"], [[r["name"], r["concern"]] for r in rows])


def _set_alarms(ctx: typer.Context, wanted: list[str] | None, enabled: bool, dry_run: bool, yes: bool) -> None:
    state = state_of(ctx)
    controls = state.target.controls()
    names = controls.select_alarms(list(wanted or []))
    verb = "enable" if enabled else "disable"
    confirm_write(state.stage, f"{verb} actions of {len(names)} alarms", yes, dry_run)
    if not dry_run:
        controls.set_alarm_actions(names, enabled)
    state.out.data({"alarms": names, "actionsEnabled": enabled, "dryRun": dry_run})
    state.out.line(("dry run: would " + verb if dry_run else verb + "d") + " actions of: " + ", ".join(names))
    if not enabled and not dry_run:
        state.out.line(f"re-enable them after the maintenance: {state.hint('alarms enable ' + ' '.join(names))}")


@alarms_app.command("disable")
def alarms_disable(ctx: typer.Context, names: Names = None, dry_run: DryRun = False, yes: Yes = False) -> None:
    """Silence the actions of the named alarms, or of all (maintenance); states still change."""
    _set_alarms(ctx, names, False, dry_run, yes)


@alarms_app.command("enable")
def alarms_enable(ctx: typer.Context, names: Names = None, dry_run: DryRun = False, yes: Yes = False) -> None:
    """Turn the actions of the named alarms (or all) back on."""
    _set_alarms(ctx, names, True, dry_run, yes)


@alarms_app.command("history")
def alarms_history(
    ctx: typer.Context,
    names: Names = None,
    since: Annotated[str, typer.Option(help="From: ISO 8601, 2h, 3d, yesterday ...")] = "1d",
    until: Annotated[str | None, typer.Option(help="Up to (default now).")] = None,
    limit: Annotated[int, typer.Option("--max", min=1, help="At most this many items.")] = 100,
) -> None:
    """State changes and updates of the stage's alarms, newest first (describe-alarm-history)."""
    state = state_of(ctx)
    start, until_moment = window(since, until)
    end = until_moment or datetime.now(UTC)
    items = state.target.controls().alarm_history(list(names or []), start, end, limit)
    state.out.data(items)
    state.out.table(
        f"Alarm history ({state.stage})", ["time", "alarm", "type", "summary"], [[i["timestamp"], i["alarm"], i["type"], i["summary"]] for i in items]
    )
    state.out.line(f"{len(items)} items from {start.isoformat()} to {end.isoformat()}")
