"""Tables for people, JSON for scripts, progress on stderr (so --json output stays clean)."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from reconciler.ops.errors import OpsError


@dataclass
class Output:
    json_mode: bool = False
    progress_enabled: bool = True

    @property
    def console(self) -> Console:
        return Console(soft_wrap=True)

    def table(self, title: str, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> None:
        if self.json_mode:
            return
        table = Table(title=title)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*("" if value is None else str(value) for value in row))
        self.console.print(table)

    def line(self, text: str) -> None:
        if not self.json_mode:
            self.console.print(text, highlight=False)

    def data(self, payload: Any) -> None:
        """The command's result for --json (one JSON document on stdout)."""
        if self.json_mode:
            typer.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))

    @contextmanager
    def progress(self, description: str, total: int | None = None) -> Iterator[Any]:
        """Yields advance(n); a spinner when the total is unknown."""
        enabled = self.progress_enabled and not self.json_mode
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed}"), TimeElapsedColumn(),
                      console=Console(stderr=True), disable=not enabled, transient=True) as progress:
            task = progress.add_task(description, total=total)
            yield lambda n=1: progress.advance(task, n)


def confirm_write(stage: str, action: str, yes: bool, dry_run: bool) -> None:
    """In prod every write asks first; without a terminal to ask on, only --yes lets it through."""
    if dry_run or yes or stage != "prod":
        return
    if not sys.stdin.isatty():
        raise OpsError(f"refusing to {action} in prod without --yes (no terminal to confirm on)")
    if not typer.confirm(f"prod: {action}?", default=False):
        raise OpsError("not confirmed; nothing was changed")
