"""shadow start | decide | report: v2 decides v1's events read-only, and the comparison with what v1 did (docs/migration.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.app import CONTEXT_SETTINGS, app, state_of
from reconciler.domain.ledger import iso_timestamp
from reconciler.ops.operator_error import NotFound
from reconciler.ops.shadow import START_FILE, Shadow, compare, read_decisions, read_events

shadow_app = typer.Typer(no_args_is_help=True, context_settings=CONTEXT_SETTINGS, help="v2 beside v1: decide without writing, then compare.")
app.add_typer(shadow_app, name="shadow")

Directory = Annotated[Path, typer.Option("--dir", help="Where the shadow keeps its baseline and decisions.", file_okay=False)]


def _shadow(state, directory: Path) -> Shadow:
    return state.target.shadow(directory)


@shadow_app.command("start")
def shadow_start(ctx: typer.Context, directory: Directory) -> None:
    """Record the baseline: every balance and every user's ledger sum as they stand now."""
    state = state_of(ctx)
    store = state.target.store
    with state.out.progress("reading balances and the ledger"):
        baseline = _shadow(state, directory).start(store.scan_balances(), store.scan_ledger(), iso_timestamp())
    state.out.data(baseline)
    state.out.line(f"baseline of {len(baseline['balances'])} balances at {baseline['takenAt']} in {directory / START_FILE}")


@shadow_app.command("decide")
def shadow_decide(
    ctx: typer.Context,
    events_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="EventBridge envelopes, one a line.")],
    directory: Directory,
) -> None:
    """v2's decision for each event against the live tables, writing nothing to them (events decided before are skipped)."""
    state = state_of(ctx)
    with state.out.progress("deciding"):
        made = _shadow(state, directory).decide(read_events(events_file))
    state.out.data(made)
    state.out.table(
        "Shadow decisions", ["eventId", "jobId", "outcome", "posted"], [[d["eventId"], d["jobId"], d["outcome"], d["balanceDelta"]] for d in made]
    )


@shadow_app.command("report")
def shadow_report(ctx: typer.Context, directory: Directory) -> None:
    """Compare v2's decisions with v1's books: per job and per user, each difference named. Exit 1 when there is any."""
    state = state_of(ctx)
    if not (directory / START_FILE).exists():
        raise NotFound(f"no baseline in {directory}: run `{state.hint(f'shadow start --dir {directory}')}` before v1 settles the events")
    store = state.target.store
    with state.out.progress("reading balances and the ledger"):
        report = compare(read_decisions(directory), json.loads((directory / START_FILE).read_text()), store.scan_balances(), store.scan_ledger())
    state.out.data(report.as_dict())
    state.out.table("Differences", ["scope", "subject", "v2", "v1", "named"], [[d.scope, d.subject, d.v2, d.v1, d.named] for d in report.differences])
    state.out.line(
        f"decided {report.decided} events ({', '.join(f'{k} {v}' for k, v in sorted(report.outcomes.items()))}); posted: v2 {report.v2_total:+d}, "
        f"v1's ledger {report.v1_ledger_total:+d}, v1's balances {report.v1_balance_total:+d}; {len(report.differences)} differences"
    )
    if report.differences:
        raise typer.Exit(1)
