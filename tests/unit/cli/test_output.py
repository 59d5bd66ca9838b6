"""Output formats without AWS: an 80-column terminal wraps long ids instead of cutting them; text is one
record a line, full values, escaped; --query selects from the JSON result in every format."""

from __future__ import annotations

import io
import re
import sys
from contextlib import contextmanager
from datetime import UTC

import jmespath
import pytest

from reconciler.cli.output import Output, text_records, text_value
from reconciler.cli.times import parse_moment

LONG_ID = "adjustment:70:INC-1-" + "x" * 64


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def stdout(monkeypatch, capsys):
    """An 80-column terminal as stdout: installed by the test body (pytest installs its capture after fixtures)."""
    stream = Terminal()
    monkeypatch.setenv("COLUMNS", "80")

    @contextmanager
    def terminal():
        with capsys.disabled():
            monkeypatch.setattr(sys, "stdout", stream)
            yield stream

    return terminal


def test_an_80_column_terminal_wraps_long_ids_instead_of_truncating_them(stdout):
    with stdout() as stdout:
        Output("table").table("Ledger", ["timestamp", "ledgerId", "description"], [["2026-11-29T12:00:00.000Z", LONG_ID, "Manual adjustment"]])
    printed = re.sub(r"\x1b\[[0-9;]*m", "", stdout.getvalue())  # colours aside
    assert "…" not in printed and max(len(line) for line in printed.splitlines()) <= 80
    assert "".join(printed.split()).count("x" * 20) >= 1 and "2026-11-29T12:00:00.000Z" in "".join(printed.replace("│", "").split())


def test_text_is_tab_separated_full_values_and_messages_go_to_stderr(stdout):
    out = Output("text")
    with stdout() as stdout:
        out.table("t", ["a", "b"], [[LONG_ID, "two\twords\nand a line"], [None, True]])
    assert stdout.getvalue().splitlines() == [f"{LONG_ID}\ttwo\\twords\\nand a line", "\ttrue"]
    assert text_records({"userId": "u1", "remaining": 5}) == ["userId\tu1", "remaining\t5"]
    assert text_value({"b": 1}) == '{"b": 1}'


@contextmanager
def stdout_again(stream):
    previous, sys.stdout = sys.stdout, stream
    try:
        yield
    finally:
        sys.stdout = previous


def test_query_selects_from_the_json_result_in_each_format(stdout):
    data = {"messages": [{"messageId": "m-1", "jobId": "j1"}, {"messageId": "m-2", "jobId": "j2"}], "approximateNumberOfMessages": 2}
    with stdout() as stdout:
        Output("text", jmespath.compile("messages[].messageId")).data(data)
    assert stdout.getvalue().splitlines() == ["m-1", "m-2"]
    stdout.truncate(0)
    stdout.seek(0)
    with stdout_again(stdout):
        Output("table", jmespath.compile("messages")).data(data)
    assert "m-2" in stdout.getvalue() and "jobId" in stdout.getvalue()


def test_relative_and_absolute_times():
    from datetime import datetime

    now = datetime(2026, 11, 29, 12, 30, tzinfo=UTC)
    assert parse_moment("2h", "--since", now) == datetime(2026, 11, 29, 10, 30, tzinfo=UTC)
    assert parse_moment("90m ago", "--since", now) == datetime(2026, 11, 29, 11, 0, tzinfo=UTC)
    assert parse_moment("yesterday", "--since", now) == datetime(2026, 11, 28, tzinfo=UTC)
    assert parse_moment("2026-11-28T10:00", "--since", now) == datetime(2026, 11, 28, 10, tzinfo=UTC)
    assert parse_moment("2026-11-28T10:00+01:00", "--since", now) == datetime(2026, 11, 28, 9, tzinfo=UTC)


def test_yaml_output_is_the_json_document_as_block_yaml_that_a_yaml_parser_reads_back():
    import yaml

    from reconciler.cli.output import yaml_text

    documents = [
        {"b": [1, {"c": "x: y", "d": []}, [2, 3]], "a": 1, "e": {}, "f": None, "g": True, "h": "line\nnext é \u0007 #not a comment"},
        [],
        "- not a list",
        [{"x": {"y": [1.5, "null"]}}],
    ]
    for document in documents:
        assert yaml.safe_load(yaml_text(document)) == document
    assert yaml_text({"b": [1], "a": {"c": 2}}).splitlines() == ['"a":', '  "c": 2', '"b":', "  - 1"]
