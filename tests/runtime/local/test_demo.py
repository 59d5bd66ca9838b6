"""`make demo` is the README's first command: it must run end to end and exit 0."""

import pytest

from reconciler.local import demo

pytestmark = pytest.mark.server


def test_the_demo_settles_its_event_stream_and_the_books_balance(capsys):
    assert demo.main() == 0
    output = capsys.readouterr().out
    assert "Every balance equals its opening balance plus its ledger entries." in output
    assert "3 dead-lettered with their reason" in output
