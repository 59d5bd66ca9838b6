"""scan and audit: settle what no event settled, and check every balance against its ledger and its open holds."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Annotated

import typer

from reconciler.cli.app import DryRun, State, Yes, an_id, app, state_of
from reconciler.cli.output import confirm_write
from reconciler.ops.audit import TRUST_BALANCE, TRUST_LEDGER, TRUSTS, Auditor, Discrepancy, FixResult


@app.command()
def scan(ctx: typer.Context, dry_run: DryRun = False, yes: Yes = False) -> None:
    """Run the timer scan now (the code the function runs on its schedule)."""
    state = state_of(ctx)
    confirm_write(state.stage, "run the timer scan", yes, dry_run)
    timer_scan = state.target.operator_scan(dry_run)
    state.say_notes()
    with state.out.progress("scanning unsettled jobs"):
        report = timer_scan.run()
    summary = report.summary()
    state.out.data({**summary, "dryRun": dry_run})
    verb = "would settle" if dry_run else "settled"
    rows = [[o.event.job_id if o.event else "", verb, f"{o.settlement.balance_delta:+d}" if o.settlement else ""] for o in report.settled]
    rows += [[job.job_id, "stuck", f"created {job.created_at}, status {job.status}"] for job in report.stuck]
    rows += [[job.job_id, "unsettleable", reason] for job, reason in report.unsettleable]
    state.out.table("Timer scan" + (" (dry run)" if dry_run else ""), ["jobId", "result", "detail"], rows)
    state.out.line(
        f"examined {report.examined}: {verb} {len(report.settled)}, stuck {len(report.stuck)}, "
        f"unsettleable {len(report.unsettleable)}, waiting {len(report.waiting)}"
    )


def _ask_trust(discrepancy: Discrepancy) -> str | None:
    """Per user, on the terminal (stderr): ledger, balance or skip."""
    answer = typer.prompt(f"{discrepancy.user_id}: trust the [l]edger, the [b]alance, or [s]kip?", default="s", err=True)
    return {"l": TRUST_LEDGER, "ledger": TRUST_LEDGER, "b": TRUST_BALANCE, "balance": TRUST_BALANCE}.get(answer.strip().lower())


@app.command()
def audit(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Argument(callback=an_id, help="One user; all users (a table scan) when omitted.")] = None,
    fix: Annotated[bool, typer.Option("--fix", help="Correct each discrepancy as --trust says (or as you answer, per user).")] = False,
    trust: Annotated[
        str | None,
        typer.Option("--trust", help="ledger: set the balance back to its books (ledger sum, open holds); balance: book an entry explaining it."),
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why (required with --fix; kept with the correction).")] = None,
    min_age: Annotated[int, typer.Option("--min-age", min=0, help="Leave balances changed in the last N seconds alone.")] = 60,
    dry_run: DryRun = False,
    yes: Yes = False,
) -> None:
    """Check every balance against its books: posted (remaining + held) against the ledger's sum (both tables), and
    held against the open hold reservations; report each discrepancy by kind, and with --fix correct it as you choose.

    Exit status: 0 no discrepancy left, 1 discrepancies left (found, skipped or not fixed), 2 usage error."""
    state = state_of(ctx)
    _check_audit_options(fix, trust, reason, dry_run)
    auditor = state.target.auditor()
    with state.out.progress("reading balances, ledgers and open reservations") as advance:
        found = [d for d in [auditor.audit_user(user)] if d] if user else auditor.audit_all(advance)
    for d in found:
        state.out.table(
            f"{d.user_id}: {d.summary()}",
            ["latest entries", "ledgerId", "amount", "description"],
            [[e.timestamp, e.ledger_id, f"{e.signed_amount:+d}", e.description] for e in d.recent] or [["(no entries)", "", "", ""]],
        )
        for name, words in d.corrections().items():
            state.out.line(f"  --trust {name}: {words}")
    fixes = _fix(state, auditor, found, trust, reason or "", timedelta(seconds=min_age), dry_run, yes) if fix and found else []
    resolved = {f.discrepancy.user_id for f in fixes if f.resolved}
    left = [d for d in found if d.user_id not in resolved]
    state.out.data({"discrepancies": [_discrepancy_data(d) for d in found], "fixes": [_fix_data(f, min_age) for f in fixes], "remaining": len(left)})
    for result in fixes:
        state.out.line(f"{result.discrepancy.user_id}: {result.explain(min_age)}")
    if not found:
        state.out.line("no discrepancies: every posted balance equals its ledger, and every held its open holds")
        return
    if left:
        if not fix:
            state.out.line(f"{len(left)} discrepancies; correct them with --fix --trust ledger|balance --reason TEXT")
        else:
            state.out.line(f"{len(left)} discrepancies left")
        raise typer.Exit(1)  # a discrepancy is a finding: scripts and CI see it


def _check_audit_options(fix: bool, trust: str | None, reason: str | None, dry_run: bool) -> None:
    if trust is not None and trust not in TRUSTS:
        raise typer.BadParameter(f"--trust must be ledger or balance, got {trust!r}", param_hint="--trust")
    if trust is not None and not fix:
        raise typer.BadParameter("--trust only applies with --fix", param_hint="--trust")
    if fix and not (reason or "").strip():
        raise typer.BadParameter("--fix needs --reason", param_hint="--reason")
    interactive = sys.stdin.isatty() and sys.stderr.isatty()
    if fix and trust is None and not interactive and not dry_run:
        raise typer.BadParameter("--fix needs --trust ledger or --trust balance (no terminal to ask on, per user)", param_hint="--trust")


def _fix(
    state: State, auditor: Auditor, found: list[Discrepancy], trust: str | None, reason: str, min_age: timedelta, dry_run: bool, yes: bool
) -> list[FixResult]:
    """Each discrepancy corrected as --trust says, or as the operator answers per user."""
    confirm_write(state.stage, f"correct {len(found)} balances", yes, dry_run)
    fixes = []
    for d in found:
        if trust is None and dry_run:
            continue  # both corrections are listed above
        chosen = trust or _ask_trust(d)
        if chosen is None:
            state.out.note(f"{d.user_id}: skipped (no choice made)")
            continue
        result = auditor.fix(d.user_id, reason, state.target.actor, dry_run, min_age, chosen)
        if result is not None:
            fixes.append(result)
    return fixes


def _discrepancy_data(d: Discrepancy) -> dict:
    recent = [{"ledgerId": e.ledger_id, "timestamp": e.timestamp, "amount": e.signed_amount, "description": e.description} for e in d.recent]
    return {**d.as_dict(), "updatedAt": d.updated_at, "corrections": d.corrections(), "recentEntries": recent}


def _fix_data(f: FixResult, min_age: int) -> dict:
    return {
        "userId": f.discrepancy.user_id,
        "status": f.status,
        "trust": f.trust,
        "ledgerId": f.entry and f.entry.ledger_id,
        "detail": f.explain(min_age),
    }
