"""statement, liability: what finance reads (ops/statements.py has the rules)."""

from __future__ import annotations

import csv
import io
from typing import Annotated

import typer

from reconciler.cli.app import app, state_of


@app.command()
def statement(
    ctx: typer.Context,
    user: str,
    month: Annotated[str, typer.Option(help="The calendar month, UTC: YYYY-MM, such as 2026-11.")],
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout (line, category, credits, ledger entries).")] = False,
) -> None:
    """A user's statement for a month: opening balance, credits by category, debits by category, closing balance
    (the posted balance at the month's end) and the holds open now that were placed before it ended; each line
    names its ledger entries. Reads the user's ledger (two Queries) and open holds (one Query); never a scan."""
    state = state_of(ctx)
    found = state.target.statements().statement(user, month)
    if as_csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["line", "category", "credits", "ledger entries"])
        writer.writerows(found.rows())
        typer.echo(buffer.getvalue(), nl=False)
        return
    state.out.data(found.as_dict())
    state.out.table(f"Statement of {user}, {month} ({state.stage})", ["line", "category", "credits", "ledger entries"], found.rows())


@app.command(name="liability")
def liability_command(
    ctx: typer.Context,
    check: Annotated[bool, typer.Option("--check", help="Also sum every balance's own allocation now (a Scan of Credits) and compare.")] = False,
) -> None:
    """Outstanding credits of the whole book by category (paid, promotional, goodwill, other, overdrawn): the latest
    scheduled snapshot (one GetItem) and its age. --check sums every balance now and compares."""
    state = state_of(ctx)
    with state.out.progress("reading the liability snapshot" + (" and scanning Credits" if check else "")):
        book = state.target.statements().liability(check)
    state.out.data(book.as_dict())
    checked = book.checked
    rows = [[category, amount, "" if checked is None else checked.by_category[category]] for category, amount in book.by_category.items()]
    rows.append(["total", book.total, "" if checked is None else checked.total])
    taken = "no snapshot yet" if book.snapshot is None else f"snapshot of {book.snapshot.taken_at}, {_age(book.age_seconds)} old"
    verdict = "" if book.agrees is None else ("; the balances now agree" if book.agrees else "; the balances have moved since (or disagree)")
    state.out.table(f"Liability ({state.stage}): {taken}{verdict}", ["category", "snapshot", "balances now (--check)"], rows)


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "of unknown age"
    minutes, hours = seconds // 60, seconds // 3600
    return f"{hours} h {minutes % 60} min" if hours else (f"{minutes} min" if minutes else f"{seconds} s")
