"""What a command prints: `--output table|json|yaml|text` and `--query` on stdout; prompts, progress, notes on stderr.

* table: for people; every value in full (long ids wrap on a terminal, and a pipe gets one row a line).
* json: one JSON document, the command's result (`--query` selects from it, like the aws CLI).
* yaml: the same document as block YAML (as the aws CLI's `--output yaml`).
* text: tab-separated full values, one record a line, no headers (for grep, cut and awk); the messages
  meant for people go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from reconciler.ops.operator_error import Refused

FORMATS = ("table", "json", "yaml", "text")
DOCUMENTS = ("json", "yaml")  # one document, the command's result: nothing else on stdout
_UNSET = object()


def text_value(value: Any) -> str:
    """One field of a text record: full, on one line, tabs and newlines escaped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True, default=str)
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def text_records(payload: Any) -> list[str]:
    """A result as text records: a list gives one line per element, a mapping one `key<TAB>value` per key."""
    if isinstance(payload, list):
        lines = []
        for element in payload:
            if isinstance(element, dict):
                lines.append("\t".join(text_value(v) for v in element.values()))
            elif isinstance(element, list):
                lines.append("\t".join(text_value(v) for v in element))
            else:
                lines.append(text_value(element))
        return lines
    if isinstance(payload, dict):
        return [f"{key}\t{text_value(value)}" for key, value in payload.items()]
    return [] if payload is None else [text_value(payload)]


def yaml_text(value: Any) -> str:
    """JSON-shaped data as block YAML, without a YAML library: keys sorted as in json; every string a JSON string
    literal (which YAML 1.2 reads as a double-quoted scalar), numbers, true, false and null as JSON writes them."""
    return "\n".join(_yaml_lines(value, ""))


def _yaml_lines(value: Any, pad: str) -> list[str]:
    if isinstance(value, dict) and value:
        lines: list[str] = []
        for key in sorted(value):
            head = f"{pad}{json.dumps(str(key))}:"
            lines += [head, *_yaml_lines(value[key], pad + "  ")] if _nested(value[key]) else [f"{head} {_yaml_scalar(value[key])}"]
        return lines
    if isinstance(value, list) and value:
        lines = []
        for item in value:
            if _nested(item):
                first, *rest = _yaml_lines(item, pad + "  ")
                lines += [f"{pad}- {first.lstrip()}", *rest]
            else:
                lines.append(f"{pad}- {_yaml_scalar(item)}")
        return lines
    return [f"{pad}{_yaml_scalar(value)}"]


def _nested(value: Any) -> bool:
    return isinstance(value, (dict, list)) and bool(value)


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(value)


@dataclass
class Output:
    format: str = "table"
    query: Any = None  # a compiled JMESPath expression
    progress_enabled: bool = True
    _payload: Any = field(default=_UNSET, repr=False)
    _records_written: bool = False

    @property
    def json_mode(self) -> bool:
        """One document on stdout (json or yaml), nothing else."""
        return self.format in DOCUMENTS

    def _document(self, payload: Any) -> str:
        if self.format == "yaml":
            return yaml_text(json.loads(json.dumps(payload, default=str)))
        return json.dumps(payload, indent=2, sort_keys=True, default=str)

    @property
    def console(self) -> Console:
        # A terminal wraps long values (never cuts them); anything else gets each row on one line.
        width = None if sys.stdout.isatty() else 100_000
        return Console(soft_wrap=True, width=width, file=sys.stdout)

    @property
    def err_console(self) -> Console:
        return Console(stderr=True, soft_wrap=True, highlight=False)

    def data(self, payload: Any) -> None:
        """The command's result: printed now for json (and any --query), kept for text otherwise."""
        self._payload = payload
        if self.query is not None:
            self._render_query(self.query.search(json.loads(json.dumps(payload, default=str))))
        elif self.json_mode:
            typer.echo(self._document(payload))

    def table(self, title: str, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> None:
        if self.query is not None or self.json_mode:
            return
        rows = [list(row) for row in rows]
        if self.format == "text":
            for row in rows:
                typer.echo("\t".join(text_value(value) for value in row))
            self._records_written = True
            return
        table = Table(title=title)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*("" if value is None else str(value) for value in row))
        self.console.print(table)

    def line(self, text: str) -> None:
        """A message for people: stdout in table mode, stderr in text mode, nothing in json mode."""
        if self.query is not None or self.json_mode:
            return
        if self.format == "text":
            self.err_console.print(text)
        else:
            self.console.print(text, highlight=False)

    def note(self, text: str) -> None:
        """A warning or remark: always stderr, whatever the format."""
        self.err_console.print(text)

    def finish(self) -> None:
        """Text mode: a command that printed no records prints its result as records."""
        if self.format == "text" and self.query is None and not self._records_written and self._payload is not _UNSET:
            for record in text_records(self._payload):
                typer.echo(record)

    def _render_query(self, result: Any) -> None:
        """What --query selected, in the format asked for (as the aws CLI does): a table stays a table."""
        if self.format == "text":
            for record in text_records(result):
                typer.echo(record)
        elif self.json_mode:
            typer.echo(self._document(result))
        elif isinstance(result, list) and result and all(isinstance(r, dict) for r in result):
            columns = list(dict.fromkeys(key for row in result for key in row))
            self._print_table(columns, [[row.get(column) for column in columns] for row in result])
        elif isinstance(result, dict):
            self._print_table(["key", "value"], [[key, value] for key, value in result.items()])
        elif isinstance(result, list):
            self._print_table(["value"], [[value] for value in result])
        elif result is not None:
            typer.echo(text_value(result))

    def _print_table(self, columns: list[str], rows: list[list[Any]]) -> None:
        table = Table()
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(text_value(value) for value in row))
        self.console.print(table)

    @contextmanager
    def progress(self, description: str, total: int | None = None) -> Iterator[Any]:
        """Yields advance(n); a spinner on stderr when the total is unknown."""
        # Here, not at import: every command starts faster without it (tens of ms), and scripts run --no-progress.
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.completed}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=not self.progress_enabled,
            transient=True,
        ) as progress:
            task = progress.add_task(description, total=total)
            yield lambda n=1: progress.advance(task, n)


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def _ask(question: str) -> str:
    """The question on stderr, the answer from stdin: nothing reaches stdout, not even the space a readline prompt
    echoes, so `--output text > file` holds only the result. End of input is a refusal."""
    sys.stderr.write(question + " ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    if not answer:
        raise Refused("no answer (end of input); nothing was changed")
    return answer.strip()


def confirm(question: str, refusal: str) -> None:
    """Asks on the terminal (stderr), never on stdout; without a terminal, refuses with `refusal`."""
    if not _interactive():
        raise Refused(refusal)
    if _ask(f"{question} [y/N]:").lower() not in ("y", "yes"):
        raise Refused("not confirmed; nothing was changed")


def confirm_typed(question: str, expected: str, refusal: str) -> None:
    """The operator must type `expected` (e.g. the stage name before a purge in prod)."""
    if not _interactive():
        raise Refused(refusal)
    if _ask(f"{question} Type {expected!r} to go on:") != expected:
        raise Refused("not confirmed; nothing was changed")


def confirm_write(stage: str, action: str, yes: bool, dry_run: bool) -> None:
    """In prod every write asks first; without a terminal to ask on, only --yes lets it through."""
    if dry_run or yes or stage != "prod":
        return
    confirm(f"prod: {action}?", f"refusing to {action} in prod without --yes (no terminal to confirm on)")
