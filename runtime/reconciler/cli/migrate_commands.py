"""migrate: take over v1's tables at the cutover (docs/migration.md): v1's settled jobs marked, the opening audit."""

from __future__ import annotations

from typing import Annotated

import typer

from reconciler.cli.app import Yes, app, state_of
from reconciler.cli.output import confirm_write
from reconciler.ops.migration import MigrationReport, parse_moment, trust_choices


@app.command()
def migrate(
    ctx: typer.Context,
    cutover: Annotated[str, typer.Option("--cutover", help="The instant v1's rule was paused (ISO 8601, e.g. 2026-12-01T12:00:00Z).")],
    apply: Annotated[bool, typer.Option("--apply", help="Write (without it: a dry run that says what it would do).")] = False,
    actor: Annotated[str | None, typer.Option("--actor", help="Who migrates (recorded; default: your identity).")] = None,
    reason: Annotated[str | None, typer.Option(help="Why (required with --apply; kept on every mark and correction).")] = None,
    trust: Annotated[str | None, typer.Option("--trust", help="Opening corrections for every user: ledger or balance.")] = None,
    trust_user: Annotated[list[str] | None, typer.Option("--trust-user", help="USER=ledger|balance for one user (repeatable).")] = None,
    job: Annotated[list[str] | None, typer.Option("--job", help="Only these jobs (repeatable); default: the whole Jobs table.")] = None,
    yes: Yes = False,
) -> None:
    """Mark every job terminal at the cutover as settled by v1 (no money moves), and audit v1's books per user:
    each difference named, corrected as you choose (--trust, --trust-user). A dry run unless --apply; repeatable.

    Exit status: 0 done and the books clean, 1 opening differences left uncorrected, 2 usage error."""
    state = state_of(ctx)
    try:
        parse_moment(cutover)
    except ValueError as error:
        raise typer.BadParameter(f"not an ISO 8601 instant: {error}", param_hint="--cutover") from None
    if apply and not (reason or "").strip():
        raise typer.BadParameter("--apply needs --reason", param_hint="--reason")
    try:
        default, overrides = trust_choices(trust, trust_user or [])
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--trust-user" if trust_user and "--trust-user" in str(error) else "--trust") from None
    if apply:
        confirm_write(state.stage, f"mark v1's jobs settled at {cutover} and book the chosen opening corrections", yes, False)
    with state.out.progress("reading v1's jobs, balances, ledger and dead letters"):
        report = state.target.migration(actor, reason or "").run(cutover, apply, default, overrides, job or [])
    _show(state, report)
    if report.opening and not {f.discrepancy.user_id for f in report.corrections if f.resolved} >= {c.discrepancy.user_id for c in report.opening}:
        raise typer.Exit(1)


def _show(state, report: MigrationReport) -> None:
    verb = "" if not report.dry_run else " (dry run)"
    state.out.data(
        {
            "cutover": report.cutover,
            "dryRun": report.dry_run,
            "counts": report.counts(),
            "jobs": [job.as_dict() for job in report.jobs],
            "opening": [cause.as_dict() for cause in report.opening],
            "corrections": [
                {"userId": f.discrepancy.user_id, "status": f.status, "trust": f.trust, "ledgerId": f.entry and f.entry.ledger_id}
                | {"detail": f.explain(0)}
                for f in report.corrections
            ],
        }
    )
    state.out.table(
        f"v1's jobs at {report.cutover}{verb}",
        ["jobId", "userId", "status", "verdict", "detail"],
        [[j.job_id, j.user_id, j.status or "", j.verdict, j.detail] for j in report.jobs],
    )
    state.out.line(", ".join(f"{verdict} {count}" for verdict, count in sorted(report.counts().items())) or "no jobs")
    for cause in report.opening:
        d = cause.discrepancy
        state.out.line(f"{d.user_id}: {d.summary()}")
        state.out.line(f"  named: {cause.named}")
        for name, words in d.corrections().items():
            state.out.line(f"  --trust {name}: {words}")
    for fix in report.corrections:
        state.out.line(f"{fix.discrepancy.user_id}: {fix.explain(0)}")
    if not report.opening:
        state.out.line("opening audit: every balance equals its ledger")
